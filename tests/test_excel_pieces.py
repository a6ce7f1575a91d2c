"""Issue 10 (scale): a large sheet is read in pieces (excel/_pieces.py) with the very same result.

Differential: every workbook below — the ones the parser tests build (excel_corpus, the silent-data
cases) and hostile ones made for the piece boundaries — is parsed by the sandboxed worker twice,
once in full (``sheet_piece_bytes`` above the sheet's size, ``sheet_pieces_above_bytes`` 0) and once forced into pieces (a piece
ends at the first row end after 1 byte: one row per piece; and after 700 bytes: a few rows), and
the worker's output (Arrow table and metadata, or the rejection) must be equal. The plain
workbooks must really be read in pieces (``meta["pieces"]["count"] > 1``); the ones whose
structure cannot be split exactly must be read in full, saying why.
"""

from __future__ import annotations

import datetime as dt
import io
import zipfile

import excel_corpus as C
import pytest
import test_excel_silent_data as S
import xlsxwriter

from huizhi.excel import FileRejected, Limits, sandbox

FULL = 1 << 40
PIECES = (1, 700)
DIAGNOSTIC = {"timings", "pieces", "worker_seconds", "worker_peak_rss_mb", "worker_wall_seconds"}


def parse(data: bytes, tmp_path, piece_bytes: int):
    """(comparable result, meta["pieces"]) of the worker on ``data``."""
    d = tmp_path / f"job{piece_bytes}"
    d.mkdir()
    src = d / "upload.bin"
    src.write_bytes(data)
    try:
        parsed = sandbox.parse_in_worker(
            str(src),
            "xlsx",
            str(d / "cells.arrow"),
            Limits(sheet_piece_bytes=piece_bytes, sheet_pieces_above_bytes=0),
            prefer_sheets=(C.SPEC.title, C.SPEC.id),
        )
    except FileRejected as rej:
        return ("rejected", rej.kind, rej.message, rej.hint), None
    meta = {k: v for k, v in parsed.meta.items() if k not in DIAGNOSTIC}
    return (parsed.table, meta), parsed.meta["pieces"]


def assert_same(full, pieces) -> None:
    if full[0] == "rejected" or pieces[0] == "rejected":
        assert full == pieces
        return
    (t1, m1), (t2, m2) = full, pieces
    assert m1 == m2
    assert t1.schema == t2.schema
    for name in t1.column_names:  # column by column: a failure names the column
        assert t1.column(name).equals(t2.column(name)), (name, t1.column(name), t2.column(name))


# --------------------------------------------------------------------------- workbooks


def book(build, *, date_1904: bool = False) -> bytes:
    buf = io.BytesIO()
    wb = xlsxwriter.Workbook(
        buf,
        {
            "strings_to_formulas": False,
            "strings_to_numbers": False,
            "strings_to_urls": False,
            "date_1904": date_1904,
        },
    )
    ws = wb.add_worksheet("Sheet1")
    build(wb, ws)
    wb.close()
    return buf.getvalue()


def hostile(first_col: int = 0, *, date_1904: bool = False) -> bytes:
    """Title banner, blank rows, merged data cells across piece boundaries, leading zeros, long ids
    as text and as numbers, control characters, rich text, dates / times / datetimes, booleans,
    an empty row and an empty column in the middle, a column empty in the first rows."""

    def build(wb, ws):
        date = wb.add_format({"num_format": "yyyy-mm-dd"})
        stamp = wb.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})
        clock = wb.add_format({"num_format": "hh:mm"})
        bold = wb.add_format({"bold": True})
        c = first_col
        ws.merge_range(0, c, 0, c + 6, "某某街道资产台账（2026 年）")
        for j, h in enumerate(["编号", "名称", "数量", "日期", "", "时间", "备注", "身份证"]):
            if h:
                ws.write_string(3, c + j, h)
        for i in range(4, 60):
            if i == 20:
                continue  # an empty row in the middle
            ws.write_string(i, c, f"{i:05d}")  # leading zeros
            if i % 7 == 0:
                ws.write_rich_string(i, c + 1, "名", bold, "称", f"{i}")
            elif i % 11 == 0:
                ws.write_string(i, c + 1, f"铃\x07{i}\u202e")
            else:
                ws.write_string(i, c + 1, f"项目{i}")
            if i % 5 == 0:
                ws.write_boolean(i, c + 2, i % 2 == 0)
            elif i % 9:
                ws.write_number(i, c + 2, i * 1.25)
            ws.write_datetime(i, c + 3, dt.datetime(2023, 1, 1) + dt.timedelta(days=i), date)
            # column c + 4 stays empty throughout
            if i % 3 == 0:
                ws.write_datetime(i, c + 5, dt.datetime(1899, 12, 31, 8, 30), clock)
            elif i % 3 == 1:
                ws.write_datetime(i, c + 5, dt.datetime(2024, 2, 29, 13, 5, 7), stamp)
            if i >= 30:
                ws.write_string(i, c + 6, f"备注{i}" if i % 4 else "")  # empty in the first rows
            if i % 2:
                ws.write_string(i, c + 7, f"11010119900307{i:04d}")
            else:
                ws.write_number(i, c + 7, 110101199003070000 + i)  # digits lost: as Excel keeps it
        ws.merge_range(10, c + 6, 14, c + 6, "合并的备注")  # inside the data, over several pieces
        ws.merge_range(40, c + 1, 43, c + 1, "合并的名称")

    return book(build, date_1904=date_1904)


def raw_rows(rows_xml: str, **kw) -> bytes:
    return C.raw_xlsx(C.sheet_xml(rows_xml), **kw)


ROWS = [C.HEADERS] + [C.csv_row(i) for i in range(1, 12)]
SHARED = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    f'<sst xmlns="{C.NS}" count="4" uniqueCount="4">'
    "<si><t>编号</t></si><si><r><t>富</t></r><r><rPr><b/></rPr><t>文本</t></r></si>"
    '<si><t xml:space="preserve"> 空格 </t></si><si><t>a_x0007_b</t><rPh sb="0" eb="1"><t>ピン</t></rPh></si></sst>'
)


def shared_strings_sheet() -> bytes:
    rows = "".join(
        f'<row r="{r}"><c r="A{r}" t="s"><v>{r % 4}</v></c><c r="B{r}" s="1"><v>{40000 + r}</v></c>'
        f'<c r="C{r}" t="str"><f>A{r}&amp;""</f><v>x{r}</v></c><c r="D{r}" t="b"><v>{r % 2}</v></c></row>'
        for r in range(1, 15)
    )
    return raw_rows(rows, extra_members={"xl/sharedStrings.xml": SHARED})


def cells_without_r() -> bytes:
    """Rows numbered, cells not (calamine counts cells within their row): splittable."""
    rows = "".join(
        f'<row r="{r}"><c t="inlineStr"><is><t>a{r}</t></is></c><c/><c><v>{r}</v></c></row>'
        for r in range(2, 12)
    )
    return raw_rows(rows)


def formatted_rows_between() -> bytes:
    """Formatted-only cells and self-closing rows between rows with values, rows far apart."""
    rows = C.header_and_rows_xml(ROWS[:4])
    rows += '<row r="5"><c r="A5" s="1"/><c r="B5" s="1"/></row><row r="6"/>'
    rows += C.header_and_rows_xml(ROWS[4:8], start_row=40) + '<row r="41" spans="1:3"/>'
    rows += C.header_and_rows_xml(ROWS[8:], start_row=5000)
    return raw_rows(rows)


PLAIN = {
    "typed": lambda: C.typed_xlsx([C.good_row(i) for i in range(1, 40)]),
    "typed_title_blank_rows": lambda: C.typed_xlsx(
        [C.good_row(i) for i in range(1, 20)], title="测试台账", blank_rows_before_header=2
    ),
    "typed_hidden_first_extra_sheets": lambda: C.typed_xlsx(
        [C.good_row(i) for i in range(1, 20)], hidden_first=True, extra_sheets=("填写说明",)
    ),
    "typed_formatted_last_row": lambda: C.typed_xlsx(
        [C.good_row(i) for i in range(1, 20)], last_row_format=True
    ),
    "raw_inline_numbers_dates": lambda: raw_rows(
        C.header_and_rows_xml(
            [C.HEADERS]
            + [
                [f"JD{i:04d}", f"n{i}", i, i * 1.5, ("date", 45000 + i), None, bool(i % 2)]
                for i in range(1, 25)
            ]
        )
    ),
    "merged_street": S._merged_street_workbook,
    "two_level_header": S.two_level,
    "errors_and_uncalculated_formulas": S._formula_workbook,
    "sheets_by_name": lambda: S._sheets("汇总", "测试台帐"),
    "hostile": hostile,
    "hostile_from_column_c": lambda: hostile(first_col=2),
    "hostile_date1904": lambda: hostile(date_1904=True),
    "rich_shared_strings": shared_strings_sheet,
    "cells_without_r_in_numbered_rows": cells_without_r,
    "formatted_rows_between": formatted_rows_between,
    "xfd_value_found_by_prescan": C.xfd_value_cell,
    "xlsm_with_macro": C.xlsm_with_macro,
    "whitespace_padding_before_the_rows": lambda: C.zip_bomb(4),  # the worker does not check ratios
}

# not the plain structure: read in full whatever the piece size (the reason names what it saw)
UNSPLITTABLE = {
    "rows_without_r": (lambda: raw_rows(C.header_and_rows_xml(ROWS, addressed=False)), "without r="),
    "prefixed_elements": (
        lambda: C.raw_xlsx(C.sheet_xml(C.header_and_rows_xml(ROWS), prefix="x")),
        "sheetData",
    ),
    "comment_in_sheet_data": (
        lambda: raw_rows(
            C.header_and_rows_xml(ROWS[:3]) + "<!-- </row> -->" + C.header_and_rows_xml(ROWS[3:], start_row=4)
        ),
        "comment",
    ),
    "cdata_in_a_cell": (
        lambda: raw_rows(
            C.header_and_rows_xml(ROWS)
            + '<row r="20"><c r="A20" t="inlineStr"><is><t><![CDATA[</row>]]></t></is></c></row>'
        ),
        "CDATA",
    ),
    "rows_out_of_order": (
        lambda: raw_rows(C.header_and_rows_xml(ROWS[6:], start_row=7) + C.header_and_rows_xml(ROWS[:6])),
        "above the previous piece",
    ),
    "absolute_merge_reference": (
        lambda: C.raw_xlsx(
            C.sheet_xml(C.header_and_rows_xml(ROWS)).replace(
                "</worksheet>", '<mergeCells count="1"><mergeCell ref="$A$2:$A$3"/></mergeCells></worksheet>'
            )
        ),
        "plain A1 reference",
    ),
}

# rejected before anything is split: the same rejection either way
REJECTED = {
    "lying_zip_bomb": lambda: C.lying_zip_bomb(2),
    "billion_laughs_sheet": C.billion_laughs_sheet,
    "billion_laughs_workbook": C.billion_laughs_workbook,
    "strict_ooxml": S.strict_workbook,
}


@pytest.fixture(scope="module")
def full_results(tmp_path_factory):
    cache: dict = {}

    def get(name, build):
        if name not in cache:
            cache[name] = (build(), *parse(build(), tmp_path_factory.mktemp(name), FULL))
        return cache[name]

    return get


@pytest.mark.parametrize("piece_bytes", PIECES)
@pytest.mark.parametrize("name", list(PLAIN))
def test_read_in_pieces_equals_read_in_full(name, piece_bytes, full_results, tmp_path):
    data, full, full_pieces = full_results(name, PLAIN[name])
    got, pieces = parse(data, tmp_path, piece_bytes)
    assert_same(full, got)
    if full[0] != "rejected":
        assert full_pieces == {"count": 0, "why_not": ""}
        if piece_bytes == 1 or pieces["count"] == 0:  # at 700 bytes a small sheet may be one piece
            assert (
                pieces["count"] > 1
                and pieces["why_not"] == ""
                or (piece_bytes > 1 and pieces["why_not"] == "1 piece(s): nothing to gain")
            ), pieces


@pytest.mark.parametrize("name", list(UNSPLITTABLE))
def test_structures_that_cannot_be_split_exactly_are_read_in_full(name, full_results, tmp_path):
    build, why = UNSPLITTABLE[name]
    data, full, _ = full_results(name, build)
    got, pieces = parse(data, tmp_path, 1)
    assert_same(full, got)
    if got[0] != "rejected":
        assert pieces["count"] == 0 and why in pieces["why_not"], pieces


@pytest.mark.parametrize("name", list(REJECTED))
def test_rejections_are_the_same(name, full_results, tmp_path):
    data, full, _ = full_results(name, REJECTED[name])
    got, _ = parse(data, tmp_path, 1)
    assert full[0] == "rejected" and got == full


def test_a_far_value_is_refused_by_its_area_instead_of_killing_the_parser(tmp_path):
    """Behind a lying <dimension>, the full read dies in calamine (XFD1048576 asks for ~550 GB);
    in pieces the far cell's piece is loaded alone and the area check names the size."""
    data = C.xfd_value_cell_lying_dimension()
    full, _ = parse(data, tmp_path, FULL)
    assert full[0] == "rejected" and full[1] == "parser_memory"
    got, _ = parse(data, tmp_path, 1)
    assert got[0] == "rejected" and got[1] == "too_many_columns" and "16384 列" in got[2]


def test_piece_workbook_values_and_types_equal_the_full_sheet(tmp_path):
    """In this process, the values python-calamine returns for each piece (with their Python
    types) placed at their rows and columns are the full sheet's, for the hostile workbook."""
    import python_calamine as cal

    from huizhi.excel import _pieces, _worker

    data = hostile(first_col=2)
    src = tmp_path / "h.xlsx"
    src.write_bytes(data)
    with zipfile.ZipFile(src) as zf:
        planned = _pieces.plan(zf, "xl/worksheets/sheet1.xml")
    assert not isinstance(planned, str), planned
    writer = _pieces.PieceWriter(str(tmp_path / "pieces.xlsx"), *planned, piece_bytes=300)
    _worker._verify_zip(str(src), "xl/worksheets/sheet1.xml", Limits().to_dict(), False, sink=writer)
    assert writer.finish(), writer.reason
    full = cal.CalamineWorkbook.from_path(str(src)).get_sheet_by_index(0)
    want = {}
    for i, row in enumerate(full.to_python(skip_empty_area=True)):
        for j, v in enumerate(row):
            if v != "":
                want[(full.start[0] + i, full.start[1] + j)] = v
    got = {}
    pieces = cal.CalamineWorkbook.from_path(writer.path)
    assert len(pieces.sheet_names) == writer.pieces > 10
    for name in pieces.sheet_names:
        sheet = pieces.get_sheet_by_name(name)
        if sheet.start is None:
            continue
        for i, row in enumerate(sheet.to_python(skip_empty_area=True)):
            for j, v in enumerate(row):
                if v != "":
                    got[(sheet.start[0] + i, sheet.start[1] + j)] = v
    assert {k: (type(v), v) for k, v in got.items()} == {k: (type(v), v) for k, v in want.items()}
    assert writer.merged == [[r1, c1, r2, c2] for (r1, c1), (r2, c2) in full.merged_cell_ranges]
