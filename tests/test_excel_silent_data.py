"""Issue 10: files that were accepted with wrong data and no problem reported.

One section per class; every case is built here in code. The ``upload`` tests at the end go
through ``host.ledgers.upload(...)`` on a test host, so they run on DuckDB and PostgreSQL.
"""

from __future__ import annotations

import io
import sys
import time
import zipfile

import excel_corpus as C
import pytest
import xlsxwriter
from ledgerkit import admin
from plugin_fixtures import ASSETS, make_plugin

from huizhi.excel import ingest, sandbox
from huizhi.specs import ColumnSpec, LedgerSpec


def texts(res, severity=None):
    return [p.text() for p in res.problems if severity is None or p.severity == severity]


def by_cell(res):
    return {p.cell: p for p in res.problems if p.cell}


def csv_of(rows, **kw) -> bytes:
    return C.csv_bytes(rows, **kw)


def good_csv_rows(n=2):
    rows = [C.HEADERS] + [C.csv_row(i) for i in range(1, n + 1)]
    for row in rows[1:]:
        row[8] = ""  # no 预算: the soft 金额 ≤ 预算 rule stays out of the way
    return rows


def xlsx(build) -> bytes:
    """A workbook written by ``build(workbook, worksheet)`` with xlsxwriter (strings never formulas)."""
    buf = io.BytesIO()
    wb = xlsxwriter.Workbook(buf, {"strings_to_formulas": False, "strings_to_numbers": False})
    ws = wb.add_worksheet("Sheet1")
    build(wb, ws)
    wb.close()
    return buf.getvalue()


# --------------------------------------------------------------------------- 1. decimal comma


def test_decimal_comma_is_an_error_not_a_thousands_separator():
    rows = good_csv_rows(5)
    rows[1][3] = "12,5"  # 金额 D2
    rows[2][3] = "0,75"  # D3
    rows[3][3] = "1,234,567.5"  # real thousands separators: accepted
    rows[4][2] = "1,5"  # 数量 C5 (int)
    rows[5][3] = "1.234,5"  # D6 German style
    res = ingest(csv_of(rows), "a.csv", C.SPEC)
    cells = by_cell(res)
    assert cells["D2"].severity == "error" and "12.5" in cells["D2"].message and cells["D2"].value == "12,5"
    assert "0.75" in cells["D3"].message
    assert cells["C5"].severity == "error" and "1.5" in cells["C5"].message
    assert "1234.5" in cells["D6"].message
    assert "D4" not in cells
    amounts = res.table.column("amount").to_pylist()
    assert amounts[0] is None and amounts[1] is None and amounts[2] == 1234567.5  # never 125 or 75
    assert not res.ok


def test_thousands_separators_only_in_three_digit_groups():
    rows = good_csv_rows(4)
    rows[1][3], rows[2][3], rows[3][3], rows[4][3] = "1,234", "12,345,678", "12,34", "1 234"
    res = ingest(csv_of(rows), "a.csv", C.SPEC)
    assert res.table.column("amount").to_pylist() == [1234.0, 12345678.0, None, 1234.0]
    assert {c: p.kind for c, p in by_cell(res).items()} == {"D4": "type"}


# --------------------------------------------------------------------------- 2. merged data cells


def _merged_street_workbook():
    def build(wb, ws):
        for j, h in enumerate(C.HEADERS):
            ws.write_string(0, j, h)
        for i in range(1, 5):
            row = C.csv_row(i)
            for j, v in enumerate(row):
                if j != 7 and v:
                    ws.write_string(i, j, v)
        ws.merge_range(1, 7, 3, 7, "兴丰街道")  # H2:H4
        ws.write_string(4, 7, "清源街道")

    return xlsx(build)


def test_merged_data_cells_are_filled_down_with_a_warning_naming_the_range():
    res = ingest(_merged_street_workbook(), "a.xlsx", C.SPEC)
    assert res.ok, texts(res)
    assert res.table.column("street").to_pylist() == ["兴丰街道", "兴丰街道", "兴丰街道", "清源街道"]
    merged = [p for p in res.warnings if p.kind == "merged_cell"]
    assert len(merged) == 1 and "H2:H4" in merged[0].message and merged[0].cell == "H2"


def test_merged_across_columns_in_data_is_rejected_naming_the_range():
    def build(wb, ws):
        for j, h in enumerate(C.HEADERS):
            ws.write_string(0, j, h)
        for j, v in enumerate(C.csv_row(1)):
            if v:
                ws.write_string(1, j, v)
        ws.merge_range(1, 8, 1, 9, "10")  # 预算 + 备注 merged: I2:J2

    res = ingest(xlsx(build), "a.xlsx", C.SPEC)
    assert not res.ok
    errs = [p for p in res.errors if p.kind == "merged_cell"]
    assert len(errs) == 1 and "I2:J2" in errs[0].message


# --------------------------------------------------------------------------- 3. two-level header

GEO = LedgerSpec(
    id="geo",
    title="点位台账",
    department="jxj",
    key=("code",),
    columns=(
        ColumnSpec("code", "编号"),
        ColumnSpec("name", "名称"),
        ColumnSpec("lon", "经度", "float", required=False),
        ColumnSpec("lat", "纬度", "float", required=False),
    ),
)


def two_level(sub=("经度", "纬度")) -> bytes:
    def build(wb, ws):
        ws.merge_range(0, 0, 1, 0, "编号")  # A1:A2
        ws.merge_range(0, 1, 1, 1, "名称")  # B1:B2
        ws.merge_range(0, 2, 0, 3, "位置")  # C1:D1
        ws.write_string(1, 2, sub[0])
        ws.write_string(1, 3, sub[1])
        for i in range(2, 5):
            ws.write_string(i, 0, f"P{i}")
            ws.write_string(i, 1, f"点位{i}")
            ws.write_number(i, 2, 113.0 + i)
            ws.write_number(i, 3, 23.0 + i)

    return xlsx(build)


def test_two_level_merged_header_is_matched_under_its_parent():
    res = ingest(two_level(), "a.xlsx", GEO)
    assert res.ok, texts(res)
    assert res.header_row == 2 and res.row_numbers.to_pylist() == [3, 4, 5]
    assert res.table.column("lon").to_pylist() == [115.0, 116.0, 117.0]
    assert res.table.column("lat").to_pylist() == [25.0, 26.0, 27.0]
    assert {m.name: m.letter for m in res.columns} == {"code": "A", "name": "B", "lon": "C", "lat": "D"}
    assert not [p for p in res.problems if p.kind in ("missing_column", "unknown_column")]


def test_unmatched_sub_headers_under_a_merged_parent_are_errors_naming_the_cells():
    res = ingest(two_level(("东经", "北纬")), "a.xlsx", GEO)
    assert not res.ok
    errs = [p for p in res.errors if p.kind == "unknown_column"]
    assert {p.cell for p in errs} == {"C2", "D2"}
    assert all("C1:D1" in p.message and "位置" in p.message for p in errs)
    assert res.stats.rows == 3  # the sub-header row is not taken as data


# --------------------------------------------------------------------------- 4. ragged CSV rows


def test_csv_rows_with_too_few_or_too_many_fields_are_errors_naming_line_and_counts():
    header = ",".join(C.HEADERS)
    good = ",".join(C.csv_row(1))
    short = ",".join(C.csv_row(2)[:8])  # 8 fields
    long = ",".join(C.csv_row(3)) + ",多出来的"  # 11 fields
    trailing = ",".join(C.csv_row(4)) + ","  # an empty 11th field loses nothing
    data = "\r\n".join([header, good, short, long, trailing]).encode()
    res = ingest(data, "a.csv", C.SPEC)
    assert not res.ok
    field = sorted((p.row, p.message) for p in res.errors if p.kind == "field_count")
    assert [r for r, _ in field] == [3, 4]
    assert "第 3 行有 8 个字段" in field[0][1] and "表头（第 1 行）有 10 个" in field[0][1]
    assert "第 4 行有 11 个字段" in field[1][1]


def test_csv_field_count_names_the_physical_line_after_a_multiline_field():
    rows = [C.HEADERS, C.csv_row(1), C.csv_row(2)]
    rows[1][9] = "第一行\n第二行"  # a quoted line break: record 2 spans lines 2-3
    data = csv_of(rows) + ",".join(C.csv_row(3)[:5]).encode() + b"\r\n"
    res = ingest(data, "a.csv", C.SPEC)
    field = [p for p in res.errors if p.kind == "field_count"]
    assert len(field) == 1 and "第 5 行有 5 个字段" in field[0].message


def test_a_lone_cr_ends_a_csv_record_as_in_excel_and_the_split_rows_are_named():
    header, *good = (",".join(C.csv_row(i)) if i else ",".join(C.HEADERS) for i in range(4))
    stray = good[1].replace(",", ",前\r后", 1)  # a stray CR inside an unquoted field of line 3
    res = ingest("\r\n".join([header, good[0], stray, good[2]]).encode(), "a.csv", C.SPEC)
    assert res.rejection is None  # was: the parser crashed (csv "new-line character seen")
    field = sorted((p.row, p.message) for p in res.errors if p.kind == "field_count")
    assert [r for r, _ in field] == [3, 4]
    assert "第 3 行有 2 个字段" in field[0][1] and "第 4 行有 9 个字段" in field[1][1]
    mac = ingest("\r".join([header, *good]).encode(), "mac.csv", C.SPEC)  # old Mac line endings
    assert mac.ok and mac.stats.rows == 3


def test_a_csv_record_the_reader_cannot_read_is_refused_naming_its_line():
    header, good = ",".join(C.HEADERS), ",".join(C.csv_row(1))
    unclosed = (header + "\r\n" + good + '\r\n"' + "未闭合的引号" * 30_000).encode()  # one 180k-character field
    res = ingest(unclosed, "a.csv", C.SPEC)
    assert res.rejection is not None and res.rejection.kind == "corrupt"
    assert "第 3 行" in res.rejection.message and "引号" in res.rejection.hint


# --------------------------------------------------------------------------- 5. error values, formulas


def _formula_workbook() -> bytes:
    rows = C.header_and_rows_xml([C.HEADERS, C.csv_row(1), C.csv_row(2), C.csv_row(3)])
    # C2 数量 (required): #DIV/0!; D3 金额 (optional): #N/A; C4: a formula never calculated
    rows = rows.replace(C.inline("C2", C.csv_row(1)[2]), '<c r="C2" t="e"><f>B2/0</f><v>#DIV/0!</v></c>')
    rows = rows.replace(
        C.inline("D3", C.csv_row(2)[3]), '<c r="D3" t="e"><f>VLOOKUP(A3,X:Y,2,0)</f><v>#N/A</v></c>'
    )
    rows = rows.replace(C.inline("C4", C.csv_row(3)[2]), '<c r="C4"><f>A4&amp;"x"</f></c>')
    return C.raw_xlsx(C.sheet_xml(rows))


def test_excel_error_values_and_uncalculated_formulas_are_reported_with_the_formula():
    res = ingest(_formula_workbook(), "a.xlsx", C.SPEC)
    cells = by_cell(res)
    assert cells["C2"].kind == "formula" and cells["C2"].severity == "error"
    assert "#DIV/0!" in cells["C2"].message and "=B2/0" in cells["C2"].message
    assert (
        cells["D3"].severity == "warning"
        and "#N/A" in cells["D3"].message
        and "VLOOKUP" in cells["D3"].message
    )
    assert cells["C4"].severity == "error" and "没有它的计算结果" in cells["C4"].message
    assert '=A4&"x"' in cells["C4"].message
    assert not res.ok
    # one problem per cell: no second "required" error on the same cells
    assert sum(1 for p in res.problems if p.cell == "C2") == 1


# --------------------------------------------------------------------------- 6. control characters


def test_control_characters_are_refused_and_nul_is_removed_with_a_warning():
    rows = good_csv_rows(6)
    rows[1][1] = "响铃\x07"
    rows[2][1] = "\x1b[31m红色\x1b[0m"
    rows[3][1] = "竖\x0b线"
    rows[4][1] = "张三\u202egnp.exe"
    rows[5][1] = "空\x00字符"
    rows[6][9] = "备注\u2066隔离\u2069"
    res = ingest(csv_of(rows), "a.csv", C.SPEC)
    cells = by_cell(res)
    for cell in ("B2", "B3", "B4", "B5", "J7"):
        assert cells[cell].severity == "error" and cells[cell].kind == "control_char", cell
    assert (
        "U+202E" in cells["B5"].message
        and "U+0007" in cells["B2"].message
        and "U+001B" in cells["B3"].message
    )
    assert "\u202e" not in cells["B5"].value and "<U+202E>" in cells["B5"].value  # never re-displayed raw
    assert cells["B6"].severity == "warning" and "NUL" in cells["B6"].message
    names = res.table.column("name").to_pylist()
    assert names[:4] == [None] * 4 and names[4] == "空字符"
    assert not res.ok


def test_nul_in_a_number_is_not_silently_dropped():
    rows = good_csv_rows(1)
    rows[1][2] = "1\x002"
    res = ingest(csv_of(rows), "a.csv", C.SPEC)
    assert by_cell(res)["C2"].severity == "error" and res.table.column("qty").to_pylist() == [None]


# --------------------------------------------------------------------------- 7. leading TAB / CR


@pytest.mark.parametrize("typed", ["\t=1+1", "\r=HYPERLINK(1)", "\t+1", "\t@SUM(A1)"])
def test_formula_like_text_behind_tab_or_cr_is_stored_as_typed(typed):
    rows = good_csv_rows(1)
    rows[1][9] = typed
    res = ingest(csv_of(rows), "a.csv", C.SPEC)
    assert res.ok, texts(res)
    assert res.table.column("note").to_pylist() == [typed]

    def build(wb, ws):
        for j, h in enumerate(C.HEADERS):
            ws.write_string(0, j, h)
        for j, v in enumerate(C.csv_row(1)[:9]):
            ws.write_string(1, j, v)
        ws.write_string(1, 9, typed)

    res = ingest(xlsx(build), "a.xlsx", C.SPEC)
    assert res.table.column("note").to_pylist() == [typed]


# --------------------------------------------------------------------------- 8. strict OOXML, sheet choice

STRICT_NS = "http://purl.oclc.org/ooxml/spreadsheetml/main"
STRICT_REL = "http://purl.oclc.org/ooxml/officeDocument/relationships"


def strict_workbook() -> bytes:
    """The parts of a workbook saved as Excel's "Strict Open XML Spreadsheet"."""
    workbook = (
        f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><workbook xmlns="{STRICT_NS}" '
        f'xmlns:r="{STRICT_REL}"><sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>'
    )
    rels = C.WORKBOOK_RELS.replace(
        "http://schemas.openxmlformats.org/officeDocument/2006/relationships/", f"{STRICT_REL}/"
    )
    sheet = C.sheet_xml(C.header_and_rows_xml([C.HEADERS, C.csv_row(1)])).replace(C.NS, STRICT_NS)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("[Content_Types].xml", C._content_types())
        zf.writestr("_rels/.rels", C.ROOT_RELS)
        zf.writestr("xl/workbook.xml", workbook)
        zf.writestr("xl/_rels/workbook.xml.rels", rels)
        zf.writestr("xl/styles.xml", C.STYLES.replace(C.NS, STRICT_NS))
        zf.writestr("xl/worksheets/sheet1.xml", sheet)
    return buf.getvalue()


def test_strict_ooxml_is_said_plainly_with_how_to_resave():
    res = ingest(strict_workbook(), "a.xlsx", C.SPEC)
    assert res.rejection is not None and res.rejection.kind == "strict_ooxml"
    assert "Strict Open XML" in res.rejection.message and "隐藏" not in res.rejection.message
    assert "另存为" in res.rejection.hint and "Excel 工作簿 (*.xlsx)" in res.rejection.hint


def _sheets(*names) -> bytes:
    buf = io.BytesIO()
    wb = xlsxwriter.Workbook(buf, {"strings_to_formulas": False})
    for name in names:
        ws = wb.add_worksheet(name)
        for j, h in enumerate(C.HEADERS):
            ws.write_string(0, j, h)
        for j, v in enumerate(C.csv_row(1)):
            if v:
                ws.write_string(1, j, v)
        ws.write_string(1, 1, f"来自{name}")
    wb.close()
    return buf.getvalue()


def test_sheet_named_with_the_variant_character_is_read_and_said_so():
    res = ingest(_sheets("汇总", "测试台帐"), "a.xlsx", C.SPEC)  # the ledger is 测试台账
    assert res.sheet == "测试台帐" and res.table.column("name").to_pylist() == ["来自测试台帐"]
    note = [p for p in res.warnings if p.kind == "sheet_choice"]
    assert len(note) == 1 and "测试台帐" in note[0].message and "测试台账" in note[0].message


def test_first_sheet_read_when_none_matches_is_said_with_the_sheet_list():
    res = ingest(_sheets("台帐", "备用"), "a.xlsx", C.SPEC)
    assert res.sheet == "台帐"
    note = [p for p in res.warnings if p.kind == "sheet_choice"]
    assert len(note) == 1 and "第一张" in note[0].message and "「备用」" in note[0].message
    exact = ingest(_sheets("备用", "测试台账"), "a.xlsx", C.SPEC)
    assert exact.sheet == "测试台账" and not [p for p in exact.problems if p.kind == "sheet_choice"]
    only = ingest(_sheets("台帐"), "a.xlsx", C.SPEC)
    assert not [p for p in only.problems if p.kind == "sheet_choice"]  # nothing was chosen


# --------------------------------------------------------------------------- 9. NUL byte, mixed encodings


def test_csv_with_one_nul_byte_is_read_and_the_byte_is_named():
    rows = good_csv_rows(3)
    rows[2][9] = "备\x00注"
    res = ingest(csv_of(rows), "a.csv", C.SPEC)
    assert res.rejection is None, res.rejection and res.rejection.message
    file_level = [p for p in res.warnings if p.kind == "control_char" and p.cell is None]
    assert len(file_level) == 1 and "第 3 行" in file_level[0].message and "字节" in file_level[0].message
    assert by_cell(res)["J3"].severity == "warning"
    assert res.table.column("note").to_pylist()[1] == "备注"


def test_mixed_encoding_csv_is_rejected_naming_the_line_and_byte():
    utf8 = csv_of(good_csv_rows(3))
    gbk = ",".join(C.csv_row(4)).encode("gbk") + b"\r\n"
    res = ingest(utf8 + gbk, "a.csv", C.SPEC)
    assert res.rejection is not None and res.rejection.kind == "encoding"
    assert "第 5 行" in res.rejection.message and "字节" in res.rejection.message
    # GBK first, then a UTF-8 line: decoding it all as GBK would store garbled text
    gbk_first = csv_of(good_csv_rows(3), encoding="gbk") + ",".join(C.csv_row(4)).encode() + b"\r\n"
    res = ingest(gbk_first, "a.csv", C.SPEC)
    assert res.rejection is not None and res.rejection.kind == "encoding"
    assert "第 5 行" in res.rejection.message and "UTF-8" in res.rejection.message
    pure_gbk = ingest(csv_of(good_csv_rows(3), encoding="gbk"), "a.csv", C.SPEC)
    assert pure_gbk.ok and pure_gbk.stats.encoding == "gb18030"


# --------------------------------------------------------------------------- 10. bounded rejection, linear pipe


def test_encoding_rejection_of_a_large_csv_carries_a_bounded_excerpt():
    body = "\r\n".join(",".join(C.csv_row(i)) for i in range(1, 60_000)).encode()
    data = bytearray(",".join(C.HEADERS).encode() + b"\r\n" + body)
    data[len(data) - 100] = 0xFF
    started = time.monotonic()
    res = ingest(bytes(data), "a.csv", C.SPEC)
    assert res.rejection is not None and res.rejection.kind == "encoding"
    assert len(res.rejection.detail) < 2100 and "line" in res.rejection.detail
    assert "行" in res.rejection.message
    assert time.monotonic() - started < 30


def test_sandbox_bounds_a_huge_rejection_detail(monkeypatch):
    code = (
        "import json, sys; sys.stdin.read(); "
        "sys.stdout.write(json.dumps({'event': 'progress', 'fraction': 0.5}) + '\\n'); "
        "sys.stdout.write(json.dumps({'event': 'rejected', 'kind': 'encoding', 'message': 'm', 'hint': 'h', "
        "'detail': 'x' * 30_000_000}) + '\\n')"
    )
    monkeypatch.setattr(sandbox, "_worker_command", lambda: [sys.executable, "-c", code])
    seen = []
    res = ingest(csv_of(good_csv_rows(1)), "a.csv", C.SPEC, on_progress=lambda ph, f: seen.append((ph, f)))
    assert res.rejection.kind == "encoding" and len(res.rejection.detail) <= 2000
    assert ("parse", 0.5) in seen


# --------------------------------------------------------------------------- end to end: the ledger service


@pytest.fixture
def host(make_host):
    return make_host(extra_plugins=[("assets", make_plugin("assets", ledgers=[ASSETS]))])


ASSET_HEADERS = ["编码", "权属单位", "镇街", "数量"]


def _upload(host, data: bytes, name: str):
    return host.ledgers.upload(admin("jxj"), "assets", data, name)


def test_upload_decimal_comma_and_ragged_rows_are_refused(host):
    data = "\r\n".join(
        [",".join(ASSET_HEADERS), 'A1,jxj,兴丰街道,"12,5"', "A2,jxj,兴丰街道", 'A3,jxj,清源街道,"1,234"']
    ).encode()
    up = _upload(host, data, "资产.csv")
    assert up.preview is None and not up.result.ok
    problems = {(p.row, p.kind) for p in up.result.errors}
    assert (2, "type") in problems and (3, "field_count") in problems
    assert any("12.5" in p.message for p in up.result.errors)


def test_upload_merged_street_is_filled_and_committed(host):
    def build(wb, ws):
        for j, h in enumerate(ASSET_HEADERS):
            ws.write_string(0, j, h)
        for i in range(1, 4):
            ws.write_string(i, 0, f"A{i}")
            ws.write_string(i, 1, "jxj")
            ws.write_number(i, 3, i)
        ws.merge_range(1, 2, 3, 2, "兴丰街道")

    up = _upload(host, xlsx(build), "资产.xlsx")
    assert up.result.ok and up.preview is not None, texts(up.result)
    assert any(p.kind == "merged_cell" and "C2:C4" in p.message for p in up.result.warnings)
    version = host.ledgers.commit(admin("jxj"), up.preview)
    assert version is not None
    table = host.ledgers.export(admin("jxj"), "assets")
    assert sorted(table.column("street").to_pylist()) == ["兴丰街道"] * 3


def test_upload_control_characters_and_formula_errors_are_refused(host):
    rows = C.header_and_rows_xml(
        [ASSET_HEADERS, ["A1", "jxj", "兴丰街道\u202e", 1], ["A2", "jxj", "清源街道", 2]]
    ).replace(C.num("D3", 2), '<c r="D3" t="e"><f>1/0</f><v>#DIV/0!</v></c>')
    up = _upload(host, C.raw_xlsx(C.sheet_xml(rows)), "资产.xlsx")
    assert up.preview is None
    cells = by_cell(up.result)
    assert cells["C2"].kind == "control_char" and "U+202E" in cells["C2"].message
    assert cells["D3"].kind == "formula" and "#DIV/0!" in cells["D3"].message


def test_upload_tab_formula_text_is_stored_as_typed(host):
    data = "\r\n".join([",".join(ASSET_HEADERS), '"\t=1+1",jxj,兴丰街道,1']).encode()
    up = _upload(host, data, "资产.csv")
    assert up.result.ok, texts(up.result)
    host.ledgers.commit(admin("jxj"), up.preview)
    assert host.ledgers.export(admin("jxj"), "assets").column("code").to_pylist() == ["\t=1+1"]
