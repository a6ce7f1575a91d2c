"""Builders for the Excel test corpus: ordinary, odd and hostile files, made in memory.

Nothing here is checked in as a binary: every file is built from code so a reader can see exactly
what is inside. ``raw_xlsx`` assembles a workbook zip by hand (for quirks real writers produce
and for hostile XML); ``typed_xlsx`` writes one with xlsxwriter; the rest are single-purpose.
"""

from __future__ import annotations

import datetime as dt
import io
import struct
import zipfile
from xml.sax.saxutils import escape

from huizhi.specs import ColumnSpec, LedgerSpec, RowCheck

NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
RELS_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"


def _end_after_start(df):
    return df["end"].isna() | (df["end"] >= df["start"])


def _amount_vs_budget(df):
    return df["budget"].isna() | (df["amount"] <= df["budget"])


SPEC = LedgerSpec(
    id="corpus",
    title="测试台账",
    department="jxj",
    key=("code",),
    columns=(
        ColumnSpec("code", "编号", pattern=r"^JD\d{4}$", pattern_hint="JD 加 4 位数字", example="JD0001"),
        ColumnSpec("name", "名称", example="示例项目", aliases=("项目名称",)),
        ColumnSpec("qty", "数量", dtype="int", min=0, max=1000),
        ColumnSpec("amount", "金额", dtype="float", min=0, required=False),
        ColumnSpec("start", "开始日期", dtype="date"),
        ColumnSpec("end", "结束日期", dtype="date", required=False),
        ColumnSpec("done", "是否完成", dtype="bool"),
        ColumnSpec("street", "街道", choices=("兴丰街道", "清源街道", "林校路街道")),
        ColumnSpec("budget", "预算", dtype="float", min=0, required=False),
        ColumnSpec("note", "备注", required=False),
    ),
    row_checks=(
        RowCheck("end_after_start", ("start", "end"), "结束日期早于开始日期", _end_after_start),
        RowCheck("within_budget", ("amount", "budget"), "金额超过预算", _amount_vs_budget, soft=True),
    ),
)

HEADERS = [c.label for c in SPEC.columns]


def good_row(i: int) -> list:
    """A valid row as typed cell values (dates as date objects, booleans as 是/否 text)."""
    return [
        f"JD{i:04d}",
        f"项目{i}",
        i % 100,
        float(i) * 1.5,
        dt.date(2023, 1, 1) + dt.timedelta(days=i),
        dt.date(2023, 6, 1) + dt.timedelta(days=i),
        "是" if i % 2 else "否",
        ("兴丰街道", "清源街道", "林校路街道")[i % 3],
        float(i) * 2 + 10,
        "",
    ]


def typed_xlsx(
    rows: list[list],
    *,
    headers: list[str] | None = None,
    title: str | None = None,
    blank_rows_before_header: int = 0,
    sheet: str = "Sheet1",
    extra_sheets: tuple[str, ...] = (),
    hidden_first: bool = False,
    last_row_format: bool = False,
) -> bytes:
    """A workbook written by xlsxwriter: strings via write_string, dates as real dates."""
    import xlsxwriter

    buf = io.BytesIO()
    wb = xlsxwriter.Workbook(
        buf, {"strings_to_formulas": False, "strings_to_numbers": False, "strings_to_urls": False}
    )
    if hidden_first:
        hidden = wb.add_worksheet("隐藏")
        hidden.write_string(0, 0, "不要读我")
        hidden.hide()
    ws = wb.add_worksheet(sheet)
    ws.activate()  # Excel (and xlsxwriter) will not hide the active sheet
    f_date = wb.add_format({"num_format": "yyyy-mm-dd"})
    headers = headers if headers is not None else HEADERS
    r = 0
    if title:
        ws.merge_range(0, 0, 0, len(headers) - 1, title)
        r = 1
    r += blank_rows_before_header
    for j, h in enumerate(headers):
        ws.write_string(r, j, h)
    for i, row in enumerate(rows, start=r + 1):
        for j, v in enumerate(row):
            if v is None or v == "":
                continue
            if isinstance(v, bool):
                ws.write_boolean(i, j, v)
            elif isinstance(v, dt.datetime):
                ws.write_datetime(i, j, v, wb.add_format({"num_format": "yyyy-mm-dd hh:mm"}))
            elif isinstance(v, dt.date):
                ws.write_datetime(i, j, dt.datetime(v.year, v.month, v.day), f_date)
            elif isinstance(v, int | float):
                ws.write_number(i, j, v)
            else:
                ws.write_string(i, j, str(v))
    if last_row_format:
        ws.write_blank(1_048_575, 0, None, wb.add_format({"bold": True}))
    for name in extra_sheets:
        wb.add_worksheet(name).write_string(0, 0, "其他")
    wb.close()
    return buf.getvalue()


def _content_types(extra: str = "") -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        '<Override PartName="/xl/workbook.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
        '<Override PartName="/xl/worksheets/sheet1.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
        '<Override PartName="/xl/styles.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>'
        f"{extra}</Types>"
    )


ROOT_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" '
    'Target="xl/workbook.xml"/></Relationships>'
)

WORKBOOK_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" '
    'Target="worksheets/sheet1.xml"/>'
    '<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles" '
    'Target="styles.xml"/></Relationships>'
)

# style 0: General; style 1: a date (numFmtId 14)
STYLES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    f'<styleSheet xmlns="{NS}"><fonts count="1"><font><sz val="11"/><name val="Calibri"/></font></fonts>'
    '<fills count="1"><fill><patternFill patternType="none"/></fill></fills>'
    '<borders count="1"><border/></borders><cellStyleXfs count="1"><xf/></cellStyleXfs>'
    '<cellXfs count="2"><xf numFmtId="0"/><xf numFmtId="14" applyNumberFormat="1"/></cellXfs>'
    "</styleSheet>"
)


def workbook_xml(sheet_name: str = "Sheet1", doctype: str = "") -> str:
    return (
        f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>{doctype}'
        f'<workbook xmlns="{NS}" xmlns:r="{RELS_NS}"><sheets>'
        f'<sheet name="{escape(sheet_name)}" sheetId="1" r:id="rId1"/></sheets></workbook>'
    )


def inline(ref: str | None, text: str) -> str:
    r = f' r="{ref}"' if ref else ""
    return f'<c{r} t="inlineStr"><is><t xml:space="preserve">{escape(text)}</t></is></c>'


def num(ref: str | None, value: float, style: int = 0) -> str:
    r = f' r="{ref}"' if ref else ""
    s = f' s="{style}"' if style else ""
    return f"<c{r}{s}><v>{value}</v></c>"


def sheet_xml(rows_xml: str, *, dimension: str | None = None, doctype: str = "", prefix: str = "") -> str:
    p = f"{prefix}:" if prefix else ""
    xmlns = f'xmlns:{prefix}="{NS}"' if prefix else f'xmlns="{NS}"'
    dim = f'<{p}dimension ref="{dimension}"/>' if dimension else ""
    return (
        f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>{doctype}'
        f"<{p}worksheet {xmlns}>{dim}<{p}sheetData>{rows_xml}</{p}sheetData></{p}worksheet>"
    )


def raw_xlsx(
    sheet: str,
    *,
    workbook: str | None = None,
    extra_members: dict[str, bytes | str] | None = None,
    content_types_extra: str = "",
    compression: int = zipfile.ZIP_DEFLATED,
) -> bytes:
    """A workbook zip assembled member by member."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as zf:
        zf.writestr("[Content_Types].xml", _content_types(content_types_extra))
        zf.writestr("_rels/.rels", ROOT_RELS)
        zf.writestr("xl/workbook.xml", workbook or workbook_xml())
        zf.writestr("xl/_rels/workbook.xml.rels", WORKBOOK_RELS)
        zf.writestr("xl/styles.xml", STYLES)
        zf.writestr("xl/worksheets/sheet1.xml", sheet)
        for name, data in (extra_members or {}).items():
            zf.writestr(name, data)
    return buf.getvalue()


def header_and_rows_xml(rows: list[list], *, addressed: bool = True, start_row: int = 1) -> str:
    """Rows of inline strings / numbers (dates: ``("date", serial)`` written with the date style)."""
    from huizhi.excel.problems import column_letter

    out = []
    for i, row in enumerate(rows):
        r = start_row + i
        cells = []
        for j, v in enumerate(row):
            ref = f"{column_letter(j)}{r}" if addressed else None
            if v is None:
                if not addressed:
                    cells.append("<c/>")  # writers that omit r="" emit every cell in order
                continue
            if isinstance(v, tuple) and v[0] == "date":
                cells.append(num(ref, v[1], style=1))
            elif isinstance(v, bool):
                cells.append(f'<c{" r=" + chr(34) + ref + chr(34) if ref else ""} t="b"><v>{int(v)}</v></c>')
            elif isinstance(v, int | float):
                cells.append(num(ref, v))
            else:
                cells.append(inline(ref, str(v)))
        row_attr = f' r="{r}"' if addressed else ""
        out.append(f"<row{row_attr}>{''.join(cells)}</row>")
    return "".join(out)


# --------------------------------------------------------------------------- hostile files


def xfd_value_cell() -> bytes:
    """Tiny workbook whose one far cell (XFD1048576) has a value: calamine would allocate ~550 GB."""
    rows = header_and_rows_xml([HEADERS[:2], ["JD0001", "a"]]) + (
        '<row r="1048576">' + inline("XFD1048576", "x") + "</row>"
    )
    return raw_xlsx(sheet_xml(rows, dimension="A1:XFD1048576"))


def xfd_value_cell_lying_dimension() -> bytes:
    """Same far cell, but the sheet claims to be A1:B2 (so only the parser can find out)."""
    rows = header_and_rows_xml([HEADERS[:2], ["JD0001", "a"]]) + (
        '<row r="1048576">' + inline("XFD1048576", "x") + "</row>"
    )
    return raw_xlsx(sheet_xml(rows, dimension="A1:B2"))


def zip_bomb(uncompressed_mb: int = 24) -> bytes:
    """A sheet of whitespace padding that compresses about 1000:1 (declared sizes are honest)."""
    padding = " " * (uncompressed_mb * 1024 * 1024)
    rows = header_and_rows_xml([HEADERS, good_row(1)])
    return raw_xlsx(sheet_xml(rows).replace("<sheetData>", "<sheetData>" + padding))


def lying_zip_bomb(real_mb: int = 8, declared: int = 4096) -> bytes:
    """A member whose headers declare ``declared`` bytes but which inflates to ``real_mb`` MB."""
    padding = " " * (real_mb * 1024 * 1024)
    rows = header_and_rows_xml([HEADERS, good_row(1)])
    data = bytearray(raw_xlsx(sheet_xml(rows).replace("<sheetData>", "<sheetData>" + padding)))
    name = b"xl/worksheets/sheet1.xml"
    # local file header: uncompressed size at offset 22; central directory entry: offset 24
    pos = 0
    while (pos := data.find(b"PK\x03\x04", pos)) >= 0:
        (name_len,) = struct.unpack("<H", data[pos + 26 : pos + 28])
        if data[pos + 30 : pos + 30 + name_len] == name:
            data[pos + 22 : pos + 26] = struct.pack("<I", declared)
        pos += 4
    pos = 0
    while (pos := data.find(b"PK\x01\x02", pos)) >= 0:
        (name_len,) = struct.unpack("<H", data[pos + 28 : pos + 30])
        if data[pos + 46 : pos + 46 + name_len] == name:
            data[pos + 24 : pos + 28] = struct.pack("<I", declared)
        pos += 4
    return bytes(data)


BILLION_LAUGHS = (
    '<!DOCTYPE lolz [<!ENTITY lol "lol">'
    '<!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
    '<!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">'
    '<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">'
    '<!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">'
    '<!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">'
    '<!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">'
    '<!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">'
    '<!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">'
    '<!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">]>'
)


def billion_laughs_sheet() -> bytes:
    rows = (
        header_and_rows_xml([HEADERS[:2]])
        + '<row r="2"><c r="A2" t="inlineStr"><is><t>&lol9;</t></is></c></row>'
    )
    return raw_xlsx(sheet_xml(rows, doctype=BILLION_LAUGHS))


def billion_laughs_workbook() -> bytes:
    rows = header_and_rows_xml([HEADERS, good_row(1)])
    return raw_xlsx(
        sheet_xml(rows),
        workbook=workbook_xml("&lol9;", doctype=BILLION_LAUGHS).replace('name="&amp;lol9;"', 'name="&lol9;"'),
    )


def encrypted_ole() -> bytes:
    """The shape of a password-protected .xlsx: an OLE2 compound file holding EncryptedPackage."""
    header = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 504
    directory = ("Root Entry".encode("utf-16-le") + b"\x00" * 44) + (
        "EncryptionInfo".encode("utf-16-le") + b"\x00" * 36
    )
    directory += "EncryptedPackage".encode("utf-16-le") + b"\x00" * 32
    return header + directory + b"\x00" * 2048


def legacy_xls() -> bytes:
    """The shape of an Excel 97-2003 file: an OLE2 compound file with a Workbook stream."""
    header = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 504
    directory = ("Root Entry".encode("utf-16-le") + b"\x00" * 44) + (
        "Workbook".encode("utf-16-le") + b"\x00" * 48
    )
    return header + directory + b"\x00" * 2048


def xlsm_with_macro() -> bytes:
    rows = header_and_rows_xml([HEADERS, good_row(1)])
    return raw_xlsx(
        sheet_xml(rows),
        extra_members={"xl/vbaProject.bin": b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 512},
        content_types_extra='<Default Extension="bin" ContentType="application/vnd.ms-office.vbaProject"/>',
    )


PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
    + b"\x00" * 64
)


def csv_bytes(rows: list[list], encoding: str = "utf-8", *, bom: bool = False, sep: str = ",") -> bytes:
    import csv

    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=sep, lineterminator="\r\n")
    for row in rows:
        writer.writerow(["" if v is None else v for v in row])
    data = buf.getvalue().encode(encoding)
    return (b"\xef\xbb\xbf" + data) if bom else data


def csv_row(i: int) -> list[str]:
    row = good_row(i)
    return [v.isoformat() if isinstance(v, dt.date) else str(v) for v in row]
