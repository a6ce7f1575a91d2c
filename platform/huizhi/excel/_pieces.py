"""A large sheet read in pieces (parser worker side, used by :mod:`huizhi.excel._worker`).

python-calamine builds a sheet's whole cell range before it hands back a row (~1.1 GB at 1M rows
× 20 columns) and has no streaming API. So, for a sheet whose XML is larger than
``Limits.sheet_pieces_above_bytes``, the worker cuts the sheet XML at ``</row>`` boundaries, into
pieces of about ``Limits.sheet_piece_bytes``, while it streams the zip anyway (:func:`huizhi.excel._worker._verify_zip` checks every member's real size
in the same pass) and writes one *stored* (uncompressed) workbook beside the job: the original
shared strings and styles (dates depend on them), a generated workbook.xml listing the pieces as
sheets ``p1`` … ``pK``, and each piece = the sheet's own head (XML declaration, root element,
``<dimension>``, ``<cols>`` …) + whole rows + ``</sheetData></worksheet>``. calamine opens that
workbook once (shared strings parsed once) and loads one piece while the worker converts the
previous one, so the worker holds about two pieces at a time instead of the whole sheet.

Exactness comes first: a value read through the pieces must be the value (and Python type) the
full read gives. calamine numbers a row by its ``r`` attribute, else by counting from the previous
row, and a cell by its ``r``, else by counting within its row; so every piece after the first must
start with a row that carries ``r`` (the first piece starts where the sheet does). Anything that
is not the plain structure — no ``<sheetData>``, a namespace prefix or Strict OOXML namespace,
comments / CDATA / processing instructions in the cell data (a ``</row>`` inside one is not a row
end), ``mergeCell`` outside the one ``<mergeCells>`` after the data, rows out of order across
pieces, any error from calamine on a piece — makes the worker read the sheet in full, as before;
:attr:`PieceWriter.reason` says why.

Each piece's head gets an empty ``<mergeCells/>`` before ``<sheetData>``: python-calamine looks up
a sheet's merged ranges on every load by reading the sheet XML until the first ``mergeCells``
element, so an empty one up front spares a second pass over each piece (~0.4 s of CPU per 100k
rows). The real merged ranges are read here from the sheet's tail, as calamine reads them: the
``ref`` of each ``<mergeCell>`` inside the first ``<mergeCells>``.
"""

from __future__ import annotations

import os
import re
import zipfile
from typing import Any

MAIN_NS = b'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
_SHEETDATA = b"<sheetData>"
_ROW_END = b"</row>"
_PIECE_END = b"</sheetData></worksheet>"
_MAX_HEAD = 4 * 1024 * 1024  # a sheet's head (up to <sheetData>) is a few kB; copied into every piece
_MAX_PENDING = 64 * 1024 * 1024  # bytes without a row end: not a plain sheet
_MAX_TAIL = 64 * 1024 * 1024  # after </sheetData>: merged ranges, hyperlinks, print settings
_ATTR = re.compile(rb"""\s+([A-Za-z_][\w.:-]*)\s*=\s*(?:"([^"<]*)"|'([^'<]*)')""")
_ROW_START = re.compile(rb"""\s*<row((?:\s+[A-Za-z_][\w.:-]*\s*=\s*(?:"[^"<]*"|'[^'<]*'))*)\s*/?>""")
_MERGE_REF = re.compile(rb"([A-Z]{1,3})([1-9][0-9]{0,6})(?::([A-Z]{1,3})([1-9][0-9]{0,6}))?")
_MERGE_OPEN = re.compile(rb"<mergeCells[\s/>]")
_MERGE_CELL = re.compile(rb"<mergeCell(?=[\s/>])([^>]*)>")

_WORKBOOK_NS = (
    'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
    'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"'
)
_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/xl/workbook.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
    "</Types>"
)
_ROOT_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    f'<Relationship Id="rId1" Type="{_REL}/officeDocument" Target="xl/workbook.xml"/></Relationships>'
)


def _col_index(letters: bytes) -> int:
    n = 0
    for ch in letters:
        n = n * 26 + (ch - 64)
    return n - 1


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def plan(zf: zipfile.ZipFile, sheet_member: str) -> tuple[int, dict[int, str], bool] | str:
    """``(sheet index, {index: name in the piece workbook}, date1904)`` — members by their index
    in ``zf.infolist()`` — for what calamine reads with the sheet, found the way calamine finds
    it; or why the sheet cannot be read in pieces."""
    from defusedxml import ElementTree as SafeET

    # calamine looks members up case-insensitively with "\" read as "/"; the last of equal names wins
    by_name: dict[str, zipfile.ZipInfo] = {}
    index: dict[int, int] = {}
    for i, info in enumerate(zf.infolist()):
        by_name[info.filename.replace("\\", "/").lower()] = info
        index[id(info)] = i
    try:
        rels = SafeET.fromstring(zf.read(by_name["_rels/.rels"]), forbid_dtd=True)
        workbook = SafeET.fromstring(zf.read(by_name["xl/workbook.xml"]), forbid_dtd=True)
    except Exception as exc:  # KeyError, defusedxml refusals, malformed XML
        return f"package relationships or workbook.xml unreadable: {exc!r}"
    target = None
    for rel in rels.iter():
        if _local(rel.tag) == "Relationship" and (rel.get("Type") or "").endswith(
            "/relationships/officeDocument"
        ):
            target = rel.get("Target")  # calamine keeps the last one
    if target is None or target.lstrip("/").lower() != "xl/workbook.xml":
        return f"workbook part is {target!r}, not xl/workbook.xml"
    date1904 = False
    for el in workbook.iter():
        if _local(el.tag) == "workbookPr":  # calamine: the last workbookPr's date1904 counts
            date1904 = el.get("date1904") in ("1", "true")
    sheet = by_name.get(sheet_member.lower())
    if sheet is None or sheet.filename != sheet_member:
        return f"sheet member {sheet_member!r} is not stored under that exact name"
    copy = {}
    for name in ("xl/sharedStrings.xml", "xl/styles.xml"):
        part = by_name.get(name.lower())
        if part is not None:
            if part is sheet:
                return f"{name} is the sheet itself"
            copy[index[id(part)]] = name
    return index[id(sheet)], copy, date1904


class PieceWriter:
    """Writes the piece workbook from the members :func:`_verify_zip` streams to it.

    ``begin(i)`` says whether it wants member ``i`` (its index in ``infolist()``); then ``feed(chunk)`` per chunk and ``end()``.
    After the pass, :meth:`finish` writes the workbook part and returns True, or False with
    :attr:`reason` set (the file is then removed and the sheet is read in full)."""

    def __init__(self, out_path: str, sheet: int, copy: dict[int, str], date1904: bool, piece_bytes: int):
        self.path = out_path
        self.sheet = sheet
        self.copy = copy
        self.date1904 = date1904
        self.piece_bytes = max(1, int(piece_bytes))
        self.reason = ""
        self.pieces = 0
        self.merged: list[list[int]] = []
        self._zip = zipfile.ZipFile(out_path, "w", zipfile.ZIP_STORED)
        self._entry: Any = None  # the member being copied, or the piece being written
        self._copying = False
        self._state = ""  # of the sheet member: head, body, tail, done
        self._buf = b""
        self._head = b""
        self._tail = b""
        self._written = 0

    # ------------------------------------------------------------------ the stream

    def begin(self, i: int, info: zipfile.ZipInfo) -> bool:
        if self.reason:
            return False
        if i == self.sheet:
            self._state = "head"
            self._copying = False
            return True
        name = self.copy.get(i)
        if name is None:
            return False
        self._entry = self._zip.open(name, "w", force_zip64=info.file_size > 1 << 30)
        self._copying = True
        return True

    def feed(self, chunk: bytes) -> None:
        if self.reason:
            return
        if self._copying:
            self._entry.write(chunk)
        elif self._state == "head":
            self._feed_head(chunk)
        elif self._state == "body":
            self._feed_body(chunk)
        else:
            self._tail += chunk
            if len(self._tail) > _MAX_TAIL:
                self._give_up(f"more than {_MAX_TAIL} bytes after </sheetData>")

    def end(self) -> None:
        if self.reason:
            return
        if self._copying:
            self._entry.close()
            self._entry = None
            self._copying = False
            return
        if self._state != "tail":
            self._give_up(
                "no <sheetData> … </sheetData> in the sheet" if self._state == "head" else "no </sheetData>"
            )
            return
        self._close_piece()
        self._state = "done"
        merged = _merged_ranges(self._tail)
        if isinstance(merged, str):
            self._give_up(merged)
        else:
            self.merged = merged
        self._tail = b""

    def finish(self) -> bool:
        if not self.reason and self._state != "done":
            self._give_up("the sheet was not streamed")
        if not self.reason and self.pieces < 2:
            self._give_up(f"{self.pieces} piece(s): nothing to gain")
        if self.reason:
            self.discard()
            return False
        sheets, rels = [], []
        for k in range(1, self.pieces + 1):
            sheets.append(f'<sheet name="p{k}" sheetId="{k}" r:id="rId{k}"/>')
            rels.append(f'<Relationship Id="rId{k}" Type="{_REL}/worksheet" Target="worksheets/p{k}.xml"/>')
        pr = '<workbookPr date1904="1"/>' if self.date1904 else ""
        self._zip.writestr("[Content_Types].xml", _CONTENT_TYPES)
        self._zip.writestr("_rels/.rels", _ROOT_RELS)
        self._zip.writestr(
            "xl/workbook.xml",
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            f"<workbook {_WORKBOOK_NS}>{pr}<sheets>{''.join(sheets)}</sheets></workbook>",
        )
        self._zip.writestr(
            "xl/_rels/workbook.xml.rels",
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            f"{''.join(rels)}</Relationships>",
        )
        self._zip.close()
        return True

    def discard(self) -> None:
        try:
            if self._entry is not None:
                self._entry.close()
            self._zip.close()
        except Exception:  # a half-written entry: the file goes anyway
            pass
        self._entry = None
        if os.path.exists(self.path):
            os.remove(self.path)

    def _give_up(self, reason: str) -> None:
        self.reason = reason
        self._buf = self._tail = b""

    # ------------------------------------------------------------------ the sheet

    def _feed_head(self, chunk: bytes) -> None:
        buf = self._buf + chunk
        i = buf.find(_SHEETDATA)
        if i < 0:
            self._buf = buf
            if len(buf) > _MAX_HEAD:
                self._give_up(f"no <sheetData> in the first {_MAX_HEAD} bytes")
            return
        head = buf[:i]
        if b"<!--" in head or b"<![CDATA[" in head or b":sheetData" in head or b"mergeCell" in head:
            self._give_up("comment, CDATA, prefixed sheetData or mergeCells before <sheetData>")
            return
        if MAIN_NS not in head or re.search(rb"<worksheet[\s>]", head) is None:
            self._give_up("the worksheet element is prefixed or not in the transitional namespace")
            return
        self._head = head + b"<mergeCells/>" + _SHEETDATA
        self._buf = b""
        self._state = "body"
        self._feed_body(buf[i + len(_SHEETDATA) :])

    def _feed_body(self, chunk: bytes) -> None:
        buf = self._buf + chunk
        e = buf.find(b"</sheetData>")
        body = buf if e < 0 else buf[:e]
        if b"<!" in body or b"<?" in body or b"mergeCell" in body:
            self._give_up("comment, CDATA, processing instruction or mergeCell inside <sheetData>")
            return
        pos = 0
        while True:  # a piece ends at the first row end at or after piece_bytes
            need = max(0, self.piece_bytes - self._written)
            j = body.find(_ROW_END, max(pos, pos + need - len(_ROW_END)))
            if j < 0:
                break
            if not self._write(body[pos : j + len(_ROW_END)]):
                return
            pos = j + len(_ROW_END)
            self._close_piece()
        j = body.rfind(_ROW_END, pos)
        if j >= 0:
            if not self._write(body[pos : j + len(_ROW_END)]):
                return
            pos = j + len(_ROW_END)
        rest = body[pos:]
        if e >= 0:  # the last rows (self-closing ones, whitespace) belong to the last piece
            if rest.strip() and not self._write(rest):
                return
            self._buf = b""
            self._state = "tail"
            self._tail = buf[e:]
            return
        if len(rest) > _MAX_PENDING:
            self._give_up(f"more than {_MAX_PENDING} bytes without a row end")
            return
        self._buf = rest

    def _write(self, data: bytes) -> bool:
        if self._entry is None:
            if self.pieces > 0 and not _starts_with_numbered_row(data):
                self._give_up(f"piece {self.pieces + 1} would start with a row without r=: {data[:80]!r}")
                return False
            self._entry = self._zip.open(f"xl/worksheets/p{self.pieces + 1}.xml", "w")
            self._entry.write(self._head)
            self._written = 0
        self._entry.write(data)
        self._written += len(data)
        return True

    def _close_piece(self) -> None:
        if self._entry is not None:
            self._entry.write(_PIECE_END)
            self._entry.close()
            self._entry = None
            self._written = 0
            self.pieces += 1


def _starts_with_numbered_row(data: bytes) -> bool:
    """Whether ``data`` starts with a ``<row>`` start tag that has an ``r`` attribute (a number)."""
    m = _ROW_START.match(data)
    if m is None:
        return False
    for a in _ATTR.finditer(m.group(1)):
        if a.group(1) == b"r":
            value = a.group(2) if a.group(2) is not None else a.group(3)
            return re.fullmatch(rb"[1-9][0-9]{0,6}", value) is not None
    return False


def _merged_ranges(tail: bytes) -> list[list[int]] | str:
    """``[[r1, c1, r2, c2], ...]`` (0-based) from the XML after ``</sheetData>``, as calamine reads
    them; a string says why they cannot be read safely here."""
    if b"<!--" in tail or b"<![CDATA[" in tail or b":mergeCell" in tail:
        return "comment, CDATA or prefixed mergeCells after </sheetData>"
    opens = list(_MERGE_OPEN.finditer(tail))
    if not opens:
        return [] if b"mergeCell" not in tail else "mergeCell outside <mergeCells>"
    if len(opens) > 1:
        return "more than one <mergeCells>"
    start = opens[0].start()
    tag_end = tail.find(b">", start)
    if tag_end < 0:
        return "<mergeCells> is not closed"
    if tail[tag_end - 1 : tag_end] == b"/":
        region, after = b"", tag_end + 1  # <mergeCells/>
    else:
        stop = tail.find(b"</mergeCells>", tag_end)
        if stop < 0:
            return "<mergeCells> is not closed"
        region, after = tail[tag_end + 1 : stop], stop + len(b"</mergeCells>")
    if b"mergeCell" in tail[:start] or b"mergeCell" in tail[after:]:
        return "mergeCell outside <mergeCells>"
    out = []
    cells = list(_MERGE_CELL.finditer(region))
    if len(cells) != region.count(b"<mergeCell"):
        return "unreadable <mergeCell> element"
    for m in cells:
        attrs = m.group(1).rstrip(b"/")
        ref = None
        for a in _ATTR.finditer(attrs):
            if a.group(1) == b"ref":
                ref = a.group(2) if a.group(2) is not None else a.group(3)
        if ref is None:
            if b"ref" in attrs:
                return f"unreadable mergeCell attributes {attrs[:80]!r}"
            continue  # calamine skips a mergeCell without ref
        r = _MERGE_REF.fullmatch(ref)
        if r is None:
            return f"merged range {ref[:40]!r} is not a plain A1 reference"
        c1, r1 = _col_index(r.group(1)), int(r.group(2)) - 1
        c2, r2 = (_col_index(r.group(3)), int(r.group(4)) - 1) if r.group(3) else (c1, r1)
        out.append([r1, c1, r2, c2])
    return out
