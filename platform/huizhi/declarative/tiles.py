"""The queries of declared tiles: count, ratio, breakdown and monthly trend of a ledger's rows.

Each reads the ledger through ``ctx.ledger`` (rows already limited to what the identity may
see), applies the cockpit's street, department and period filters through
``ctx.filter_conditions`` (the street column is the one whose choices are the district's
streets, the department column the ledger's ``department_column``, the period the tile's
``date``), then the tile's own ``where``, and aggregates in SQL.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from huizhi.fmt import format_number, ratio
from huizhi.specs import Breakdown, Series, TileValue

if TYPE_CHECKING:
    from huizhi.context import LedgerReader, TileContext
    from huizhi.declarative.parse import Declaration, TileDecl, Where


def where_conditions(reader: LedgerReader, where: Where) -> list[sa.ColumnElement[bool]]:
    return [reader.c(column).in_(list(values)) for column, values in where]


def _months(first: dt.date, last: dt.date) -> list[dt.date]:
    out, at = [], first.replace(day=1)
    while at <= last:
        out.append(at)
        at = dt.date(at.year + at.month // 12, at.month % 12 + 1, 1)
    return out


def make_query(decl: Declaration, tile: TileDecl) -> Callable[[TileContext], TileValue]:
    ledger = decl.ledger

    def query(ctx: TileContext) -> TileValue:
        reader = ctx.ledger(ledger.id)
        if reader.version is None:
            return TileValue(None, note=f"{ledger.title}尚无数据")
        as_of = reader.updated_at
        conds = ctx.filter_conditions(reader, street=decl.street_column, department="auto", date=tile.date)
        conds += where_conditions(reader, tile.where)
        if tile.kind == "count":
            return TileValue(float(reader.count(*conds)), as_of=as_of)
        if tile.kind == "ratio":
            total = reader.count(*conds)
            part = reader.count(*conds, *where_conditions(reader, tile.numerator))
            note = f"{format_number(part)} / {format_number(total)}"
            return TileValue(ratio(part, total, percent=tile.unit == "%"), as_of=as_of, note=note)
        if tile.kind == "breakdown":
            return _breakdown(reader, tile, conds, as_of)
        return _trend(ctx, reader, tile, conds, as_of)

    query.__name__ = f"{tile.kind}_{tile.id}"
    return query


def _breakdown(reader: LedgerReader, tile: TileDecl, conds: list[Any], as_of: dt.datetime | None) -> TileValue:
    assert tile.by is not None  # checked by the parser
    col = reader.c(tile.by)
    rows: list[Any] = reader.execute(sa.select(col, sa.func.count()).where(*conds).group_by(col))
    pairs = [(str(row[0]), float(row[1])) for row in rows if row[0] is not None]
    items = tuple(sorted(pairs, key=lambda kv: (-kv[1], kv[0])))
    detail = Breakdown(items, by=reader.spec.column(tile.by).label, unit=tile.unit or None, limit=tile.limit)
    return TileValue(float(sum(n for _, n in items)), as_of=as_of, detail=detail)


def _trend(
    ctx: TileContext, reader: LedgerReader, tile: TileDecl, conds: list[Any], as_of: dt.datetime | None
) -> TileValue:
    assert tile.date is not None  # checked by the parser
    col = reader.c(tile.date)
    rows: list[Any] = reader.execute(sa.select(col, sa.func.count()).where(*conds, col.is_not(None)).group_by(col))
    by_month: dict[dt.date, int] = {}
    before = 0  # rows before the window, for a cumulative line
    today = ctx.today
    this_month = today.replace(day=1)
    index = this_month.year * 12 + this_month.month - 1 - (tile.months - 1)
    first = dt.date(index // 12, index % 12 + 1, 1)
    if ctx.filters.period is not None and ctx.filters.period[0] is not None:
        first = ctx.filters.period[0].replace(day=1)
    for row in rows:
        day, n = row[0], row[1]
        day = day.date() if isinstance(day, dt.datetime) else day
        if day < first:
            before += int(n)
            continue
        month = day.replace(day=1)
        by_month[month] = by_month.get(month, 0) + int(n)
    months = _months(first, max([this_month, *by_month]))
    running, points = before, []
    for month in months:
        running = running + by_month.get(month, 0) if tile.cumulative else by_month.get(month, 0)
        points.append((month, float(running)))
    target = tile.target.value if tile.target is not None else None
    detail = Series(tuple(points), name=tile.title, unit=tile.unit or None,
                    kind="line" if tile.cumulative else "bar", target=target)  # fmt: skip
    complete = [v for m, v in points if m < this_month]
    if tile.cumulative:
        value: float | None = float(running)
        note = f"截至今天累计；图为近{len(months)}个月逐月累计"
    else:
        value = complete[-1] if complete else None
        note = "上一个完整月份的数量；图为各月数量（本月至今单独标出）"
    return TileValue(value, as_of=as_of, detail=detail, note=note)
