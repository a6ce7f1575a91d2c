"""Find the header row and match its cells to the ledger's columns by name, not position.

Real sheets put a title (often merged across the table) and a blank line or a unit line above the
header; header cells carry stray spaces, full-width brackets, a trailing ``*`` for required, line
breaks from Alt+Enter. :func:`normalise_header` folds all that away (NFKC, all whitespace
removed, ``*`` and trailing "(必填)" / "(选填)" dropped, case folded) and :func:`find_header` picks,
among the first ``scan_rows`` rows, the one that matches the most ledger columns (by label, by any
``ColumnSpec.aliases`` entry, or by the column's ASCII ``name``); ties go to the upper row.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

from huizhi.specs import LedgerSpec

_SPACES = re.compile(r"[\s\u200b\u200c\u200d\ufeff]+")
_MARKERS = re.compile(r"(\((必填|选填|必填项|选填项|可选|非必填)\)|\*)")


def normalise_header(text: object) -> str:
    if text is None:
        return ""
    t = unicodedata.normalize("NFKC", str(text))
    t = _SPACES.sub("", t)
    t = _MARKERS.sub("", t)
    return t.casefold()


@dataclass
class HeaderMatch:
    """Result of :func:`find_header`. Indexes are 0-based positions in the raw rows/columns."""

    row: int  # index of the header row in the raw rows
    mapping: dict[str, int]  # ColumnSpec.name -> source column index
    headers: dict[int, str]  # source column index -> header text as written (stripped)
    unknown: list[int] = field(default_factory=list)  # source columns with a header that matches nothing
    duplicates: dict[str, list[int]] = field(default_factory=dict)  # spec name -> all source columns
    missing: list[str] = field(default_factory=list)  # spec names with no column


def lookup_table(spec: LedgerSpec) -> dict[str, str]:
    table: dict[str, str] = {}
    for col in spec.columns:
        for text in (col.name, *col.aliases, col.label):  # label wins over an alias that collides
            key = normalise_header(text)
            if key:
                table[key] = col.name
    return table


_UNIT_SUFFIX = re.compile(r"\([^()]*\)$")


def _lookup(table: dict[str, str], text: object) -> str | None:
    key = normalise_header(text)
    if key in table:
        return table[key]
    bare = _UNIT_SUFFIX.sub("", key)  # 金额（元） -> 金额, 面积(㎡) -> 面积
    return table.get(bare) if bare and bare != key else None


def find_header(rows: list[list[str | None]], spec: LedgerSpec) -> HeaderMatch | None:
    """``rows`` are the first rows of the sheet as text (None for empty). None if nothing matches."""
    table = lookup_table(spec)
    best_row, best_score = -1, 0
    for i, row in enumerate(rows):
        found = {name for name in (_lookup(table, v) for v in row if v) if name is not None}
        if len(found) > best_score:
            best_row, best_score = i, len(found)
            if best_score == len(spec.columns):
                break
    if best_row < 0:
        return None
    row = rows[best_row]
    mapping: dict[str, int] = {}
    headers: dict[int, str] = {}
    unknown: list[int] = []
    duplicates: dict[str, list[int]] = {}
    for j, value in enumerate(row):
        if value is None or not str(value).strip():
            continue
        headers[j] = str(value).strip()
        name = _lookup(table, value)
        if name is None:
            unknown.append(j)
        elif name in mapping:
            duplicates.setdefault(name, [mapping[name]]).append(j)
        else:
            mapping[name] = j
    missing = [c.name for c in spec.columns if c.name not in mapping]
    return HeaderMatch(best_row, mapping, headers, unknown, duplicates, missing)


_TOTAL = re.compile(r"^(合计|总计|小计|共计|总合计|合計|總計|total|sum)[:：]?", re.IGNORECASE)
_FOOTER = re.compile(
    r"^(填表人|制表人|审核人|填报人|负责人|单位负责人|制表日期|填报日期|填表日期|审核日期|备注[:：])"
)


def is_total_row(texts: list[str | None]) -> bool:
    """A trailing 合计/总计 row: its first non-empty cell starts with such a word."""
    first = next((t for t in texts if t and t.strip()), None)
    return first is not None and bool(_TOTAL.match(_SPACES.sub("", unicodedata.normalize("NFKC", first))))


def is_footer_row(texts: list[str | None]) -> bool:
    """A trailing signature line (填表人：… 审核人：…) with at most four filled cells."""
    filled = [t for t in texts if t and t.strip()]
    if not filled or len(filled) > 4:
        return False
    return bool(_FOOTER.match(_SPACES.sub("", unicodedata.normalize("NFKC", filled[0]))))
