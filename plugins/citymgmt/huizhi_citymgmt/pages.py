"""Streamlit pages of the city-management plugin: the case list and the closed-loop assessment.

All reads go through ``ctx.ledger(...)`` (row-scoped by 承办单位), rows are paged on the server
and charts are drawn from SQL aggregates. The filter panel, paged table, bars and metric rows
come from :mod:`huizhi.kit`; filters start from ``ctx.params`` (cockpit drill-down: ``street``,
``dept``, ``period``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING

from huizhi import kit
from huizhi.fmt import format_date, format_number, format_percent
from huizhi_citymgmt import queries
from huizhi_citymgmt.queries import FILTERS, CaseFilter
from huizhi_citymgmt.schema import LEDGER_ID

if TYPE_CHECKING:
    import pandas as pd

    from huizhi.context import LedgerReader, PageContext

ALL_ROWS = "可查看全区所有承办单位的案件。"
SOME_ROWS = "按权限，您只能查看派往 {names} 承办的案件。"
NO_CASES = "没有符合筛选条件的案件。请放宽筛选条件。"
NO_CASES_IN_PERIOD = "{period}台账中没有案件。可在“发现日期”中选择更早的时间。"
OWN_ROWS = "本页面只列出派往 {names} 承办的案件。"
NO_OWN_CASES = "{period}没有派往 {names} 承办的案件。可在“发现日期”中选择更早的时间。"
NO_UNIT = (
    "本页面列出派往您所在单位承办的案件。您的账号不属于任何单位（例如区领导、平台管理员），"
    "因此这里没有“本单位”的案件。全区案件请在“城市管理案件”页面查看。"
)
ORDERS = {"newest": "最新发现在前", "oldest_open": "按处置时限（最早到期在前）", "case_id": "按案件编号"}


def pct(ratio: float | None) -> str:
    return format_percent(ratio, fraction=True)


@dataclass(frozen=True)
class Opened:
    """What every case page starts from: the reader, the chosen filter and its summary."""

    reader: LedgerReader
    flt: CaseFilter
    conds: list
    summary: queries.Summary
    key: str
    own: tuple[str, ...] = ()  # the person's own units, on the 本单位 page
    filtered: bool = False  # the person narrowed the rows with the filter panel

    def empty_message(self) -> str:
        """Why there are no cases: the person's filters, or none in the period (for their unit)."""
        if self.filtered:
            return NO_CASES
        period = f"{format_date(self.flt.start)}至{format_date(self.flt.end)}，" if self.flt.start else ""
        if self.own:
            return NO_OWN_CASES.format(period=period, names="、".join(self.own))
        return NO_CASES_IN_PERIOD.format(period=period)

    def link_params(self) -> dict[str, str]:
        params = queries.to_params(self.flt)
        if self.own:
            params["dept"] = ",".join(self.own)
        return params


def open_page(ctx: PageContext, *, version: bool = False, own: tuple[str, ...] = ()) -> Opened | None:
    """Reader (or a message and None), whose rows the person sees, the filter panel, the summary
    and its metric row. With ``own`` (the person's units), only cases dispatched to them count."""
    import streamlit as st

    reader = kit.open_ledger(ctx, LEDGER_ID)
    if reader is None:
        return None
    if own:
        st.caption(OWN_ROWS.format(names="、".join(own)) + kit.data_caption(reader, "", "", version=version))
    else:
        st.caption(kit.data_caption(reader, ALL_ROWS, SOME_ROWS, version=version))
    key = kit.widget_key(ctx)
    values = kit.filters(ctx, reader, FILTERS, key=key, omit=("units",) if own else ())
    flt = CaseFilter(**values)
    conds = queries.conditions(reader, flt, ctx.today)
    if own:
        conds.append(reader.c("dispatch_unit").in_(own))
    s = queries.summary(reader, conds, ctx.today)
    kit.metrics(
        [
            kit.Metric("案件数", s.total),
            kit.Metric("已结案", s.closed),
            kit.Metric("在办", s.open, help="待派单、处置中、已反馈"),
            kit.Metric("超期未结", s.open_overdue, help="在办且已过处置时限"),
            kit.Metric(
                "按期办结率", s.on_time_ratio, "ratio", help="已结案案件中，结案日期不晚于处置时限的比例"
            ),
            kit.Metric(
                "回访满意率", s.satisfaction_ratio, "ratio", help="有回访结果的案件中“满意”与“基本满意”的比例"
            ),
        ]
    )
    return Opened(reader, flt, conds, s, key, own, kit.filters_active(FILTERS, values, ctx.today))


def render_cases(ctx: PageContext, *, shared: bool = False) -> None:
    """城市管理案件: search, filter and page through cases."""
    import streamlit as st

    st.title("本单位承办案件" if shared else "城市管理案件")
    st.caption(
        "行动计划第274行：建立事件发现、派单、处置、反馈、考核的全闭环管理机制；"
        "第266行：“门前三包”问题登记-核查-下派-整改反馈-核实结案全流程线上化管理。"
    )
    own = kit.own_units(ctx) if shared else ()
    if shared and not own:
        st.info(NO_UNIT)
        ctx.link("citymgmt-cases", "打开城市管理案件（全区）", ":material/assignment:")
        return
    page = open_page(ctx, version=True, own=own)
    if page is None:
        return
    kit.links(
        ctx,
        [("citymgmt-loop", "查看闭环考核", ":material/published_with_changes:")],
        page.link_params(),
    )

    def fetch(limit: int, offset: int, order: str | None) -> pd.DataFrame:
        return queries.rows_page(
            page.reader, page.conds, limit=limit, offset=offset, today=ctx.today, order=order or "newest"
        )

    shown = kit.paged_table(
        page.summary.total,
        fetch,
        key=page.key,
        labels=kit.column_labels(page.reader.spec, assessment="考核"),
        noun="件",
        orders=ORDERS,
        empty=page.empty_message(),
    )
    if shown is None:
        return
    left, right = st.columns(2)
    for where, column, title, color in (
        (left, "category", "按问题类别", "#1F6FB2"),
        (right, "source", "按发现来源", "#178A6E"),
    ):
        part = queries.breakdown(page.reader, column, page.conds, ctx.today)
        kit.bar_chart(
            part[column],
            part["total"],
            title=title,
            color=color,
            key=f"{page.key}-{column}-chart",
            where=where,
        )


def render_shared(ctx: PageContext) -> None:
    render_cases(ctx, shared=True)


def _funnel_figure(s: queries.Summary, by_status: pd.Series):
    """The loop's stages as a funnel: found, dispatched, handled, closed, closed on time."""
    import plotly.graph_objects as go

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
    return funnel


def _trend_figure(trend: pd.DataFrame):
    """Cases found per month (bars) and the on-time closure rate (line, right axis)."""
    import plotly.graph_objects as go

    fig = go.Figure()
    fig.add_bar(x=trend["month"], y=trend["total"], name="发现案件（件，左轴）", marker_color="#9DB9D8")
    fig.add_scatter(
        x=trend["month"],
        y=trend["on_time_ratio"],
        name="按期办结率（右轴）",
        yaxis="y2",
        mode="lines+markers",
        line_color="#D93025",
    )
    fig.update_layout(
        height=320,
        margin=dict(l=10, r=10, t=10, b=10),
        xaxis=dict(tickformat="%-m月<br>%Y", dtick="M3", tickangle=0),
        # no axis titles: rotated 90° they are hard to read; the legend names both axes
        yaxis=dict(tickformat=",d"),
        # headroom above the highest month, so the line and its markers stay inside the axes;
        # ticks every 5 points, none above 100%
        yaxis2=dict(
            overlaying="y", side="right", tickformat=".0%", tick0=0, dtick=0.05,
            range=kit.ratio_range(trend["on_time_ratio"]), showgrid=False,
        ),
        legend=dict(orientation="h", y=-0.22),
    )
    return fig


def render_loop(ctx: PageContext) -> None:
    """闭环考核: the loop's stages, assessment by handling unit and street, the monthly trend."""
    import streamlit as st

    st.title("闭环考核")
    st.caption(
        "发现 → 派单 → 处置 → 反馈 → 考核（行动计划第274行）。按期办结率 = 已结案案件中结案日期不晚于处置时限的比例。"
    )
    page = open_page(ctx)
    if page is None:
        return
    reader, conds, s = page.reader, page.conds, page.summary
    overdue = dataclasses.replace(page.flt, overdue_only=True)
    link_cols = st.columns(3)
    with link_cols[0]:
        ctx.link("citymgmt-cases", "查看案件清单", ":material/assignment:", **queries.to_params(page.flt))
    with link_cols[1]:
        ctx.link("citymgmt-cases", "查看超期未结案件", ":material/alarm:", **queries.to_params(overdue))
    if s.total == 0:
        st.info(page.empty_message())
        return
    by_status = queries.breakdown(reader, "status", conds, ctx.today).set_index("status")["total"]
    left, right = st.columns(2)
    left.plotly_chart(_funnel_figure(s, by_status), config=kit.CHART_CONFIG, key=f"{page.key}-funnel")
    trend = queries.monthly(reader, conds, months=24, today=ctx.today)
    right.plotly_chart(_trend_figure(trend), config=kit.CHART_CONFIG, key=f"{page.key}-trend")

    st.subheader("各承办单位考核")
    by_unit = queries.breakdown(reader, "dispatch_unit", conds, ctx.today)
    by_unit = by_unit[by_unit["dispatch_unit"].notna()].sort_values("on_time_ratio")
    kit.table(
        by_unit.assign(
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
        ],
        {
            "dispatch_unit": "承办单位",
            "total": "案件数",
            "closed": "已结案",
            "on_time": "按期办结",
            "on_time_ratio": "按期办结率",
            "open": "在办",
            "open_overdue": "超期未结",
            "satisfaction_ratio": "回访满意率",
        },
        key=f"{page.key}-units",
    )
    by_street = queries.breakdown(reader, "street", conds, ctx.today).sort_values("on_time_ratio")
    kit.bar_chart(
        by_street["street"],
        by_street["on_time_ratio"],
        title="各镇街按期办结率",
        color="#E37400",
        percent=True,
        key=f"{page.key}-street-chart",
    )
