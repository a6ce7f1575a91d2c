"""Formula-safe exports of ledger rows (CSV and .xlsx).

Text that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is stored exactly as
typed but never leaves the platform as something a spreadsheet would execute:

* CSV: such text is prefixed with ``'`` (:func:`neutralise`), the usual defence against CSV
  injection; numbers are written as numbers.
* .xlsx: every text cell is written with ``write_string`` (a text cell is never evaluated), and
  the workbook is opened with ``strings_to_formulas=False`` as a second guard.
"""

from __future__ import annotations

import io

import pyarrow as pa
import pyarrow.compute as pc

from huizhi.excel.convert import number_text
from huizhi.specs import LedgerSpec

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
_FORMULA_RE = r"^[=+\-@\t\r]"


def neutralise(text: str | None) -> str | None:
    """``'=1+1'`` -> ``"'=1+1"``; other text unchanged."""
    if text and text.startswith(FORMULA_PREFIXES):
        return "'" + text
    return text


def _labels(table: pa.Table, spec: LedgerSpec | None) -> list[str]:
    if spec is None:
        return list(table.column_names)
    labels = {c.name: c.label for c in spec.columns}
    return [labels.get(n, n) for n in table.column_names]


def _as_text(col: pa.ChunkedArray | pa.Array) -> pa.Array:
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    typ = arr.type
    if pa.types.is_string(typ) or pa.types.is_large_string(typ):
        risky = pc.fill_null(pc.match_substring_regex(arr, _FORMULA_RE), False)
        return pc.if_else(risky, pc.binary_join_element_wise("'", arr, ""), arr)
    if pa.types.is_boolean(typ):
        return pc.if_else(arr, "是", "否")
    if pa.types.is_floating(typ):
        return number_text(arr)
    if pa.types.is_date(typ):
        return pc.strftime(arr, "%Y-%m-%d")
    return pc.cast(arr, pa.string())


def export_csv(table: pa.Table, spec: LedgerSpec | None = None, *, encoding: str = "utf-8-sig") -> bytes:
    """Rows as CSV (headers are the Chinese labels when ``spec`` is given); Excel opens UTF-8-BOM."""
    import pyarrow.csv as pacsv

    text_table = pa.table(
        [_as_text(table.column(i)) for i in range(table.num_columns)], names=_labels(table, spec)
    )
    buf = io.BytesIO()
    pacsv.write_csv(text_table, buf, pacsv.WriteOptions(include_header=True, quoting_style="needed"))
    data = buf.getvalue()
    if encoding.lower().replace("_", "-") in ("utf-8-sig", "utf8-sig"):
        return b"\xef\xbb\xbf" + data
    if encoding.lower().replace("_", "-") in ("utf-8", "utf8"):
        return data
    return data.decode("utf-8").encode(encoding)


def export_xlsx(table: pa.Table, spec: LedgerSpec | None = None, *, sheet: str | None = None) -> bytes:
    """Rows as .xlsx with typed cells; text always as text (see module docstring).

    A ledger's rows (``spec`` given, the table has its columns) come in the upload template's
    workbook (:func:`huizhi.excel.template.build_template` with the rows filled in): the same
    dropdowns, header notes and 填写说明 sheet, so an export can be edited and uploaded again.
    """
    import datetime as dt

    if spec is not None and sheet is None and set(table.column_names) == {c.name for c in spec.columns}:
        from huizhi.excel.template import build_template

        return build_template(spec, rows=table)

    import xlsxwriter

    from huizhi.excel.template import sheet_title

    buf = io.BytesIO()
    wb = xlsxwriter.Workbook(
        buf,
        {
            "constant_memory": True,
            "strings_to_formulas": False,
            "strings_to_urls": False,
            "nan_inf_to_errors": True,
        },
    )
    ws = wb.add_worksheet(sheet_title(sheet or (spec.title if spec else None), "数据"))
    head = wb.add_format({"bold": True, "bg_color": "#DDEBF7", "border": 1})
    f_date = wb.add_format({"num_format": "yyyy-mm-dd"})
    for j, label in enumerate(_labels(table, spec)):
        ws.write_string(0, j, label, head)
        ws.set_column(j, j, 14)
    ws.freeze_panes(1, 0)
    chunk = 8192
    for start in range(0, table.num_rows, chunk):
        part = table.slice(start, chunk)
        cols = [part.column(j).to_pylist() for j in range(part.num_columns)]
        for i in range(part.num_rows):
            r = start + i + 1
            for j, values in enumerate(cols):
                v = values[i]
                if v is None:
                    continue
                t = type(v)
                if t is str:
                    ws.write_string(r, j, v)
                elif t is bool:
                    ws.write_string(r, j, "是" if v else "否")
                elif t is int or t is float:
                    ws.write_number(r, j, v)
                elif t is dt.date:
                    ws.write_datetime(r, j, dt.datetime(v.year, v.month, v.day), f_date)
                elif t is dt.datetime:
                    ws.write_datetime(r, j, v, f_date)
                else:
                    ws.write_string(r, j, str(v))
    wb.close()
    return buf.getvalue()
