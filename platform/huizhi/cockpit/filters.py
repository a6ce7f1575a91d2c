"""The cockpit's global filters: one normal form (so equal selections share a cache entry) and
their encoding in drill-down URLs (``?street=…&dept=…&period=start..end``).

Applying filters to a ledger read is the tile's part of the contract:
:meth:`huizhi.context.TileContext.filter_conditions`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from huizhi import district
from huizhi import params as query_params
from huizhi.context import FILTER_DEPARTMENT, FILTER_PERIOD, FILTER_STREET, Filters

FILTER_LABELS = {FILTER_STREET: "镇街", FILTER_DEPARTMENT: "部门", FILTER_PERIOD: "时间"}


def department_name(value: str) -> str:
    """A department given by name (区公安分局) or id (gaj) as the name ledgers store; anything
    else unchanged (it then matches no row: a filter never widens to everything)."""
    dept = district.department_by_name(value)
    if dept is None:
        try:
            dept = district.department(value)
        except KeyError:
            return value
    return dept.name


def normalize_filters(filters: Filters | None) -> Filters:
    """Sorted, de-duplicated filters, so equal selections share one cache entry. Departments
    given by id become their names (``Filters(departments=("jxj",))`` is the 区经济和信息化局
    filter), since tiles compare them with the names stored in ledgers."""
    if filters is None:
        return Filters()
    period = None
    if filters.period is not None:
        start, end = filters.period
        period = (_to_date(start), _to_date(end))
    return Filters(
        streets=tuple(sorted(set(filters.streets))),
        departments=tuple(sorted({department_name(d) for d in filters.departments})),
        period=period,
    )


def _to_date(value: Any) -> dt.date | None:
    if value is None or isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    if isinstance(value, dt.datetime):
        return value.date()
    return dt.date.fromisoformat(str(value))


def filters_to_params(filters: Filters) -> dict[str, str]:
    """Query parameters for a drill-down link: ``street``, ``dept``, ``period`` (start..end)."""
    params: dict[str, str] = {}
    if filters.streets:
        params["street"] = ",".join(filters.streets)
    if filters.departments:
        params["dept"] = ",".join(filters.departments)
    if filters.period is not None:
        start, end = filters.period
        params["period"] = f"{start.isoformat() if start else ''}..{end.isoformat() if end else ''}"
    return params


def filters_from_params(params: Mapping[str, Any]) -> Filters:
    """The inverse of :func:`filters_to_params`; department pages call it on ``ctx.params``.

    Unparseable values are ignored (a hand-edited URL must not break a page). ``dept`` takes
    department names or ids (``?dept=jxj`` and ``?dept=区经济和信息化局`` are the same filter, as
    :func:`huizhi.params.departments` reads them); unknown departments are dropped.
    """

    def listed(key: str) -> tuple[str, ...]:
        raw = params.get(key) or ""
        if isinstance(raw, list | tuple):
            raw = ",".join(map(str, raw))
        return tuple(sorted({part.strip() for part in str(raw).split(",") if part.strip()}))[:50]

    period = None
    raw_period = str(params.get("period") or "")
    if ".." in raw_period:
        a, b = raw_period.split("..", 1)
        try:
            period = (dt.date.fromisoformat(a) if a else None, dt.date.fromisoformat(b) if b else None)
        except ValueError:
            period = None
        if period == (None, None):
            period = None
    departments = tuple(sorted(query_params.departments(params, "dept")))[:50]
    return Filters(streets=listed("street"), departments=departments, period=period)


