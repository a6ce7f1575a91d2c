"""Streamlit pages of the city-management plugin: the case list and the closed-loop assessment.

All reads go through ``ctx.ledger(...)`` (row-scoped by 承办单位), rows are paged on the server
and charts are drawn from SQL aggregates. Filters start from ``ctx.params`` (cockpit drill-down:
``street``, ``dept``, ``period``).
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
from huizhi.fmt import format_number, format_percent
from huizhi_citymgmt import queries
from huizhi_citymgmt.queries import CaseFilter
from huizhi_citymgmt.schema import CASES_LEDGER, CATEGORIES, LEDGER_ID, SOURCES, STATUSES

if TYPE_CHECKING:
    import pandas as pd

    from huizhi.context import LedgerReader, PageContext

EMPTY_MESSAGE = (
    "城市管理案件台账尚无数据。请台账管理员在“台账上传”页面按模板上传第一版，"
    "或由平台管理员运行 `huizhi seed` 载入演示数据。"
)
PAGE_SIZES = (25, 50, 100, 200)
EARLIEST = dt.date(2015, 1, 1)
CHART_CONFIG = {"displaylogo": False, "modeBarButtonsToRemove": ["lasso2d", "select2d"]}
ORDERS = {"newest": "最新发现在前", "oldest_open": "按处置时限（最早到期在前）", "case_id": "按案件编号"}


def pct(ratio: float | None) -> str:
    return format_percent(None if ratio is None or ratio != ratio else ratio, fraction=True)


def display_frame(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    for col in ("found_date", "dispatch_date", "deadline", "closed_date"):
        if col in out:
            out[col] = out[col].map(lambda d: d.isoformat() if isinstance(d, dt.date) else "")
    out = out.fillna("")
    labels = {c.name: c.label for c in CASES_LEDGER.columns}
    labels["assessment"] = "考核"
    return out.rename(columns=labels)


def open_reader(ctx: PageContext) -> LedgerReader | None:
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


def _scope_caption(reader: LedgerReader) -> str:
    if reader.sees_all_rows:
        return "可查看全区所有承办单位的案件。"
    names = "、".join(sorted(reader.scope.department_names))
    return f"按权限，您只能查看派往 {names} 承办的案件。"


def _key(base: str, params: Any) -> str:
    digest = hashlib.sha1(json.dumps(dict(params), sort_keys=True, default=str).encode()).hexdigest()[:8]
    return f"{base}-{digest}"


def filter_widgets(reader: LedgerReader, initial: CaseFilter, key: str, *, today: dt.date) -> CaseFilter:
    import streamlit as st

    unit_options = tuple(reader.distinct("dispatch_unit")) if reader.sees_all_rows else ()
    # A hand-edited or cockpit URL may carry any dates: keep them inside what the widget allows.
    end = min(max(initial.end or today, EARLIEST), today)
    start = min(max(initial.start or dt.date(today.year - 1, today.month, 1), EARLIEST), end)
    with st.container(border=True):
        c1, c2, c3 = st.columns(3)
        period = c1.date_input(
            "发现日期",
            value=(start, end),
            min_value=EARLIEST,
            max_value=today,
            key=f"{key}-period",
            format="YYYY-MM-DD",
        )
        streets = c2.multiselect(
            "所属镇街",
            district.street_names(),
            default=list(initial.streets),
            key=f"{key}-street",
            placeholder="全部镇街",
        )
        if unit_options:
            units = c3.multiselect(
                "承办单位",
                unit_options,
                default=[u for u in initial.units if u in unit_options],
                key=f"{key}-unit",
                placeholder="全部单位",
            )
        else:
            units = []
            c3.text_input(
                "承办单位",
                value="、".join(sorted(reader.scope.department_names)),
                disabled=True,
                key=f"{key}-unit-fixed",
            )
        c4, c5, c6 = st.columns(3)
        categories = c4.multiselect(
            "问题类别", CATEGORIES, default=list(initial.categories), key=f"{key}-cat", placeholder="全部类别"
        )
        sources = c5.multiselect(
            "发现来源", SOURCES, default=list(initial.sources), key=f"{key}-src", placeholder="全部来源"
        )
        statuses = c6.multiselect(
            "办理状态", STATUSES, default=list(initial.statuses), key=f"{key}-status", placeholder="全部状态"
        )
        c7, c8 = st.columns([3, 1])
        text = c7.text_input(
            "搜索", value=initial.search, key=f"{key}-q", placeholder="案件编号或问题描述中的文字"
        )
        overdue = c8.checkbox("只看超期未结", value=initial.overdue_only, key=f"{key}-overdue")
    picked = tuple(period) if isinstance(period, list | tuple) else (period,)
    return CaseFilter(
        streets=tuple(streets),
        units=tuple(units),
        categories=tuple(categories),
        sources=tuple(sources),
        statuses=tuple(statuses),
        start=picked[0] if picked else None,
        end=picked[1] if len(picked) > 1 else None,
        overdue_only=overdue,
        search=text.strip()[:100],
    )


def metrics(s: queries.Summary) -> None:
    import streamlit as st

    cols = st.columns(6)
    cols[0].metric("案件数", format_number(s.total))
    cols[1].metric("已结案", format_number(s.closed))
    cols[2].metric("在办", format_number(s.open), help="待派单、处置中、已反馈")
    cols[3].metric("超期未结", format_number(s.open_overdue), help="在办且已过处置时限")
    cols[4].metric("按期办结率", pct(s.on_time_ratio), help="已结案案件中，结案日期不晚于处置时限的比例")
    cols[5].metric("回访满意率", pct(s.satisfaction_ratio), help="有回访结果的案件中“满意”与“基本满意”的比例")


def _bar(
    labels: list[Any],
    values: list[float],
    *,
    title: str,
    color: str,
    percent: bool = False,
    height: int = 340,
):
    """Bars with Chinese number labels; a percentage axis starts just below the lowest bar, so
    differences of a few points stay visible."""
    import plotly.graph_objects as go

    fig = go.Figure(
        go.Bar(
            x=labels,
            y=values,
            marker_color=color,
            text=[pct(v) if percent else format_number(v) for v in values],
            textposition="outside",
            cliponaxis=False,
        )
    )
    fig.update_layout(
        title=title,
        height=height,
        margin=dict(l=10, r=10, t=40, b=10),
        yaxis_tickformat=".0%" if percent else ",d",
    )
    if percent and values:
        fig.update_yaxes(range=[max(0.0, min(values) - 0.05), 1.0])
    return fig


def render_cases(ctx: PageContext, *, shared: bool = False) -> None:
    """城市管理案件: search, filter and page through cases."""
    import streamlit as st

    st.title("本单位承办案件" if shared else "城市管理案件")
    st.caption(
        "行动计划第274行：建立事件发现、派单、处置、反馈、考核的全闭环管理机制；"
        "第266行：“门前三包”问题登记-核查-下派-整改反馈-核实结案全流程线上化管理。"
    )
    reader = open_reader(ctx)
    if reader is None:
        return
    st.caption(_scope_caption(reader) + f" 数据版本提交于 {queries.as_of(reader):%Y-%m-%d %H:%M}（UTC）。")
    today = beijing_today()
    key = _key(ctx.page.url_path if ctx.page else "citymgmt-cases", ctx.params)
    flt = filter_widgets(reader, CaseFilter.from_params(ctx.params), key, today=today)
    conds = queries.conditions(reader, flt, today)
    s = queries.summary(reader, conds, today)
    metrics(s)
    link_cols = st.columns(3)
    with link_cols[0]:
        ctx.link(
            "citymgmt-loop", "查看闭环考核", ":material/published_with_changes:", **queries.to_params(flt)
        )
    if s.total == 0:
        st.info("没有符合条件的案件。请放宽筛选条件。")
        return
    c1, c2, c3 = st.columns([1, 1, 2])
    size = c1.selectbox("每页行数", PAGE_SIZES, index=1, key=f"{key}-size")
    pages = max(1, math.ceil(s.total / size))
    page = int(c2.number_input(f"页码（共 {pages:,} 页）", 1, pages, 1, key=f"{key}-page-{size}"))
    order = c3.selectbox("排序", tuple(ORDERS), format_func=ORDERS.get, key=f"{key}-order")
    frame = queries.rows_page(reader, conds, limit=size, offset=(page - 1) * size, today=today, order=order)
    st.dataframe(display_frame(frame), hide_index=True)
    st.caption(f"第 {page:,} / {pages:,} 页，共 {s.total:,} 件（服务器端分页）。")
    left, right = st.columns(2)
    by_cat = queries.breakdown(reader, "category", conds, today)
    left.plotly_chart(
        _bar(list(by_cat["category"]), list(by_cat["total"]), title="按问题类别", color="#1F6FB2"),
        config=CHART_CONFIG,
        key=f"{key}-cat-chart",
    )
    by_src = queries.breakdown(reader, "source", conds, today)
    right.plotly_chart(
        _bar(list(by_src["source"]), list(by_src["total"]), title="按发现来源", color="#178A6E"),
        config=CHART_CONFIG,
        key=f"{key}-src-chart",
    )


def render_shared(ctx: PageContext) -> None:
    render_cases(ctx, shared=True)


def render_loop(ctx: PageContext) -> None:
    """闭环考核: the loop's stages, assessment by handling unit and street, the monthly trend."""
    import plotly.graph_objects as go
    import streamlit as st

    st.title("闭环考核")
    st.caption(
        "发现 → 派单 → 处置 → 反馈 → 考核（行动计划第274行）。按期办结率 = 已结案案件中结案日期不晚于处置时限的比例。"
    )
    reader = open_reader(ctx)
    if reader is None:
        return
    st.caption(_scope_caption(reader))
    today = beijing_today()
    key = _key("citymgmt-loop", ctx.params)
    flt = filter_widgets(reader, CaseFilter.from_params(ctx.params), key, today=today)
    conds = queries.conditions(reader, flt, today)
    s = queries.summary(reader, conds, today)
    metrics(s)
    link_cols = st.columns(3)
    with link_cols[0]:
        ctx.link("citymgmt-cases", "查看案件清单", ":material/assignment:", **queries.to_params(flt))
    with link_cols[1]:
        overdue = dataclasses.replace(flt, overdue_only=True)
        ctx.link("citymgmt-cases", "查看超期未结案件", ":material/alarm:", **queries.to_params(overdue))
    if s.total == 0:
        st.info("没有符合条件的案件。请放宽筛选条件。")
        return
    by_status = queries.breakdown(reader, "status", conds, today).set_index("status")["total"]
    dispatched = s.total - int(by_status.get("待派单", 0))
    reported = int(by_status.get("已反馈", 0)) + s.closed
    stages = [
        ("发现", s.total),
        ("派单", dispatched),
        ("处置反馈", reported),
        ("核实结案", s.closed),
        ("按期办结", s.on_time),
    ]
    funnel = go.Figure(
        go.Funnel(
            y=[n for n, _ in stages],
            x=[v for _, v in stages],
            text=[format_number(v) for _, v in stages],
            textinfo="text+percent initial",
            marker_color=["#1F6FB2", "#3C8DD0", "#178A6E", "#2E9E6B", "#7B4FB0"],
        )
    )
    funnel.update_layout(height=320, margin=dict(l=10, r=10, t=10, b=10))
    left, right = st.columns(2)
    left.plotly_chart(funnel, config=CHART_CONFIG, key=f"{key}-funnel")

    trend = queries.monthly(reader, conds, months=24, today=today)
    fig = go.Figure()
    fig.add_bar(x=trend["month"], y=trend["total"], name="发现案件", marker_color="#9DB9D8")
    fig.add_scatter(
        x=trend["month"],
        y=trend["on_time_ratio"],
        name="按期办结率",
        yaxis="y2",
        mode="lines+markers",
        line_color="#D93025",
    )
    fig.update_layout(
        height=320,
        margin=dict(l=10, r=10, t=10, b=10),
        xaxis=dict(tickformat="%-m月<br>%Y", dtick="M3", tickangle=0),
        yaxis=dict(title="件", tickformat=",d"),
        yaxis2=dict(title="按期办结率", overlaying="y", side="right", tickformat=".0%", range=[0.7, 1.0]),
        legend=dict(orientation="h", y=-0.22),
    )
    right.plotly_chart(fig, config=CHART_CONFIG, key=f"{key}-trend")

    st.subheader("各承办单位考核")
    by_unit = queries.breakdown(reader, "dispatch_unit", conds, today)
    by_unit = by_unit[by_unit["dispatch_unit"].notna()].sort_values("on_time_ratio")
    table = by_unit.assign(
        on_time_ratio=by_unit["on_time_ratio"].map(pct),
        satisfaction_ratio=by_unit["satisfaction_ratio"].map(pct),
    )[
        [
            "dispatch_unit",
            "total",
            "closed",
            "on_time",
            "on_time_ratio",
            "open",
            "open_overdue",
            "satisfaction_ratio",
        ]
    ]
    st.dataframe(
        table.rename(
            columns={
                "dispatch_unit": "承办单位",
                "total": "案件数",
                "closed": "已结案",
                "on_time": "按期办结",
                "on_time_ratio": "按期办结率",
                "open": "在办",
                "open_overdue": "超期未结",
                "satisfaction_ratio": "回访满意率",
            }
        ),
        hide_index=True,
    )
    by_street = queries.breakdown(reader, "street", conds, today).sort_values("on_time_ratio")
    st.plotly_chart(
        _bar(
            list(by_street["street"]),
            [float(v) if v == v else 0.0 for v in by_street["on_time_ratio"]],
            title="各镇街按期办结率",
            color="#E37400",
            percent=True,
        ),
        config=CHART_CONFIG,
        key=f"{key}-street-chart",
    )
