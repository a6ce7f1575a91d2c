"""Workbooks for the uploader: their own data with problems marked, and only the bad rows.

``build_marked_workbook(result)`` writes the parsed sheet back cell by cell at the same
positions (so row numbers and letters match what the page says), fills error cells red and warning
cells yellow, attaches every message and hint as a cell note, freezes the header, and adds a sheet
错误清单 listing every problem with a link to its cell. ``build_bad_rows_workbook(result)`` does
the same for only the rows that have errors, with their original row numbers in the first column
(notes on the cells; the 错误清单 sheet only on request).

Both use xlsxwriter in ``constant_memory`` mode (rows are streamed to disk, memory stays flat) and
write text only with ``write_string``: a cell holding ``=HYPERLINK(...)`` comes back as text, never
as a live formula. Formats: dates as ``yyyy-mm-dd`` (with time when the cell had one).
"""

from __future__ import annotations

import io
from datetime import datetime
from typing import TYPE_CHECKING

import pyarrow as pa

from huizhi.excel.problems import column_letter
from huizhi.excel.template import add_template_aids, sheet_title

if TYPE_CHECKING:
    from huizhi.excel.pipeline import IngestResult

ERROR_FILL = "#FFC7CE"
ERROR_FONT = "#9C0006"
WARN_FILL = "#FFEB9C"
WARN_FONT = "#9C5700"
MAX_LINKS = 65_000  # Excel allows 65,530 hyperlinks per worksheet
_NOTE_OPTIONS = {"x_scale": 2.2, "y_scale": 1.6}


def _internal_link(sheet: str, cell: str) -> str:
    return "internal:'{}'!{}".format(sheet.replace("'", "''"), cell)


class _Formats:
    def __init__(self, wb):
        base = {"font_name": "等线", "font_size": 11}
        self.header = wb.add_format(
            {**base, "bold": True, "bg_color": "#DDEBF7", "border": 1, "text_wrap": True}
        )
        self.plain = None
        self.date = wb.add_format({**base, "num_format": "yyyy-mm-dd"})
        self.datetime = wb.add_format({**base, "num_format": "yyyy-mm-dd hh:mm:ss"})
        err = {"bg_color": ERROR_FILL, "font_color": ERROR_FONT}
        warn = {"bg_color": WARN_FILL, "font_color": WARN_FONT}
        self.by_state = {}
        for state, extra in (("error", err), ("warning", warn)):
            self.by_state[state] = {
                "plain": wb.add_format({**base, **extra}),
                "date": wb.add_format({**base, **extra, "num_format": "yyyy-mm-dd"}),
                "datetime": wb.add_format({**base, **extra, "num_format": "yyyy-mm-dd hh:mm:ss"}),
                "header": wb.add_format({**base, **extra, "bold": True, "border": 1}),
            }
        self.title = wb.add_format({**base, "bold": True, "font_size": 12})
        self.wrap = wb.add_format({**base, "text_wrap": True, "valign": "top"})
        self.link = wb.add_format({**base, "font_color": "#0563C1", "underline": 1})
        self.error_text = wb.add_format({**base, "font_color": ERROR_FONT})
        self.warn_text = wb.add_format({**base, "font_color": WARN_FONT})


def _cell_marks(result: IngestResult) -> dict[int, dict[int, tuple[str, list[str]]]]:
    """raw row -> raw col -> (worst severity, note lines)."""
    t = result.problems_table
    rows = t.column("_src_row").to_pylist()
    cols = t.column("_src_col").to_pylist()
    sev = t.column("severity").to_pylist()
    msg = t.column("message").to_pylist()
    hint = t.column("hint").to_pylist()
    marks: dict[int, dict[int, tuple[str, list[str]]]] = {}
    for r, c, s, m, h in zip(rows, cols, sev, msg, hint, strict=True):
        if r is None or c is None or r < 0 or c < 0:
            continue
        row = marks.setdefault(r, {})
        state, lines = row.get(c, ("warning", []))
        if s == "error":
            state = "error"
        lines.append(f"{'【错误】' if s == 'error' else '【提醒】'}{m}。{h}" if h else f"{m}")
        row[c] = (state, lines)
    return marks


def _column_values(raw: pa.Table, j: int, rows) -> list:
    """Python values of source column ``j`` at ``rows`` (a slice (start, length) or an index array)."""
    merged: list | None = None
    for kind in ("s", "n", "d", "b"):
        name = f"c{j}.{kind}"
        if name not in raw.column_names:
            continue
        col = raw.column(name)
        arr = col.slice(rows[0], rows[1]) if isinstance(rows, tuple) else col.take(rows)
        values = arr.to_pylist()
        if merged is None:
            merged = values
        else:
            merged = [a if a is not None else b for a, b in zip(merged, values, strict=True)]
    if merged is None:
        length = rows[1] if isinstance(rows, tuple) else len(rows)
        return [None] * length
    return merged


def _writer(ws, fmts: _Formats):
    write_string, write_number = ws.write_string, ws.write_number
    write_datetime, write_boolean, write_blank = ws.write_datetime, ws.write_boolean, ws.write_blank

    def write(r: int, c: int, v, state: str | None) -> None:
        t = type(v)
        f = fmts.by_state[state] if state else None
        if t is str:
            write_string(r, c, v, f["plain"] if f else None)
        elif t is float:
            write_number(r, c, v, f["plain"] if f else None)
        elif t is datetime:
            has_time = v.hour or v.minute or v.second or v.microsecond
            if f:
                write_datetime(r, c, v, f["datetime" if has_time else "date"])
            else:
                write_datetime(r, c, v, fmts.datetime if has_time else fmts.date)
        elif t is bool:
            write_boolean(r, c, v, f["plain"] if f else None)
        elif v is None:
            if f:
                write_blank(r, c, None, f["plain"])
        else:
            write_string(r, c, str(v), f["plain"] if f else None)

    return write


def _new_workbook(buf, constant_memory: bool = True):
    import xlsxwriter

    return xlsxwriter.Workbook(
        buf,
        {
            "constant_memory": constant_memory,
            "strings_to_formulas": False,
            "strings_to_urls": False,
            "strings_to_numbers": False,
            "nan_inf_to_errors": True,
        },
    )


def _problem_sheet(wb, fmts: _Formats, result: IngestResult, link_for) -> None:
    """错误清单: one line per problem, with a link to the cell where there is one."""
    ws = wb.add_worksheet("错误清单")
    t = result.problems_table
    errors, warnings = result.stats.errors, result.stats.warnings
    ws.write_string(
        0,
        0,
        f"共 {errors} 个错误、{warnings} 个提醒。红色单元格是错误（必须修改后才能提交），黄色是提醒（不影响提交）。"
        "改好后请重新上传整个文件。",
        fmts.title,
    )
    headers = ["级别", "单元格", "列名", "填写的值", "问题", "修改建议"]
    widths = [6, 9, 16, 22, 34, 56]
    for c, (h, w) in enumerate(zip(headers, widths, strict=True)):
        ws.write_string(1, c, h, fmts.header)
        ws.set_column(c, c, w)
    names = ("severity", "row", "column_letter", "header", "value", "message", "hint", "_src_row", "_src_col")
    cols = {name: t.column(name).to_pylist() for name in names}
    links = 0
    write_string, write_url = ws.write_string, ws.write_url
    labels = {"error": ("错误", fmts.error_text), "warning": ("提醒", fmts.warn_text)}
    for i in range(t.num_rows):
        r = i + 2
        label, sev_fmt = labels.get(cols["severity"][i], (cols["severity"][i], None))
        write_string(r, 0, label, sev_fmt)
        row, letter = cols["row"][i], cols["column_letter"][i]
        target = link_for(cols["_src_row"][i], cols["_src_col"][i], row, letter)
        if target and links < MAX_LINKS:
            sheet_name, cell = target
            write_url(r, 1, _internal_link(sheet_name, cell), fmts.link, string=f"{letter}{row}")
            links += 1
        elif row is not None:
            write_string(r, 1, f"{letter}{row}" if letter else f"第 {row} 行")
        for c, key in ((2, "header"), (3, "value"), (4, "message"), (5, "hint")):
            v = cols[key][i]
            if v is not None:
                write_string(r, c, v)
    ws.freeze_panes(2, 0)
    if t.num_rows:
        ws.autofilter(1, 0, t.num_rows + 1, len(headers) - 1)


def build_marked_workbook(result: IngestResult, *, max_notes: int = 50_000, chunk_rows: int = 8192) -> bytes:
    """The uploaded sheet with problem cells highlighted and noted, plus 错误清单 (see module doc)."""
    raw = result.raw
    if raw is None:
        raise ValueError("the upload was rejected; there is no sheet to mark")
    meta = result.raw_meta
    n_rows, n_cols = meta["n_rows"], meta["n_cols"]
    r0, c0 = meta["origin_row"], meta["origin_col"]
    name = sheet_title(result.sheet if result.file_kind != "csv" else result.spec.title)
    marks = _cell_marks(result)
    buf = io.BytesIO()
    wb = _new_workbook(buf)
    fmts = _Formats(wb)
    ws = wb.add_worksheet(name)
    header_idx = (result.header_row - r0 - 1) if result.header_row else -1
    for j in range(n_cols):
        ws.set_column(c0 + j, c0 + j, 14)
    if header_idx >= 0:
        ws.freeze_panes(r0 + header_idx + 1, 0)
    write = _writer(ws, fmts)
    notes = 0
    write_comment, write_string, write_number = ws.write_comment, ws.write_string, ws.write_number
    targets = [c0 + j for j in range(n_cols)]
    for start in range(0, n_rows, chunk_rows):
        length = min(chunk_rows, n_rows - start)
        columns = [_column_values(raw, j, (start, length)) for j in range(n_cols)]
        for i in range(length):
            src_row = start + i
            r = r0 + src_row
            row_marks = marks.get(src_row)
            if src_row == header_idx:
                for j in range(n_cols):
                    v = columns[j][i]
                    m = row_marks.get(j) if row_marks else None
                    if m:
                        f = fmts.by_state[m[0]]["header"]
                        ws.write_string(r, c0 + j, "" if v is None else str(v), f)
                    elif v is not None:
                        ws.write_string(r, c0 + j, str(v), fmts.header)
                    if m and notes < max_notes:
                        write_comment(r, c0 + j, "\n".join(m[1]), _NOTE_OPTIONS)
                        notes += 1
                continue
            if row_marks is None:  # the common case, dispatched inline (2M cells at 100k rows)
                for j in range(n_cols):
                    v = columns[j][i]
                    if v is None:
                        continue
                    t = type(v)
                    if t is str:
                        write_string(r, targets[j], v)
                    elif t is float:
                        write_number(r, targets[j], v)
                    else:
                        write(r, targets[j], v, None)
                continue
            for j in range(n_cols):
                m = row_marks.get(j)
                write(r, c0 + j, columns[j][i], m[0] if m else None)
                if m and notes < max_notes:
                    write_comment(r, c0 + j, "\n".join(m[1]), _NOTE_OPTIONS)
                    notes += 1

    def link_for(src_row, src_col, row, letter):
        if src_row is None or src_row < 0 or not letter or row is None:
            return None
        return name, f"{letter}{row}"

    _problem_sheet(wb, fmts, result, link_for)
    # the template's dropdowns, prompts and 填写说明 on the person's own layout, so the copy they
    # fix is as helpful as a fresh template
    matched = {c.name: c0 + c.source_index for c in result.columns if c.source_index is not None}
    first_data = r0 + header_idx + 1 if header_idx >= 0 else r0
    add_template_aids(wb, ws, result.spec, matched, first_data, r0 + n_rows - 1)
    wb.close()
    return buf.getvalue()


def build_bad_rows_workbook(
    result: IngestResult,
    *,
    include_warnings: bool = False,
    error_sheet: bool = False,
    max_notes: int = 50_000,
) -> bytes:
    """Only the rows with errors (and warnings if asked), original row numbers first, noted.

    ``error_sheet=True`` adds 错误清单 (the marked workbook always has it); off by default to keep
    this the small, quick download.
    """
    import numpy as np

    raw = result.raw
    if raw is None:
        raise ValueError("the upload was rejected; there are no rows to list")
    meta = result.raw_meta
    n_cols = meta["n_cols"]
    r0, c0 = meta["origin_row"], meta["origin_col"]
    marks = _cell_marks(result)
    header_idx = (result.header_row - r0 - 1) if result.header_row else -1
    wanted = sorted(
        r
        for r, row in marks.items()
        if r != header_idx and (include_warnings or any(state == "error" for state, _ in row.values()))
    )
    buf = io.BytesIO()
    wb = _new_workbook(buf, constant_memory=len(wanted) > 50_000)  # small: shared strings are faster
    fmts = _Formats(wb)
    name = "问题行"
    ws = wb.add_worksheet(name)
    ws.write_string(0, 0, "原行号", fmts.header)
    ws.set_column(0, 0, 8)
    if header_idx >= 0:
        for j, v in enumerate(_column_values(raw, j, (header_idx, 1))[0] for j in range(n_cols)):
            ws.write_string(0, j + 1, "" if v is None else str(v), fmts.header)
            ws.set_column(j + 1, j + 1, 14)
    ws.freeze_panes(1, 1)
    write = _writer(ws, fmts)
    idx = pa.array(np.asarray(wanted, dtype=np.int64))
    columns = [_column_values(raw, j, idx) for j in range(n_cols)] if wanted else []
    position: dict[int, int] = {}
    notes = 0
    for i, src_row in enumerate(wanted):
        r = i + 1
        position[src_row] = r
        ws.write_number(r, 0, r0 + src_row + 1)
        row_marks = marks[src_row]
        for j in range(n_cols):
            m = row_marks.get(j)
            if m and m[0] == "warning" and not include_warnings:
                m = (m[0], m[1])
            write(r, j + 1, columns[j][i], m[0] if m else None)
            if m and notes < max_notes:
                ws.write_comment(r, j + 1, "\n".join(m[1]), _NOTE_OPTIONS)
                notes += 1

    def link_for(src_row, src_col, row, letter):
        if src_row is None or src_row not in position or src_col is None or src_col < 0:
            return None
        return name, f"{column_letter(src_col + 1)}{position[src_row] + 1}"  # shown as the original cell

    del c0
    if error_sheet:
        _problem_sheet(wb, fmts, result, link_for)
    wb.close()
    return buf.getvalue()
