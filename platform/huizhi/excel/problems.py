"""Typed problems: everything wrong with an upload, one object per cell (or per file/column).

A :class:`Problem` says where (sheet, Excel row number, column header and letter), what was there
(``value``), what is wrong (``message``) and how to fix it (``hint``), in Chinese, for the person
who filled in the workbook. ``severity`` is ``error`` (blocks the commit) or ``warning`` (shown,
does not block). ``kind`` is a stable code (:class:`ProblemKind`) for summaries and filters.

A file that cannot be read at all (encrypted, a legacy .xls, a zip bomb, a parser crash ...) raises
:class:`FileRejected` internally; :func:`huizhi.excel.ingest` turns it into an
:class:`huizhi.excel.IngestResult` whose ``rejection`` is set and whose only problem is that one.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from enum import StrEnum


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


class ProblemKind(StrEnum):
    # whole file
    REJECTED = "rejected"
    NO_DATA = "no_data"
    TOO_MANY_PROBLEMS = "too_many_problems"
    # header
    MISSING_COLUMN = "missing_column"
    UNKNOWN_COLUMN = "unknown_column"
    DUPLICATE_COLUMN = "duplicate_column"
    # cells
    REQUIRED = "required"
    TYPE = "type"
    CHOICE = "choice"
    MIN = "min"
    MAX = "max"
    PATTERN = "pattern"
    DUPLICATE = "duplicate"
    ROW_RULE = "row_rule"
    RULE_ERROR = "rule_error"
    CONTROL_CHAR = "control_char"
    FORMULA = "formula"  # an Excel error value or a formula without a calculated result
    FIELD_COUNT = "field_count"  # a CSV row with more or fewer fields than the header
    MERGED_CELL = "merged_cell"
    # informational warnings
    TOTAL_ROW = "total_row"
    TIME_DROPPED = "time_dropped"
    SHEET_CHOICE = "sheet_choice"


KIND_LABELS: dict[str, str] = {
    "rejected": "文件无法读取",
    "no_data": "没有数据",
    "too_many_problems": "问题过多",
    "missing_column": "缺少列",
    "unknown_column": "多余的列",
    "duplicate_column": "重复的列",
    "required": "必填为空",
    "type": "类型不对",
    "choice": "不在可选值中",
    "min": "小于最小值",
    "max": "大于最大值",
    "pattern": "格式不对",
    "duplicate": "重复",
    "row_rule": "不符合规则",
    "rule_error": "规则出错",
    "control_char": "控制字符",
    "formula": "公式无结果",
    "field_count": "字段数不对",
    "merged_cell": "合并单元格",
    "total_row": "合计行",
    "time_dropped": "时间被忽略",
    "sheet_choice": "读取的工作表",
}

SEVERITY_LABELS = {"error": "错误", "warning": "提醒"}


@dataclass(frozen=True)
class Problem:
    """One problem in an upload. ``row`` is the row number as Excel shows it (1-based).

    ``column`` is the ledger column's ``ColumnSpec.name``; ``header`` is the header text as
    written in the file (or the column's label when the column is missing); ``column_letter`` is
    Excel's letter (``"C"``). File-level problems have ``row``/``column`` of ``None``.
    ``rule`` names the plugin's :class:`huizhi.specs.RowCheck` for ``row_rule`` problems.
    """

    severity: str
    kind: str
    message: str
    hint: str
    sheet: str | None = None
    row: int | None = None
    column: str | None = None
    header: str | None = None
    column_letter: str | None = None
    value: str | None = None
    rule: str | None = None

    @property
    def cell(self) -> str | None:
        """``"C12"`` or ``None``."""
        if self.row is None or self.column_letter is None:
            return None
        return f"{self.column_letter}{self.row}"

    def text(self) -> str:
        """One line for logs, notes and tests: ``C12 「数量」: 不是整数（abc）。请填写……``."""
        where = self.cell or (f"第 {self.row} 行" if self.row else "")
        col = f"「{self.header}」" if self.header else ""
        val = f"（{self.value}）" if self.value not in (None, "") else ""
        prefix = f"{where} {col}".strip()
        return (f"{prefix}: " if prefix else "") + f"{self.message}{val}。{self.hint}"


PROBLEM_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(Problem))


class FileRejected(Exception):
    """The file cannot be read at all. ``message``/``hint`` are Chinese for the uploader."""

    def __init__(self, kind: str, message: str, hint: str, detail: str = ""):
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.hint = hint
        self.detail = detail  # English, for logs

    def __reduce__(self):  # a queued upload's outcome is pickled: the default would call cls(message)
        return (type(self), (self.kind, self.message, self.hint, self.detail))

    def problem(self) -> Problem:
        return Problem(
            severity=Severity.ERROR, kind=ProblemKind.REJECTED, message=self.message, hint=self.hint
        )

    def to_dict(self) -> dict:
        return {"kind": self.kind, "message": self.message, "hint": self.hint, "detail": self.detail}


def column_letter(index: int) -> str:
    """0 -> ``A``, 25 -> ``Z``, 26 -> ``AA``, 16383 -> ``XFD``."""
    index += 1
    out = ""
    while index:
        index, rem = divmod(index - 1, 26)
        out = chr(65 + rem) + out
    return out


def column_index(letters: str) -> int:
    """``A`` -> 0, ``XFD`` -> 16383."""
    n = 0
    for ch in letters.upper():
        n = n * 26 + (ord(ch) - 64)
    return n - 1
