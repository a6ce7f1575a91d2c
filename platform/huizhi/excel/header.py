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
from collections.abc import Sequence
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
    height: int = 1  # header rows: 2 for a two-level header (位置 merged over 经度 / 纬度)
    # two-level header: source column -> (parent text, first column, last column of its merge)
    parents: dict[int, tuple[str, int, int]] = field(default_factory=dict)


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


def _match_row(
    cells: list[tuple[object, ...]], table: dict[str, str]
) -> tuple[dict[str, int], dict[int, str], list[int], dict[str, list[int]]]:
    """Match one header row given, per column, the texts to try in order (the first is shown)."""
    mapping: dict[str, int] = {}
    headers: dict[int, str] = {}
    unknown: list[int] = []
    duplicates: dict[str, list[int]] = {}
    for j, tries in enumerate(cells):
        shown = next((t for t in tries if t is not None and str(t).strip()), None)
        if shown is None:
            continue
        headers[j] = str(shown).strip()
        name = next((n for n in (_lookup(table, t) for t in tries if t) if n is not None), None)
        if name is None:
            unknown.append(j)
        elif name in mapping:
            duplicates.setdefault(name, [mapping[name]]).append(j)
        else:
            mapping[name] = j
    return mapping, headers, unknown, duplicates


def _two_level(
    rows: list[list[str | None]], i: int, merged: list[tuple[int, int, int, int]]
) -> tuple[list[tuple[object, ...]], dict[int, tuple[str, int, int]]] | None:
    """Row ``i`` as the upper level of a two-level header: a cell merged across columns on row
    ``i`` with sub-headers under it on row ``i + 1``. Per column the texts to try: the
    sub-header with its parent (位置经度), the sub-header alone, then a header of row ``i``
    (a cell merged down over both rows, or written in either)."""
    if i + 1 >= len(rows):
        return None
    upper, lower = rows[i], rows[i + 1]
    width = max(len(upper), len(lower))
    spans = [(c1, c2) for r1, c1, r2, c2 in merged if r1 == i and r2 == i and c2 > c1 and c1 < width]
    parents: dict[int, tuple[str, int, int]] = {}
    for c1, c2 in spans:
        parent = upper[c1] if c1 < len(upper) else None
        if not parent or not str(parent).strip():
            continue
        for j in range(c1, min(c2, width - 1) + 1):
            if j < len(lower) and lower[j] and str(lower[j]).strip():
                parents[j] = (str(parent).strip(), c1, c2)
    if not parents:
        return None
    cells: list[tuple[object, ...]] = []
    for j in range(width):
        up = upper[j] if j < len(upper) else None
        low = lower[j] if j < len(lower) else None
        if j in parents:
            p = parents[j][0]
            cells.append((f"{p}/{str(low).strip()}", f"{p}{low}", low))
        elif j < len(upper) and any(c1 <= j <= c2 for c1, c2 in spans):
            cells.append((up if j == next(c1 for c1, c2 in spans if c1 <= j <= c2) else None,))
        else:
            cells.append((up, low))
    return cells, parents


def find_header(
    rows: list[list[str | None]], spec: LedgerSpec, merged: Sequence[tuple[int, int, int, int]] = ()
) -> HeaderMatch | None:
    """``rows`` are the first rows of the sheet as text (None for empty). None if nothing matches.

    ``merged`` are the sheet's merged ranges ``(row1, col1, row2, col2)``, 0-based in ``rows``:
    a cell merged across columns with sub-headers on the row below makes a two-level header
    (``height`` 2), matched by the sub-header under its parent.
    """
    table = lookup_table(spec)
    best_row, best_score = -1, 0
    for i, row in enumerate(rows):
        found = {name for name in (_lookup(table, v) for v in row if v) if name is not None}
        if len(found) > best_score:
            best_row, best_score = i, len(found)
            if best_score == len(spec.columns):
                break
    merged = list(merged or ())
    two: tuple | None = None
    for i in range(len(rows) - 1):
        cand = _two_level(rows, i, merged)
        if cand is None:
            continue
        mapping, headers, unknown, duplicates = _match_row(cand[0], table)
        score = len(mapping)
        # the best single row is this upper level (its merged parent has sub-headers below), or
        # the two levels match more than any single row (a title merged over the header does not)
        good = (i == best_row and score >= best_score) or score > best_score
        if good and score > 0 and (two is None or score > len(two[1][0])):
            two = (i, (mapping, headers, unknown, duplicates), cand[1])
    if two is not None:
        i, (mapping, headers, unknown, duplicates), parents = two
        missing = [c.name for c in spec.columns if c.name not in mapping]
        return HeaderMatch(i, mapping, headers, unknown, duplicates, missing, height=2, parents=parents)
    if best_row < 0:
        return None
    mapping, headers, unknown, duplicates = _match_row([(v,) for v in rows[best_row]], table)
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
