"""The .xlsx template a ledger admin downloads, generated from the LedgerSpec alone.

Sheet 1 (named after the ledger) has the Chinese headers in row 1 (frozen; required columns
shaded), a note on every header cell (type, required, choices, range, pattern, uniqueness,
example, description), data validation on the whole column (dropdowns for choices and 是/否,
whole/decimal/date checks, an input hint when a cell is selected), text format for text columns
(so ids and phone numbers keep their leading zeros), and one or two example rows built from
``ColumnSpec.example`` or from the rules — each example row is validated with the same code as
an upload, so the template uploaded back unchanged passes the cell checks (the ledger service
then refuses it, naming the example rows: their realistic keys may be real rows). Sheet 填写说明 explains every column and
rule; long choice lists live on a hidden sheet ``_选项``.

``build_template(spec, rows=table)`` is the export of a ledger: the same workbook with the rows
filled in instead of the examples (text as text cells, dates as dates, 是/否 for booleans),
streamed (``constant_memory``) so 150k rows stay fast and small in memory. Filled in and uploaded
again it passes through the same checks, with the dropdowns and notes still there.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
import re
from collections.abc import Mapping
from typing import Any

import pyarrow as pa

from huizhi.excel import messages as M
from huizhi.excel.convert import TYPES, convert_column
from huizhi.specs import ColumnSpec, LedgerSpec

log = logging.getLogger(__name__)

MAX_ROW = 1_048_575  # last 0-based row Excel has
_DV_TEXT_LIMIT = 255


_BAD_SHEET_CHARS = re.compile(r"[\[\]:*?/\\]")


def sheet_title(name: str | None, fallback: str = "数据") -> str:
    """A legal Excel sheet name from ``name`` (no []:*?/\\, at most 31 characters)."""
    name = _BAD_SHEET_CHARS.sub("_", name or "").strip("'") or fallback
    return name[:31]


def column_help(col: ColumnSpec, spec: LedgerSpec) -> list[str]:
    """Lines that describe how to fill ``col`` (used in notes and in 填写说明)."""
    lines = [
        f"类型：{M.DTYPE_LABELS[col.dtype]}",
        "必填" if (col.required or col.name in spec.key) else "选填（可留空）",
    ]
    if col.choices:
        lines.append(f"可选值：{M.choices_text(col, limit=30)}")
    if col.dtype == "bool":
        lines.append("填写：是 / 否")
    rng = M.range_text(col)
    if rng:
        lines.append(f"范围：{rng}")
    if col.dtype == "date":
        lines.append(f"日期写法：{M.DATE_FORMS}")
    if col.pattern:
        lines.append(f"格式：{col.pattern_hint or col.pattern}")
    if col.name in spec.key or col.unique:
        lines.append(
            "不能重复" + ("（与其他主键列组合唯一）" if len(spec.key) > 1 and col.name in spec.key else "")
        )
    if col.example:
        lines.append(f"示例：{col.example}")
    if col.description:
        lines.append(f"说明：{col.description}")
    return lines


def _parse_example(col: ColumnSpec, text: str):
    conv = convert_column({"s": pa.array([text], pa.string())}, col, 1)
    return conv.values[0].as_py() if not conv.failures else None


def _bump_text(text: str) -> str:
    m = re.search(r"([0-9]+)(?!.*[0-9])", text)
    if not m:
        return text + "2"
    digits = m.group(1)
    bumped = str(int(digits) + 1).zfill(len(digits))
    return text[: m.start(1)] + bumped + text[m.end(1) :]


def _example_value(col: ColumnSpec, k: int, spec: LedgerSpec):
    distinct = k > 0 and (col.name in spec.key or col.unique)
    value = None
    if col.example:
        value = _parse_example(col, col.example)
    if value is None:
        if col.choices:
            value = col.choices[min(k, len(col.choices) - 1)]
            return value
        if col.dtype in ("int", "float"):
            base = col.min if col.min is not None else (0 if col.max is not None and col.max < 1 else 1)
            if col.max is not None:
                base = min(base, col.max)
            value = int(base) if col.dtype == "int" else float(base)
        elif col.dtype == "date":
            value = dt.date.today()
        elif col.dtype == "bool":
            value = True
        elif col.pattern is None:
            value = f"示例{col.label}"
    if value is None or not distinct:
        return value
    if isinstance(value, bool):
        return not value
    if isinstance(value, int | float):
        return value + 1
    if isinstance(value, dt.date):
        return value + dt.timedelta(days=1)
    return _bump_text(str(value))


def example_rows(spec: LedgerSpec) -> list[dict]:
    """Up to two example rows that pass the ledger's own validation (may be empty)."""
    from huizhi.excel.validation import typed_frame, validate_typed

    candidates = _candidate_rows(spec)
    for count in (2, 1):
        rows = candidates[:count]
        table = pa.table({c.name: pa.array([r[c.name] for r in rows], TYPES[c.dtype]) for c in spec.columns})
        issues = [i for i in validate_typed(spec, typed_frame(table, spec)) if i.severity == "error"]
        if not issues:
            return rows
    log.info("ledger %s: no example row passes its own rules; template has none", spec.id)
    return []


def _candidate_rows(spec: LedgerSpec) -> list[dict]:
    """The two rows :func:`example_rows` chooses from (it keeps both, the first, or none)."""
    return [{c.name: _example_value(c, k, spec) for c in spec.columns} for k in range(2)]


def _dated_today(col: ColumnSpec) -> bool:
    """A date column whose example is the day the template was made (see _example_value)."""
    return col.dtype == "date" and (not col.example or _parse_example(col, col.example) is None)


def example_positions(spec: LedgerSpec, table: pa.Table, *, keys_only: bool = False) -> list[int]:
    """Positions of the rows of ``table`` (typed as an upload converts them) that are the
    template's example rows as it wrote them: every column equal, except a date the template
    filled in with the day it was downloaded (any day matches there). With ``keys_only`` only
    the key columns are compared (a delete reads nothing else)."""
    if not table.num_rows:
        return []
    compared = [c for c in spec.columns if c.name in table.column_names and not _dated_today(c)]
    if keys_only:
        compared = [c for c in compared if c.name in spec.key]
    if not compared or any(k not in {c.name for c in compared} for k in spec.key):
        return []
    # the examples are some of the candidate rows: a table that has none of the candidates has
    # none of the examples, and choosing them (pandera over a two-row frame, ~0.1 s) is skipped
    if not _rows_like(table, _candidate_rows(spec), compared):
        return []
    examples = example_rows(spec)
    return _rows_like(table, examples, compared) if examples else []


def _rows_like(table: pa.Table, rows: list[dict], compared: list[ColumnSpec]) -> list[int]:
    """Positions of the rows of ``table`` equal to one of ``rows`` in every ``compared`` column."""
    import pyarrow.compute as pc

    hits: set[int] = set()
    for example in rows:
        mask = None
        for col in compared:
            column = table.column(col.name)
            value = example[col.name]
            same = pc.is_null(column) if value is None else pc.fill_null(pc.equal(column, pa.scalar(value, column.type)), False)
            mask = same if mask is None else pc.and_(mask, same)
        hits.update(int(i) for i in pc.indices_nonzero(mask).to_pylist())
    return sorted(hits)


def build_template(spec: LedgerSpec, rows: pa.Table | None = None) -> bytes:
    """The .xlsx template for ``spec``; with ``rows`` (a table of the spec's columns, typed as
    the ledger stores them) the export of those rows in the same workbook (see the module docstring)."""
    import xlsxwriter

    buf = io.BytesIO()
    wb = xlsxwriter.Workbook(
        buf,
        {
            "constant_memory": rows is not None,  # rows streamed to disk in order
            "strings_to_formulas": False,
            "strings_to_urls": False,
            "strings_to_numbers": False,
            "nan_inf_to_errors": True,
        },
    )
    base = {"font_name": "等线", "font_size": 11}
    f_req = wb.add_format(
        {
            **base,
            "bold": True,
            "bg_color": "#FCE4D6",
            "border": 1,
            "align": "center",
            "valign": "vcenter",
            "text_wrap": True,
        }
    )
    f_opt = wb.add_format(
        {
            **base,
            "bold": True,
            "bg_color": "#EDEDED",
            "border": 1,
            "align": "center",
            "valign": "vcenter",
            "text_wrap": True,
        }
    )
    f_text = wb.add_format({**base, "num_format": "@"})
    f_date = wb.add_format({**base, "num_format": "yyyy-mm-dd"})
    f_int = wb.add_format({**base, "num_format": "0"})
    f_plain = wb.add_format(base)
    f_title = wb.add_format({**base, "bold": True, "font_size": 14})
    f_bold = wb.add_format({**base, "bold": True})
    f_wrap = wb.add_format({**base, "text_wrap": True, "valign": "top"})
    col_formats = {"str": f_text, "date": f_date, "int": f_int, "float": f_plain, "bool": f_plain}

    ws = wb.add_worksheet(sheet_title(spec.title, "台账"))
    long_lists = _long_choice_lists(spec)
    options_col = _options_sheet(wb, long_lists)
    ws.set_row(0, 30)
    for j, col in enumerate(spec.columns):
        required = col.required or col.name in spec.key
        width = max(
            10,
            min(
                40,
                len(col.label) * 2 + 4,
                max((len(x) * 2 for x in (col.example, *(col.choices or ()))), default=0) + 2,
            ),
        )
        ws.set_column(j, j, width, col_formats[col.dtype])
        ws.write_string(0, j, col.label, f_req if required else f_opt)
        ws.write_comment(0, j, "\n".join(column_help(col, spec)), {"x_scale": 2, "y_scale": 2})
        list_source = None
        if col.name in long_lists:
            letter = xlsxwriter.utility.xl_col_to_name(options_col[col.name])
            list_source = f"='_选项'!${letter}$1:${letter}${len(_choices(col))}"
        dv = column_validation(col, spec, list_source=list_source)
        ws.data_validation(1, j, MAX_ROW, j, dv)
    ws.freeze_panes(1, 0)

    formats = {"str": f_text, "date": f_date, "int": f_int, "float": None, "bool": None}
    exported = rows is not None
    if rows is None:
        examples = example_rows(spec)
        rows = pa.table({c.name: pa.array([r[c.name] for r in examples], TYPES[c.dtype]) for c in spec.columns})
    _write_rows(ws, spec, rows, formats)

    _explanation_sheet(wb, spec, f_title, f_bold, f_wrap, f_req, exported=exported)
    wb.close()
    return buf.getvalue()


def column_validation(col: ColumnSpec, spec: LedgerSpec, *, list_source: str | None = None) -> dict:
    """Excel's data validation for one column: the dropdown of its choices (``list_source``: a
    range on the ``_选项`` sheet for lists too long to write inline), number ranges, dates, and
    the input prompt. Used by the template, the export and the marked workbook alike."""
    prompt = "；".join(column_help(col, spec)[:4])[:_DV_TEXT_LIMIT]
    dv: dict = {"input_title": col.label[:32], "input_message": prompt, "ignore_blank": True}
    if col.choices or col.dtype == "bool":
        dv.update({"validate": "list", "source": list_source or _choices(col)})
        dv.update({"error_title": "不在可选值中", "error_message": "请从下拉列表中选择"})
    elif col.dtype in ("int", "float"):
        lo = col.min if col.min is not None else -1e15
        hi = col.max if col.max is not None else 1e15
        dv.update(
            {
                "validate": "integer" if col.dtype == "int" else "decimal",
                "criteria": "between",
                "minimum": int(lo) if col.dtype == "int" else lo,
                "maximum": int(hi) if col.dtype == "int" else hi,
                "error_title": "数字不对",
                "error_message": f"请填写{M.DTYPE_LABELS[col.dtype]}"
                + (f"，范围 {M.range_text(col)}" if M.range_text(col) else ""),
            }
        )
    elif col.dtype == "date":
        dv.update(
            {
                "validate": "date",
                "criteria": "between",
                "minimum": dt.date(1900, 1, 1),
                "maximum": dt.date(9999, 12, 31),
                "error_type": "warning",
                "error_title": "日期",
                "error_message": f"建议填写日期，例如 {M.DATE_FORMS}",
            }
        )
    else:
        dv.update({"validate": "any"})
    return dv


def add_template_aids(wb: Any, ws: Any, spec: LedgerSpec, columns: Mapping[str, int], first_row: int, last_row: int) -> None:
    """Give a workbook that is not the template (the marked copy of an upload) the template's aids:
    dropdowns and input prompts on the ledger's columns (``columns``: ledger column name → sheet
    column index) for sheet rows ``first_row``..``last_row`` (0-based), and the 填写说明 sheet."""
    import xlsxwriter

    long_lists = {name: choices for name, choices in _long_choice_lists(spec).items() if name in columns}
    options_col = _options_sheet(wb, long_lists)
    for col in spec.columns:
        if col.name not in columns:
            continue
        list_source = None
        if col.name in long_lists:
            letter = xlsxwriter.utility.xl_col_to_name(options_col[col.name])
            list_source = f"='_选项'!${letter}$1:${letter}${len(long_lists[col.name])}"
        j = columns[col.name]
        ws.data_validation(first_row, j, max(last_row, first_row), j, column_validation(col, spec, list_source=list_source))
    base = {"font_name": "等线", "font_size": 11}
    _explanation_sheet(
        wb, spec, wb.add_format({**base, "bold": True, "font_size": 14}), wb.add_format({**base, "bold": True}),
        wb.add_format({**base, "text_wrap": True, "valign": "top"}),
        wb.add_format({**base, "bold": True, "bg_color": "#FCE4D6", "border": 1, "text_wrap": True}), exported=True,
    )  # fmt: skip


def _choices(col: ColumnSpec) -> list[str]:
    return list(col.choices) if col.choices else ["是", "否"]


def _options_sheet(wb: Any, long_lists: Mapping[str, list[str]]) -> dict[str, int]:
    """The hidden ``_选项`` sheet holding choice lists too long for an inline dropdown, one list
    per column; returns each list's column there. Written row by row: a streamed sheet cannot go
    back to an earlier row."""
    if long_lists:
        options_ws = wb.add_worksheet("_选项")
        options_ws.hide()
        for i in range(max(len(c) for c in long_lists.values())):
            for k, choices in enumerate(long_lists.values()):
                if i < len(choices):
                    options_ws.write_string(i, k, choices[i])
    return {name: k for k, name in enumerate(long_lists)}


def _long_choice_lists(spec: LedgerSpec) -> dict[str, list[str]]:
    """Choice lists too long (or with commas) for an inline dropdown: they go on ``_选项``."""
    lists = {}
    for col in spec.columns:
        if col.choices or col.dtype == "bool":
            choices = _choices(col)
            if len(",".join(choices)) > _DV_TEXT_LIMIT or any("," in c for c in choices):
                lists[col.name] = choices
    return lists


_EXCEL_EPOCH_DAYS = 25_569  # 1970-01-01 as an Excel date serial (1900 date system)


def _write_rows(ws, spec: LedgerSpec, rows: pa.Table, formats: dict, chunk: int = 8192) -> None:
    """``rows`` from sheet row 2 on, in order (the sheet may be streamed): text as text cells
    (never a formula), dates as date serials with a date format, booleans as 是/否."""
    import pyarrow.compute as pc

    write_string, write_number = ws.write_string, ws.write_number
    plan = []
    for col in spec.columns:
        writer = write_string if col.dtype in ("str", "bool") else write_number
        plan.append((col, writer, formats[col.dtype]))
    for start in range(0, rows.num_rows, chunk):
        part = rows.slice(start, chunk)
        columns = []
        for col, writer, fmt in plan:
            arr = part.column(col.name)
            if col.dtype == "date":
                arr = pc.add(pc.cast(pc.cast(arr, pa.date32()), pa.int32()).cast(pa.int64()), _EXCEL_EPOCH_DAYS)
            elif col.dtype == "bool":
                arr = pc.if_else(arr, "是", "否")
            elif col.dtype == "str":
                arr = pc.cast(arr, pa.string())
            columns.append((arr.to_pylist(), writer, fmt))
        for i in range(part.num_rows):
            r = start + i + 1
            for j, (values, writer, fmt) in enumerate(columns):
                v = values[i]
                if v is not None:
                    writer(r, j, v, fmt)


def _explanation_sheet(wb, spec: LedgerSpec, f_title, f_bold, f_wrap, f_head, *, exported: bool = False) -> None:
    ws = wb.add_worksheet("填写说明")
    ws.write_string(0, 0, f"{spec.title} — 填写说明", f_title)
    rows_line = (
        "第 2 行起是导出时的数据：可以在这里修改、补充新行后上传；表格上方可以保留标题行，末尾的“合计”行会被自动忽略。"
        if exported
        else "第 2、3 行是示例：请用真实数据覆盖或删除（仍带着示例行的表格不会被提交）；表格上方可以保留标题行，末尾的“合计”行会被自动忽略。"
    )
    general = [
        f"在第一张工作表「{sheet_title(spec.title, '台账')}」中逐行填写，一行一条记录；不要修改第 1 行的列名，也不要增加合并单元格。",
        rows_line,
        "红底的列为必填，灰底的列可以留空；把鼠标移到列名上可以看到该列的要求。",
        f"日期可以写成 {M.DATE_FORMS}，也可以用 Excel 的日期格式；是/否列填写“是”或“否”。",
        "编号、身份证号、电话等请按文本填写（模板已设好文本格式），避免变成科学计数法或丢掉开头的 0。",
        "保存为 .xlsx 后上传；也可以另存为 CSV（UTF-8 或 GBK 编码均可）。",
        "上传后系统会逐格检查，并可以下载标出错误位置的工作簿；改正后重新上传即可，未通过检查的数据不会保存。",
    ]
    if spec.key:
        labels = "+".join(f"「{spec.column(k).label}」" for k in spec.key)
        general.append(f"{labels}用来识别同一条记录，不能重复；再次上传时按它比对新增、修改和删除的记录。")
        general.append(
            "上传时选择更新方式：“新增和修改”（默认）按编号更新已有的行、新增新的行，表格里没有的行保持不变；"
            "“整表替换”以表格为完整台账，表格里没有的行将被删除；“删除所列行”删除表格中列出编号的行，只需填写"
            f"{labels}列。"
        )
    general = [f"{i}. {line}" for i, line in enumerate(general, start=1)]
    if spec.description:
        general.insert(0, spec.description)
    for i, line in enumerate(general, start=2):
        ws.write_string(i, 0, line)
    start = len(general) + 3
    heads = ["列名", "类型", "必填", "可选值", "范围", "格式要求", "不能重复", "示例", "说明", "字段名"]
    widths = [16, 8, 6, 30, 14, 26, 8, 18, 30, 16]
    for c, (h, w) in enumerate(zip(heads, widths, strict=True)):
        ws.write_string(start, c, h, f_head)
        ws.set_column(c, c, w)
    for r, col in enumerate(spec.columns, start=start + 1):
        values = [
            col.label,
            M.DTYPE_LABELS[col.dtype],
            "是" if (col.required or col.name in spec.key) else "否",
            M.choices_text(col, limit=50) if col.choices else ("是 / 否" if col.dtype == "bool" else ""),
            M.range_text(col),
            (col.pattern_hint or col.pattern or "")
            if col.pattern
            else (M.DATE_FORMS if col.dtype == "date" else ""),
            "是" if (col.name in spec.key or col.unique) else "",
            col.example,
            col.description,
            col.name,
        ]
        for c, v in enumerate(values):
            ws.write_string(r, c, v or "", f_wrap)
    row = start + len(spec.columns) + 2
    if spec.row_checks:
        ws.write_string(row, 0, "跨列规则", f_bold)
        for i, rc in enumerate(spec.row_checks, start=1):
            cols = "、".join(
                spec.column(c).label for c in rc.columns if any(x.name == c for x in spec.columns)
            )
            kind = "提醒（不影响提交）" if rc.soft else "必须满足"
            ws.write_string(row + i, 0, f"{i}. {rc.message}（涉及：{cols}；{kind}）")
