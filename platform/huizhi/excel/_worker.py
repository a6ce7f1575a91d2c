"""The parser process: reads one untrusted file and writes its cells as an Arrow IPC file.

Run as ``python -m huizhi.excel._worker`` by :mod:`huizhi.excel.sandbox`, never imported by the
portal for its side effects. It sets its own resource limits first (address space, CPU time, no
core dumps), so a parser that runs away — python-calamine aborts the whole process on a sheet with
a value at XFD1048576 — dies here, not in the portal.

Protocol: one JSON job on stdin ``{"path", "kind", "out", "limits", "sheet", "prefer_sheets"}``;
JSON lines on stdout: ``{"event": "progress", "fraction": f}`` any number of times, then exactly
one of ``{"event": "done", "meta": {...}}`` or ``{"event": "rejected", "kind", "message", "hint",
"detail"}``. The Arrow file holds, for every source column ``j`` of the chosen sheet's data area,
up to four columns ``c{j}.s`` (text), ``c{j}.n`` (number), ``c{j}.d`` (date/time) and
``c{j}.b`` (boolean), at most one of them non-null per cell; absent columns are all-null. Row
``i`` of the table is Excel row ``origin_row + i + 1``; column ``j`` is Excel column
``origin_col + j``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import resource
import sys
import time
from array import array
from itertools import islice

_T0 = time.perf_counter()


def _emit(obj: dict) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def _set_limits(limits: dict) -> None:
    mem = int(limits.get("worker_memory_mb", 4096)) * 1024 * 1024
    cpu = int(float(limits.get("worker_timeout_s", 300))) + 1
    for res, value in ((resource.RLIMIT_AS, mem), (resource.RLIMIT_CPU, cpu), (resource.RLIMIT_CORE, 0)):
        try:
            soft, hard = resource.getrlimit(res)
            new_hard = hard if hard == resource.RLIM_INFINITY or hard >= value else hard
            resource.setrlimit(
                res, (min(value, new_hard) if new_hard != resource.RLIM_INFINITY else value, new_hard)
            )
        except (ValueError, OSError):  # pragma: no cover - platform without the limit
            pass


class Rejected(Exception):
    def __init__(self, kind: str, message: str, hint: str, detail: str = ""):
        super().__init__(message)
        self.kind, self.message, self.hint, self.detail = kind, message, hint, detail


_RESAVE = "请在 Excel 或 WPS 中打开，选择“文件 → 另存为”，保存类型选“Excel 工作簿 (*.xlsx)”，再上传。"

_DIM = re.compile(
    rb'<(?:[A-Za-z_][\w.-]*:)?dimension\s+ref="\$?([A-Z]{1,3})\$?([0-9]{1,7})(?::\$?([A-Z]{1,3})\$?([0-9]{1,7}))?"'
)
_CELL = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?c\s([^>]*?)(/?)>")
_REF = re.compile(rb'\br="\$?([A-Z]{1,3})\$?([0-9]{1,7})"')


def _col_index(letters: bytes) -> int:
    n = 0
    for ch in letters:
        n = n * 26 + (ch - 64)
    return n - 1


class _Background:
    """Run ``fn(*args)`` in a thread; ``result()`` joins and re-raises its exception."""

    def __init__(self, fn, *args):
        import threading

        self._value = None
        self._error: BaseException | None = None

        def run():
            try:
                self._value = fn(*args)
            except BaseException as exc:  # re-raised in result()
                self._error = exc

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()

    def result(self):
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value


class _Extent:
    """Bounding box of cells that carry a value (formatted-only ``<c .../>`` cells are skipped)."""

    def __init__(self) -> None:
        self.min_row = self.min_col = 1 << 30
        self.max_row = self.max_col = -1
        self.far_cell = ""
        self.unaddressed = 0

    def feed(self, data: bytes) -> None:
        for m in _CELL.finditer(data):
            if m.group(2):  # self-closing: formatting only
                continue
            r = _REF.search(m.group(1))
            if r is None:
                self.unaddressed += 1
                continue
            row = int(r.group(2)) - 1
            col = _col_index(r.group(1))
            if row < self.min_row:
                self.min_row = row
            if col < self.min_col:
                self.min_col = col
            if row > self.max_row or col > self.max_col:
                self.far_cell = (r.group(1) + r.group(2)).decode()
            if row > self.max_row:
                self.max_row = row
            if col > self.max_col:
                self.max_col = col

    @property
    def rows(self) -> int:
        return 0 if self.max_row < 0 else self.max_row - self.min_row + 1

    @property
    def cols(self) -> int:
        return 0 if self.max_col < 0 else self.max_col - self.min_col + 1


_CELL_FULL = re.compile(rb"<((?:[A-Za-z_][\w.-]*:)?)c\s([^>]*?)(?:/>|>(.*?)</\1c>)", re.DOTALL)
_HAS_FORMULA_OR_ERROR = re.compile(rb'<(?:[A-Za-z_][\w.-]*:)?f[\s>/]|\st="e"')


def _may_have_formula_or_error(piece: bytes) -> bool:
    """``_HAS_FORMULA_OR_ERROR.search(piece)``, but most pieces are ruled out by three substring
    searches first (a superset: every match contains ``<f``, ``:f`` or ``t="e"``). The regex alone
    tries a match at every ``<`` and whitespace: ~1 s of CPU per 70 MB of sheet XML, beside
    calamine, on every upload without a single formula."""
    if b"<f" not in piece and b":f" not in piece and b't="e"' not in piece:
        return False
    return _HAS_FORMULA_OR_ERROR.search(piece) is not None


_ATTR_T = re.compile(rb'\bt="([^"]*)"')
_VALUE = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?v(?:\s[^>]*)?>(.*?)</(?:[A-Za-z_][\w.-]*:)?v>", re.DOTALL)
_FORMULA = re.compile(
    rb"<(?:[A-Za-z_][\w.-]*:)?f(?:\s[^>]*)?(?:/>|>(.*?)</(?:[A-Za-z_][\w.-]*:)?f>)", re.DOTALL
)


class _CellIssues:
    """Cells python-calamine would hand back as empty: Excel error values (``t="e"``: #DIV/0!,
    #N/A ...) and formulas without a cached result (written by a program, never calculated)."""

    def __init__(self) -> None:
        self.found: list[list] = []  # [row0, col0, "error" | "no_value", value, formula]
        self.total = 0
        self.carry = b""

    def feed(self, chunk: bytes, final: bool = False) -> None:
        data = self.carry + chunk
        if final:
            cut = len(data)
        else:
            cut = data.rfind(b"row>")  # after </row>: no cell is split
            cut = cut + 4 if cut >= 0 else (len(data) if len(data) > 16 * 1024 * 1024 else 0)
        piece, self.carry = data[:cut], data[cut:]
        if piece and _may_have_formula_or_error(piece):
            self._scan(piece)

    def _scan(self, piece: bytes) -> None:
        from xml.sax.saxutils import unescape

        for m in _CELL_FULL.finditer(piece):
            attrs, inner = m.group(2), m.group(3) or b""
            t = _ATTR_T.search(attrs)
            typ = t.group(1) if t else b""
            f = _FORMULA.search(inner)
            v = _VALUE.search(inner)
            if typ == b"e":
                kind = "error"
            elif f is not None and (
                v is None or (not v.group(1).strip() and typ not in (b"str", b"inlineStr"))
            ):
                kind = "no_value"
            else:
                continue
            r = _REF.search(attrs)
            if r is None:
                continue
            self.total += 1
            if len(self.found) < _MAX_CELL_ISSUES:
                value = unescape(v.group(1).decode("utf-8", "replace")) if v else ""
                formula = unescape((f.group(1) or b"").decode("utf-8", "replace")) if f else ""
                self.found.append(
                    [int(r.group(2)) - 1, _col_index(r.group(1)), kind, value[:100], formula[:300]]
                )


def _check_area(rows: int, cols: int, limits: dict, where: str) -> None:
    if cols > limits["max_columns"]:
        raise Rejected(
            "too_many_columns",
            f"工作表的数据区域有 {cols} 列，超过上限 {limits['max_columns']} 列{where}",
            "请删除表格右侧多余的列（选中多余的列 → 右键 → 删除），保存后再上传。",
        )
    if rows > limits["max_rows"]:
        raise Rejected(
            "too_many_rows",
            f"工作表的数据区域有 {rows} 行，超过上限 {limits['max_rows']} 行{where}",
            "请删除表格下方多余的行，或把数据拆成几个文件分别上传。",
        )
    if rows * cols > limits["max_cells"]:
        raise Rejected(
            "too_many_cells",
            f"工作表的数据区域有 {rows} 行 × {cols} 列，单元格总数超过上限 {limits['max_cells']}{where}",
            "请删除多余的行和列（常见原因：在很远的位置有内容），或把数据拆成几个文件分别上传。",
        )


def _workbook_sheets(zf) -> list[tuple[str, bool, str]]:
    """(name, visible, zip path) of every worksheet, from workbook.xml + rels parsed safely."""
    from defusedxml import ElementTree as SafeET

    ns_main = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
    ns_rel = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"
    parts = {}
    for name in ("xl/workbook.xml", "xl/_rels/workbook.xml.rels"):
        try:
            info = zf.getinfo(name)
        except KeyError as exc:
            raise Rejected("corrupt", "文件已损坏（缺少工作簿结构）", _RESAVE, f"missing {name}") from exc
        if info.file_size > 16 * 1024 * 1024:
            raise Rejected(
                "corrupt", "文件结构异常（工作簿目录过大）", _RESAVE, f"{name} is {info.file_size} bytes"
            )
        parts[name] = zf.read(name)
    try:
        wb = SafeET.fromstring(parts["xl/workbook.xml"], forbid_dtd=True)
        rels = SafeET.fromstring(parts["xl/_rels/workbook.xml.rels"], forbid_dtd=True)
    except Exception as exc:  # defusedxml refusals (DTD, entities) and malformed XML
        raise Rejected(
            "unsafe_xml",
            "工作簿结构文件格式不正确或包含不安全的 XML 内容",
            "请用 Excel 打开后另存为新的 .xlsx 再上传。",
            repr(exc),
        ) from exc
    if wb.tag.startswith("{http://purl.oclc.org/ooxml/"):
        raise Rejected(
            "strict_ooxml",
            "这是“Strict Open XML 电子表格”格式（严格 OOXML）的工作簿，暂不支持读取",
            "请在 Excel 中打开文件，选择“文件 → 另存为”，保存类型选“Excel 工作簿 (*.xlsx)”"
            "（不要选“Strict Open XML 电子表格”），保存后再上传；WPS 中另存为“Excel 文件 (*.xlsx)”。",
            f"strict OOXML workbook root {wb.tag}",
        )
    targets = {rel.get("Id"): rel.get("Target") or "" for rel in rels.iter() if rel.get("Id")}
    out = []
    for sheet in wb.iter(f"{ns_main}sheet"):
        target = targets.get(sheet.get(f"{ns_rel}id") or "", "")
        if "worksheets/" not in target:
            continue  # chart sheets, dialog sheets
        target = target.lstrip("/")
        path = target if target.startswith("xl/") else "xl/" + target
        visible = (sheet.get("state") or "visible") == "visible"
        out.append((sheet.get("name") or "", visible, path))
    return out


def _parse_dimension(head: bytes) -> tuple[int, int, int, int] | None:
    m = _DIM.search(head[:65536])
    if not m:
        return None
    c1, r1 = _col_index(m.group(1)), int(m.group(2)) - 1
    c2 = _col_index(m.group(3)) if m.group(3) else c1
    r2 = int(m.group(4)) - 1 if m.group(4) else r1
    return (r1, c1, r2, c2)


def _dimension_is_suspicious(path: str, member: str | None, limits: dict) -> bool:
    """True when the sheet's <dimension> is missing or beyond the limits (read from its first bytes)."""
    import zipfile

    if member is None:
        return True
    with zipfile.ZipFile(path) as zf:
        try:
            with zf.open(member) as fh:
                head = fh.read(65536)
        except KeyError:
            return True
    dim = _parse_dimension(head)
    if dim is None:
        return True
    rows, cols = dim[2] - dim[0] + 1, dim[3] - dim[1] + 1
    return rows > limits["max_rows"] or cols > limits["max_columns"] or rows * cols > limits["max_cells"]


def _verify_zip(
    path: str, sheet_member: str | None, limits: dict, scan_extent: bool = True, sink=None
) -> dict:
    """Stream every member once: actual sizes, no DTDs, and (``scan_extent``) the sheet's value
    extent. ``sink`` (a :class:`huizhi.excel._pieces.PieceWriter`) gets the members it asks for
    as they are inflated, so a sheet read in pieces is inflated once."""
    import zipfile

    info: dict = {"dimension": None, "extent": None, "cell_issues": [], "cell_issues_total": 0}
    total = 0
    with zipfile.ZipFile(path) as zf:
        for index, member in enumerate(zf.infolist()):
            if member.is_dir():
                continue
            to_sink = sink is not None and sink.begin(index, member)
            name = member.filename
            is_xml = name.lower().endswith((".xml", ".rels", ".vml"))
            is_sheet = name == sheet_member
            extent: _Extent | None = None
            issues = _CellIssues() if is_sheet else None
            carry = b""
            seen = 0
            with zf.open(member) as fh:
                first = True
                while True:
                    chunk = fh.read(4 * 1024 * 1024)
                    if not chunk:
                        break
                    seen += len(chunk)
                    total += len(chunk)
                    if total > limits["max_uncompressed_bytes"]:
                        raise Rejected(
                            "too_large_uncompressed",
                            "文件解压后太大，超过上限",
                            "请删除不需要的工作表和空白行列，或把数据拆成几个文件分别上传。",
                        )
                    if is_xml:
                        window = carry + chunk
                        if b"<!DOCTYPE" in window or b"<!ENTITY" in window:
                            raise Rejected(
                                "unsafe_xml",
                                "文件中包含不安全的 XML 实体定义（DTD），可能是恶意构造的文件",
                                "正常的 Excel 文件不会包含这些内容。请用 Excel 打开后另存为新的 .xlsx 再上传。",
                                f"DTD in {name}",
                            )
                    if to_sink:
                        sink.feed(chunk)
                        if is_sheet and seen % (64 * 1024 * 1024) < len(chunk):  # every 64 MB of XML
                            _emit(
                                {
                                    "event": "progress",
                                    "fraction": 0.15 * min(1.0, seen / max(member.file_size, 1)),
                                }
                            )
                    if issues is not None:
                        issues.feed(chunk)
                    if is_sheet:
                        if first:
                            info["dimension"] = _parse_dimension(chunk)
                            if scan_extent:
                                extent = _Extent()
                        if extent is not None:
                            data = carry + chunk
                            cut = data.rfind(b"<")
                            if cut <= 0:
                                cut = len(data)
                            extent.feed(data[:cut])
                            carry = data[cut:]
                            if len(carry) > 65536:  # a single tag this long is not a cell
                                carry = b""
                        else:
                            carry = chunk[-16:]
                    elif is_xml:
                        carry = chunk[-16:]
                    first = False
            if to_sink:
                sink.end()
            if extent is not None:
                extent.feed(carry)
                info["extent"] = extent
            if issues is not None:
                issues.feed(b"", final=True)
                info["cell_issues"], info["cell_issues_total"] = issues.found, issues.total
            if seen != member.file_size:  # pragma: no cover - zipfile raises on CRC/size first
                raise Rejected(
                    "corrupt", "文件已损坏（内部大小不符）", _RESAVE, f"{name}: {seen} != {member.file_size}"
                )
    return info


_SHEET_VARIANTS = str.maketrans({"帐": "账", "賬": "账", "臺": "台", "　": "", " ": ""})


def _fold_sheet_name(name: str) -> str:
    """Sheet names compared loosely: NFKC, no spaces, 台帐/臺賬 folded to 台账, case folded."""
    import unicodedata

    return unicodedata.normalize("NFKC", name).translate(_SHEET_VARIANTS).replace(" ", "").casefold()


def _choose_sheet(
    sheets: list[tuple[str, bool, str]], wanted: str | None, prefer: list[str]
) -> tuple[str, str, str]:
    """(name, zip path, reason). ``reason``: ``named`` (asked for), ``exact`` (named like the
    ledger), ``only`` (the one worksheet), ``similar`` (named like the ledger after folding
    variants such as 台帐 → 台账), ``first`` (no sheet named like the ledger: the first visible
    one that is not an instructions sheet)."""
    names = [name for name, _, _ in sheets]
    paths = {name: path for name, _, path in sheets}
    if wanted is not None:
        if wanted not in paths:
            raise Rejected(
                "no_sheet",
                f"工作簿中没有名为「{wanted}」的工作表",
                f"工作簿中的工作表有：{'、'.join(names)}。请选择正确的工作表。",
            )
        return wanted, paths[wanted], "named"
    if not sheets:
        raise Rejected(
            "no_sheet",
            "工作簿中没有找到任何工作表（可能只有图表，或文件结构不标准）",
            _RESAVE,
        )
    candidates = [name for name, visible, _ in sheets if visible]
    for p in prefer:
        if p in candidates:
            return p, paths[p], "exact"
    if len(sheets) == 1 and candidates:
        return candidates[0], paths[candidates[0]], "only"
    folded = [_fold_sheet_name(p) for p in prefer if p]
    for name in candidates:
        f = _fold_sheet_name(name)
        if f in folded or any(len(p) >= 2 and p in f for p in folded):
            return name, paths[name], "similar"
    skip = {"填写说明", "说明", "_选项", "错误清单"}
    for name in candidates:
        if name not in skip:
            return name, paths[name], "first"
    if candidates:
        return candidates[0], paths[candidates[0]], "first"
    raise Rejected(
        "no_sheet",
        f"工作簿中的工作表都是隐藏的（{'、'.join(names)}）",
        "请在 Excel 中右键工作表标签 → 取消隐藏，保存后再上传。",
    )


def _build_chunk(rows: list, width: int, pa, pc) -> list[dict]:
    """Columns of one chunk of rows as {kind: pyarrow.Array} per source column."""
    import datetime as dt
    from itertools import compress, repeat
    from operator import is_

    n = len(rows)
    if n == 0:
        return [{} for _ in range(width)]
    cols = list(zip(*rows, strict=True))
    out = []
    str_t, float_t, int_t, bool_t = str, float, int, bool
    date_t, datetime_t = dt.date, dt.datetime
    empty = pa.scalar(None, pa.string())
    for col in cols:
        arrays: dict = {}
        if type(col[0]) is str_t:
            # most columns are all text: converting straight away refuses any other value
            # (ArrowTypeError at the first one) and saves looking at every cell's type first
            try:
                s = pa.array(col, pa.string())
            except pa.ArrowTypeError:
                pass
            else:
                arrays["s"] = pc.if_else(pc.equal(pc.utf8_length(s), 0), empty, s)
                out.append(arrays)
                continue
        types = set(map(type, col))  # the per-cell list of types only for mixed columns (below)
        if types <= {float_t, int_t}:
            arrays["n"] = pa.array(col, pa.float64())
        elif types == {date_t}:
            arrays["d"] = pa.array(col, pa.date32()).cast(pa.timestamp("us"))
        elif len(types) == 2 and types & {str_t} and types - {str_t} <= {float_t, int_t, date_t, bool_t}:
            # the usual mix: one kind of value plus some text (empty cells, a typed-in "12", a title)
            (other,) = types - {str_t}
            text_at = list(compress(range(n), map(is_, map(type, col), repeat(str_t))))
            values = list(col)
            texts = [None] * n
            for i in text_at:
                values[i] = None
                texts[i] = col[i] or None
            if other is date_t:
                arrays["d"] = pa.array(values, pa.date32()).cast(pa.timestamp("us"))
            elif other is bool_t:
                arrays["b"] = pa.array(values, pa.bool_())
            else:
                arrays["n"] = pa.array(values, pa.float64())
            s = pa.array(texts, pa.string())
            if s.null_count < n:
                arrays["s"] = s
        else:
            if str_t in types:
                s = pa.array([v if type(v) is str_t and v != "" else None for v in col], pa.string())
                if s.null_count < n:
                    arrays["s"] = s
            if float_t in types or int_t in types:
                arrays["n"] = pa.array(
                    [v if (type(v) is float_t or type(v) is int_t) else None for v in col], pa.float64()
                )
            if bool_t in types:
                arrays["b"] = pa.array([v if type(v) is bool_t else None for v in col], pa.bool_())
            if datetime_t in types:
                arrays["d"] = pa.array(
                    [
                        v
                        if type(v) is datetime_t
                        else (datetime_t(v.year, v.month, v.day) if type(v) is date_t else None)
                        for v in col
                    ],
                    pa.timestamp("us"),
                )
            elif date_t in types:
                arrays["d"] = pa.array([v if type(v) is date_t else None for v in col], pa.date32()).cast(
                    pa.timestamp("us")
                )
            unusual = types - {str_t, float_t, int_t, bool_t, date_t, datetime_t}
            if unusual:  # times of day, durations, anything new: keep as text
                extra = pa.array(
                    [None if type(v) not in unusual else _other_text(v) for v in col], pa.string()
                )
                arrays["s"] = pc.coalesce(arrays["s"], extra) if "s" in arrays else extra
        out.append(arrays)
    return out


def _other_text(v) -> str:
    iso = getattr(v, "isoformat", None)
    return iso() if iso else str(v)


class _Assembler:
    """Collects column chunks and writes the final table.

    With ``spill_dir`` each chunk goes to its own Arrow file as soon as it is built and is read
    back memory-mapped in :meth:`table`: while calamine's cell range is alive (~1.1 GB at 1M rows
    × 20 columns) the Arrow copies of the cells (~0.3 GB more) are not held beside it."""

    def __init__(self, width: int, pa, spill_dir: str | None = None) -> None:
        self.width = width
        self.origin = 0  # the source column of output column 0
        self.pa = pa
        self.parts: list[list[dict]] = []
        self.lengths: list[int] = []
        self.columns: list[int] = []  # the source column of each part's column 0
        self.spill_dir = spill_dir
        self.spilled: list[str] = []

    def add(self, chunk: list[dict], length: int, column: int = 0) -> None:
        """``chunk`` (from :func:`_build_chunk`, or ``[]`` for empty rows) holds ``length`` rows
        whose first column is source column ``column``."""
        if self.spill_dir is not None:
            chunk = self._spill(chunk, self.spill_dir)
        self.parts.append(chunk)
        self.lengths.append(length)
        self.columns.append(column)

    def discard(self) -> None:
        self.parts, self.lengths, self.columns = [], [], []
        for spilled in self.spilled:
            os.remove(spilled)
        self.spilled = []

    def _spill(self, chunk: list[dict], directory: str) -> list[dict]:
        pa = self.pa
        names = [f"{j}.{kind}" for j, arrays in enumerate(chunk) for kind in arrays]
        if not names:
            return chunk
        table = pa.table([arr for arrays in chunk for arr in arrays.values()], names=names)
        path = os.path.join(directory, f"chunk{len(self.spilled)}.arrow")
        with pa.OSFile(path, "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table)
        self.spilled.append(path)
        mapped = pa.ipc.open_file(pa.memory_map(path, "r")).read_all()
        out: list[dict] = [{} for _ in chunk]
        for name, col in zip(names, mapped.columns, strict=True):
            j, kind = name.split(".")
            out[int(j)][kind] = col.chunk(0) if col.num_chunks == 1 else col.combine_chunks()
        return out

    def table(self):
        pa = self.pa
        types = {"s": pa.string(), "n": pa.float64(), "d": pa.timestamp("us"), "b": pa.bool_()}
        names, arrays = [], []
        placed = list(zip(self.parts, self.lengths, self.columns, strict=True))
        for j in range(self.width):
            source = self.origin + j
            for kind, typ in types.items():
                if not any(0 <= source - c < len(part) and kind in part[source - c] for part, _, c in placed):
                    continue
                chunks = [
                    part[source - c][kind]
                    if 0 <= source - c < len(part) and kind in part[source - c]
                    else pa.nulls(length, typ)
                    for part, length, c in placed
                ]
                arr = pa.chunked_array(chunks, typ)
                if arr.null_count == len(arr):
                    continue
                names.append(f"c{j}.{kind}")
                arrays.append(arr.combine_chunks())  # one chunk: the reader's slices stay zero-copy
                for part, _, c in placed:  # free the chunk copies as we go
                    if 0 <= source - c < len(part):
                        part[source - c].pop(kind, None)
        if not names:
            return pa.table({"_empty": pa.nulls(sum(self.lengths), pa.null())})
        return pa.table(arrays, names=names)


def _import_arrow() -> tuple:
    import pyarrow as pa
    import pyarrow.compute as pc

    return pa, pc


_SHEET_PIECE_BYTES = 16 * 1024 * 1024  # Limits.sheet_piece_bytes when the job does not say
_SHEET_PIECES_ABOVE_BYTES = 128 * 1024 * 1024  # Limits.sheet_pieces_above_bytes likewise


class _NotInPieces(Exception):
    """The sheet cannot be read in pieces exactly; it is read in full (the reason is logged)."""


def _corrupt(exc: BaseException) -> Rejected:
    return Rejected("corrupt", "文件已损坏（压缩数据校验失败），无法读取", _RESAVE, repr(exc))


def _piece_writer(zf, member: str | None, out_dir: str, piece_bytes: int, above_bytes: int):
    """(a PieceWriter for the chosen sheet, "") when its XML is larger than ``above_bytes``, else
    (None, why not) — an empty reason for a sheet small enough to read at once."""
    from huizhi.excel import _pieces

    if member is None:
        return None, ""
    try:
        size = zf.getinfo(member).file_size
    except KeyError:
        return None, "the sheet member is missing"
    if size <= max(above_bytes, piece_bytes):
        return None, ""
    planned = _pieces.plan(zf, member)
    if isinstance(planned, str):
        return None, planned
    sheet_index, copy, date1904 = planned
    path = os.path.join(out_dir, "pieces.xlsx")
    return _pieces.PieceWriter(path, sheet_index, copy, date1904, piece_bytes), ""


def _parse_xlsx(job: dict, limits: dict) -> tuple:
    # pyarrow's import (~0.2 s of CPU) overlaps calamine's load, which releases the GIL
    arrow = _Background(_import_arrow)
    path = job["path"]
    timings: dict = {}
    import zipfile

    corrupt = (zipfile.BadZipFile, EOFError, OSError, ValueError, __import__("zlib").error)
    # the job's directory holds the output file; the spilled chunks and the pieces go beside it
    job_dir = os.path.dirname(os.path.abspath(job["out"]))
    writer = None
    verifier = None
    try:
        with zipfile.ZipFile(path) as zf:
            sheets = _workbook_sheets(zf)
            sheet_name, member, sheet_reason = _choose_sheet(
                sheets, job.get("sheet"), job.get("prefer_sheets") or []
            )
            piece_bytes = int(limits.get("sheet_piece_bytes") or _SHEET_PIECE_BYTES)
            above_bytes = int(limits.get("sheet_pieces_above_bytes", _SHEET_PIECES_ABOVE_BYTES))
            writer, not_in_pieces = _piece_writer(zf, member, job_dir, piece_bytes, above_bytes)
        t = time.perf_counter()
        suspicious = _dimension_is_suspicious(path, member, limits)
        if suspicious or writer is not None:  # the extent before calamine allocates; the pieces
            info = _verify_zip(path, member, limits, scan_extent=suspicious, sink=writer)
        else:  # check every member's real size while calamine reads (it releases the GIL)
            info = {"dimension": None, "extent": None, "cell_issues": [], "cell_issues_total": 0}
            verifier = _Background(_verify_zip, path, member, limits, False)
        timings["verify_zip"] = time.perf_counter() - t
    except corrupt as exc:
        if writer is not None:
            writer.discard()
        raise _corrupt(exc) from exc
    except BaseException:
        if writer is not None:
            writer.discard()
        raise
    _emit({"event": "progress", "fraction": 0.15})
    extent = info["extent"]
    if extent is not None:
        where = f"（最远的有内容的单元格是 {extent.far_cell}）" if extent.far_cell else ""
        if writer is not None:
            try:
                _check_area(extent.rows, extent.cols, limits, where)
            except Rejected:
                writer.discard()
                raise
        else:
            _check_area(extent.rows, extent.cols, limits, where)
    read = None
    if writer is not None:
        if writer.finish():
            try:
                read = _read_in_pieces(writer, limits, arrow, job_dir, timings)
            except _NotInPieces as exc:
                not_in_pieces = str(exc)
            finally:
                if os.path.exists(writer.path):
                    os.remove(writer.path)
        else:
            not_in_pieces = writer.reason
    if read is None:

        def verified() -> dict:
            """The background check's findings; its rejection wins over calamine's (more specific)."""
            if verifier is None:
                return info
            try:
                return verifier.result()
            except corrupt as exc:
                raise _corrupt(exc) from exc

        read = _read_in_full(path, sheet_name, verified, limits, arrow, job_dir, timings)
        info = verified()
    asm, merged, origin_col, width, total_rows, pieces = read
    meta = {
        "sheet": sheet_name,
        "sheets": [name for name, _, _ in sheets],
        "origin_row": 0,  # rows are numbered from the sheet's first row (see _read_in_full)
        "origin_col": origin_col,
        "n_rows": total_rows,
        "n_cols": width,
        "merged": merged[:_MAX_MERGED],
        "merged_total": len(merged),
        "sheet_reason": sheet_reason,
        "visible_sheets": [name for name, visible, _ in sheets if visible],
        "cell_issues": info.get("cell_issues", [])[:_MAX_CELL_ISSUES],
        "cell_issues_total": info.get("cell_issues_total", 0),
        "dimension": info["dimension"],
        "pieces": {"count": pieces, "why_not": "" if pieces else not_in_pieces},
        "timings": {k: round(v, 4) for k, v in timings.items()},
    }
    table = asm.table()
    for spilled in asm.spilled:  # still mapped where the table uses them; the names can go
        os.remove(spilled)
    return table, meta


def _read_in_full(path: str, sheet_name: str, verified, limits: dict, arrow, job_dir: str, timings: dict):
    """The whole sheet through one calamine range: (assembler, merged, origin col, width, rows, 0)."""
    import python_calamine as cal

    t = time.perf_counter()
    try:
        workbook = cal.CalamineWorkbook.from_path(path)
        sheet = workbook.get_sheet_by_name(sheet_name)
    except cal.PasswordError as exc:
        verified()
        raise Rejected(
            "encrypted", "文件设置了密码，无法读取", "请去掉密码保护后另存为 .xlsx 再上传。", str(exc)
        ) from exc
    except Exception as exc:  # CalamineError, XmlError, ZipError ...
        verified()
        raise Rejected(
            "corrupt", f"文件已损坏或格式不正确，无法读取工作表「{sheet_name}」", _RESAVE, repr(exc)
        ) from exc
    timings["calamine_load"] = time.perf_counter() - t
    verified()
    pa, pc = arrow.result()
    t = time.perf_counter()
    start = sheet.start or (0, 0)
    height, width = sheet.height, sheet.width
    _check_area(height, width, limits, "")
    _emit({"event": "progress", "fraction": 0.55})
    merged = []
    try:
        for (r1, c1), (r2, c2) in sheet.merged_cell_ranges or []:
            merged.append([r1, c1, r2, c2])
    except Exception as exc:  # unreadable merge list: say so rather than lose merged values silently
        raise Rejected(
            "corrupt", "无法读取工作表中的合并单元格信息", _RESAVE, f"merged_cell_ranges: {exc!r}"
        ) from exc
    asm = _Assembler(width, pa, spill_dir=job_dir)
    chunk_rows: list = []
    chunk_size = 64  # a small first chunk keeps title/header rows out of the big homogeneous chunks
    total_rows = 0
    expected = start[0] + height
    # python-calamine's iter_rows yields the empty rows above the first used row too (from row
    # 1), but starts at the first used column: row i of the table is Excel row i + 1
    for row in sheet.iter_rows():
        chunk_rows.append(row)
        if len(chunk_rows) >= chunk_size:
            asm.add(_build_chunk(chunk_rows, width, pa, pc), len(chunk_rows))
            total_rows += len(chunk_rows)
            chunk_rows = []
            chunk_size = 8192
            _emit({"event": "progress", "fraction": 0.55 + 0.4 * min(1.0, total_rows / max(expected, 1))})
    if chunk_rows:
        asm.add(_build_chunk(chunk_rows, width, pa, pc), len(chunk_rows))
        total_rows += len(chunk_rows)
    chunk_rows.clear()
    if total_rows != expected:  # pragma: no cover - a python-calamine that stops doing so
        raise Rejected(
            "corrupt", "读取工作表时行数不符", _RESAVE, f"iter_rows gave {total_rows} != {expected}"
        )
    # calamine's cell range (~1.1 GB at 1M rows × 20 columns) is not needed any more: free it
    # before the Arrow chunks are combined, which copies each column once
    del sheet
    workbook.close()
    del workbook
    timings["to_arrow"] = time.perf_counter() - t
    return asm, merged, start[1], width, total_rows, 0


def _read_in_pieces(writer, limits: dict, arrow, job_dir: str, timings: dict):
    """The sheet from the piece workbook ``writer`` wrote: a thread loads piece k+1 (calamine
    releases the GIL) while this one converts piece k. Same result as :func:`_read_in_full`;
    raises :class:`_NotInPieces` when that cannot be guaranteed."""
    import python_calamine as cal

    t = time.perf_counter()
    try:
        workbook = cal.CalamineWorkbook.from_path(writer.path)
    except Exception as exc:
        raise _NotInPieces(f"calamine cannot open the piece workbook: {exc!r}") from exc
    timings["open_pieces"] = time.perf_counter() - t
    _emit({"event": "progress", "fraction": 0.25})
    pa, pc = arrow.result()
    asm = _Assembler(0, pa, spill_dir=job_dir)
    count = writer.pieces
    loading: _Background | None = _Background(workbook.get_sheet_by_name, "p1")
    first_row = first_col = -1
    last_row = last_col = -1
    next_row = 0  # the table's rows so far: Excel rows 1 .. next_row
    over = False  # the area is over a limit: only the extents are read on
    chunk_size = 64  # as in _read_in_full: a small first chunk for title and header rows
    wait = convert = 0.0
    try:
        for k in range(1, count + 1):
            t = time.perf_counter()
            try:
                assert loading is not None
                sheet = loading.result()
            except Exception as exc:
                raise _NotInPieces(f"calamine cannot read piece {k}: {exc!r}") from exc
            finally:
                loading = None
            wait += time.perf_counter() - t
            if k < count:
                loading = _Background(workbook.get_sheet_by_name, f"p{k + 1}")
            t = time.perf_counter()
            start, end = sheet.start, sheet.end
            if start is None or end is None:  # no values in these rows
                del sheet
                continue
            if start[0] <= last_row:
                raise _NotInPieces(f"piece {k} starts at row {start[0] + 1}, above the previous piece's end")
            if first_row < 0:
                first_row, first_col, last_col = start[0], start[1], end[1]
            first_col, last_col, last_row = min(first_col, start[1]), max(last_col, end[1]), end[0]
            height, width = last_row - first_row + 1, last_col - first_col + 1
            over = over or (
                width > limits["max_columns"]
                or height > limits["max_rows"]
                or height * width > limits["max_cells"]
            )
            if over:  # read on for the exact area _check_area names, converting nothing
                del sheet
                continue
            rows = sheet.to_python(skip_empty_area=True)
            piece_width = end[1] - start[1] + 1
            del sheet  # the piece's cell range
            if len(rows) != end[0] - start[0] + 1:  # pragma: no cover - python-calamine changed
                raise _NotInPieces(f"piece {k}: {len(rows)} rows for {start}..{end}")
            if start[0] > next_row:
                asm.add([], start[0] - next_row)  # empty rows above the piece's first value
            i = 0
            while i < len(rows):
                part = rows[i : i + chunk_size]
                asm.add(_build_chunk(part, piece_width, pa, pc), len(part), start[1])
                i += len(part)
                chunk_size = 8192
            next_row = end[0] + 1
            del rows, part
            convert += time.perf_counter() - t
            _emit({"event": "progress", "fraction": 0.25 + 0.7 * k / count})
    except BaseException:
        if loading is not None:
            with contextlib.suppress(Exception):  # let the thread finish before the workbook closes
                loading.result()
        asm.discard()
        workbook.close()
        raise
    workbook.close()
    timings["load_wait"] = wait
    timings["to_arrow"] = convert
    if first_row < 0:
        asm.discard()
        raise _NotInPieces("no piece has a value")
    height, width = last_row - first_row + 1, last_col - first_col + 1
    try:
        _check_area(height, width, limits, "")
    except Rejected:
        asm.discard()
        raise
    asm.width, asm.origin = width, first_col
    return asm, writer.merged, first_col, width, next_row, count


_MAX_MERGED = 100_000  # merged ranges passed on (ingest refuses a sheet with more)
_MAX_CELL_ISSUES = 10_000  # error / uncalculated formula cells passed on (the count stays exact)
_MAX_DETAIL = 2000  # characters of a rejection's detail (never the file itself)
_RESAVE_CSV = "请用 Excel 打开后另存为“CSV UTF-8（逗号分隔）”或 .xlsx 再上传。"
# three or more CJK characters in a row encoded as UTF-8 (lead E4-E9, two continuation bytes)
_UTF8_3BYTE = re.compile(rb"[\xe0-\xef][\x80-\xbf]{2}")
_UTF8_CJK_RUN = re.compile(rb"(?:[\xe4-\xe9][\x80-\xbf]{2}){3,}")


def where_in_bytes(raw: bytes, pos: int) -> tuple[int, int]:
    """(line number, byte position within that line), both 1-based, of byte ``pos`` of ``raw``."""
    line_start = raw.rfind(b"\n", 0, pos) + 1
    return raw.count(b"\n", 0, pos) + 1, pos - line_start + 1


def _excerpt(raw: bytes, pos: int, width: int = 24) -> str:
    return repr(raw[max(0, pos - width) : pos + width])


def _bad_byte(raw: bytes, pos: int, encoding: str, what: str, hint: str = _RESAVE_CSV) -> Rejected:
    line, col = where_in_bytes(raw, pos)
    return Rejected(
        "encoding",
        f"{what}：第 {line} 行第 {col} 个字节（0x{raw[pos]:02X}，文件第 {pos + 1} 个字节）无法按 {encoding} 识别",
        hint,
        f"{encoding} decode failed at byte {pos} (line {line}, byte {col}): {_excerpt(raw, pos)}",
    )


def _decode_csv(raw: bytes) -> tuple[str, str]:
    """The text and its encoding; a rejection names the line and byte that cannot be decoded.

    UTF-8 (with or without BOM), UTF-16 with BOM, else GB18030 (a superset of GBK). A file that is
    UTF-8 up to some line and something else after it (or GBK with UTF-8 lines in it) is mixed and
    rejected: decoding it as either would store garbled text without a word.
    """
    if raw.startswith(b"\xef\xbb\xbf"):
        try:
            return raw[3:].decode("utf-8"), "utf-8-sig"
        except UnicodeDecodeError as exc:
            raise _bad_byte(
                raw,
                exc.start + 3,
                "UTF-8",
                "文件以 UTF-8 标记开头，但有字节不是 UTF-8（可能混合了其他编码的内容）",
            ) from None
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return raw.decode("utf-16"), "utf-16"
        except UnicodeDecodeError as exc:
            raise _bad_byte(
                raw, exc.start, "UTF-16", "文件以 UTF-16 标记开头，但内容不是有效的 UTF-16"
            ) from None
    try:
        return raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError as exc:
        utf8_error = exc.start
    # real UTF-8 text (two or more 3-byte characters: CJK) before the bad byte: not a GBK file
    if len(list(islice(_UTF8_3BYTE.finditer(raw, 0, utf8_error), 2))) == 2:
        raise _bad_byte(
            raw,
            utf8_error,
            "UTF-8",
            "文件前面是 UTF-8 编码，但这里的字节不是 UTF-8（可能混入了 GBK 等其他编码的内容，或文件已损坏）",
        )
    try:
        text = raw.decode("gb18030")
    except UnicodeDecodeError as exc:
        raise _bad_byte(
            raw,
            exc.start,
            "UTF-8 或 GBK/GB18030",
            "无法识别 CSV 文件的文字编码（既不是 UTF-8，也不是 GBK/GB18030）",
        ) from None
    m = _UTF8_CJK_RUN.search(raw)
    if m is not None:
        line_start = raw.rfind(b"\n", 0, m.start()) + 1
        line_end = raw.find(b"\n", m.end())
        try:
            raw[line_start : None if line_end < 0 else line_end].decode("utf-8")
        except UnicodeDecodeError:
            pass
        else:
            line, col = where_in_bytes(raw, m.start())
            gline, gcol = where_in_bytes(raw, utf8_error)
            raise Rejected(
                "encoding",
                f"文件混合了两种文字编码：第 {gline} 行是 GBK 编码，第 {line} 行（从第 {col} 个字节起）是 UTF-8 编码",
                _RESAVE_CSV,
                f"gb18030 file with a UTF-8 line at byte {m.start()}: {_excerpt(raw, m.start())}",
            )
    return text, "gb18030"


def _parse_csv(job: dict, limits: dict) -> tuple:
    import csv
    import io

    with open(job["path"], "rb") as fh:
        raw = fh.read()
    text, encoding = _decode_csv(raw)  # before pyarrow is imported: a rejection costs little
    import pyarrow as pa
    import pyarrow.compute as pc

    nul = None
    if b"\x00" in raw and encoding != "utf-16":  # kept in the cells: ingest warns per cell
        pos = raw.index(b"\x00")
        line, col = where_in_bytes(raw, pos)
        nul = {"count": raw.count(b"\x00"), "line": line, "byte": col}
    del raw
    sample = text[:65536]
    lines = sample.splitlines()[:50]
    counts = {d: sum(line.count(d) for line in lines) for d in (",", "\t", ";", "|")}
    delimiter = max(counts, key=lambda d: (counts[d], d == ","))
    if counts[delimiter] == 0:
        delimiter = ","
    asm = _Assembler(0, pa)
    chunk: list[list[str]] = []
    chunk_width = 0
    n_rows = 0  # rows up to the last non-empty one
    pending_empty = 0

    def flush() -> None:
        nonlocal chunk, chunk_width
        if chunk:
            part = [r + [""] * (chunk_width - len(r)) if len(r) < chunk_width else r for r in chunk]
            asm.add(_build_chunk(part, chunk_width, pa, pc), len(part))
            asm.width = max(asm.width, chunk_width)
        chunk, chunk_width = [], 0

    # per record: fields as written, fields up to the last non-empty one, first physical line
    field_counts, filled, first_lines = array("i"), array("i"), array("q")
    # newline="": the csv module sees every line ending as written, so a lone CR (an old Mac
    # file, or one stray CR inside an unquoted field) ends a record as it does in Excel, instead
    # of raising "new-line character seen in unquoted field"
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    last_line = 0
    for row in _csv_records(reader):
        first_line, last_line = last_line + 1, reader.line_num
        written = len(row)
        while row and row[-1] == "":
            row.pop()
        if not row:
            pending_empty += 1
            continue
        for _ in range(pending_empty):  # keep empty rows inside the data so row numbers stay right
            chunk.append([])
            field_counts.append(0)
            filled.append(0)
            first_lines.append(0)
        n_rows += pending_empty + 1
        pending_empty = 0
        chunk.append(row)
        field_counts.append(written)
        filled.append(len(row))
        first_lines.append(first_line)
        if len(row) > chunk_width:
            chunk_width = len(row)
            if chunk_width > limits["max_columns"]:
                _check_area(n_rows, chunk_width, limits, "")
        if n_rows > limits["max_rows"]:
            _check_area(n_rows, max(chunk_width, asm.width), limits, "")
        if len(chunk) >= 16384:
            flush()
    flush()
    del text
    width = asm.width
    if n_rows == 0 or width == 0:
        raise Rejected("empty", "文件中没有任何数据", "请确认选择了正确的文件。")
    _check_area(n_rows, width, limits, "")
    _emit({"event": "progress", "fraction": 0.9})
    meta = {
        "sheet": "CSV",
        "sheets": ["CSV"],
        "origin_row": 0,
        "origin_col": 0,
        "n_rows": n_rows,
        "n_cols": width,
        "merged": [],
        "encoding": encoding,
        "delimiter": delimiter,
        "nul": nul,
    }
    table = asm.table()
    for name, values, typ in (
        ("_csv.fields", field_counts, pa.int32()),
        ("_csv.filled", filled, pa.int32()),
        ("_csv.line", first_lines, pa.int64()),
    ):
        table = table.append_column(name, pa.array(memoryview(values), typ))
    return table, meta


def _csv_records(reader):
    """The reader's records; a record the csv module cannot read is refused naming its line."""
    import csv

    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            line = reader.line_num
            raise Rejected(
                "corrupt",
                f"CSV 文件第 {line} 行无法按 CSV 格式读取",
                "请检查该行的引号是否成对（字段内的引号要写成两个 \"\"），或用 Excel 打开后另存为“CSV UTF-8（逗号分隔）”再上传。",
                f"csv.Error at line {line}: {exc}",
            ) from exc
        yield row


def _peak_rss_mb() -> float:
    """This process's own peak resident size (VmHWM; ``ru_maxrss`` would include the parent's at fork)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


class _NoPandas:
    """Import hook: the worker never needs pandas; pyarrow copes with it being absent."""

    def find_spec(self, name, path=None, target=None):
        if name == "pandas" or name.startswith("pandas."):
            raise ImportError("pandas is not loaded in the parser worker")
        return None


def main() -> int:
    import gc

    gc.disable()  # short-lived, allocation-heavy: collection passes only cost time here
    sys.meta_path.insert(0, _NoPandas())  # pyarrow would import it (0.15 s) just to look for it
    job = json.loads(sys.stdin.read())
    limits = job["limits"]
    _set_limits(limits)
    try:
        if job["kind"] == "csv":
            table, meta = _parse_csv(job, limits)
        else:
            table, meta = _parse_xlsx(job, limits)
        import pyarrow as pa

        meta["worker_seconds"] = round(time.perf_counter() - _T0, 4)
        meta["worker_peak_rss_mb"] = _peak_rss_mb()
        table = table.replace_schema_metadata({"huizhi": json.dumps(meta, ensure_ascii=False)})
        with pa.OSFile(job["out"], "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table, max_chunksize=1 << 20)
        _emit({"event": "done", "meta": meta})
    except Rejected as exc:
        _emit(
            {
                "event": "rejected",
                "kind": exc.kind,
                "message": exc.message,
                "hint": exc.hint,
                "detail": str(exc.detail)[:_MAX_DETAIL],
            }
        )
    except MemoryError:
        _emit(
            {
                "event": "rejected",
                "kind": "parser_memory",
                "message": "读取文件需要的内存超过上限",
                "hint": "请删除多余的行、列和工作表，或把数据拆成几个文件分别上传。",
                "detail": "MemoryError in worker",
            }
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
