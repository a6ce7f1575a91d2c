"""Compare a new version of a ledger with the current one, by key, in DuckDB (vectorised).

``diff_frames(current, new, key)`` accepts pyarrow Tables or pandas DataFrames (``current`` may be
``None`` for a ledger's first upload) and returns a :class:`Diff`: counts of added / changed /
removed / unchanged rows, the added and removed rows, and every changed cell as a long table
``(key..., column, old, new)`` with old and new rendered as text (``是``/``否`` for booleans,
``2023-05-01`` for dates). Columns present on only one side are listed and not compared. Keys
must be unique on both sides (``ValueError`` otherwise; a validated upload always is).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa


@dataclass
class Diff:
    key: tuple[str, ...]
    added: int
    changed: int
    removed: int
    unchanged: int
    added_rows: pa.Table
    removed_rows: pa.Table
    changed_cells: pa.Table  # key columns..., column, old, new
    changed_by_column: dict[str, int] = field(default_factory=dict)
    columns_added: list[str] = field(default_factory=list)  # only in new
    columns_removed: list[str] = field(default_factory=list)  # only in current
    seconds: float = 0.0

    @property
    def has_changes(self) -> bool:
        return bool(self.added or self.changed or self.removed)

    def summary(self) -> dict[str, Any]:
        """JSON-able counts for a version record."""
        return {
            "added": self.added,
            "changed": self.changed,
            "removed": self.removed,
            "unchanged": self.unchanged,
            "changed_by_column": dict(self.changed_by_column),
            "columns_added": list(self.columns_added),
            "columns_removed": list(self.columns_removed),
        }


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _as_arrow(data) -> pa.Table:
    if isinstance(data, pa.Table):
        return data
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data])
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover
        pd = None
    if pd is not None and isinstance(data, pd.DataFrame):
        return pa.Table.from_pandas(data, preserve_index=False)
    raise TypeError(f"expected a pyarrow Table or pandas DataFrame, not {type(data).__name__}")


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _text(expr: str, typ: pa.DataType) -> str:
    if pa.types.is_boolean(typ):
        return f"CASE WHEN {expr} THEN '是' WHEN NOT {expr} THEN '否' END"
    if pa.types.is_timestamp(typ):
        return f"strftime({expr}, '%Y-%m-%d %H:%M:%S')"
    return f"CAST({expr} AS VARCHAR)"


def diff_frames(
    current,
    new,
    key,
    *,
    columns: list[str] | None = None,
    detail_limit: int | None = None,
    on_progress: Callable[[str, float], None] | None = None,
) -> Diff:
    """Added / changed (old → new per cell) / removed / unchanged rows of ``new`` against ``current``."""
    import time

    import duckdb

    t0 = time.perf_counter()
    key = (key,) if isinstance(key, str) else tuple(key)
    new_t = _as_arrow(new)
    cur_t = _as_arrow(current) if current is not None else new_t.schema.empty_table()
    for k in key:
        if k not in new_t.column_names or k not in cur_t.column_names:
            raise ValueError(f"key column {k!r} missing from one side")
    compare = [c for c in new_t.column_names if c in cur_t.column_names and c not in key]
    if columns is not None:
        compare = [c for c in compare if c in columns]
    types = {c: new_t.schema.field(c).type for c in new_t.column_names}
    con = duckdb.connect()
    try:
        con.register("cur_t", cur_t)
        con.register("new_t", new_t)
        keys = ", ".join(_q(k) for k in key)
        for side in ("cur_t", "new_t"):
            dup = con.sql(
                f"SELECT count(*) FROM (SELECT {keys} FROM {side} GROUP BY ALL HAVING count(*) > 1)"
            ).fetchall()[0][0]
            if dup:
                raise ValueError(f"{dup} duplicate keys in {'current' if side == 'cur_t' else 'new'} data")
        if on_progress:
            on_progress("diff", 0.2)
        on = " AND ".join(f"c.{_q(k)} = n.{_q(k)}" for k in key)
        joined = f"cur_t c JOIN new_t n ON {on}"
        added_rows = con.sql(f"SELECT n.* FROM new_t n ANTI JOIN cur_t c ON {on}").to_arrow_table()
        removed_rows = con.sql(f"SELECT c.* FROM cur_t c ANTI JOIN new_t n ON {on}").to_arrow_table()
        if on_progress:
            on_progress("diff", 0.5)
        # streaming aggregates over the join: nothing row-sized is materialised
        distinct = [f"c.{_q(c)} IS DISTINCT FROM n.{_q(c)}" for c in compare]
        any_change = " OR ".join(distinct) if distinct else "false"
        aggregates = ", ".join(
            ["count(*)", f"count(*) FILTER (WHERE {any_change})"]
            + [f"count(*) FILTER (WHERE {d})" for d in distinct]
        )
        counts = con.sql(f"SELECT {aggregates} FROM {joined}").fetchall()[0]
        matched, changed = int(counts[0]), int(counts[1])
        by_col = {c: int(n) for c, n in zip(compare, counts[2:], strict=True) if n}
        if by_col:
            cells = ", ".join(
                "{'column': "
                + _literal(c)
                + ", 'old': "
                + _text(f"c.{_q(c)}", types[c])
                + ", 'new': "
                + _text(f"n.{_q(c)}", types[c])
                + f", 'd': c.{_q(c)} IS DISTINCT FROM n.{_q(c)}}}"
                for c in compare
                if c in by_col
            )
            keys_n = ", ".join(f"n.{_q(k)} AS {_q(k)}" for k in key)
            limit = f" LIMIT {int(detail_limit)}" if detail_limit is not None else ""
            changed_cells = con.sql(
                f"SELECT {keys}, cell['column'] AS \"column\", cell['old'] AS old, cell['new'] AS new FROM ("
                f"SELECT {keys_n}, unnest(list_filter([{cells}], lambda x: x.d)) AS cell "
                f"FROM {joined} WHERE {any_change}) ORDER BY {keys}{limit}"
            ).to_arrow_table()
        else:
            changed_cells = _empty_cells(new_t, key)
    finally:
        con.close()
    if on_progress:
        on_progress("diff", 1.0)
    return Diff(
        key=key,
        added=added_rows.num_rows,
        changed=changed,
        removed=removed_rows.num_rows,
        unchanged=int(matched) - changed,
        added_rows=added_rows,
        removed_rows=removed_rows,
        changed_cells=changed_cells,
        changed_by_column=by_col,
        columns_added=[c for c in new_t.column_names if c not in cur_t.column_names],
        columns_removed=[c for c in cur_t.column_names if c not in new_t.column_names],
        seconds=round(time.perf_counter() - t0, 4),
    )


def _empty_cells(new_t: pa.Table, key: tuple[str, ...]) -> pa.Table:
    fields = [new_t.schema.field(k) for k in key] + [
        pa.field("column", pa.string()),
        pa.field("old", pa.string()),
        pa.field("new", pa.string()),
    ]
    return pa.schema(fields).empty_table()
