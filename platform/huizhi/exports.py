"""Downloads that are safe to open in Excel: formula-like text never becomes a live formula.

A cell starting with ``= + - @`` (or tab / carriage return) is a formula to Excel and WPS, which
lets a crafted ledger value run on the reader's machine (CSV injection). CSV cells get a leading
apostrophe; xlsx cells are written as text.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

# One definition of "formula-like" for every export: the ledger engine's.
from huizhi.excel.export import FORMULA_PREFIXES, neutralise

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["FORMULA_PREFIXES", "csv_bytes", "neutralise", "xlsx_bytes"]


def csv_bytes(df: pd.DataFrame) -> bytes:
    """UTF-8 CSV with BOM (so Excel on Windows reads Chinese correctly), formulas neutralised."""
    safe = df.copy()
    for col in safe.columns:
        if safe[col].dtype == object or str(safe[col].dtype).startswith(("string", "str")):
            safe[col] = safe[col].map(lambda v: neutralise(v) if isinstance(v, str) else v)
    return safe.to_csv(index=False).encode("utf-8-sig")


def xlsx_bytes(sheets: dict[str, pd.DataFrame]) -> bytes:
    """An xlsx workbook, one sheet per frame; every string is written as text, never a formula."""
    import xlsxwriter

    buf = io.BytesIO()
    wb = xlsxwriter.Workbook(buf, {"in_memory": True, "strings_to_formulas": False, "strings_to_urls": False})
    header = wb.add_format({"bold": True, "bg_color": "#E8EEF7", "border": 1})
    for name, df in sheets.items():
        ws = wb.add_worksheet(name[:31])
        for c, col in enumerate(df.columns):
            ws.write_string(0, c, str(col), header)
            ws.set_column(c, c, max(10, min(40, len(str(col)) * 2 + 4)))
        for r, row in enumerate(df.itertuples(index=False), start=1):
            for c, value in enumerate(row):
                if value is None or (isinstance(value, float) and value != value):
                    continue
                if isinstance(value, bool) or not isinstance(value, int | float):
                    ws.write_string(r, c, str(value))
                else:
                    ws.write_number(r, c, value)
        ws.freeze_panes(1, 0)
    wb.close()
    return buf.getvalue()
