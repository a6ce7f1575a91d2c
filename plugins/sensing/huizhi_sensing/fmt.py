"""Number formatting as Chinese readers expect it (万, 亿, percentages), the cockpit's way."""

from __future__ import annotations

from huizhi.fmt import format_number, format_percent


def fmt_count(n: int | float | None) -> str:
    """8,421 / 15.27万 / 1.2亿 (as the cockpit writes numbers)."""
    return format_number(n)


def fmt_pct(ratio: float | None, digits: int = 1) -> str:
    """A ratio (0..1) as a percentage: 0.912 → "91.2%"."""
    return format_percent(ratio, digits, fraction=True)
