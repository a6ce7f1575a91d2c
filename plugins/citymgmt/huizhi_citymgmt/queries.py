"""SQL over the case ledger, shared by the pages and the tiles (DuckDB and PostgreSQL alike).

Measures of the closed loop:

* 按期办结率 (on-time closure): closed cases whose 结案日期 is on or before 处置时限, out of all
  closed cases;
* 在办 (open): 待派单, 处置中 or 已反馈; 超期在办: open and past 处置时限 today;
* 满意率: 满意 or 基本满意 out of the cases with a 回访满意度.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from huizhi import district, kit
from huizhi.clock import beijing_today
from huizhi_citymgmt.schema import CATEGORIES, CLOSED, OPEN_STATUSES, SOURCES, STATUSES

if TYPE_CHECKING:
    import pandas as pd

    from huizhi.context import LedgerReader


@dataclass(frozen=True)
class CaseFilter:
    """Filters of the case pages; from widgets or query parameters.

    Query parameters: ``street`` (镇街, comma-separated), ``dept`` / ``department`` (承办单位 name
    or department id), ``category``, ``source``, ``status``, ``period`` (``2026-01-01..2026-06-30``,
    on 发现日期, as the cockpit writes it), ``overdue=1`` (open and past the time limit), ``q``.
    """

    streets: tuple[str, ...] = ()
    units: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()
    start: dt.date | None = None
    end: dt.date | None = None
    overdue_only: bool = False
    search: str = ""

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> CaseFilter:
        return cls(**kit.filter_defaults(FILTERS, params))


# The filter panel of the case pages, row by row: which widget, which query parameters (the first
# is the one links write) and which CaseFilter field each fills.
FILTERS = (
    (
        kit.DateRange("period", "发现日期"),
        kit.Pick(
            "streets", "所属镇街", district.street_names(), ("street", "streets"), placeholder="全部镇街"
        ),
        kit.Departments("units", "承办单位", "dispatch_unit", ("dept", "department", "departments", "unit")),
    ),
    (
        kit.Pick("categories", "问题类别", CATEGORIES, ("category", "categories"), placeholder="全部类别"),
        kit.Pick("sources", "发现来源", SOURCES, ("source", "sources"), placeholder="全部来源"),
        kit.Pick("statuses", "办理状态", STATUSES, ("status", "statuses"), placeholder="全部状态"),
    ),
    (
        kit.Search("search", placeholder="案件编号或问题描述中的文字", width=3),
        kit.Flag("overdue_only", "只看超期未结", ("overdue",)),
    ),
)


def to_params(flt: CaseFilter) -> dict[str, str]:
    """Query parameters that :meth:`CaseFilter.from_params` reads back (for links between pages)."""
    return kit.filter_params(FILTERS, vars(flt))


def open_case(reader: LedgerReader) -> sa.ColumnElement[bool]:
    return reader.rows.c.status.in_(OPEN_STATUSES)


def closed_case(reader: LedgerReader) -> sa.ColumnElement[bool]:
    return reader.rows.c.status == CLOSED


def on_time(reader: LedgerReader) -> sa.ColumnElement[bool]:
    c = reader.rows.c
    return sa.and_(closed_case(reader), c.closed_date <= c.deadline)


def open_overdue(reader: LedgerReader, today: dt.date) -> sa.ColumnElement[bool]:
    return sa.and_(open_case(reader), reader.rows.c.deadline < today)


def satisfied(reader: LedgerReader) -> sa.ColumnElement[bool]:
    return reader.rows.c.satisfaction.in_(("满意", "基本满意"))


def conditions(
    reader: LedgerReader, flt: CaseFilter, today: dt.date | None = None
) -> list[sa.ColumnElement[bool]]:
    today = today or beijing_today()
    c = reader.rows.c
    conds = reader.where(
        {
            "street": flt.streets,
            "dispatch_unit": flt.units,
            "category": flt.categories,
            "source": flt.sources,
            "status": flt.statuses,
        },
        search=flt.search or None,
        search_columns=("case_id", "description"),
    )
    if flt.start:
        conds.append(c.found_date >= flt.start)
    if flt.end:
        conds.append(c.found_date <= flt.end)
    if flt.overdue_only:
        conds.append(open_overdue(reader, today))
    return conds


@dataclass(frozen=True)
class Summary:
    total: int
    closed: int
    on_time: int
    open: int
    open_overdue: int
    rated: int
    satisfied: int
    avg_days: float | None  # average days from dispatch to closure, closed cases

    @property
    def on_time_ratio(self) -> float | None:
        return self.on_time / self.closed if self.closed else None

    @property
    def satisfaction_ratio(self) -> float | None:
        return self.satisfied / self.rated if self.rated else None


def _measures(reader: LedgerReader, today: dt.date) -> list[sa.ColumnElement[Any]]:
    c = reader.rows.c
    count = sa.func.count
    return [
        count().label("total"),
        count().filter(closed_case(reader)).label("closed"),
        count().filter(on_time(reader)).label("on_time"),
        count().filter(open_case(reader)).label("open"),
        count().filter(open_overdue(reader, today)).label("open_overdue"),
        count(c.satisfaction).label("rated"),
        count().filter(satisfied(reader)).label("satisfied"),
    ]


def summary(
    reader: LedgerReader, conds: Iterable[sa.ColumnElement[bool]] = (), today: dt.date | None = None
) -> Summary:
    today = today or beijing_today()
    c = reader.rows.c
    days = sa.func.avg(sa.case((closed_case(reader), c.closed_date - c.dispatch_date), else_=None))
    row = reader.execute(sa.select(*_measures(reader, today), days).select_from(reader.rows).where(*conds))[0]
    *counts, avg = row
    return Summary(*(int(v or 0) for v in counts), avg_days=float(avg) if avg is not None else None)


def breakdown(
    reader: LedgerReader,
    column: str,
    conds: Iterable[sa.ColumnElement[bool]] = (),
    today: dt.date | None = None,
) -> pd.DataFrame:
    """Per value of ``column``: the closed-loop measures, most cases first, with ratios."""
    today = today or beijing_today()
    key = reader.rows.c[column]
    stmt = (
        sa.select(key.label(column), *_measures(reader, today))
        .where(*conds)
        .group_by(key)
        .order_by(sa.desc("total"), key)
    )
    frame = reader.frame(stmt)
    # the ratio columns exist also when no row matches (a street and a unit without cases)
    closed = frame["closed"].where(frame["closed"] > 0)
    rated = frame["rated"].where(frame["rated"] > 0)
    frame["on_time_ratio"] = (frame["on_time"] / closed).astype("float64")
    frame["satisfaction_ratio"] = (frame["satisfied"] / rated).astype("float64")
    return frame


def monthly(
    reader: LedgerReader,
    conds: Iterable[sa.ColumnElement[bool]] = (),
    *,
    months: int | None = 24,
    today: dt.date | None = None,
    first: dt.date | None = None,
    last: dt.date | None = None,
) -> pd.DataFrame:
    """Cases found per month (the last ``months`` months, this one included; None: every month
    ``conds`` allow), with the closed-loop measures; ``month`` is the first day of the month.

    Every month of the range has a row, a month without cases with zeros: a trend must not skip
    it (nor may "the last complete month" become an older one). The range is the ``months``
    window, else ``first``..``last`` where given, else the months that have cases.
    """
    today = today or beijing_today()
    c = reader.rows.c
    conds = list(conds)
    if months is not None:
        first, last = _month_at(_month_number(today) - (months - 1)), today
        conds.append(c.found_date >= first)
    month = sa.cast(sa.func.date_trunc("month", c.found_date), sa.Date)
    stmt = (
        sa.select(month.label("month"), *_measures(reader, today))
        .where(*conds)
        .group_by(month)
        .order_by(month)
    )
    frame = _every_month(reader.frame(stmt), first, last)
    frame["on_time_ratio"] = frame["on_time"] / frame["closed"].where(frame["closed"] > 0)
    return frame


def _month_number(day: dt.date) -> int:
    return day.year * 12 + day.month - 1


def _month_at(number: int) -> dt.date:
    return dt.date(number // 12, number % 12 + 1, 1)


def _every_month(frame: pd.DataFrame, first: dt.date | None, last: dt.date | None) -> pd.DataFrame:
    """``frame`` (one row per month with cases) with a zero row for every other month from
    ``first`` (default: its first month) to ``last`` (default: its last month)."""
    import pandas as pd

    present = [pd.Timestamp(m).date() for m in frame["month"]]
    numbers = [_month_number(m) for m in present]
    lo = _month_number(first) if first is not None else min(numbers, default=None)
    hi = _month_number(last) if last is not None else max(numbers, default=None)
    if lo is None or hi is None:
        return frame
    counts = [col for col in frame.columns if col != "month"]
    full = pd.DataFrame({"month": [_month_at(n) for n in range(lo, hi + 1)]})
    out = full.merge(frame.assign(month=present), on="month", how="left")
    out[counts] = out[counts].fillna(0).astype("int64")
    return out


def rows_page(
    reader: LedgerReader,
    conds: Iterable[sa.ColumnElement[bool]],
    *,
    limit: int,
    offset: int,
    today: dt.date | None = None,
    order: str = "newest",
) -> pd.DataFrame:
    """One page of cases, with 考核 (on time / late / overdue) computed in SQL."""
    today = today or beijing_today()
    c = reader.rows.c
    assessment = sa.case(
        (on_time(reader), sa.literal("按期办结")),
        (closed_case(reader), sa.literal("超期办结")),
        (open_overdue(reader, today), sa.literal("超期未结")),
        (c.status == "待派单", sa.literal("待派单")),
        else_=sa.literal("时限内办理"),
    )
    order_by = {
        "newest": [c.found_date.desc(), c.case_id.desc()],
        "oldest_open": [c.deadline.asc(), c.case_id],
        "case_id": [c.case_id],
    }[order]
    stmt = (
        sa.select(reader.rows, assessment.label("assessment"))
        .where(*conds)
        .order_by(*order_by)
        .limit(limit)
        .offset(offset)
    )
    return reader.frame(stmt)


def as_of(reader: LedgerReader) -> dt.datetime | None:
    """When the current version of the ledger was committed (None: no version yet)."""
    return reader.updated_at
