"""``ingest()``: one uploaded file in, typed rows and every problem out.

Pipeline (phases reported to ``on_progress(phase, fraction)``):

1. ``sniff``   — what the bytes really are; size and zip-structure limits (:mod:`.sniff`).
2. ``parse``   — a separate worker process with memory/CPU/wall-clock limits verifies the zip
   members' real sizes, refuses DTDs, checks the data area, reads the sheet with python-calamine
   (or a CSV in UTF-8/GB18030) and hands back raw cells as a memory-mapped Arrow file
   (:mod:`.sandbox`, :mod:`._worker`).
3. ``header``  — header row found by content below titles/merged cells, columns matched by
   label/alias (:mod:`.header`); empty rows, a trailing 合计 row and signature lines dropped.
4. ``convert`` — vectorised type conversion per column, each failure recorded per cell
   (:mod:`.convert`).
5. ``validate``— pandera over the typed frame plus key uniqueness and row rules
   (:func:`huizhi.excel.validation.validate_typed`).

Nothing here writes to a database; :class:`IngestResult` is what the upload page shows, what the
diff compares and what a commit stores.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, BinaryIO

import pyarrow as pa
import pyarrow.compute as pc

from huizhi.excel import messages as M
from huizhi.excel.convert import TYPES, Converted, clean_text, convert_column, render_text
from huizhi.excel.header import find_header, is_footer_row, is_total_row
from huizhi.excel.limits import Limits
from huizhi.excel.problems import (
    KIND_LABELS,
    PROBLEM_FIELDS,
    SEVERITY_LABELS,
    FileRejected,
    Problem,
    ProblemKind,
    Severity,
    column_letter,
)
from huizhi.specs import LedgerSpec

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

ProgressFn = Callable[[str, float], None]

PHASE_LABELS = {
    "sniff": "检查文件",
    "parse": "读取表格",
    "header": "识别表头",
    "convert": "转换类型",
    "validate": "逐格校验",
    "diff": "比对变化",
    "commit": "提交",
}

PROBLEM_SCHEMA = pa.schema(
    [
        ("severity", pa.string()),
        ("kind", pa.string()),
        ("message", pa.string()),
        ("hint", pa.string()),
        ("sheet", pa.string()),
        ("row", pa.int64()),
        ("column", pa.string()),
        ("header", pa.string()),
        ("column_letter", pa.string()),
        ("value", pa.string()),
        ("rule", pa.string()),
        # internal: where the cell is, for marking workbooks
        ("_pos", pa.int64()),  # row position in the typed table (-1: none)
        ("_src_row", pa.int64()),  # 0-based row in the raw sheet area (-1: none)
        ("_src_col", pa.int64()),  # 0-based column in the raw sheet area (-1: none)
    ]
)


@dataclass(frozen=True)
class ColumnMatch:
    """How one ledger column was found in the file (``letter``/``header`` None when missing)."""

    name: str
    label: str
    header: str | None
    letter: str | None
    source_index: int | None


@dataclass
class IngestStats:
    rows: int = 0  # data rows kept
    source_rows: int = 0  # rows in the sheet's data area
    empty_rows_skipped: int = 0
    trailing_rows_skipped: int = 0  # 合计 and signature lines
    errors: int = 0
    warnings: int = 0
    problems_listed: int = 0
    encoding: str | None = None
    delimiter: str | None = None
    worker_peak_rss_mb: float | None = None
    timings: dict[str, float] = field(default_factory=dict)


@dataclass
class IngestResult:
    """Everything about one upload. ``ok`` means: readable, at least one row, no errors.

    ``table`` has one column per ``ColumnSpec`` (named by ``ColumnSpec.name``) typed
    ``string``/``int64``/``float64``/``date32``/``bool``; cells that failed are null there and
    listed in ``problems``. ``row_numbers[i]`` is the Excel row of ``table`` row ``i``.
    """

    spec: LedgerSpec
    file_name: str
    file_sha256: str
    file_size: int
    file_kind: str | None = None
    sheet: str | None = None
    sheets: list[str] = field(default_factory=list)
    header_row: int | None = None
    columns: list[ColumnMatch] = field(default_factory=list)
    table: pa.Table | None = None
    row_numbers: pa.Array | None = None
    problems_table: pa.Table = field(default_factory=lambda: PROBLEM_SCHEMA.empty_table())
    rejection: FileRejected | None = None
    stats: IngestStats = field(default_factory=IngestStats)
    raw: pa.Table | None = field(default=None, repr=False)  # parser output, for marked workbooks
    raw_meta: dict = field(default_factory=dict, repr=False)
    _frame: Any = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        return (
            self.rejection is None
            and self.stats.errors == 0
            and self.table is not None
            and self.table.num_rows > 0
        )

    @property
    def error_count(self) -> int:
        return self.stats.errors

    @property
    def warning_count(self) -> int:
        return self.stats.warnings

    @property
    def problems(self) -> list[Problem]:
        """All listed problems, sorted by row then column (errors and warnings)."""
        cols = [c for c in PROBLEM_FIELDS]
        data = self.problems_table.select(cols).to_pylist()
        return [Problem(**row) for row in data]

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == Severity.ERROR]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == Severity.WARNING]

    def frame(self) -> pd.DataFrame:
        """``table`` as pandas with nullable dtypes (dates as ``datetime64[ms]``)."""
        from huizhi.excel.validation import typed_frame

        if self._frame is None:
            table = self.table if self.table is not None else _empty_typed(self.spec)
            self._frame = typed_frame(table, self.spec)
        return self._frame

    def summary(self) -> list[dict]:
        """Counts by column and kind: ``[{"column", "header", "kind", "kind_label", "severity", "count"}]``."""
        t = self.problems_table
        if t.num_rows == 0:
            return []
        g = (
            t.select(["column", "header", "kind", "severity"])
            .group_by(["column", "header", "kind", "severity"], use_threads=False)
            .aggregate([([], "count_all")])
        )
        rows = g.to_pylist()
        for r in rows:
            r["count"] = r.pop("count_all")
            r["kind_label"] = KIND_LABELS.get(r["kind"], r["kind"])
        rows.sort(key=lambda r: (r["severity"] != "error", -r["count"]))
        return rows

    def problems_display(self) -> pd.DataFrame:
        """Problems as a pandas frame with Chinese headers, for ``st.dataframe`` (never HTML)."""
        import pandas as pd

        t = self.problems_table
        return pd.DataFrame(
            {
                "级别": [SEVERITY_LABELS.get(s, s) for s in t.column("severity").to_pylist()],
                "行号": pd.array(t.column("row").to_pylist(), dtype="Int64"),
                "列": t.column("column_letter").to_pylist(),
                "列名": t.column("header").to_pylist(),
                "填写的值": t.column("value").to_pylist(),
                "问题": t.column("message").to_pylist(),
                "修改建议": t.column("hint").to_pylist(),
                "类型": [KIND_LABELS.get(k, k) for k in t.column("kind").to_pylist()],
            }
        )

    def marked_workbook(self, **kwargs) -> bytes:
        """The uploaded sheet with every problem cell highlighted and noted, plus 错误清单."""
        from huizhi.excel.marked import build_marked_workbook

        return build_marked_workbook(self, **kwargs)

    def bad_rows_workbook(self, **kwargs) -> bytes:
        """Only the rows with errors (with their original row numbers), noted, plus 错误清单."""
        from huizhi.excel.marked import build_bad_rows_workbook

        return build_bad_rows_workbook(self, **kwargs)

    def to_dict(self) -> dict:
        """A JSON-able summary for audit logs and version records."""
        return {
            "ledger": self.spec.id,
            "file_name": self.file_name,
            "file_sha256": self.file_sha256,
            "file_size": self.file_size,
            "file_kind": self.file_kind,
            "sheet": self.sheet,
            "header_row": self.header_row,
            "rows": self.stats.rows,
            "errors": self.stats.errors,
            "warnings": self.stats.warnings,
            "rejection": self.rejection.to_dict() if self.rejection else None,
            "timings": self.stats.timings,
        }


def _empty_typed(spec: LedgerSpec) -> pa.Table:
    return pa.table({c.name: pa.array([], TYPES[c.dtype]) for c in spec.columns})


class _Progress:
    def __init__(self, fn: ProgressFn | None):
        self.fn = fn

    def __call__(self, phase: str, fraction: float) -> None:
        if self.fn is not None:
            self.fn(phase, max(0.0, min(1.0, fraction)))


def _read_source(source, tmpdir: str) -> tuple[str, str, int]:
    """Materialise the upload as a file; returns (path, sha256, size)."""
    h = hashlib.sha256()
    if isinstance(source, (str, os.PathLike)):
        path = os.path.abspath(os.fspath(source))
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        return path, h.hexdigest(), os.path.getsize(path)
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    elif hasattr(source, "getvalue"):
        data = source.getvalue()
    elif hasattr(source, "read"):
        data = source.read()
    else:
        raise TypeError(f"ingest() needs a path, bytes or a binary file object, not {type(source).__name__}")
    h.update(data)
    path = os.path.join(tmpdir, "upload.bin")
    with open(path, "wb") as fh:
        fh.write(data)
    return path, h.hexdigest(), len(data)


def ingest(
    source: str | os.PathLike | bytes | BinaryIO,
    file_name: str,
    spec: LedgerSpec,
    limits: Limits | None = None,
    *,
    sheet: str | None = None,
    on_progress: ProgressFn | None = None,
) -> IngestResult:
    """Read, convert and validate one uploaded ledger file against ``spec``.

    ``source`` is a path, the file's bytes, or a binary file object (a Streamlit ``UploadedFile``
    works); ``file_name`` is the name the user uploaded (its extension matters for text files).
    ``sheet`` picks a worksheet by name; by default a sheet named like the ledger title or id,
    else the first visible sheet that is not 填写说明. ``on_progress(phase, fraction)`` is called
    with phases ``sniff``, ``parse``, ``header``, ``convert``, ``validate`` (see ``PHASE_LABELS``
    for Chinese names), fractions 0..1 within each phase.

    Never raises for a bad file: a file that cannot be read comes back with ``rejection`` set
    and one problem saying why and what to do.
    """
    limits = limits or Limits()
    progress = _Progress(on_progress)
    timings: dict[str, float] = {}
    t_start = time.perf_counter()
    tmpdir = tempfile.mkdtemp(prefix="huizhi-ingest-")
    result: IngestResult | None = None
    try:
        t = time.perf_counter()
        progress("sniff", 0.0)
        path, digest, size = _read_source(source, tmpdir)
        result = IngestResult(spec=spec, file_name=file_name, file_sha256=digest, file_size=size)
        from huizhi.excel.sniff import sniff

        sniffed = sniff(path, file_name, limits)
        result.file_kind = sniffed.kind
        timings["sniff"] = time.perf_counter() - t
        progress("sniff", 1.0)

        t = time.perf_counter()
        progress("parse", 0.0)
        from huizhi.excel.sandbox import parse_in_worker

        raw, meta = parse_in_worker(
            path,
            sniffed.kind,
            os.path.join(tmpdir, "cells.arrow"),
            limits,
            sheet=sheet,
            prefer_sheets=(spec.title, spec.id),
            on_progress=lambda f: progress("parse", f),
        )
        timings["parse"] = time.perf_counter() - t
        progress("parse", 1.0)
        result.raw, result.raw_meta = raw, meta
        result.sheet, result.sheets = meta["sheet"], meta.get("sheets", [])
        result.stats.encoding = meta.get("encoding")
        result.stats.delimiter = meta.get("delimiter")
        result.stats.worker_peak_rss_mb = meta.get("worker_peak_rss_mb")
        result.stats.source_rows = meta["n_rows"]
        _process(result, raw, meta, spec, limits, progress, timings)
    except FileRejected as rej:
        if result is None:  # pragma: no cover - _read_source does not reject
            raise
        result.rejection = rej
        result.table = None
        result.raw = None
        log.info("ledger %s: file %r rejected: %s (%s)", spec.id, file_name, rej.kind, rej.detail)
        _set_problems(result, [_file_problem_table(rej.problem())], limits)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)  # the Arrow file stays readable through its mapping
    timings["total"] = time.perf_counter() - t_start
    result.stats.timings = {k: round(v, 4) for k, v in timings.items()}
    return result


def _parts(raw: pa.Table, j: int) -> dict[str, pa.ChunkedArray]:
    out = {}
    for kind in ("s", "n", "d", "b"):
        name = f"c{j}.{kind}"
        if name in raw.column_names:
            out[kind] = raw.column(name)
    return out


def _single(arr):
    """A ChunkedArray as one Array without copying when it has a single chunk."""
    if isinstance(arr, pa.ChunkedArray):
        return arr.chunk(0) if arr.num_chunks == 1 else arr.combine_chunks()
    return arr


def _row_texts(raw: pa.Table, start: int, stop: int, n_cols: int) -> list[list[str | None]]:
    length = max(0, stop - start)
    cols = []
    for j in range(n_cols):
        parts = {k: v.slice(start, length) for k, v in _parts(raw, j).items()}
        cols.append(render_text({k: _single(v) for k, v in parts.items()}, length).to_pylist())
    return [list(r) for r in zip(*cols, strict=True)] if cols else []


def _process(
    result: IngestResult, raw: pa.Table, meta: dict, spec: LedgerSpec, limits: Limits, progress, timings
):
    import numpy as np

    t = time.perf_counter()
    progress("header", 0.0)
    n_rows, n_cols = meta["n_rows"], meta["n_cols"]
    origin_row, origin_col = meta["origin_row"], meta["origin_col"]
    sheet = meta["sheet"]
    scan = min(n_rows, limits.header_scan_rows)
    head_rows = _row_texts(raw, 0, scan, n_cols)
    match = find_header(head_rows, spec)
    if match is None:
        labels = "、".join(f"「{c.label}」" for c in spec.columns[:6])
        raise FileRejected(
            "no_header",
            f"在工作表「{sheet}」的前 {scan} 行中没有找到表头",
            f"请确认上传的是本台账的表格：表头应包含 {labels} 等列名（可下载模板对照）；"
            "如果工作簿有多张工作表，请把数据放在第一张。",
        )
    header_excel_row = origin_row + match.row + 1
    result.header_row = header_excel_row

    def letter(j: int) -> str:
        return column_letter(origin_col + j)

    result.columns = [
        ColumnMatch(
            c.name,
            c.label,
            match.headers.get(match.mapping[c.name]) if c.name in match.mapping else None,
            letter(match.mapping[c.name]) if c.name in match.mapping else None,
            match.mapping.get(c.name),
        )
        for c in spec.columns
    ]

    file_problems: list[Problem] = []
    for name in match.missing:
        col = spec.column(name)
        severity = Severity.ERROR if col.required or name in spec.key else Severity.WARNING
        file_problems.append(
            Problem(
                severity=severity,
                kind=ProblemKind.MISSING_COLUMN,
                message=f"缺少列「{col.label}」"
                + ("" if severity == Severity.ERROR else "（选填列，将留空）"),
                hint="请使用最新模板，或在表头添加这一列（列名与模板一致；也可以下载模板对照）",
                sheet=sheet,
                row=header_excel_row,
                column=name,
                header=col.label,
            )
        )
    for name, js in match.duplicates.items():
        col = spec.column(name)
        letters = "、".join(letter(j) for j in js)
        for j in js[1:]:
            file_problems.append(
                Problem(
                    severity=Severity.ERROR,
                    kind=ProblemKind.DUPLICATE_COLUMN,
                    message=f"列「{col.label}」出现了 {len(js)} 次（{letters} 列）",
                    hint=f"请删除或改名重复的列；现在使用的是 {letter(js[0])} 列",
                    sheet=sheet,
                    row=header_excel_row,
                    column=name,
                    header=match.headers.get(j),
                    column_letter=letter(j),
                    value=match.headers.get(j),
                )
            )
    for j in match.unknown:
        file_problems.append(
            Problem(
                severity=Severity.WARNING,
                kind=ProblemKind.UNKNOWN_COLUMN,
                message=f"列「{match.headers[j]}」不是本台账的列，将被忽略",
                hint="如果这一列的数据需要保存，请检查列名是否与模板一致（可在模板“填写说明”中查看列名）",
                sheet=sheet,
                row=header_excel_row,
                header=match.headers[j],
                column_letter=letter(j),
                value=match.headers[j],
            )
        )
    timings["header"] = time.perf_counter() - t
    progress("header", 1.0)

    # --- data rows: after the header, without empty rows and trailing 合计 / signature lines
    t = time.perf_counter()
    progress("convert", 0.0)
    start = match.row + 1
    length = max(0, n_rows - start)
    mapped = sorted(match.mapping.items(), key=lambda kv: kv[1])
    sliced: dict[int, dict[str, pa.Array]] = {}
    nonempty = np.zeros(length, dtype=bool)
    for _, j in mapped:
        parts = {k: _single(v.slice(start, length)) for k, v in _parts(raw, j).items()}
        sliced[j] = parts
        for kind, arr in parts.items():
            present = clean_text(arr).is_valid() if kind == "s" else arr.is_valid()
            nonempty |= np.asarray(present.to_numpy(zero_copy_only=False), dtype=bool)
    positions = np.nonzero(nonempty)[0]
    result.stats.empty_rows_skipped = int(length - len(positions))
    for j in range(n_cols):  # data under no header at all: say so once per column
        if j in match.headers:
            continue
        parts = _parts(raw, j)
        has_data = any(
            (clean_text(_single(v.slice(start, length))) if k == "s" else v.slice(start, length)).null_count
            < length
            for k, v in parts.items()
        )
        if has_data:
            file_problems.append(
                Problem(
                    severity=Severity.WARNING,
                    kind=ProblemKind.UNKNOWN_COLUMN,
                    message=f"第 {letter(j)} 列有数据但没有列名，这一列将被忽略",
                    hint="如果这些数据需要保存，请在表头行填上与模板一致的列名；否则请删除这一列",
                    sheet=sheet,
                    row=header_excel_row,
                    column_letter=letter(j),
                )
            )
    trailing = 0
    dropped_total = False
    while len(positions) and trailing < 5:
        last = int(positions[-1])
        texts = _row_texts(raw, start + last, start + last + 1, n_cols)[0]
        total = not dropped_total and is_total_row(texts)
        if not (total or is_footer_row(texts)):
            break
        positions = positions[:-1]
        trailing += 1
        dropped_total = dropped_total or total
        first_text = next((x for x in texts if x and x.strip()), "")
        file_problems.append(
            Problem(
                severity=Severity.WARNING,
                kind=ProblemKind.TOTAL_ROW,
                message="末尾的合计行已忽略，不会作为数据保存"
                if total
                else "末尾的签名/备注行已忽略，不会作为数据保存",
                hint="无需处理；如果这一行确实是数据，请把它移到表格中间或修改第一格的文字",
                sheet=sheet,
                row=origin_row + start + last + 1,
                value=first_text,
            )
        )
    result.stats.trailing_rows_skipped = trailing
    n = len(positions)
    excel_rows = (positions + start + origin_row + 1).astype(np.int64)
    result.row_numbers = pa.array(excel_rows, pa.int64())
    contiguous = n == 0 or (positions[-1] - positions[0] + 1 == n)
    idx = None if contiguous else pa.array(positions, pa.int64())
    offset = int(positions[0]) if n else 0

    def take(arr: pa.Array) -> pa.Array:
        return arr.slice(offset, n) if idx is None else arr.take(idx)

    columns: dict[str, pa.Array] = {}
    col_parts: dict[str, dict[str, pa.Array]] = {}
    skip: dict[str, np.ndarray] = {}
    chunks: list[pa.Table] = []
    for i, col in enumerate(spec.columns):
        source = match.mapping.get(col.name)
        if source is None:
            columns[col.name] = pa.nulls(n, TYPES[col.dtype])
            skip[col.name] = np.ones(n, dtype=bool)
            continue
        parts = {k: take(v) for k, v in sliced[source].items()}
        col_parts[col.name] = parts
        conv: Converted = convert_column(parts, col, n)
        columns[col.name] = conv.values
        fail_any = np.zeros(n, dtype=bool)
        for reason, mask in conv.failures.items():
            m = np.asarray(mask.to_numpy(zero_copy_only=False), dtype=bool)
            fail_any |= m
            pos = np.nonzero(m)[0]
            message, hint = M.type_problem(col, reason)
            chunks.append(_cell_chunk(pos, col.name, ProblemKind.TYPE, Severity.ERROR, message, hint, None))
        for reason, mask in conv.warnings.items():
            pos = np.nonzero(np.asarray(mask.to_numpy(zero_copy_only=False), dtype=bool))[0]
            if reason == "time_dropped":
                chunks.append(
                    _cell_chunk(
                        pos,
                        col.name,
                        ProblemKind.TIME_DROPPED,
                        Severity.WARNING,
                        "日期带有时间，只保存日期部分",
                        "如果时间很重要，请联系台账维护部门增加时间列；否则无需处理",
                        None,
                    )
                )
        skip[col.name] = fail_any
        progress("convert", (i + 1) / len(spec.columns))
    table = pa.table(columns)
    result.table = table
    result.stats.rows = n
    timings["convert"] = time.perf_counter() - t

    t = time.perf_counter()
    progress("validate", 0.0)
    if n == 0:
        file_problems.append(
            Problem(
                severity=Severity.ERROR,
                kind=ProblemKind.NO_DATA,
                message="表头下面没有数据行",
                hint="请在表头下方逐行填写数据后再上传",
                sheet=sheet,
                row=header_excel_row,
            )
        )
    else:
        from huizhi.excel.validation import typed_frame, validate_typed

        frame = typed_frame(table, spec)
        result._frame = frame
        progress("validate", 0.3)
        for issue in validate_typed(spec, frame, skip=skip, row_numbers=excel_rows):
            chunks.append(
                _cell_chunk(
                    issue.positions,
                    issue.column,
                    issue.kind,
                    issue.severity,
                    issue.message,
                    issue.hint,
                    issue.rule,
                )
            )
    progress("validate", 0.8)

    # --- fill in where each problem is and what the cell held
    col_src = {name: j for name, j in match.mapping.items()}
    headers = {
        c.name: (match.headers.get(col_src[c.name]) if c.name in col_src else c.label) for c in spec.columns
    }
    tables = [_file_problem_table(p) for p in file_problems]
    for ch in chunks:
        if ch.num_rows == 0:
            continue
        name = ch.column("column")[0].as_py()
        pos = ch.column("_pos")
        source_col = col_src.get(name)
        if name in col_parts:
            value = render_text({k: v.take(pos) for k, v in col_parts[name].items()}, ch.num_rows)
        else:
            value = pa.nulls(ch.num_rows, pa.string())
        rows = pa.array(excel_rows, pa.int64()).take(pos)
        src_rows = pc.add(pa.array(positions, pa.int64()).take(pos), start)
        ch = ch.set_column(ch.schema.get_field_index("row"), "row", rows)
        ch = ch.set_column(ch.schema.get_field_index("value"), "value", value)
        ch = ch.set_column(
            ch.schema.get_field_index("sheet"), "sheet", pa.repeat(pa.scalar(sheet, pa.string()), ch.num_rows)
        )
        ch = ch.set_column(
            ch.schema.get_field_index("header"),
            "header",
            pa.repeat(pa.scalar(headers[name], pa.string()), ch.num_rows),
        )
        if source_col is not None:
            ch = ch.set_column(
                ch.schema.get_field_index("column_letter"),
                "column_letter",
                pa.repeat(pa.scalar(letter(source_col), pa.string()), ch.num_rows),
            )
            ch = ch.set_column(
                ch.schema.get_field_index("_src_col"),
                "_src_col",
                pa.repeat(pa.scalar(source_col, pa.int64()), ch.num_rows),
            )
            ch = ch.set_column(ch.schema.get_field_index("_src_row"), "_src_row", src_rows)
        tables.append(ch)
    # file-level problems that point at a header cell
    fixed = []
    for tbl in tables:
        if (
            tbl.num_rows == 1
            and tbl.column("_src_col")[0].as_py() == -1
            and tbl.column("column_letter")[0].as_py()
        ):
            from huizhi.excel.problems import column_index

            j = column_index(tbl.column("column_letter")[0].as_py()) - origin_col
            row = tbl.column("row")[0].as_py()
            tbl = tbl.set_column(
                tbl.schema.get_field_index("_src_col"), "_src_col", pa.array([j], pa.int64())
            )
            if row is not None:
                tbl = tbl.set_column(
                    tbl.schema.get_field_index("_src_row"),
                    "_src_row",
                    pa.array([row - origin_row - 1], pa.int64()),
                )
        fixed.append(tbl)
    _set_problems(result, fixed, limits)
    timings["validate"] = time.perf_counter() - t
    progress("validate", 1.0)


def _cell_chunk(
    positions, column: str, kind: str, severity: str, message, hint: str, rule: str | None
) -> pa.Table:
    n = len(positions)

    def rep(value, typ=None):
        return pa.repeat(pa.scalar(value, typ or pa.string()), n)

    msg = pa.array(message, pa.string()) if isinstance(message, list) else rep(message)
    return pa.table(
        [
            rep(str(severity)),
            rep(str(kind)),
            msg,
            rep(hint),
            rep(None),
            rep(None, pa.int64()),
            rep(column),
            rep(None),
            rep(None),
            rep(None),
            rep(rule),
            pa.array(positions, pa.int64()),
            rep(-1, pa.int64()),
            rep(-1, pa.int64()),
        ],
        schema=PROBLEM_SCHEMA,
    )


def _file_problem_table(p: Problem) -> pa.Table:
    row = {name: getattr(p, name) for name in PROBLEM_FIELDS}
    row["severity"], row["kind"] = str(p.severity), str(p.kind)
    row.update({"_pos": -1, "_src_row": -1, "_src_col": -1})
    return pa.Table.from_pylist([row], schema=PROBLEM_SCHEMA)


def _set_problems(result: IngestResult, tables: list[pa.Table], limits: Limits) -> None:
    table = pa.concat_tables(tables) if tables else PROBLEM_SCHEMA.empty_table()
    if table.num_rows:
        row_key = pc.fill_null(table.column("row"), 0)
        table = table.append_column("_k", row_key)
        table = table.sort_by(
            [("_k", "ascending"), ("_src_col", "ascending"), ("severity", "ascending")]
        ).drop_columns(["_k"])
    sev = table.column("severity")
    result.stats.errors = int(pc.sum(pc.equal(sev, "error")).as_py() or 0)
    result.stats.warnings = int(pc.sum(pc.equal(sev, "warning")).as_py() or 0)
    if table.num_rows > limits.max_problems:
        extra = table.num_rows - limits.max_problems
        table = table.slice(0, limits.max_problems)
        note = Problem(
            severity=Severity.ERROR if result.stats.errors else Severity.WARNING,
            kind=ProblemKind.TOO_MANY_PROBLEMS,
            message=f"问题太多，只列出前 {limits.max_problems} 个，另有 {extra} 个未列出",
            hint="通常是整列填错或列对错了位置：请先按已列出的问题修改，再重新上传",
        )
        table = pa.concat_tables([table, _file_problem_table(note)])
    result.stats.problems_listed = table.num_rows
    result.problems_table = table.combine_chunks()
