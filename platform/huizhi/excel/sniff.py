"""Decide what an uploaded file really is, and reject what we will not parse, cheaply.

:func:`sniff` looks at the bytes, never trusting the file name alone: it reads the magic number,
and for a zip it reads only the end-of-central-directory record and the central directory (no
member is decompressed here). Rejections raise :class:`~huizhi.excel.problems.FileRejected` with a
Chinese message saying what the file is and what to do.

Accepted: an Office Open XML workbook (.xlsx, also as written by WPS and LibreOffice) and text
that is a .csv. Rejected, each with its own message: empty files, files over the size limit,
legacy .xls (OLE2), password-protected workbooks (OLE2 with ``EncryptedPackage``), macro-enabled
workbooks (``vbaProject.bin`` / macroEnabled content type / .xlsm), .xlsb, OpenDocument (.ods),
HTML or XML-2003 "fake xls" exports, Word/PowerPoint files, images, PDFs, archives, text with an
Excel extension, zips whose declared sizes or compression ratios exceed the limits (zip bombs),
zips with encrypted members or unusual compression.
"""

from __future__ import annotations

import os
import struct
import zipfile
from dataclasses import dataclass

from huizhi.excel.limits import Limits, human_bytes
from huizhi.excel.problems import FileRejected

OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")

XLSX_EXTS = {".xlsx", ".xltx"}
MACRO_EXTS = {".xlsm", ".xltm", ".xlam"}
CSV_EXTS = {".csv"}

_RESAVE = "请在 Excel 或 WPS 中打开，选择“文件 → 另存为”，保存类型选“Excel 工作簿 (*.xlsx)”，再上传。"

_BINARY_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG", "PNG 图片"),
    (b"\xff\xd8\xff", "JPEG 图片"),
    (b"GIF8", "GIF 图片"),
    (b"%PDF", "PDF 文件"),
    (b"Rar!", "RAR 压缩包"),
    (b"7z\xbc\xaf\x27\x1c", "7z 压缩包"),
    (b"\x1f\x8b", "gzip 压缩包"),
    (b"II*\x00", "TIFF 图片"),
    (b"MM\x00*", "TIFF 图片"),
    (b"RIFF", "媒体文件"),
)


@dataclass(frozen=True)
class Sniffed:
    """What :func:`sniff` found. ``kind`` is ``"xlsx"`` or ``"csv"``."""

    kind: str
    ext: str
    size: int
    uncompressed: int = 0  # declared total of the zip members (xlsx)
    members: int = 0


def _ext(file_name: str) -> str:
    return os.path.splitext(file_name or "")[1].lower()


def _reject(kind: str, message: str, hint: str, detail: str = "") -> FileRejected:
    return FileRejected(kind, message, hint, detail or kind)


def sniff(path: str, file_name: str, limits: Limits) -> Sniffed:
    """Classify the file at ``path`` (uploaded as ``file_name``) or raise :class:`FileRejected`."""
    size = os.path.getsize(path)
    ext = _ext(file_name)
    if size == 0:
        raise _reject(
            "empty",
            "文件是空的（0 字节）",
            "请确认选择了正确的文件；如果文件在 Excel 中能打开，请另存一份再上传。",
        )
    if size > limits.max_file_bytes:
        raise _reject(
            "too_large",
            f"文件太大（{human_bytes(size)}），超过上限 {human_bytes(limits.max_file_bytes)}",
            "请删除不需要的工作表、图片和空白行列后另存再上传，或把数据拆成几个文件分别上传。",
        )
    with open(path, "rb") as fh:
        head = fh.read(8192)

    if head.startswith(OLE_MAGIC):
        raise _ole_rejection(path, ext)
    if head.startswith(ZIP_MAGIC):
        return _sniff_zip(path, ext, size, limits)
    for magic, what in _BINARY_MAGIC:
        if head.startswith(magic):
            raise _reject(
                "not_spreadsheet",
                f"这是 {what}，不是表格文件" + (f"（扩展名是 {ext}，但内容不符）" if ext else ""),
                "请上传 Excel 工作簿（.xlsx）或 CSV 文件。",
            )
    return _sniff_text(head, ext, size)


def _ole_rejection(path: str, ext: str) -> FileRejected:
    with open(path, "rb") as fh:
        data = fh.read(8 * 1024 * 1024)  # directory entries live in the first sectors in practice
    if "EncryptedPackage".encode("utf-16-le") in data or "EncryptionInfo".encode("utf-16-le") in data:
        return _reject(
            "encrypted",
            "文件设置了打开密码（已加密），无法读取",
            "请在 Excel 中打开文件，选择“文件 → 信息 → 保护工作簿 → 用密码进行加密”，清空密码后保存，再上传；"
            "WPS 中为“文件 → 文档加密 → 密码加密”。",
        )
    if "Workbook".encode("utf-16-le") in data or "Book".encode("utf-16-le") in data:
        return _reject("legacy_xls", "这是旧版 Excel 97-2003 工作簿（.xls），不支持直接上传", _RESAVE)
    if "WordDocument".encode("utf-16-le") in data:
        return _reject(
            "not_spreadsheet", "这是 Word 文档，不是表格文件", "请上传 Excel 工作簿（.xlsx）或 CSV 文件。"
        )
    return _reject("legacy_xls", "这是旧版 Office 格式的文件，不支持直接上传", _RESAVE)


def _eocd_entry_count(path: str, size: int) -> int | None:
    """Entry count from the end-of-central-directory record, read without building the listing."""
    tail_len = min(size, 65536 + 22)
    with open(path, "rb") as fh:
        fh.seek(size - tail_len)
        tail = fh.read(tail_len)
    pos = tail.rfind(b"PK\x05\x06")
    if pos < 0 or pos + 22 > len(tail):
        return None
    (total,) = struct.unpack("<H", tail[pos + 10 : pos + 12])
    return total


def _sniff_zip(path: str, ext: str, size: int, limits: Limits) -> Sniffed:
    corrupt = _reject("corrupt", "文件已损坏，无法作为 Excel 工作簿打开", _RESAVE)
    count = _eocd_entry_count(path, size)
    if count is None:
        raise corrupt
    if count == 0xFFFF or count > limits.max_zip_members:
        raise _reject(
            "zip_members",
            f"文件内部包含的部件太多（{count if count != 0xFFFF else '超过 65535'} 个，上限 {limits.max_zip_members}）",
            "这不像正常的 Excel 文件。" + _RESAVE,
        )
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError, EOFError) as exc:
        raise _reject("corrupt", "文件已损坏，无法作为 Excel 工作簿打开", _RESAVE, f"bad zip: {exc}") from exc
    names = {i.filename for i in infos}
    lower = {n.lower() for n in names}

    if "mimetype" in names and any(n == "content.xml" for n in names):
        raise _reject(
            "ods",
            "这是 OpenDocument 表格（.ods），不支持直接上传",
            "请在 LibreOffice 或 WPS 中选择“文件 → 另存为”，文件类型选 Excel 2007-365 (.xlsx)，再上传。",
        )
    if any(n.startswith("word/") for n in lower):
        raise _reject(
            "not_spreadsheet", "这是 Word 文档，不是表格文件", "请上传 Excel 工作簿（.xlsx）或 CSV 文件。"
        )
    if any(n.startswith("ppt/") for n in lower):
        raise _reject(
            "not_spreadsheet",
            "这是 PowerPoint 演示文稿，不是表格文件",
            "请上传 Excel 工作簿（.xlsx）或 CSV 文件。",
        )
    if "xl/workbook.bin" in lower:
        raise _reject("xlsb", "这是 Excel 二进制工作簿（.xlsb），不支持直接上传", _RESAVE)
    if "[content_types].xml" not in lower or "xl/workbook.xml" not in lower:
        raise _reject(
            "not_spreadsheet",
            "这是一个压缩包（zip），但不是 Excel 工作簿",
            "请上传 Excel 工作簿（.xlsx）或 CSV 文件；如果是从其他系统导出的，请先用 Excel 打开再另存为 .xlsx。",
        )
    if any(n.endswith("vbaproject.bin") for n in lower) or ext in MACRO_EXTS:
        raise _reject(
            "macro",
            "这是启用宏的工作簿（.xlsm），出于安全原因不接受",
            "请在 Excel 中选择“文件 → 另存为”，保存类型选“Excel 工作簿 (*.xlsx)”（宏会被去掉，数据不变），再上传。",
        )
    if any(i.flag_bits & 0x1 for i in infos):
        raise _reject(
            "encrypted",
            "文件内部有加密的部分，无法读取",
            "请去掉文件的密码保护后另存为 .xlsx 再上传。",
        )
    total = 0
    for info in infos:
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise _reject(
                "corrupt",
                "文件使用了不支持的压缩方式，无法读取",
                _RESAVE,
                f"member {info.filename!r} uses compression {info.compress_type}",
            )
        total += info.file_size
        if info.file_size >= limits.ratio_check_min_bytes:
            ratio = info.file_size / max(info.compress_size, 1)
            if ratio > limits.max_compression_ratio:
                raise _reject(
                    "zip_bomb",
                    f"文件解压后异常膨胀（压缩比 {ratio:.0f} 倍，上限 {limits.max_compression_ratio:.0f} 倍），"
                    "可能是恶意构造的文件",
                    "正常的 Excel 文件不会这样。请确认文件来源；如果确实是正常数据，请另存为新的 .xlsx 再上传。",
                    f"member {info.filename!r}: {info.file_size} / {info.compress_size}",
                )
    if total > limits.max_uncompressed_bytes:
        raise _reject(
            "too_large_uncompressed",
            f"文件解压后太大（{human_bytes(total)}），超过上限 {human_bytes(limits.max_uncompressed_bytes)}",
            "请删除不需要的工作表和空白行列，或把数据拆成几个文件分别上传。",
        )
    return Sniffed(kind="xlsx", ext=ext, size=size, uncompressed=total, members=len(infos))


def _looks_like_text(head: bytes) -> bool:
    """Text with at most 1 % control bytes (NUL included: one stray NUL in a CSV is still text)."""
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return True  # UTF-16 text (Excel's "Unicode text")
    control = sum(1 for b in head if b < 9 or 13 < b < 27 or 27 < b < 32)
    return control <= len(head) // 100


def _first_control(head: bytes) -> str:
    """Where the first control byte is, as the user can find it: 第 L 行第 B 个字节（0x00）."""
    for pos, b in enumerate(head):
        if b < 9 or 13 < b < 27 or 27 < b < 32:
            line = head.count(b"\n", 0, pos) + 1
            col = pos - (head.rfind(b"\n", 0, pos) + 1) + 1
            return f"第 {line} 行第 {col} 个字节（0x{b:02X}）"
    return ""  # pragma: no cover - only called when there is one


def _sniff_text(head: bytes, ext: str, size: int) -> Sniffed:
    if not _looks_like_text(head):
        control = sum(1 for b in head if b < 9 or 13 < b < 27 or 27 < b < 32)
        named = (
            f"（文件开头 {len(head)} 个字节中有 {control} 个控制字符，第一个在{_first_control(head)}）"
            if ext in CSV_EXTS
            else ""
        )
        raise _reject(
            "not_spreadsheet",
            "无法识别的文件格式，不是表格文件" + (f"（扩展名是 {ext}，但内容不符）" if ext else "") + named,
            "请上传 Excel 工作簿（.xlsx）或 CSV 文件。"
            + ("如果这是 CSV，请用 Excel 打开后另存为“CSV UTF-8（逗号分隔）”再上传。" if named else ""),
        )
    probe = head.lstrip(b"\xef\xbb\xbf").lstrip().lower()
    if probe.startswith((b"<html", b"<!doctype html", b"<table", b"<meta")) or b"<html" in probe[:512]:
        raise _reject(
            "html",
            "这是网页（HTML）格式的文件，只是扩展名像 Excel（很多系统导出的“.xls”其实是网页）",
            _RESAVE,
        )
    if probe.startswith(b"<?xml") and b"urn:schemas-microsoft-com:office:spreadsheet" in head:
        raise _reject("xml2003", "这是旧版 XML 表格（Excel 2003 XML）格式，不支持直接上传", _RESAVE)
    if ext in CSV_EXTS:
        if not head.strip(b"\xef\xbb\xbf \t\r\n,;\x00\xff\xfe"):
            raise _reject("empty", "文件是空的，没有任何内容", "请确认选择了正确的文件。")
        return Sniffed(kind="csv", ext=ext, size=size)
    if ext in XLSX_EXTS | MACRO_EXTS | {".xls", ".et", ".ods", ".xlsb"}:
        raise _reject(
            "wrong_extension",
            f"文件扩展名是 {ext}，但内容是纯文本，不是 Excel 工作簿（可能是改了扩展名）",
            "如果这是 CSV 数据，请把扩展名改为 .csv 再上传；否则请用 Excel 打开后另存为 .xlsx。",
        )
    raise _reject(
        "unsupported",
        f"不支持的文件类型（{ext or '无扩展名'}）",
        "请上传 Excel 工作簿（.xlsx）或 CSV 文件（.csv）。",
    )
