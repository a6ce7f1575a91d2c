"""Where a key of a TOML file is written: its line number.

``tomllib`` parses values but keeps no positions, and a department editing its ledger file needs
to hear "line 23", not "ledger.columns[4].pattern". :func:`key_lines` reads the source once more,
line by line, and records the line of every table header (``[ledger]``), every array-of-tables
item (``[[ledger.columns]]``, numbered from 0 in order) and every ``key = value``, as the path
tomllib's result would have (``("ledger", "columns", 4, "pattern")``).

It follows what a hand-written file contains: headers, dotted and quoted keys, multi-line arrays
and strings (their inner lines are skipped), comments. A value inside an inline table or an
array has no line of its own; :func:`line_of` then answers with the line of the nearest path
above it that has one. Only called on text tomllib has already accepted.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

Path = tuple[str | int, ...]

_BARE = re.compile(r"[A-Za-z0-9_-]+")


def _strip(line: str, state: dict[str, object]) -> str:
    """``line`` without strings and comments (so brackets and ``=`` in them do not count);
    ``state["ml"]`` carries an open multi-line string (its delimiter) to the next line."""
    out: list[str] = []
    i, n = 0, len(line)
    while i < n:
        ml = state.get("ml")
        if ml:
            end = line.find(str(ml), i)
            if end < 0:
                return "".join(out)
            i = end + 3
            state["ml"] = None
            out.append('""')
            continue
        ch = line[i]
        if ch == "#":
            break
        if line.startswith('"""', i) or line.startswith("'''", i):
            state["ml"] = line[i : i + 3]
            i += 3
            continue
        if ch in "\"'":
            j = i + 1
            while j < n and line[j] != ch:
                j += 2 if ch == '"' and line[j] == "\\" else 1
            out.append('""')
            i = j + 1
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def _split_key(text: str) -> list[str]:
    """``a."b.c".d`` -> ["a", "b.c", "d"] (quoted parts kept whole, without quotes)."""
    parts: list[str] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch in " \t.":
            i += 1
            continue
        if ch in "\"'":
            j = text.find(ch, i + 1)
            j = n if j < 0 else j
            parts.append(text[i + 1 : j])
            i = j + 1
            continue
        m = _BARE.match(text, i)
        if not m:
            break
        parts.append(m.group())
        i = m.end()
    return parts


def _key_text(line: str) -> str:
    """What comes before the first ``=`` outside quotes (quoted keys may contain ``=``)."""
    quote = ""
    for i, ch in enumerate(line):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch == "=":
            return line[:i]
    return line


def key_lines(source: str) -> dict[Path, int]:
    """Path -> 1-based line number for the headers and keys of ``source`` (see module doc)."""
    lines: dict[Path, int] = {}
    counts: dict[Path, int] = {}  # array-of-tables path -> items seen so far
    table: Path = ()
    depth = 0  # open brackets of a multi-line value
    state: dict[str, object] = {"ml": None}
    header = re.compile(r"^\s*(\[\[?)(.+?)(\]\]?)\s*(#.*)?$")

    def resolve(parts: Sequence[str]) -> Path:
        path: Path = ()
        for part in parts:
            path = (*path, part)
            if path in counts:
                path = (*path, counts[path] - 1)
        return path

    for number, raw in enumerate(source.splitlines(), 1):
        in_string = bool(state["ml"])
        code = _strip(raw, state)
        if in_string or depth > 0:
            depth += code.count("[") + code.count("{") - code.count("]") - code.count("}")
            depth = max(depth, 0)
            continue
        m = header.match(raw) if code.strip().startswith("[") else None
        if m and (m.group(1) == "[[") == (m.group(3) == "]]"):
            parts = _split_key(m.group(2))
            if m.group(1) == "[[":
                base = resolve(parts[:-1])
                array = (*base, parts[-1])
                counts[array] = counts.get(array, 0) + 1
                lines.setdefault(array, number)
                table = (*array, counts[array] - 1)
            else:
                table = resolve(parts)
            lines[table] = number
            continue
        if "=" not in code:
            continue
        value = code.split("=", 1)[1]
        parts = _split_key(_key_text(raw))
        if not parts:
            continue
        for k in range(1, len(parts) + 1):
            lines.setdefault((*table, *parts[:k]), number)
        depth = max(value.count("[") + value.count("{") - value.count("]") - value.count("}"), 0)
    return lines


def line_of(lines: dict[Path, int], path: Path) -> int | None:
    """The line of ``path``, or of the nearest enclosing path that has one (None: not found)."""
    for end in range(len(path), 0, -1):
        if path[:end] in lines:
            return lines[path[:end]]
    return None
