"""Streamlit pages of the sensing plugin: the ledger, the map (时空一张图) and inspections.

Pages read only through ``ctx.ledger(...)`` (rows already limited to what the person may see),
page through rows on the server, and draw aggregates computed in SQL (see :mod:`queries`).
Filters start from ``ctx.params`` so a cockpit drill-down or a shared link opens pre-filtered.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import math
from typing import TYPE_CHECKING, Any

from huizhi import district
from huizhi.clock import beijing_today
from huizhi_sensing import queries
from huizhi_sensing.fmt import fmt_count, fmt_pct
from huizhi_sensing.queries import DeviceFilter
from huizhi_sensing.schema import LEDGER_ID, SENSING_LEDGER, STATUSES, TYPE_NAMES

if TYPE_CHECKING:
    import pandas as pd

    from huizhi.context import LedgerReader, PageContext

EMPTY_MESSAGE = (
    "感知前端管理台账尚无数据。请台账管理员在“台账上传”页面按模板上传第一版，"
    "或由平台管理员运行 `huizhi seed` 载入演示数据。"
)
NETWORKED_OPTIONS = ("全部", "已联网", "未联网")
PAGE_SIZES = (25, 50, 100, 200)
PLAIN_CONFIG = {"displaylogo": False, "modeBarButtonsToRemove": ["lasso2d", "select2d"]}


# -- formatting -----------------------------------------------------------------------------------


def display_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows as people read them: Chinese headers, 是/否, dates as text, overdue days."""
    out = frame.copy()
    if "networked" in out:
        out["networked"] = out["networked"].map({True: "是", False: "否"})
    for col in ("install_date", "last_inspection", "next_due"):
        if col in out:
            out[col] = out[col].map(lambda d: d.isoformat() if isinstance(d, dt.date) else "")
    if "days_overdue" in out:
        out["days_overdue"] = out["days_overdue"].map(
            lambda d: "" if d is None or d != d else f"逾期{int(d)}天"
        )
    labels = {c.name: c.label for c in SENSING_LEDGER.columns}
    labels.update(next_due="下次巡检截止", days_overdue="巡检逾期")
    return out.rename(columns=labels)


# -- shared building blocks -------------------------------------------------------------------------


def open_reader(ctx: PageContext) -> LedgerReader | None:
    """The scoped reader, or a Chinese message and None (no permission, or no version yet)."""
    import streamlit as st

    from huizhi.access import AccessDenied

    try:
        reader = ctx.ledger(LEDGER_ID)
    except AccessDenied as exc:
        st.warning(exc.user_message)
        return None
    if queries.as_of(reader) is None:
        st.info(EMPTY_MESSAGE)
        return None
    return reader


def _scope_caption(reader: LedgerReader, ctx: PageContext) -> str:
    if reader.sees_all_rows:
        return "可查看全区所有权属单位的感知前端。"
    names = "、".join(sorted(reader.scope.department_names))
    return f"按分级分权原则，您只能查看 {names} 登记的感知前端。"


def _key(base: str, params: Any) -> str:
    """Widget keys change when the incoming filters change, so a new drill-down starts fresh."""
    digest = hashlib.sha1(json.dumps(dict(params), sort_keys=True, default=str).encode()).hexdigest()[:8]
    return f"{base}-{digest}"


def filter_widgets(
    reader: LedgerReader, initial: DeviceFilter, key: str, *, overdue: bool = True, search: bool = True
) -> DeviceFilter:
    """Filter controls, pre-set from ``initial``; returns what the person chose."""
    import streamlit as st

    dept_options = tuple(reader.distinct("owner_dept")) if reader.sees_all_rows else ()
    with st.container(border=True):
        c1, c2, c3 = st.columns(3)
        streets = c1.multiselect(
            "所属镇街",
            district.street_names(),
            default=list(initial.streets),
            key=f"{key}-street",
            placeholder="全部镇街",
        )
        types = c2.multiselect(
            "设备类型", TYPE_NAMES, default=list(initial.types), key=f"{key}-type", placeholder="全部类型"
        )
        if dept_options:
            depts = c3.multiselect(
                "权属单位",
                dept_options,
                default=[d for d in initial.departments if d in dept_options],
                key=f"{key}-dept",
                placeholder="全部单位",
            )
        else:
            depts = []
            c3.text_input(
                "权属单位",
                value="、".join(sorted(reader.scope.department_names)),
                disabled=True,
                key=f"{key}-dept-fixed",
            )
        c4, c5, c6 = st.columns(3)
        statuses = c4.multiselect(
            "运行状态", STATUSES, default=list(initial.statuses), key=f"{key}-status", placeholder="全部状态"
        )
        net_index = 0 if initial.networked is None else (1 if initial.networked else 2)
        net = c5.selectbox("是否联网", NETWORKED_OPTIONS, index=net_index, key=f"{key}-net")
        overdue_only = (
            c6.checkbox("只看巡检逾期", value=initial.overdue_only, key=f"{key}-overdue")
            if overdue
            else initial.overdue_only
        )
        text = (
            st.text_input(
                "搜索",
                value=initial.search,
                key=f"{key}-q",
                placeholder="城市码、设备名称、安装地点或建设项目中的文字",
            )
            if search
            else ""
        )
    return DeviceFilter(
        streets=tuple(streets),
        types=tuple(types),
        departments=tuple(depts),
        statuses=tuple(statuses),
        networked=None if net == "全部" else net == "已联网",
        overdue_only=overdue_only,
        search=text.strip()[:100],
    )


def summary_metrics(summary: queries.Summary) -> None:
    import streamlit as st

    cols = st.columns(6)
    cols[0].metric("设备数", fmt_count(summary.total), help="符合筛选条件的感知前端数量")
    cols[1].metric("其中视频监控", fmt_count(summary.cameras))
    cols[2].metric(
        "联网率",
        fmt_pct(summary.networked_ratio),
        help="在用与故障设备中已接入物联专网或视频专网的比例（停用、待验收设备不计）",
    )
    cols[3].metric(
        "巡检逾期",
        fmt_count(summary.overdue),
        delta=f"逾期率 {fmt_pct(summary.overdue_ratio)}" if summary.inspected else None,
        delta_color="off",
        delta_arrow="off",
        help="在用或故障设备中，末次巡检日期（未巡检按安装日期）加巡检周期早于今天的数量",
    )
    cols[4].metric("故障", fmt_count(summary.faulty))
    cols[5].metric("待验收", fmt_count(summary.pending))


def paged_table(
    reader: LedgerReader,
    conds: list,
    total: int,
    key: str,
    *,
    order: str = "device_id",
    today: dt.date | None = None,
) -> None:
    import streamlit as st

    if total == 0:
        st.info("没有符合条件的设备。请放宽筛选条件。")
        return
    c1, c2, c3 = st.columns([1, 1, 3])
    size = c1.selectbox("每页行数", PAGE_SIZES, index=1, key=f"{key}-size")
    pages = max(1, math.ceil(total / size))
    page = int(
        c2.number_input(
            f"页码（共 {pages:,} 页）",
            min_value=1,
            max_value=pages,
            value=1,
            step=1,
            key=f"{key}-page-{size}",
        )
    )
    frame = queries.rows_page(reader, conds, limit=size, offset=(page - 1) * size, order=order, today=today)
    c3.caption(
        f"第 {page:,} / {pages:,} 页，每页 {size} 行，共 {total:,} 台设备（数据在服务器端分页，不会一次载入全部）。"
    )
    st.dataframe(display_frame(frame), hide_index=True)


def _bar(
    frame: pd.DataFrame,
    x: str,
    y: str,
    *,
    title: str,
    color: str = "#1f77b4",
    pct: bool = False,
    height: int = 360,
):
    import plotly.graph_objects as go

    fig = go.Figure(
        go.Bar(
            x=frame[x],
            y=frame[y],
            marker_color=color,
            text=[fmt_pct(v) if pct else fmt_count(v) for v in frame[y]],
            textposition="outside",
            cliponaxis=False,
        )
    )
    fig.update_layout(
        title=title,
        height=height,
        margin=dict(l=10, r=10, t=40, b=10),
        yaxis_tickformat=".0%" if pct else ",d",
    )
    return fig


def related_links(ctx: PageContext, flt: DeviceFilter, *targets: tuple[str, str, str]) -> None:
    """Links to the plugin's other pages carrying the current filters (drawn only where the
    person may open the page)."""
    import streamlit as st

    cols = st.columns(len(targets) + 1)
    for col, (url_path, label, icon) in zip(cols, targets, strict=False):
        with col:
            ctx.link(url_path, label, icon, **flt.to_params())


# -- pages ------------------------------------------------------------------------------------------


def render_ledger(ctx: PageContext, *, shared: bool = False) -> None:
    """感知前端台账: search, filter and page through devices."""
    import streamlit as st

    st.title("本单位感知前端" if shared else "感知前端管理台账")
    st.caption(
        "依据《大兴区新型智慧城市建设行动计划（2022-2025年）》第103–106行：各类视频监控、传感器等感知前端"
        "按“城市码”一前端一标识登记上账，定期巡检，形成全区感知前端一套台账。"
    )
    reader = open_reader(ctx)
    if reader is None:
        return
    st.caption(
        _scope_caption(reader, ctx) + f" 数据版本提交于 {queries.as_of(reader):%Y-%m-%d %H:%M}（UTC）。"
    )
    today = beijing_today()
    key = _key(ctx.page.url_path if ctx.page else "sensing-ledger", ctx.params)
    flt = filter_widgets(reader, DeviceFilter.from_params(ctx.params), key)
    conds = queries.conditions(reader, flt, today)
    summary = queries.summary(reader, conds, today)
    summary_metrics(summary)
    related_links(
        ctx,
        flt,
        ("sensing-map", "在时空一张图上查看", ":material/map:"),
        ("sensing-inspections", "查看巡检情况", ":material/fact_check:"),
    )
    order = st.radio(
        "排序", ("device_id", "overdue", "install_date"), horizontal=True, key=f"{key}-order",
        format_func={"device_id": "按城市码", "overdue": "按巡检截止日（最逾期在前）", "install_date": "按安装日期（最新在前）"}.get,
    )  # fmt: skip
    paged_table(reader, conds, summary.total, key, order=order, today=today)
    if summary.total:
        by_type = queries.breakdown(reader, "device_type", conds, today)
        st.plotly_chart(
            _bar(by_type, "device_type", "total", title="按设备类型统计"),
            config=PLAIN_CONFIG,
            key=f"{key}-types",
        )


def render_shared(ctx: PageContext) -> None:
    render_ledger(ctx, shared=True)


def _map_figure(data: queries.MapData, street_counts: dict[str, int]):
    import plotly.graph_objects as go

    fig = go.Figure()
    frame = data.frame
    if data.aggregated:
        sizes = (frame["devices"] ** 0.5).clip(lower=1)
        fig.add_trace(
            go.Scattergl(
                x=frame["lon"],
                y=frame["lat"],
                mode="markers",
                name="设备网格",
                marker=dict(
                    size=4 + 18 * sizes / max(float(sizes.max()), 1.0),
                    color=frame["networked_ratio"],
                    colorscale="RdYlGn",
                    cmin=0.5,
                    cmax=1.0,
                    colorbar=dict(title="联网率", tickformat=".0%"),
                    opacity=0.75,
                    line=dict(width=0),
                ),
                customdata=frame[["devices", "cameras", "networked_ratio", "street"]].to_numpy(),
                hovertemplate=(
                    "%{customdata[3]}<br>设备 %{customdata[0]:,} 台（视频 %{customdata[1]:,}）"
                    "<br>联网率 %{customdata[2]:.1%}<extra></extra>"
                ),
            )
        )
    else:
        for device_type, part in frame.groupby("device_type", sort=True):
            fig.add_trace(
                go.Scattergl(
                    x=part["lon"],
                    y=part["lat"],
                    mode="markers",
                    name=str(device_type),
                    marker=dict(size=6, opacity=0.8),
                    customdata=part[["device_id", "device_name", "owner_dept", "status"]].to_numpy(),
                    hovertemplate="%{customdata[0]}<br>%{customdata[1]}<br>%{customdata[2]} · %{customdata[3]}<extra></extra>",
                )
            )
    streets = district.STREETS
    fig.add_trace(
        go.Scatter(
            x=[s.lon for s in streets],
            y=[s.lat for s in streets],
            mode="markers+text",
            name="镇街",
            text=[s.name for s in streets],
            textposition="top center",
            textfont=dict(size=11, color="#333"),
            marker=dict(symbol="diamond", size=7, color="#444"),
            customdata=[street_counts.get(s.name, 0) for s in streets],
            hovertemplate="%{text}<br>设备 %{customdata:,} 台<extra></extra>",
        )
    )
    mid_lat = sum(district.LAT_RANGE) / 2
    fig.update_layout(
        height=720,
        margin=dict(l=10, r=10, t=10, b=10),
        plot_bgcolor="#f5f7fa",
        legend=dict(orientation="h", y=-0.06),
        xaxis=dict(
            title="经度", range=list(district.LON_RANGE), showgrid=True, gridcolor="#e3e7ed", zeroline=False
        ),
        yaxis=dict(
            title="纬度",
            range=list(district.LAT_RANGE),
            showgrid=True,
            gridcolor="#e3e7ed",
            zeroline=False,
            scaleanchor="x",
            # one degree of latitude is longer on the ground than one of longitude: keep shapes true
            scaleratio=1 / math.cos(math.radians(mid_lat)),
        ),
    )
    return fig


def render_map(ctx: PageContext) -> None:
    """感知时空一张图: devices on a plain longitude/latitude plane with street labels."""
    import streamlit as st

    st.title("感知“时空一张图”")
    st.caption(
        "行动计划第107行：建立全区感知“时空一张图”。本图为经纬度平面示意（内网环境不加载在线底图），"
        "菱形标注为各镇街中心。"
    )
    reader = open_reader(ctx)
    if reader is None:
        return
    st.caption(_scope_caption(reader, ctx))
    today = beijing_today()
    key = _key("sensing-map", ctx.params)
    flt = filter_widgets(reader, DeviceFilter.from_params(ctx.params), key, search=False)
    conds = queries.conditions(reader, flt, today)
    summary = queries.summary(reader, conds, today)
    summary_metrics(summary)
    related_links(ctx, flt, ("sensing-ledger", "查看设备清单", ":material/sensors:"))
    if summary.total == 0:
        st.info("没有符合条件的设备。请放宽筛选条件。")
        return
    by_street = queries.breakdown(reader, "street", conds, today)
    data = queries.map_data(reader, conds, summary.total)
    if data.aggregated:
        st.caption(
            f"共 {summary.total:,} 台设备，超过 {queries.MAP_POINT_LIMIT:,} 台时按约 {data.cell_km:g} 公里网格汇总显示"
            f"（{len(data.frame):,} 个网格，点越大设备越多，颜色为联网率）。缩小筛选范围可查看单个设备。"
        )
    else:
        st.caption(f"共 {summary.total:,} 台设备，逐台显示；悬停查看城市码与权属单位。")
    st.plotly_chart(
        _map_figure(data, dict(zip(by_street["street"], by_street["total"], strict=True))),
        config=PLAIN_CONFIG,
        key=f"{key}-map",
    )
    st.subheader("各镇街设备统计")
    table = by_street.assign(
        networked_ratio=by_street["networked_ratio"].map(fmt_pct),
        overdue_ratio=by_street["overdue_ratio"].map(fmt_pct),
    ).rename(
        columns={
            "street": "镇街",
            "total": "设备数",
            "cameras": "视频监控",
            "networked": "已联网",
            "inspected": "在用及故障",
            "overdue": "巡检逾期",
            "networked_ratio": "联网率",
            "overdue_ratio": "逾期率",
        }
    )
    st.dataframe(table, hide_index=True)


def render_inspections(ctx: PageContext) -> None:
    """巡检管理: who is behind on inspections, and the overdue devices, most overdue first."""
    import streamlit as st

    st.title("感知前端巡检管理")
    st.caption(
        "行动计划第104行：定期开展感知设备巡检，保障感知前端运行正常，并动态更新。"
        "巡检逾期 = 在用或故障设备的末次巡检日期（未巡检按安装日期）加巡检周期早于今天。"
    )
    reader = open_reader(ctx)
    if reader is None:
        return
    st.caption(_scope_caption(reader, ctx))
    today = beijing_today()
    key = _key("sensing-inspections", ctx.params)
    flt = filter_widgets(reader, DeviceFilter.from_params(ctx.params), key, overdue=False)
    conds = queries.conditions(reader, flt, today)
    summary = queries.summary(reader, conds, today)
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("应巡检设备", fmt_count(summary.inspected), help="运行状态为在用或故障的设备")
    c2.metric("巡检逾期", fmt_count(summary.overdue))
    c3.metric("逾期率", fmt_pct(summary.overdue_ratio))
    c4.metric("故障设备", fmt_count(summary.faulty))
    if summary.inspected == 0:
        st.info("没有需要巡检的设备。")
        return
    left, right = st.columns(2)
    by_dept = queries.breakdown(reader, "owner_dept", conds, today)
    by_dept = by_dept[by_dept["inspected"] > 0].sort_values("overdue_ratio", ascending=False)
    left.plotly_chart(
        _bar(by_dept, "owner_dept", "overdue_ratio", title="各权属单位巡检逾期率", color="#d62728", pct=True),
        config=PLAIN_CONFIG,
        key=f"{key}-dept-chart",
    )
    by_street = queries.breakdown(reader, "street", conds, today)
    by_street = by_street[by_street["inspected"] > 0].sort_values("overdue_ratio", ascending=False)
    right.plotly_chart(
        _bar(by_street, "street", "overdue_ratio", title="各镇街巡检逾期率", color="#ff7f0e", pct=True),
        config=PLAIN_CONFIG,
        key=f"{key}-street-chart",
    )
    st.subheader("逾期设备清单（最逾期在前）")
    overdue_flt = dataclasses.replace(flt, overdue_only=True)
    related_links(
        ctx,
        overdue_flt,
        ("sensing-ledger", "在台账中查看逾期设备", ":material/sensors:"),
        ("sensing-map", "在时空一张图上查看逾期设备", ":material/map:"),
    )
    overdue_conds = queries.conditions(reader, overdue_flt, today)
    paged_table(reader, overdue_conds, summary.overdue, f"{key}-list", order="overdue", today=today)
