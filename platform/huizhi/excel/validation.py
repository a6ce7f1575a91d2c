"""Validation of typed ledger rows: the pandera schema and the cell-by-cell checks built on it.

Two layers, both driven by :class:`huizhi.specs.LedgerSpec` data:

``build_schema(spec)``
    A ``pandera.pandas.DataFrameSchema`` for an *already typed* frame (see :func:`typed_frame`):
    one column per ``ColumnSpec`` with its pandas dtype (``string``, ``Int64``, ``Float64``,
    ``datetime64[ms]``, ``boolean``), ``nullable=not required``, and checks named ``choices``,
    ``min``, ``max``, ``finite``, ``pattern``; column ``unique=True`` where declared; the ledger
    key as a frame-level uniqueness constraint; every ``RowCheck`` as a frame-level check (soft
    ones ``raise_warning=True``). No ``coerce``: coercion inside pandera loses per-cell errors
    once one cell fails (measured), so types are converted beforehand by
    :mod:`huizhi.excel.convert`, which records each failure per cell.

``validate_typed(spec, frame, ...)``
    Runs that schema lazily over the whole frame (without the key and row checks) and turns every
    failure case into a :class:`CellIssues` (column, kind, row positions, Chinese message and hint),
    then checks key / unique-column uniqueness with vectorised pandas (messages name the row a value
    duplicates) and runs each ``RowCheck`` itself (so failures land on the rule's ``columns`` and
    soft rules become warnings). Cells listed in ``skip`` (conversion failures, missing columns)
    are not reported again, and a row rule is not evaluated on rows whose cells already failed.

Patterns are matched with Python ``re.fullmatch`` and ``re.ASCII``: ``\\d`` is ``[0-9]`` only
(full-width digits do not pass) and a trailing newline does not satisfy ``$``. ``float`` columns
reject ``inf``/``nan`` (``Check.ge(0)`` alone lets ``inf`` through). ``min``/``max`` apply to
``int`` and ``float`` columns.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from huizhi.excel import messages as M
from huizhi.excel.problems import ProblemKind, Severity
from huizhi.specs import ColumnSpec, LedgerSpec

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    import pandera.pandas as pa
    import pyarrow

log = logging.getLogger(__name__)

PANDAS_DTYPES = {
    "str": "string",
    "int": "Int64",
    "float": "Float64",
    "date": "datetime64[ms]",
    "bool": "boolean",
}


@dataclass
class CellIssues:
    """Cells of one column that fail one check. ``positions`` index the typed frame's rows."""

    column: str
    kind: str
    severity: str
    positions: np.ndarray
    message: str | list[str]  # one message for all, or one per position
    hint: str
    rule: str | None = None


def compile_pattern(pattern: str) -> re.Pattern:
    return re.compile(pattern, re.ASCII)


def re2_pattern(pattern: str) -> str | None:
    """``pattern`` as an anchored RE2 expression with Python ``re.ASCII`` + fullmatch semantics.

    RE2 (Arrow's regex engine) already treats ``\\d``/``\\w``/``\\s`` as ASCII and ``$`` as
    end of text; ``\\Z`` is spelled ``\\z``. None when RE2 cannot compile it (lookarounds,
    backreferences): the check then falls back to Python's ``re`` on the distinct values.
    """
    import pyarrow as pa_
    import pyarrow.compute as pc

    expr = "^(?:" + pattern.replace("\\Z", "\\z") + ")$"
    try:
        pc.match_substring_regex(pa_.array(["0"]), expr)
    except (pa_.ArrowInvalid, pa_.ArrowNotImplementedError):
        return None
    return expr


def pattern_mask(values, pattern: str):
    """Boolean numpy array: which of ``values`` (Arrow/pandas strings) fully match ``pattern``.

    Nulls count as matching (emptiness is the ``required`` rule's business).
    """
    import numpy as np
    import pyarrow as pa_
    import pyarrow.compute as pc

    arr = values if isinstance(values, pa_.Array | pa_.ChunkedArray) else pa_.array(values, pa_.string())
    expr = re2_pattern(pattern)
    if expr is not None:
        return np.asarray(
            pc.fill_null(pc.match_substring_regex(arr, expr), True).to_numpy(zero_copy_only=False), dtype=bool
        )
    rx = compile_pattern(pattern)
    uniques = pc.unique(arr).drop_null().to_pylist()
    good = pa_.array([u for u in uniques if rx.fullmatch(u) is not None], pa_.string())
    ok = pc.or_(pc.is_in(arr, value_set=good), pc.is_null(arr))
    return np.asarray(ok.to_numpy(zero_copy_only=False), dtype=bool)


def _pattern_check(col: ColumnSpec):
    import pandas as pd
    import pandera.pandas as pa

    def check(series):
        return pd.Series(pattern_mask(series.array, col.pattern), index=series.index)

    return pa.Check(check, name="pattern", error=f"pattern {col.pattern}")


def _finite(series):
    import numpy as np
    import pandas as pd

    return pd.Series(np.isfinite(series.to_numpy(dtype="float64", na_value=0.0)), index=series.index)


def _column_checks(col: ColumnSpec) -> list[tuple[str, Any]]:
    """``(kind, pandera.Check)`` pairs, in the order pandera numbers them (``check_number``)."""
    import pandera.pandas as pa

    checks: list[tuple[str, Any]] = []
    if col.choices:
        checks.append((ProblemKind.CHOICE, pa.Check.isin(list(col.choices), name="choices")))
    if col.dtype in ("int", "float"):
        if col.dtype == "float":
            finite = pa.Check(_finite, name="finite")
            checks.append((ProblemKind.TYPE, finite))
        if col.min is not None:
            checks.append((ProblemKind.MIN, pa.Check.ge(col.min, name="min")))
        if col.max is not None:
            checks.append((ProblemKind.MAX, pa.Check.le(col.max, name="max")))
    if col.pattern and col.dtype == "str":
        checks.append((ProblemKind.PATTERN, _pattern_check(col)))
    return checks


def build_schema(spec: LedgerSpec, *, row_checks: bool = True, unique: bool = True) -> pa.DataFrameSchema:
    """The pandera schema for typed rows of ``spec`` (see the module docstring)."""
    import pandera.pandas as pa

    columns = {}
    for col in spec.columns:
        columns[col.name] = pa.Column(
            PANDAS_DTYPES[col.dtype],
            nullable=not col.required and col.name not in spec.key,
            unique=bool(unique and col.unique),
            checks=[check for _, check in _column_checks(col)],
            title=col.label,
            description=col.description or None,
        )
    frame_checks = []
    if row_checks:
        for rc in spec.row_checks:
            frame_checks.append(
                pa.Check(_row_check_fn(rc), name=rc.name, error=rc.message, raise_warning=rc.soft)
            )
    return pa.DataFrameSchema(
        columns,
        checks=frame_checks or None,
        unique=list(spec.key) if unique and spec.key else None,
        report_duplicates="all",
        strict=False,
        name=spec.id,
        title=spec.title,
    )


def _row_check_fn(rc):
    def fn(df):
        import pandas as pd

        out = pd.Series(rc.check(df), index=df.index)
        return out.astype("boolean").fillna(True).astype(bool)

    return fn


def typed_frame(table: pyarrow.Table, spec: LedgerSpec | None = None) -> pd.DataFrame:
    """A typed pyarrow table (``huizhi.excel`` output) as a pandas frame with nullable dtypes."""
    import pandas as pd
    import pyarrow as pa_

    mapping = {
        pa_.string(): pd.StringDtype("pyarrow"),
        pa_.large_string(): pd.StringDtype("pyarrow"),
        pa_.int64(): pd.Int64Dtype(),
        pa_.float64(): pd.Float64Dtype(),
        pa_.bool_(): pd.BooleanDtype(),
    }
    frame = table.to_pandas(types_mapper=mapping.get, date_as_object=False, coerce_temporal_nanoseconds=False)
    for name in frame.columns:
        if str(frame[name].dtype).startswith("datetime64") and str(frame[name].dtype) != "datetime64[ms]":
            frame[name] = frame[name].astype("datetime64[ms]")
    if spec is not None:
        for col in spec.columns:
            if col.name not in frame.columns:
                frame[col.name] = pd.Series(pd.NA, index=frame.index, dtype=PANDAS_DTYPES[col.dtype])
    return frame


def _texts(col: ColumnSpec, kind: str) -> tuple[str, str]:
    if kind == ProblemKind.REQUIRED:
        return M.required(col)
    if kind == ProblemKind.CHOICE:
        return M.choice(col)
    if kind == ProblemKind.MIN:
        return M.minimum(col)
    if kind == ProblemKind.MAX:
        return M.maximum(col)
    if kind == ProblemKind.PATTERN:
        return M.pattern(col)
    return M.type_problem(col, "not_finite")


def validate_typed(
    spec: LedgerSpec,
    frame: pd.DataFrame,
    *,
    skip: dict[str, np.ndarray] | None = None,
    row_numbers: np.ndarray | None = None,
) -> list[CellIssues]:
    """Every failing cell of a typed frame (RangeIndex) as :class:`CellIssues`.

    ``skip`` maps column names to boolean arrays: True cells are not reported (they already have
    a problem, e.g. a conversion failure). ``row_numbers`` are the Excel rows of the frame's rows,
    used in duplicate messages (default: position + 2, a header in row 1).
    """
    import numpy as np
    import pandera.pandas as pa

    n = len(frame)
    skip = dict(skip or {})
    if row_numbers is None:
        row_numbers = np.arange(n, dtype=np.int64) + 2
    issues: list[CellIssues] = []
    bad = {c.name: np.zeros(n, dtype=bool) for c in spec.columns}
    for name, mask in skip.items():
        if name in bad:
            bad[name] |= np.asarray(mask, dtype=bool)

    schema = build_schema(spec, row_checks=False, unique=False)
    failures = None
    try:
        schema.validate(frame, lazy=True)
    except pa.errors.SchemaErrors as err:
        failures = err.failure_cases
    if failures is not None and len(failures):
        broken = failures[failures["index"].isna()]
        for (column, check), _ in broken.groupby(["column", "check"], sort=False):
            # a check that raised (not a failing cell): never pass silently
            log.error("ledger %s: check %s on column %s could not run", spec.id, check, column)
            name = str(column) if str(column) in bad else spec.columns[0].name
            issues.append(
                CellIssues(
                    name,
                    ProblemKind.RULE_ERROR,
                    Severity.ERROR,
                    np.array([], dtype=np.int64),
                    f"「{spec.column(name).label}」列的检查「{check}」无法执行",
                    "这是台账定义或平台的问题，不是您的数据问题：请联系平台管理员",
                    str(check),
                )
            )
        failures = failures[failures["index"].notna()]
        kinds = {c.name: [kind for kind, _ in _column_checks(c)] for c in spec.columns}
        number = failures["check_number"].astype("float64").fillna(-1).astype("int64")
        failures = failures.assign(_n=number.to_numpy())
        for (column, check, check_number), group in failures.groupby(["column", "check", "_n"], sort=False):
            col = spec.column(str(column))
            if str(check) == "not_nullable":
                kind = ProblemKind.REQUIRED
            elif 0 <= check_number < len(kinds[col.name]):
                kind = kinds[col.name][check_number]
            else:
                log.warning("unexpected pandera failure %s on %s (%d rows)", check, column, len(group))
                kind = ProblemKind.TYPE
            pos = np.unique(group["index"].astype("int64").to_numpy())
            pos = pos[~skip.get(col.name, np.zeros(n, dtype=bool))[pos]] if col.name in skip else pos
            if len(pos) == 0:
                continue
            message, hint = _texts(col, kind)
            issues.append(CellIssues(col.name, kind, Severity.ERROR, pos, message, hint))
            bad[col.name][pos] = True

    issues.extend(_uniqueness(spec, frame, bad, row_numbers))
    issues.extend(_row_rules(spec, frame, bad))
    return issues


def _uniqueness(spec: LedgerSpec, frame, bad: dict, row_numbers) -> list[CellIssues]:
    import numpy as np

    groups: list[tuple[str, ...]] = []
    if spec.key:
        groups.append(tuple(spec.key))
    for col in spec.columns:
        if col.unique and (col.name,) not in groups:
            groups.append((col.name,))
    out: list[CellIssues] = []
    n = len(frame)
    for cols in groups:
        valid = np.ones(n, dtype=bool)
        for c in cols:
            valid &= frame[c].notna().to_numpy() & ~bad[c]
        idx = np.nonzero(valid)[0]
        if len(idx) < 2:
            continue
        sub = frame.iloc[idx][list(cols)]
        dup = sub.duplicated(keep=False).to_numpy()
        if not dup.any():
            continue
        dpos = idx[dup]
        codes = sub.iloc[np.nonzero(dup)[0]].groupby(list(cols), sort=False, dropna=False).ngroup().to_numpy()
        order = np.argsort(codes, kind="stable")
        sorted_codes = codes[order]
        starts = np.r_[0, np.nonzero(np.diff(sorted_codes))[0] + 1]
        first_of_group = np.empty(codes.max() + 1, dtype=np.int64)
        second_of_group = np.empty(codes.max() + 1, dtype=np.int64)
        first_of_group[sorted_codes[starts]] = dpos[order[starts]]
        second_of_group[sorted_codes[starts]] = dpos[order[starts + 1]]
        other = first_of_group[codes]
        is_first = other == dpos
        other[is_first] = second_of_group[codes[is_first]]
        labels = [spec.column(c).label for c in cols]
        base, hint = M.duplicate(labels)
        other_rows = row_numbers[other]
        messages = [f"{base}：与第 {r} 行相同" for r in other_rows.tolist()]
        for c in cols:
            out.append(CellIssues(c, ProblemKind.DUPLICATE, Severity.ERROR, dpos, messages, hint))
            bad[c][dpos] = True
    return out


def _row_rules(spec: LedgerSpec, frame, bad: dict) -> list[CellIssues]:
    import numpy as np
    import pandas as pd

    out: list[CellIssues] = []
    n = len(frame)
    for rc in spec.row_checks:
        cols = [c for c in rc.columns if c in bad]
        try:
            result: Any = rc.check(frame)
            series = pd.Series(result, index=frame.index) if not isinstance(result, pd.Series) else result
            if len(series) != n:
                raise ValueError(f"row check returned {len(series)} values for {n} rows")
            ok = series.astype("boolean").fillna(True).to_numpy(dtype=bool)
        except Exception:
            log.exception("row check %r of ledger %r raised", rc.name, spec.id)
            target = cols[0] if cols else spec.columns[0].name
            out.append(
                CellIssues(
                    target,
                    ProblemKind.RULE_ERROR,
                    Severity.ERROR,
                    np.array([], dtype=np.int64),
                    f"规则「{rc.name}」无法执行",
                    "这是台账定义的问题，不是您的数据问题：请联系平台管理员或台账维护部门",
                    rc.name,
                )
            )
            continue
        already = np.zeros(n, dtype=bool)
        for c in cols:
            already |= bad[c]
        failing = np.nonzero(~ok & ~already)[0]
        if len(failing) == 0:
            continue
        severity = Severity.WARNING if rc.soft else Severity.ERROR
        labels = "、".join(f"「{spec.column(c).label}」" for c in cols)
        hint = f"请检查本行的{labels}" if labels else "请检查本行数据"
        for c in cols or [spec.columns[0].name]:
            out.append(CellIssues(c, ProblemKind.ROW_RULE, severity, failing, rc.message, hint, rc.name))
            if not rc.soft:
                bad[c][failing] = True
    return out


_WARM_SPEC = LedgerSpec(
    id="_warm",
    title="warm-up",
    department="",
    key=("str",),
    columns=tuple(ColumnSpec(t, t, dtype=t) for t in ("str", "int", "float", "date", "bool")),
)


def warm() -> None:
    """Validate an empty frame once. pandera's first ``validate`` registers its pandas backends and
    imports their modules (~0.4 s of CPU, more where hypothesis is installed); a portal or worker
    calls this at start, so the first upload does not pay it."""
    import pyarrow

    from huizhi.excel.convert import TYPES

    empty = pyarrow.table({c.name: pyarrow.array([], TYPES[c.dtype]) for c in _WARM_SPEC.columns})
    validate_typed(_WARM_SPEC, typed_frame(empty, _WARM_SPEC))
