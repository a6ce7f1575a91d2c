"""Admin and cockpit downloads never turn cell text into a live formula."""

from __future__ import annotations

import csv
import io

import openpyxl
import pandas as pd

from huizhi.exports import csv_bytes, xlsx_bytes

ROWS = pd.DataFrame({"对象": ["=HYPERLINK(\"http://x\")", "+1", "-2", "@SUM(A1)", "正常文本", None, 7], "n": range(7)})


def test_csv_prefixes_formula_like_text_and_keeps_numbers():
    rows = list(csv.reader(io.StringIO(csv_bytes(ROWS).decode("utf-8-sig"))))
    assert [r[0] for r in rows[1:5]] == ["'=HYPERLINK(\"http://x\")", "'+1", "'-2", "'@SUM(A1)"]
    assert rows[5][0] == "正常文本" and rows[7] == ["7", "6"]


def test_xlsx_writes_text_cells_never_formulas():
    sheet = openpyxl.load_workbook(io.BytesIO(xlsx_bytes({"审计日志": ROWS})))["审计日志"]
    cells = [c for c in sheet["A"][1:] if c.value is not None]
    assert all(c.data_type == "s" for c in cells[:5])  # text, not formula ('f')
    assert cells[0].value == '=HYPERLINK("http://x")'
