"""Streamlit pages of the sensing plugin: the ledger, the map (时空一张图) and inspections.

Pages read only through ``ctx.ledger(...)`` (rows already limited to what the person may see),
page through rows on the server, and draw aggregates computed in SQL (see :mod:`queries`). The
filter panel, paged table, bars and metric rows come from :mod:`huizhi.kit`; filters start from
``ctx.params`` so a cockpit drill-down or a shared link opens pre-filtered.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from huizhi import district, kit
from huizhi.fmt import format_number, format_percent
from huizhi_sensing import queries
from huizhi_sensing.queries import FILTERS, DeviceFilter
from huizhi_sensing.schema import LEDGER_ID

if TYPE_CHECKING:
    import pandas as pd

    from huizhi.context import LedgerReader, PageContext

ALL_ROWS = "可查看全区所有权属单位的感知前端。"
SOME_ROWS = "按分级分权原则，您只能查看 {names} 登记的感知前端。"
NO_DEVICES = "没有符合筛选条件的设备。请放宽筛选条件。"
NO_DEVICES_AT_ALL = "台账中还没有设备。"
OWN_ROWS = "本页面只列出 {names} 作为权属单位登记的感知前端。"
NO_OWN_DEVICES = "{names} 尚未在台账中登记感知前端（权属单位为本单位的设备为 0 台）。"
NO_UNIT = (
    "本页面列出您所在单位登记的感知前端。您的账号不属于任何单位（例如区领导、平台管理员），"
    "因此这里没有“本单位”的设备。全区设备请在“感知前端台账”页面查看。"
)
# Columns people look for first (the rest follow): the ledger list, and the overdue list, whose
# point is when each device was last inspected, on what cycle, and how far behind it is.
LIST_FIRST = ("device_id", "device_name", "device_type", "owner_dept", "street", "status", "networked")
OVERDUE_FIRST = (
    "device_id", "device_name", "days_overdue", "last_inspection", "inspection_cycle", "next_due",
    "owner_dept", "street", "status",
)
ORDERS = {
    "device_id": "按城市码",
    "overdue": "按巡检截止日（最逾期在前）",
    "install_date": "按安装日期（最新在前）",
}


def pct(ratio: float | None) -> str:
    return format_percent(ratio, fraction=True)


@dataclass(frozen=True)
class Opened:
    """What every sensing page starts from: the reader, the chosen filter and its summary."""

    reader: LedgerReader
    flt: DeviceFilter
    conds: list
    summary: queries.Summary
    key: str
    own: tuple[str, ...] = ()  # the person's own units, on a 本单位 page
    filtered: bool = False  # the person narrowed the rows with the filter panel

    def empty_message(self) -> str:
        """Why there are no devices: the filters, or none registered (for the person's unit)."""
        if self.filtered:
            return NO_DEVICES
        return NO_OWN_DEVICES.format(names="、".join(self.own)) if self.own else NO_DEVICES_AT_ALL

    def link_params(self) -> dict[str, str]:
        """The filters for links to other pages (on a 本单位 page: with the person's units)."""
        params = self.flt.to_params()
        if self.own:
            params["department"] = ",".join(self.own)
        return params


def open_page(
    ctx: PageContext, *, omit: tuple[str, ...] = (), version: bool = False, own: tuple[str, ...] = ()
) -> Opened | None:
    """Reader (or a message and None), whose rows the person sees, the filter panel, the summary.
    With ``own`` (the person's units), only the devices those units own are counted and listed."""
    import streamlit as st

    reader = kit.open_ledger(ctx, LEDGER_ID)
    if reader is None:
        return None
    if own:
        st.caption(OWN_ROWS.format(names="、".join(own)) + kit.data_caption(reader, "", "", version=version))
        omit = (*omit, "departments")
    else:
        st.caption(kit.data_caption(reader, ALL_ROWS, SOME_ROWS, version=version))
    key = kit.widget_key(ctx)
    values = kit.filters(ctx, reader, FILTERS, key=key, omit=omit)
    flt = DeviceFilter(**values)
    conds = queries.conditions(reader, flt, ctx.today)
    if own:
        conds.append(reader.c("owner_dept").in_(own))
    summary = queries.summary(reader, conds, ctx.today)
    return Opened(reader, flt, conds, summary, key, own, kit.filters_active(FILTERS, values, ctx.today))


def summary_metrics(summary: queries.Summary) -> None:
    kit.metrics(
        [
            kit.Metric("设备数", summary.total, help="符合筛选条件的感知前端数量"),
            kit.Metric("其中视频监控", summary.cameras),
            kit.Metric(
                "联网率",
                summary.networked_ratio,
                "ratio",
                help="在用与故障设备中已接入物联专网或视频专网的比例（停用、待验收设备不计）",
            ),
            kit.Metric(
                "巡检逾期",
                summary.overdue,
                help="在用或故障设备中，末次巡检日期（未巡检按安装日期）加巡检周期早于今天的数量",
                note=f"逾期率 {pct(summary.overdue_ratio)}" if summary.inspected else None,
            ),
            kit.Metric("故障", summary.faulty),
            kit.Metric("待验收", summary.pending),
        ]
    )


def device_table(
    ctx: PageContext, page: Opened, conds: list, total: int, key: str, *, order: str | None = None,
    empty: str | None = None,
) -> None:
    """Devices paged on the server with their next due date and days overdue; ``order`` fixes
    the order (otherwise the person picks one)."""

    def fetch(limit: int, offset: int, chosen: str | None) -> pd.DataFrame:
        frame = queries.rows_page(
            page.reader,
            conds,
            limit=limit,
            offset=offset,
            order=order or chosen or "device_id",
            today=ctx.today,
        )
        frame["days_overdue"] = frame["days_overdue"].map(
            lambda d: "" if d is None or d != d else f"逾期{int(d)}天"
        )
        # a device never inspected says so (its cycle counts from the installation date)
        frame["last_inspection"] = frame["last_inspection"].map(
            lambda d: "未巡检" if d is None or d != d else d
        )
        return frame

    kit.paged_table(
        total,
        fetch,
        key=key,
        labels=kit.column_labels(page.reader.spec, next_due="下次巡检截止", days_overdue="巡检逾期"),
        noun="台设备",
        orders=None if order else ORDERS,
        empty=empty or page.empty_message(),
        first=OVERDUE_FIRST if order == "overdue" else LIST_FIRST,
    )


# -- pages ------------------------------------------------------------------------------------------


def render_ledger(ctx: PageContext, *, shared: bool = False) -> None:
    """感知前端台账: search, filter and page through devices."""
    import streamlit as st

    st.title("本单位感知前端" if shared else "感知前端管理台账")
    st.caption(
        "依据《大兴区新型智慧城市建设行动计划（2022-2025年）》第103–106行：各类视频监控、传感器等感知前端"
        "按“城市码”一前端一标识登记上账，定期巡检，形成全区感知前端一套台账。"
    )
    own = kit.own_units(ctx) if shared else ()
    if shared and not own:
        st.info(NO_UNIT)
        ctx.link("sensing-ledger", "打开感知前端台账（全区）", ":material/sensors:")
        return
    page = open_page(ctx, version=True, own=own)
    if page is None:
        return
    summary_metrics(page.summary)
    kit.links(
        ctx,
        [("sensing-map", "在时空一张图上查看", ":material/map:"),
         ("sensing-inspections", "查看巡检情况", ":material/fact_check:")],
        page.link_params(),
    )  # fmt: skip
    device_table(ctx, page, page.conds, page.summary.total, page.key)
    if page.summary.total:
        by_type = queries.breakdown(page.reader, "device_type", page.conds, ctx.today)
        kit.bar_chart(
            by_type["device_type"], by_type["total"], title="按设备类型统计", key=f"{page.key}-types"
        )


def render_shared(ctx: PageContext) -> None:
    render_ledger(ctx, shared=True)


# The map's scale on screen (720 px tall plot, true shape): about 1,450 px per degree of latitude
# and 1,120 per degree of longitude; street labels are 11 px text.
PX_PER_LAT = 1450.0
PX_PER_LON = 1120.0
LABEL_PX = 12.0  # one Chinese character, with a little air
LABEL_GAP_PX = 6.0  # between the marker and its label
POSITIONS = ("top center", "bottom center", "middle right", "middle left")


def _label_box(lon: float, lat: float, name: str, position: str) -> tuple[float, float, float, float]:
    """The box (x0, y0, x1, y1, in degrees) a label at ``position`` of its marker covers."""
    w = len(name) * LABEL_PX / PX_PER_LON
    h = (LABEL_PX + 2) / PX_PER_LAT
    gx, gy = LABEL_GAP_PX / PX_PER_LON, LABEL_GAP_PX / PX_PER_LAT
    if position == "top center":
        return lon - w / 2, lat + gy, lon + w / 2, lat + gy + h
    if position == "bottom center":
        return lon - w / 2, lat - gy - h, lon + w / 2, lat - gy
    if position == "middle right":
        return lon + gx, lat - h / 2, lon + gx + w, lat + h / 2
    return lon - gx - w, lat - h / 2, lon - gx, lat + h / 2


def _overlap(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def street_labels(streets, counts: dict[str, int]) -> list[str | None]:
    """Where each street's name goes beside its marker (a plotly ``textposition``), or None where
    every side would cover another label or marker: those streets keep their marker and hover
    text, and the table under the map lists them all. Streets with more devices are placed first."""
    marker = 4.0
    markers = [
        (s.lon - marker / PX_PER_LON, s.lat - marker / PX_PER_LAT, s.lon + marker / PX_PER_LON, s.lat + marker / PX_PER_LAT)
        for s in streets
    ]
    placed: list[tuple[float, ...]] = []
    chosen: list[str | None] = [None] * len(streets)
    for i in sorted(range(len(streets)), key=lambda i: (-counts.get(streets[i].name, 0), i)):
        s = streets[i]
        for position in POSITIONS:
            box = _label_box(s.lon, s.lat, s.name, position)
            if not any(_overlap(box, other) for other in placed) and not any(
                _overlap(box, m) for j, m in enumerate(markers) if j != i
            ):
                chosen[i] = position
                placed.append(box)
                break
    return chosen


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
    positions = street_labels(streets, street_counts)
    fig.add_trace(
        go.Scatter(
            x=[s.lon for s in streets],
            y=[s.lat for s in streets],
            mode="markers+text",
            name="镇街",
            text=[s.name if p else "" for s, p in zip(streets, positions, strict=True)],
            textposition=[p or "top center" for p in positions],
            # a white halo keeps the names legible over the device dots
            textfont=dict(
                size=12, color="#111", shadow="1px 1px 0 #fff, -1px -1px 0 #fff, 1px -1px 0 #fff, -1px 1px 0 #fff"
            ),
            marker=dict(symbol="diamond", size=7, color="#444"),
            customdata=[street_counts.get(s.name, 0) for s in streets],
            hovertext=[s.name for s in streets],
            hovertemplate="%{hovertext}<br>设备 %{customdata:,} 台<extra></extra>",
        )
    )
    mid_lat = sum(district.LAT_RANGE) / 2
    fig.update_layout(
        height=720,
        margin=dict(l=10, r=10, t=30, b=10),
        plot_bgcolor="#f5f7fa",
        legend=dict(orientation="h", y=-0.06),
        xaxis=dict(
            title="经度（东经）", range=list(district.LON_RANGE), showgrid=True, gridcolor="#e3e7ed",
            zeroline=False, ticksuffix="°",
        ),
        # the latitude axis is named horizontally above it: a title rotated 90° is hard to read
        annotations=[
            dict(text="纬度（北纬）", xref="paper", yref="paper", x=0, y=1.0, xanchor="left", yanchor="bottom",
                 showarrow=False, font=dict(size=12, color="#555"))
        ],
        yaxis=dict(
            ticksuffix="°",
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
    page = open_page(ctx, omit=("search",))
    if page is None:
        return
    summary, reader = page.summary, page.reader
    summary_metrics(summary)
    kit.links(ctx, [("sensing-ledger", "查看设备清单", ":material/sensors:")], page.flt.to_params())
    if summary.total == 0:
        st.info(page.empty_message())
        return
    by_street = queries.breakdown(reader, "street", page.conds, ctx.today)
    data = queries.map_data(reader, page.conds, summary.total)
    if data.aggregated:
        st.caption(
            f"共 {format_number(summary.total)} 台设备，超过 {queries.MAP_POINT_LIMIT:,} 台时按约 {data.cell_km:g} 公里网格汇总显示"
            f"（{len(data.frame):,} 个网格，点越大设备越多，颜色为联网率）。缩小筛选范围可查看单个设备。"
        )
    else:
        st.caption(f"共 {format_number(summary.total)} 台设备，逐台显示；悬停查看城市码与权属单位。")
    st.plotly_chart(
        _map_figure(data, dict(zip(by_street["street"], by_street["total"], strict=True))),
        config=kit.CHART_CONFIG,
        key=f"{page.key}-map",
    )
    st.subheader("各镇街设备统计")
    kit.table(
        by_street.assign(
            networked_ratio=by_street["networked_ratio"].map(pct),
            overdue_ratio=by_street["overdue_ratio"].map(pct),
        ),
        {
            "street": "镇街",
            "total": "设备数",
            "cameras": "视频监控",
            "networked": "已联网",
            "inspected": "在用及故障",
            "overdue": "巡检逾期",
            "networked_ratio": "联网率",
            "overdue_ratio": "逾期率",
        },
        key=f"{page.key}-streets",
    )


def render_inspections(ctx: PageContext) -> None:
    """巡检管理: who is behind on inspections, and the overdue devices, most overdue first."""
    import streamlit as st

    st.title("感知前端巡检管理")
    st.caption(
        "行动计划第104行：定期开展感知设备巡检，保障感知前端运行正常，并动态更新。"
        "巡检逾期 = 在用或故障设备的末次巡检日期（未巡检按安装日期）加巡检周期早于今天。"
    )
    page = open_page(ctx, omit=("overdue_only",))
    if page is None:
        return
    summary, reader = page.summary, page.reader
    kit.metrics(
        [
            kit.Metric("应巡检设备", summary.inspected, help="运行状态为在用或故障的设备"),
            kit.Metric("巡检逾期", summary.overdue),
            kit.Metric("逾期率", summary.overdue_ratio, "ratio"),
            kit.Metric("故障设备", summary.faulty),
        ]
    )
    if summary.inspected == 0:
        st.info("没有需要巡检的设备。")
        return
    left, right = st.columns(2)
    for where, column, title, color in (
        (left, "owner_dept", "各权属单位巡检逾期率", "#d62728"),
        (right, "street", "各镇街巡检逾期率", "#ff7f0e"),
    ):
        part = queries.breakdown(reader, column, page.conds, ctx.today)
        part = part[part["inspected"] > 0].sort_values("overdue_ratio", ascending=False)
        kit.bar_chart(
            part[column], part["overdue_ratio"], title=title, color=color, percent=True,
            key=f"{page.key}-{column}-chart", where=where,
        )  # fmt: skip
    st.subheader("逾期设备清单（最逾期在前）")
    overdue = dataclasses.replace(page.flt, overdue_only=True)
    kit.links(
        ctx,
        [("sensing-ledger", "在台账中查看逾期设备", ":material/sensors:"),
         ("sensing-map", "在时空一张图上查看逾期设备", ":material/map:")],
        overdue.to_params(),
    )  # fmt: skip
    conds = queries.conditions(reader, overdue, ctx.today)
    device_table(
        ctx, page, conds, summary.overdue, f"{page.key}-list", order="overdue", empty="没有巡检逾期的设备。"
    )
