"""Cockpit tiles of the case ledger (theme 城市治理).

Queries aggregate in SQL on ``ctx.ledger(...).rows`` and apply the cockpit's street, department
(承办单位) and period (发现日期) filters through ``ctx.filter_conditions``. ``ctx.today`` is the day
of the values (the cockpit judges them on the same day). Without a
period filter, rates cover the last twelve complete months, so they describe how the loop runs
now; the month so far is never part of a rate (it is partial: the trend marks it 本月至今).
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from huizhi.fmt import format_number, ratio
from huizhi.specs import Breakdown, Series, Target, Theme, TileSpec, TileValue
from huizhi_citymgmt import queries
from huizhi_citymgmt.schema import DEPARTMENT, LEDGER_ID

if TYPE_CHECKING:
    from huizhi.context import LedgerReader, TileContext

EMPTY_NOTE = "城市管理案件台账尚无数据"
ON_TIME_TARGET = 95.0


def _window(ctx: TileContext, reader: LedgerReader, today: dt.date) -> tuple[list[Any], str]:
    """Conditions for the cockpit filters plus, without a period filter, the last 12 complete
    months. The month so far is left out of every rate: it is partial (its cases found a few
    days ago are mostly still open), so it is shown in the trend as 本月至今 but not judged."""
    conds = ctx.filter_conditions(reader, street="street", department="dispatch_unit", date="found_date")
    this_month = today.replace(day=1)
    conds.append(reader.rows.c.found_date < this_month)
    if ctx.filters.period is not None:
        end = ctx.filters.period[1]
        return conds, "所选时段" + ("（不含本月至今）" if end is None or end >= this_month else "")
    start = dt.date(this_month.year - 1, this_month.month, 1)
    last = this_month - dt.timedelta(days=1)
    return [*conds, reader.rows.c.found_date >= start], f"近12个完整月（{start:%Y年%m月}至{last:%Y年%m月}）"


def _period_months(ctx: TileContext) -> dict[str, dt.date | None]:
    """The months a trend spans under a period filter: its start to its end (at most today)."""
    if ctx.filters.period is None:
        return {}
    start, end = ctx.filters.period
    return {"first": start, "last": min(end, ctx.today) if end is not None else ctx.today}


def _open(ctx: TileContext) -> tuple[LedgerReader, dt.datetime | None]:
    reader = ctx.ledger(LEDGER_ID)
    return reader, queries.as_of(reader)


def _items(frame: Any, label: str, column: str, scale: float = 1.0) -> tuple[tuple[str, float], ...]:
    return tuple(
        (str(k), round(float(v) * scale, 4))
        for k, v in zip(frame[label], frame[column], strict=True)
        if k is not None and v == v
    )


def on_time_query(ctx: TileContext) -> TileValue:
    reader, stamp = _open(ctx)
    if stamp is None:
        return TileValue(None, note=EMPTY_NOTE)
    today = ctx.today
    conds, window = _window(ctx, reader, today)
    s = queries.summary(reader, conds, today)
    trend = queries.monthly(reader, conds, months=None if ctx.filters.period else 12, today=today,
                            **_period_months(ctx))
    points = tuple(
        (m, round(100 * float(r), 2))
        for m, r in zip(trend["month"], trend["on_time_ratio"], strict=True)
        if r == r
    )
    detail = Series(points, name="按期办结率", unit="%", kind="line", target=ON_TIME_TARGET)
    note = f"{window}已结案 {format_number(s.closed)} 件，按期办结 {format_number(s.on_time)} 件"
    return TileValue(ratio(s.on_time, s.closed), as_of=stamp, detail=detail, note=note)


def open_cases_query(ctx: TileContext) -> TileValue:
    reader, stamp = _open(ctx)
    if stamp is None:
        return TileValue(None, note=EMPTY_NOTE)
    today = ctx.today
    conds = ctx.filter_conditions(reader, street="street", department="dispatch_unit", date="found_date")
    conds.append(queries.open_case(reader))
    s = queries.summary(reader, conds, today)
    by_street = queries.breakdown(reader, "street", conds, today)
    detail = Breakdown(_items(by_street, "street", "total"), by="镇街", unit="件", limit=12)
    note = f"其中超过处置时限 {format_number(s.open_overdue)} 件（待派单、处置中、已反馈均计为在办）"
    return TileValue(s.open, as_of=stamp, detail=detail, note=note)


def monthly_query(ctx: TileContext) -> TileValue:
    reader, stamp = _open(ctx)
    if stamp is None:
        return TileValue(None, note=EMPTY_NOTE)
    today = ctx.today
    conds = ctx.filter_conditions(reader, street="street", department="dispatch_unit", date="found_date")
    trend = queries.monthly(reader, conds, months=None if ctx.filters.period else 24, today=today,
                            **_period_months(ctx))
    if not trend["total"].sum():
        return TileValue(None, as_of=stamp, note="所选范围内没有案件")
    points = tuple((m, float(n)) for m, n in zip(trend["month"], trend["total"], strict=True))
    detail = Series(points, name="发现案件", unit="件", kind="bar")
    # The value is the last complete month (the current one is still filling up).
    this_month = today.replace(day=1)
    complete = trend[trend["month"] < this_month]
    if complete.empty:
        return TileValue(None, as_of=stamp, detail=detail, note="尚无完整月份")
    last = complete.iloc[-1]
    shown = "所选时段" if ctx.filters.period else "近24个月（含本月至今）"
    note = f"{last['month']:%Y年%m月}发现案件数；图为{shown}各月"
    return TileValue(float(last["total"]), as_of=stamp, detail=detail, note=note)


def satisfaction_query(ctx: TileContext) -> TileValue:
    reader, stamp = _open(ctx)
    if stamp is None:
        return TileValue(None, note=EMPTY_NOTE)
    today = ctx.today
    conds, window = _window(ctx, reader, today)
    s = queries.summary(reader, conds, today)
    by_source = queries.breakdown(reader, "source", conds, today)
    detail = Breakdown(_items(by_source, "source", "satisfaction_ratio", 100), by="发现来源", unit="%")
    note = (
        f"{window}回访 {format_number(s.rated)} 件，满意或基本满意 {format_number(s.satisfied)} 件；"
        "行动计划第91行要求满意率持续保持高位，未给出数值"
    )
    return TileValue(ratio(s.satisfied, s.rated), as_of=stamp, detail=detail, note=note)


def menqian_query(ctx: TileContext) -> TileValue:
    reader, stamp = _open(ctx)
    if stamp is None:
        return TileValue(None, note=EMPTY_NOTE)
    today = ctx.today
    conds, window = _window(ctx, reader, today)
    conds.append(reader.rows.c.category == "门前三包")
    s = queries.summary(reader, conds, today)
    by_street = queries.breakdown(reader, "street", conds, today).sort_values("on_time_ratio")
    detail = Breakdown(_items(by_street, "street", "on_time_ratio", 100), by="镇街", unit="%", limit=8)
    note = f"{window}门前三包问题 {format_number(s.total)} 件，已核实结案 {format_number(s.closed)} 件；图为整改率最低的镇街"
    return TileValue(ratio(s.on_time, s.closed), as_of=stamp, detail=detail, note=note)


TILES: tuple[TileSpec, ...] = (
    TileSpec(
        id="citymgmt_on_time_rate",
        title="城市管理案件按期办结率",
        department=DEPARTMENT,
        theme=Theme.GOVERNANCE,
        query=on_time_query,
        unit="%",
        target=Target(
            value=ON_TIME_TARGET,
            deadline=dt.date(2025, 12, 31),
            source=(
                "行动计划第274行（发现、派单、处置、反馈、考核全闭环）与第91行（城市事件智能化处置能力显著增强）；"
                "95%为区城市管理委的考核目标，计划未给出数值"
            ),
            scope="each",  # a rate: it holds for every street, unit and period
        ),
        drilldown="citymgmt-loop",
        ledgers=(LEDGER_ID,),
        description="已结案案件中结案日期不晚于处置时限的比例（默认近12个完整月，不含本月至今）；图为逐月走势与目标线，本月至今单独标出。",
        order=10,
    ),
    TileSpec(
        id="citymgmt_open_cases",
        title="在办城市管理案件",
        department=DEPARTMENT,
        theme=Theme.GOVERNANCE,
        query=open_cases_query,
        unit="件",
        drilldown="citymgmt-cases",
        ledgers=(LEDGER_ID,),
        description="待派单、处置中和已反馈待核实的案件数；图为各镇街在办案件。",
        order=20,
    ),
    TileSpec(
        id="citymgmt_monthly_cases",
        title="城市管理案件月度趋势",
        department=DEPARTMENT,
        theme=Theme.GOVERNANCE,
        query=monthly_query,
        unit="件",
        drilldown="citymgmt-loop",
        ledgers=(LEDGER_ID,),
        description="上一个完整月份发现的案件数；图为近24个月的月度案件量。",
        order=30,
    ),
    TileSpec(
        id="citymgmt_satisfaction",
        title="案件回访满意率",
        department=DEPARTMENT,
        theme=Theme.GOVERNANCE,
        query=satisfaction_query,
        unit="%",
        drilldown="citymgmt-cases",
        ledgers=(LEDGER_ID,),
        description="有回访结果的案件中“满意”和“基本满意”的比例（默认近12个完整月，不含本月至今）；图为各发现来源的满意率。",
        order=40,
    ),
    TileSpec(
        id="citymgmt_menqian",
        title="“门前三包”问题按期整改率",
        department=DEPARTMENT,
        theme=Theme.GOVERNANCE,
        query=menqian_query,
        unit="%",
        drilldown="citymgmt-cases",
        ledgers=(LEDGER_ID,),
        description="“门前三包”类问题（行动计划第266行）已核实结案中按期整改的比例；图为整改率最低的镇街。",
        order=50,
    ),
)
