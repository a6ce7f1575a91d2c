"""Reading page query parameters (drill-down filters, shared links) the same way in every plugin.

The cockpit and other pages link with parameters like ``?street=兴丰街道,瀛海镇&dept=gaj``. These
helpers accept a parameter under several names, comma lists (also the full-width ，), and keep
only values a page knows, so a crafted URL can narrow a page but never inject anything.
Row-level access does not depend on them: it is applied by the host whatever the URL says.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from huizhi import district

__all__ = ["departments", "first", "flag", "text", "values"]

TRUE_WORDS = frozenset({"1", "true", "yes", "y", "on", "是"})
FALSE_WORDS = frozenset({"0", "false", "no", "n", "off", "否"})


def first(params: Mapping[str, Any], *names: str) -> Any:
    """The value of the first of ``names`` present and non-empty, else None."""
    for name in names:
        if name in params and params[name] not in (None, "", []):
            return params[name]
    return None


def values(params: Mapping[str, Any], *names: str, allowed: Iterable[str] | None = None) -> tuple[str, ...]:
    """``"a,b"``, ``["a", "b"]`` or ``"a"`` → ``("a", "b")``; with ``allowed``, unknown values are
    dropped. Order is kept, duplicates removed."""
    raw = first(params, *names)
    items = [] if raw is None else raw if isinstance(raw, list | tuple | set) else [raw]
    out = [part.strip() for item in items for part in str(item).replace("，", ",").split(",") if part.strip()]
    known = None if allowed is None else set(allowed)
    return tuple(v for v in dict.fromkeys(out) if known is None or v in known)


def departments(params: Mapping[str, Any], *names: str) -> tuple[str, ...]:
    """Department *names* from values given as names (区公安分局) or ids (gaj); unknown ones dropped."""
    found = []
    for value in values(params, *names):
        dept = district.department_by_name(value)
        if dept is None:
            try:
                dept = district.department(value)
            except KeyError:
                continue
        found.append(dept.name)
    return tuple(dict.fromkeys(found))


def flag(params: Mapping[str, Any], *names: str) -> bool | None:
    """True / False for 1/true/yes/是 and 0/false/no/否; None when absent or unclear."""
    raw = str(first(params, *names) or "").strip().lower()
    return True if raw in TRUE_WORDS else False if raw in FALSE_WORDS else None


def text(params: Mapping[str, Any], *names: str, limit: int = 100) -> str:
    """Free text from the first of ``names`` present, stripped and cut to ``limit`` characters."""
    return str(first(params, *names) or "").strip()[:limit]
