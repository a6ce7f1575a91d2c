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
from huizhi.excel.convert import TYPES, Converted, clean_text, convert_column, has_text, render_text
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
from huizhi.specs import ColumnSpec, LedgerSpec

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
    # the ledger service's own steps after ingest (huizhi.ledgers.LedgerService.upload)
    "stage": "暂存数据",
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

        parsed = parse_in_worker(
            path,
            sniffed.kind,
            os.path.join(tmpdir, "cells.arrow"),
            limits,
            sheet=sheet,
            prefer_sheets=(spec.title, spec.id),
            on_progress=lambda f: progress("parse", f),
        )
        raw, meta = parsed.table, parsed.meta
        timings["parse"] = time.perf_counter() - t
        progress("parse", 1.0)
        result.raw, result.raw_meta = raw, meta
        result.sheet, result.sheets = meta["sheet"], meta.get("sheets", [])
        result.stats.encoding = meta.get("encoding")
        result.stats.delimiter = meta.get("delimiter")
        result.stats.worker_peak_rss_mb = meta.get("worker_peak_rss_mb")
        result.stats.source_rows = meta["n_rows"]
        _process(result, raw, meta, spec, limits, progress, timings)
        parsed.evict()  # read through; kept for a marked workbook, not resident while staging
        # the conversions' and the pandas frame's freed buffers: Arrow's allocator (mimalloc)
        # keeps them mapped, ~180 MB at 1M rows that the portal would hold while the store
        # stages and compares the rows (its largest moment on DuckDB)
        pa.default_memory_pool().release_unused()
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
    if meta.get("merged_total", 0) > len(meta.get("merged", [])):
        raise FileRejected(
            "too_many_merged",
            f"工作表「{sheet}」中的合并单元格太多（{meta['merged_total']} 处）",
            "请全选表格 → 开始 → 合并后居中 → 取消合并，在每个单元格里填上各自的值后再上传。",
        )
    # merged ranges in raw coordinates (0-based rows/columns of the parsed area)
    merges = [
        (r1 - origin_row, c1 - origin_col, r2 - origin_row, c2 - origin_col)
        for r1, c1, r2, c2 in meta.get("merged", [])
    ]
    match = find_header(head_rows, spec, merges)
    if match is None:
        labels = "、".join(f"「{c.label}」" for c in spec.columns[:6])
        raise FileRejected(
            "no_header",
            f"在工作表「{sheet}」的前 {scan} 行中没有找到表头",
            f"请确认上传的是本台账的表格：表头应包含 {labels} 等列名（可下载模板对照）；"
            "如果工作簿有多张工作表，请把数据放在第一张。",
        )
    header_excel_row = origin_row + match.row + match.height  # the last header row
    result.header_row = header_excel_row

    def letter(j: int) -> str:
        return column_letter(origin_col + j)

    def area(r1: int, c1: int, r2: int, c2: int) -> str:  # raw coordinates -> "C1:D1"
        return f"{letter(c1)}{origin_row + r1 + 1}:{letter(c2)}{origin_row + r2 + 1}"

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
    file_problems += _sheet_choice_problems(meta, spec)
    # header cells merged across columns: a column under one that matches nothing is an error
    header_spans = [
        (r1, c1, r2, c2)
        for r1, c1, r2, c2 in merges
        if c2 > c1 and r1 <= match.row + match.height - 1 and r2 >= match.row
    ]

    def header_span(j: int):
        return next(((r1, c1, r2, c2) for r1, c1, r2, c2 in header_spans if c1 <= j <= c2), None)

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
        span = header_span(j)
        if j in match.parents:  # a sub-header under a merged parent (位置 → 东经)
            parent, c1, c2 = match.parents[j]
            sub = match.headers[j].split("/", 1)[-1]
            message = (
                f"合并表头「{parent}」（{area(match.row, c1, match.row, c2)}）下的「{sub}」"
                f"（{letter(j)}{header_excel_row}）无法对应到本台账的列，这一列的数据不会被忽略，文件不能提交"
            )
        elif span is not None:  # one header cell merged across several columns
            message = (
                f"表头「{match.headers[j]}」是跨 {span[3] - span[1] + 1} 列的合并单元格（{area(*span)}），"
                "无法对应到本台账的列，文件不能提交"
            )
        if j in match.parents or span is not None:
            file_problems.append(
                Problem(
                    severity=Severity.ERROR,
                    kind=ProblemKind.UNKNOWN_COLUMN,
                    message=message,
                    hint="请把表头改成与模板一致的一行列名（取消合并，每列一个列名，例如「经度」「纬度」），再上传",
                    sheet=sheet,
                    row=header_excel_row,
                    header=match.headers[j],
                    column_letter=letter(j),
                    value=match.headers[j],
                )
            )
            continue
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
    start = match.row + match.height
    length = max(0, n_rows - start)
    mapped = sorted(match.mapping.items(), key=lambda kv: kv[1])
    by_source = {j: name for name, j in match.mapping.items()}
    fill, merge_problems = _merged_data_cells(
        merges, start, length, n_cols, by_source, spec, match, raw, sheet, letter, area, origin_row
    )
    file_problems += merge_problems
    sliced: dict[int, dict[str, pa.Array]] = {}
    nonempty = np.zeros(length, dtype=bool)
    for _, j in mapped:
        parts = {k: _single(v.slice(start, length)) for k, v in _parts(raw, j).items()}
        if j in fill:  # merged over several rows: every row gets the merged value
            idx = pa.array(fill[j], pa.int64())
            parts = {k: v.take(idx) for k, v in parts.items()}
        sliced[j] = parts
        for kind, arr in parts.items():
            present = has_text(arr) if kind == "s" else arr.is_valid()
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
        span = header_span(j)
        if has_data and span is not None:  # under a header merged across columns: never dropped
            file_problems.append(
                Problem(
                    severity=Severity.ERROR,
                    kind=ProblemKind.UNKNOWN_COLUMN,
                    message=f"第 {letter(j)} 列有数据，但它的表头是跨列合并的单元格（{area(*span)}），"
                    "无法确定是哪一列，文件不能提交",
                    hint="请取消表头的合并，给每一列填上与模板一致的列名，再上传",
                    sheet=sheet,
                    row=header_excel_row,
                    column_letter=letter(j),
                )
            )
        elif has_data:
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
    file_problems += _csv_field_count_problems(raw, match.row, positions + start, excel_rows, sheet)
    if meta.get("nul"):
        nul = meta["nul"]
        file_problems.append(
            Problem(
                severity=Severity.WARNING,
                kind=ProblemKind.CONTROL_CHAR,
                message=f"CSV 文件中有 {nul['count']} 个空字符（NUL，0x00），第一个在第 {nul['line']} 行"
                f"第 {nul['byte']} 个字节；文本列中的空字符已删除（每个单元格另有提醒）",
                hint="空字符通常来自损坏的文件或其他系统的导出错误；请核对这些单元格的内容",
                sheet=sheet,
            )
        )
    formula_tables, formula_cells = _formula_problems(
        meta, origin_row, origin_col, start, positions, excel_rows, by_source, spec, result, sheet, letter
    )
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
        conv_chunks, fail_any = conversion_problems(parts, col, conv)
        chunks += conv_chunks
        if col.name in formula_cells:  # error values / uncalculated formulas: reported already
            fail_any[formula_cells[col.name]] = True
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

        # not kept on the result (``frame()`` rebuilds it on demand): at 1M rows it is ~250 MB
        # the portal would hold through staging and diffing for nothing
        frame = typed_frame(table, spec)
        progress("validate", 0.3)
        chunks += validation_chunks(validate_typed(spec, frame, skip=skip, row_numbers=excel_rows))
    progress("validate", 0.8)

    # --- fill in where each problem is and what the cell held
    col_src = {name: j for name, j in match.mapping.items()}
    headers = {
        c.name: (match.headers.get(col_src[c.name]) if c.name in col_src else c.label) for c in spec.columns
    }
    tables = [_file_problems_table(file_problems, origin_row, origin_col)] if file_problems else []
    for ch in chunks:
        if ch.num_rows == 0:
            continue
        name = ch.column("column")[0].as_py()
        pos = ch.column("_pos")
        source_col = col_src.get(name)
        if name in col_parts:
            value = _visible(render_text({k: v.take(pos) for k, v in col_parts[name].items()}, ch.num_rows))
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
    fixed += formula_tables
    _set_problems(result, fixed, limits)
    timings["validate"] = time.perf_counter() - t
    progress("validate", 1.0)


def conversion_problems(parts: dict[str, pa.Array], col: ColumnSpec, conv: Converted) -> tuple[list[pa.Table], Any]:
    """The problems of one converted column (``convert_column``'s failures and warnings) as
    problem chunks (``_pos``: row position), and the mask of cells that failed. Shared by
    :func:`ingest` and the typed-rows check (:mod:`huizhi.excel.typed`)."""
    import numpy as np

    n = len(conv.values)
    chunks: list[pa.Table] = []
    fail_any = np.zeros(n, dtype=bool)
    for reason, mask in conv.failures.items():
        m = np.asarray(mask.to_numpy(zero_copy_only=False), dtype=bool)
        fail_any |= m
        pos = np.nonzero(m)[0]
        message, hint = M.type_problem(col, reason)
        kind = ProblemKind.CONTROL_CHAR if reason == "control_char" else ProblemKind.TYPE
        if reason in ("bad_separator", "control_char"):  # say what was found / what to write
            at = pa.array(pos, pa.int64())
            texts = render_text({k: v.take(at) for k, v in parts.items()}, len(pos)).to_pylist()
            # one message per cell: what was found there
            per_cell: str | list[str] = (
                [M.separator_message(x) for x in texts]
                if reason == "bad_separator"
                else [f"{message}：{M.control_names(x)}" for x in texts]
            )
        else:
            per_cell = message
        chunks.append(_cell_chunk(pos, col.name, kind, Severity.ERROR, per_cell, hint, None))
    for reason, mask in conv.warnings.items():
        pos = np.nonzero(np.asarray(mask.to_numpy(zero_copy_only=False), dtype=bool))[0]
        if reason == "nul_removed":
            chunks.append(
                _cell_chunk(
                    pos,
                    col.name,
                    ProblemKind.CONTROL_CHAR,
                    Severity.WARNING,
                    "包含空字符（NUL，U+0000），已删除",
                    "空字符看不见，通常来自损坏的文件或其他系统的导出；请核对这个单元格保存的内容",
                    None,
                )
            )
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
    return chunks, fail_any


def _visible(values: pa.Array) -> pa.Array:
    """Problem values with control characters shown as ``<U+202E>`` (never re-displayed raw)."""
    from huizhi.excel.convert import CONTROL_CHARS

    values = _single(values)
    if not pc.any(pc.match_substring_regex(values, f"[\x00{CONTROL_CHARS}]")).as_py():
        return values
    return pa.array([M.visible(v) for v in values.to_pylist()], pa.string())


def _sheet_choice_problems(meta: dict, spec: LedgerSpec) -> list[Problem]:
    """A warning saying which sheet was read, and why, whenever the choice was not exact."""
    reason, sheet = meta.get("sheet_reason"), meta.get("sheet")
    if reason not in ("similar", "first"):
        return []
    sheets = "、".join(f"「{s}」" for s in meta.get("sheets", []))
    if reason == "similar":
        message = (
            f"工作簿中没有名为「{spec.title}」的工作表，读取的是名称相近的「{sheet}」（工作表有：{sheets}）"
        )
    else:
        message = (
            f"工作簿中没有名为「{spec.title}」的工作表，读取的是第一张可见的工作表「{sheet}」"
            f"（工作表有：{sheets}）"
        )
    return [
        Problem(
            severity=Severity.WARNING,
            kind=ProblemKind.SHEET_CHOICE,
            message=message,
            hint=f"请确认读取的是正确的工作表；如果不是，请把要上传的工作表改名为「{spec.title}」，"
            "或删除其他工作表后再上传",
            sheet=sheet,
            value=sheet,
        )
    ]


def _merged_data_cells(
    merges, start, length, n_cols, by_source, spec, match, raw, sheet, letter, area, origin_row
):
    """Merged cells below the header. A merge down one column is filled into every row it covers
    (``{source column: take indices}``) with a warning naming the range; a merge across columns
    cannot be split into per-column values and is an error naming the range."""
    import numpy as np

    fill: dict[int, np.ndarray] = {}
    problems: list[Problem] = []
    rendered: dict[int, pa.Array] = {}
    for r1, c1, r2, c2 in merges:
        if r1 < start or r1 - start >= length or c1 >= n_cols:
            continue  # header area, or beyond the parsed data
        a, b = r1 - start, min(r2 - start, length - 1)
        c2 = min(c2, n_cols - 1)
        covered = [j for j in range(c1, c2 + 1) if j in by_source]
        if not covered:
            continue
        if c1 not in rendered:  # each merged column rendered once, read by index (many merges)
            rendered[c1] = render_text({k: _single(v) for k, v in _parts(raw, c1).items()}, raw.num_rows)
        top = rendered[c1][r1].as_py()
        if c2 > c1:
            names = "、".join(f"「{spec.column(by_source[j]).label}」" for j in covered)
            problems.append(
                Problem(
                    severity=Severity.ERROR,
                    kind=ProblemKind.MERGED_CELL,
                    message=f"{area(r1, c1, r2, c2)} 是跨列合并的单元格，涉及 {names}，无法确定每一列的值",
                    hint="请取消合并（开始 → 合并后居中 → 取消合并），在每个单元格里分别填写，再上传",
                    sheet=sheet,
                    row=origin_row + r1 + 1,
                    column=by_source.get(c1),
                    header=match.headers.get(c1),
                    column_letter=letter(c1),
                    value=top,
                )
            )
            continue
        if b <= a or top is None or not str(top).strip():
            continue
        idx = fill.get(c1)
        if idx is None:
            idx = fill[c1] = np.arange(length, dtype=np.int64)
        idx[a + 1 : b + 1] = a
        col = spec.column(by_source[c1])
        problems.append(
            Problem(
                severity=Severity.WARNING,
                kind=ProblemKind.MERGED_CELL,
                message=f"{area(r1, c1, r1 + (b - a), c1)} 是合并单元格，已把「{top}」填入其中每一行（共 {b - a + 1} 行）",
                hint=f"请确认这些行的「{col.label}」都应是这个值；不是的话请取消合并后逐行填写",
                sheet=sheet,
                row=origin_row + r1 + 1,
                column=col.name,
                header=match.headers.get(c1),
                column_letter=letter(c1),
                value=top,
            )
        )
    return fill, problems


def _csv_field_count_problems(raw, header_index, rows, excel_rows, sheet) -> list[Problem]:
    """CSV rows whose field count differs from the header's: fields missing under a named header
    or values beyond the header's fields. Each is an error naming its line and both counts."""
    import numpy as np

    if "_csv.fields" not in raw.column_names or header_index >= raw.num_rows:
        return []
    fields = raw.column("_csv.fields").to_numpy()
    filled = raw.column("_csv.filled").to_numpy()
    lines = raw.column("_csv.line").to_numpy()
    h_fields, h_filled, h_line = (
        int(fields[header_index]),
        int(filled[header_index]),
        int(lines[header_index]),
    )
    n, e = fields[rows], filled[rows]
    bad = np.nonzero((n < h_filled) | (e > h_fields))[0]
    out = []
    for i in bad[:200_000]:
        more = int(e[i]) > h_fields
        out.append(
            Problem(
                severity=Severity.ERROR,
                kind=ProblemKind.FIELD_COUNT,
                message=f"CSV 第 {int(lines[rows[i]])} 行有 {int(n[i])} 个字段，表头（第 {h_line} 行）有 {h_fields} 个："
                + ("多出的值无法对应到列" if more else "缺少的字段无法确定是哪几列"),
                hint="这一行的分隔符（逗号）多了或少了，数据会错位：请检查文字中未加引号的逗号、换行，或漏掉的分隔符",
                sheet=sheet,
                row=int(excel_rows[i]),
            )
        )
    return out


def _formula_problems(
    meta, origin_row, origin_col, start, positions, excel_rows, by_source, spec, result, sheet, letter
):
    """Excel error values (#DIV/0!, #N/A …) and formulas without a calculated result in ledger
    columns: python-calamine reads them as empty. An error in a required or key column, a warning
    (stored empty) in an optional one; each names the cell and the formula."""
    import numpy as np

    issues = meta.get("cell_issues") or []
    tables: list[pa.Table] = []
    cells: dict[str, list[int]] = {}
    if not issues and not meta.get("cell_issues_total"):
        return tables, cells
    data_rows = positions + start
    rows = []
    for r0, c0, kind, value, formula in issues:
        ri, j = r0 - origin_row, c0 - origin_col
        name = by_source.get(j)
        if name is None:
            continue
        k = int(np.searchsorted(data_rows, ri))
        if k >= len(data_rows) or data_rows[k] != ri:
            continue  # header, an empty or dropped row
        col = spec.column(name)
        needed = col.required or name in spec.key
        f = f"（公式：={formula}）" if formula else "（共享公式）" if kind == "no_value" else ""
        if kind == "error":
            message = f"单元格是 Excel 错误值 {value}{f}，没有可保存的值"
            hint = "请修正公式（例如除数为 0、查找不到、引用无效），或把单元格改为要保存的值（复制 → 选择性粘贴 → 数值）"
        else:
            message = f"单元格是公式，但文件中没有它的计算结果{f}"
            hint = "文件可能由程序生成、没有在 Excel 中计算过：请用 Excel 或 WPS 打开，确认公式算出结果后保存再上传，或把公式改为数值"
        if not needed:
            message += "；选填列，将留空保存"
        cells.setdefault(name, []).append(k)
        header = next((m.header for m in result.columns if m.name == name), col.label)
        rows.append(
            {
                "severity": str(Severity.ERROR if needed else Severity.WARNING),
                "kind": str(ProblemKind.FORMULA),
                "message": message,
                "hint": hint,
                "sheet": sheet,
                "row": int(excel_rows[k]),
                "column": name,
                "header": header,
                "column_letter": letter(j),
                "value": value or None,
                "rule": None,
                "_pos": k,
                "_src_row": int(ri),
                "_src_col": int(j),
            }
        )
    if rows:
        tables.append(pa.Table.from_pylist(rows, schema=PROBLEM_SCHEMA))
    extra = int(meta.get("cell_issues_total") or 0) - len(issues)
    if extra > 0:
        tables.append(
            _file_problem_table(
                Problem(
                    severity=Severity.ERROR,
                    kind=ProblemKind.FORMULA,
                    message=f"另有 {extra} 个 Excel 错误值或未计算的公式没有逐个列出",
                    hint="请在 Excel 中修正公式或把公式改为数值后再上传",
                    sheet=sheet,
                )
            )
        )
    return tables, cells


def validation_chunks(issues: Any) -> list[pa.Table]:
    """The problem chunks of :func:`huizhi.excel.validation.validate_typed`'s issues (an upload's
    and typed rows' alike)."""
    return [
        _cell_chunk(i.positions, i.column, i.kind, i.severity, i.message, i.hint, i.rule) for i in issues
    ]


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


def _file_problems_table(problems: list[Problem], origin_row: int, origin_col: int) -> pa.Table:
    """Many file-level problems as one table (one ``from_pylist``, not one table each); a
    problem with a cell gets its position in the raw area, for marking workbooks."""
    from huizhi.excel.problems import column_index

    rows = []
    for p in problems:
        row = {name: getattr(p, name) for name in PROBLEM_FIELDS}
        row["severity"], row["kind"] = str(p.severity), str(p.kind)
        row["_pos"] = -1
        row["_src_col"] = column_index(p.column_letter) - origin_col if p.column_letter is not None else -1
        has_cell = p.column_letter is not None
        row["_src_row"] = p.row - origin_row - 1 if has_cell and p.row is not None else -1
        rows.append(row)
    return pa.Table.from_pylist(rows, schema=PROBLEM_SCHEMA)


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
