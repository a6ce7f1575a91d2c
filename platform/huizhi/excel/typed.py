"""Typed rows (an Arrow table, a pandas frame, a list of dicts) checked like an upload's cells.

:func:`check_rows` is what :meth:`huizhi.ledgers.LedgerService.preview_rows` and ``import_rows``
run before staging (the seed loader, ``huizhi.testing.commit_rows``, row edits and connector
imports to come), so rows that do not arrive as a file get the same checks as a file, by the
same code:

* each column goes through :func:`huizhi.excel.convert.convert_column`, as a file's cells do
  (an ``int`` column given as integers is taken as it is: a float would round 18 digits):
  text is trimmed (empty text is empty), formula-like text behind a leading TAB/CR is kept as
  given, control characters (BEL, ESC, VT, U+202E …) fail the cell and a NUL is removed with a
  warning; a column of another type than the ledger's is read the way a cell of that kind is
  (``"12,5"`` in a ``float`` column is refused, never 125; ``1.5`` in an ``int`` column is not an
  integer; a datetime in a ``date`` column keeps its day, with a warning).
* the typed frame then goes through :func:`huizhi.excel.validation.validate_typed`: required
  cells, choices, min/max, patterns, finite floats, key and unique columns, row rules.

Problems are :class:`huizhi.excel.problems.Problem` with ``row`` = the row's position in the given
rows (0-based) and ``column`` = the column name (``header`` its label). A required or key column
missing from the rows is an error; an optional one is empty. A column that is no column of the
ledger is an error (never dropped silently), unless listed in ``ignore``.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from huizhi.excel.problems import PROBLEM_FIELDS, Problem, ProblemKind, Severity
from huizhi.specs import ColumnSpec, LedgerSpec

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["CheckedRows", "RowsRejected", "check_rows"]

PROBLEMS_IN_MESSAGE = 5  # problems named in RowsRejected's message


@dataclass(frozen=True)
class CheckedRows:
    """Rows that passed: ``table`` has exactly the spec's columns, typed; ``warnings`` are the
    problems that did not block (a NUL removed, a time part dropped, a soft row rule)."""

    table: pa.Table
    warnings: tuple[Problem, ...] = ()


class RowsRejected(ValueError):
    """Typed rows that fail the ledger's checks; nothing was staged or stored.

    ``problems`` are every problem found (errors and warnings, sorted by row), ``errors`` the
    blocking ones; ``str(exc)`` (English, for logs and developers) names the first few."""

    def __init__(self, spec: LedgerSpec, problems: list[Problem], rows: int):
        self.ledger_id = spec.id
        self.problems = problems
        self.errors = [p for p in problems if p.severity == Severity.ERROR]
        self.rows = rows
        shown = "; ".join(describe(p) for p in self.errors[:PROBLEMS_IN_MESSAGE])
        more = len(self.errors) - PROBLEMS_IN_MESSAGE
        super().__init__(
            f"ledger {spec.id}: {len(self.errors)} error(s) in the {rows} given row(s), which get the "
            f"checks of an upload: {shown}" + (f"; and {more} more" if more > 0 else "")
        )
        first = self.errors[0].text() if self.errors else ""
        self.user_message = f"数据未通过“{spec.title}”的校验（共 {len(self.errors)} 处错误），未保存。{first}"


def describe(p: Problem) -> str:
    """One problem in a line for developers: where (row position, column), what kind, the value."""
    where = ", ".join(
        part
        for part in (f"row {p.row}" if p.row is not None else "", f"column {p.column!r}" if p.column else "")
        if part
    )
    value = f" (value {p.value!r})" if p.value is not None else ""
    return f"{where or 'rows'}: {p.kind}{value}: {p.message}"


def check_rows(spec: LedgerSpec, rows: Any, *, ignore: Collection[str] = ()) -> CheckedRows:
    """``rows`` checked against ``spec`` as an upload's cells are; raises :class:`RowsRejected`
    (with every problem) when any is an error, ``TypeError`` for values no cell can hold."""
    import numpy as np
    import pyarrow as pa

    from huizhi.excel.convert import TYPES, convert_column, render_text
    from huizhi.excel.pipeline import PROBLEM_SCHEMA, _visible, conversion_problems, validation_chunks
    from huizhi.excel.validation import typed_frame, validate_typed

    given, n = _columns(rows)
    names = {c.name for c in spec.columns}
    problems: list[Problem] = [
        Problem(
            severity=Severity.ERROR,
            kind=ProblemKind.UNKNOWN_COLUMN,
            message=f"列「{name}」不是本台账的列",
            hint=f"本台账的列：{'、'.join(c.name for c in spec.columns)}；请改正列名或去掉这一列",
            column=name,
            header=name,
        )
        for name in given
        if name not in names and name not in ignore
    ]
    columns: dict[str, pa.Array] = {}
    rendered: dict[str, pa.Array] = {}
    skip: dict[str, np.ndarray] = {}
    chunks: list[pa.Table] = []
    for col in spec.columns:
        if col.name not in given:
            if col.required or col.name in spec.key:
                problems.append(
                    Problem(
                        severity=Severity.ERROR,
                        kind=ProblemKind.MISSING_COLUMN,
                        message=f"缺少列「{col.label}」",
                        hint="必填列和主键列必须给出",
                        column=col.name,
                        header=col.label,
                    )
                )
            columns[col.name] = pa.nulls(n, TYPES[col.dtype])
            skip[col.name] = np.ones(n, dtype=bool)
            continue
        parts = _parts(col, given[col.name], n)
        rendered[col.name] = render_text(parts, n)
        typed = _exact_int(col, given[col.name])
        if typed is not None:
            columns[col.name] = typed
            skip[col.name] = np.zeros(n, dtype=bool)
            continue
        conv = convert_column(parts, col, n)
        columns[col.name] = conv.values
        converted, skip[col.name] = conversion_problems(parts, col, conv)
        chunks += converted
    table = pa.table(columns)
    if n:
        frame = typed_frame(table, spec)
        chunks += validation_chunks(validate_typed(spec, frame, skip=skip, row_numbers=np.arange(n, dtype=np.int64)))
    labels = {c.name: c.label for c in spec.columns}
    for chunk in chunks:
        if not chunk.num_rows:
            continue
        name = chunk.column("column")[0].as_py()
        pos = chunk.column("_pos")
        values = (
            _visible(rendered[name].take(pos)) if name in rendered else pa.nulls(chunk.num_rows, pa.string())
        )
        for i, row in enumerate(
            chunk.select([f for f in PROBLEM_FIELDS if f in PROBLEM_SCHEMA.names]).to_pylist()
        ):
            row.update(row=pos[i].as_py(), header=labels.get(name), value=values[i].as_py())
            problems.append(Problem(**row))
    order = {c.name: i for i, c in enumerate(spec.columns)}
    problems.sort(key=lambda p: (p.row if p.row is not None else -1, order.get(p.column or "", -1)))
    if any(p.severity == Severity.ERROR for p in problems):
        raise RowsRejected(spec, problems, n)
    return CheckedRows(table, tuple(problems))


def _columns(rows: Any) -> tuple[dict[str, Any], int]:
    """``{column name: values}`` and the row count of a table, a frame or a list of mappings."""
    import pyarrow as pa

    if isinstance(rows, pa.Table):
        return {name: rows.column(name) for name in rows.column_names}, rows.num_rows
    import pandas as pd

    if isinstance(rows, pd.DataFrame):
        if rows.columns.has_duplicates:
            raise ValueError(
                f"rows have duplicate columns: {sorted(set(rows.columns[rows.columns.duplicated()]))}"
            )
        return {str(name): rows[name] for name in rows.columns}, len(rows)
    if isinstance(rows, list | tuple) and all(isinstance(r, Mapping) for r in rows):
        names = list(dict.fromkeys(k for r in rows for k in r))
        return {name: [r.get(name) for r in rows] for name in names}, len(rows)
    raise TypeError(
        f"rows must be a pyarrow Table, a pandas DataFrame or a list of dicts, not {type(rows).__name__}"
    )


def _parts(col: ColumnSpec, values: Any, n: int) -> dict[str, pa.Array]:
    """The values as a file's cells are represented (``s`` text, ``n`` number, ``d`` date/time,
    ``b`` boolean; at most one set per row), for the same conversion."""
    import pyarrow as pa

    arr = _arrow(values)
    if arr is None:
        return _python_parts(col, list(values), n)
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    t = arr.type
    if pa.types.is_null(t):
        return {}
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return {"s": arr.cast(pa.string())}
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
        return {"n": arr.cast(pa.float64())}
    if pa.types.is_timestamp(t) or pa.types.is_date(t):
        return {"d": arr.cast(pa.timestamp("us"))}
    if pa.types.is_boolean(t):
        return {"b": arr}
    raise TypeError(f"column {col.name!r}: values of type {t} cannot be stored in a {col.dtype} column")


def _arrow(values: Any) -> pa.Array | None:
    """One Arrow array, or None when the values mix kinds Arrow cannot hold in one array."""
    import pyarrow as pa

    if isinstance(values, pa.ChunkedArray):
        return values.combine_chunks()
    if isinstance(values, pa.Array):
        return values
    try:
        return pa.array(values, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError):
        return None


def _python_parts(col: ColumnSpec, values: list[Any], n: int) -> dict[str, pa.Array]:
    import pyarrow as pa

    kinds: dict[str, list[Any]] = {k: [None] * n for k in ("s", "n", "d", "b")}
    for i, v in enumerate(values):
        if v is None or (isinstance(v, float) and math.isnan(v)) or _is_na(v):
            continue
        if isinstance(v, bool):
            kinds["b"][i] = v
        elif isinstance(v, int | float):
            kinds["n"][i] = float(v)
        elif isinstance(v, str):
            kinds["s"][i] = v
        elif isinstance(v, dt.datetime | dt.date):
            kinds["d"][i] = v if isinstance(v, dt.datetime) else dt.datetime(v.year, v.month, v.day)
        else:
            raise TypeError(f"column {col.name!r}, row {i}: a {type(v).__name__} cannot be stored ({v!r})")
    types = {"s": pa.string(), "n": pa.float64(), "d": pa.timestamp("us"), "b": pa.bool_()}
    return {k: pa.array(vs, types[k]) for k, vs in kinds.items() if any(v is not None for v in vs)}


def _is_na(v: Any) -> bool:
    import pandas as pd

    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


def _exact_int(col: ColumnSpec, values: Any) -> pa.Array | None:
    """An ``int`` column given as integers, as they are: through a float (how a file's numbers
    arrive) an 18-digit integer would lose its last digits."""
    import pyarrow as pa

    if col.dtype != "int":
        return None
    arr = _arrow(values)
    if arr is None or not pa.types.is_integer(arr.type):
        return None
    return arr.cast(pa.int64())
