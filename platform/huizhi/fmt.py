"""Chinese number, percentage, date and duration formatting for pages, tiles and exports.

Part of the plugin contract: department pages and tiles format numbers the same way the cockpit
does (万 and 亿 for large numbers, thousands separators below 10,000, Beijing time for timestamps).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable

from huizhi.clock import BEIJING

__all__ = [
    "axis_ticks",
    "format_as_of",
    "format_clock",
    "format_date",
    "format_duration",
    "format_number",
    "format_percent",
    "format_value",
    "ratio",
    "scale_for",
]


def _trim(text: str) -> str:
    return text.rstrip("0").rstrip(".") if "." in text else text


def format_number(value: float | int | None, digits: int = 2) -> str:
    """Chinese large-number style: 128,456 → "12.85万", 3.2e8 → "3.2亿", 5,081 → "5,081".

    Below 10,000 numbers keep thousands separators (and at most ``digits`` decimals, trailing
    zeros dropped); from 10,000 they are given in 万, from 100,000,000 in 亿.
    """
    if value is None or (isinstance(value, float) and (math.isnan(value) or math.isinf(value))):
        return "—"
    sign = "-" if value < 0 else ""
    v = abs(float(value))
    if v >= 1e8:
        return f"{sign}{_trim(f'{v / 1e8:.{digits}f}')}亿"
    if v >= 1e4:
        return f"{sign}{_trim(f'{v / 1e4:.{digits}f}')}万"
    if v == int(v):
        return f"{sign}{int(v):,}"
    return f"{sign}{_trim(f'{v:,.{digits}f}')}"


def format_percent(value: float | None, digits: int = 1, *, fraction: bool = False) -> str:
    """A percentage: ``format_percent(91.234)`` → "91.2%"; with ``fraction=True`` 0.912 → "91.2%"."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    v = value * 100 if fraction else value
    return f"{_trim(f'{v:.{digits}f}')}%"


def format_value(value: float | None, unit: str = "") -> str:
    """A tile value with its unit: percentages (unit "%": the value is in percent) or 万/亿."""
    if value is None:
        return "—"
    if unit == "%":
        return format_percent(value)
    if unit.startswith("万") and len(unit) > 1 and abs(value) >= 1e4:  # 24,480 万元 → 2.45亿元
        return f"{format_number(value * 1e4)}{unit[1:]}"
    return f"{format_number(value)}{unit}"


def format_date(day: dt.date | None) -> str:
    """A date the Chinese way: 2026年3月1日 ("—" for None)."""
    return "—" if day is None else f"{day.year}年{day.month}月{day.day}日"


def format_duration(delta: dt.timedelta) -> str:
    """A duration in the largest sensible unit: 3天5小时, 7小时, 12分钟 (at least 1分钟)."""
    seconds = max(0, int(delta.total_seconds()))
    if seconds >= 86400:
        days, rest = divmod(seconds, 86400)
        return f"{days}天" + (f"{rest // 3600}小时" if rest >= 3600 and days < 3 else "")
    if seconds >= 3600:
        return f"{seconds // 3600}小时"
    return f"{max(1, seconds // 60)}分钟"


def format_as_of(as_of: dt.datetime | None, *, seconds: bool = False) -> str:
    """A timestamp in Beijing time with its date, e.g. "2026-11-24 21:05" ("—" for None).

    Naive values are the host's stored UTC; aware ones are converted. Every time a person reads
    (pages, captions, exports) goes through here; with ``seconds``: "2026-11-24 21:05:09"."""
    if as_of is None:
        return "—"
    aware = as_of.replace(tzinfo=dt.UTC) if as_of.tzinfo is None else as_of
    return aware.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


def format_clock(value: dt.datetime) -> str:
    """The time of day in Beijing, "21:05:09" (a wall clock; beside its date, never instead of it).

    Naive values are the host's stored UTC; aware ones are converted."""
    aware = value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value
    return aware.astimezone(BEIJING).strftime("%H:%M:%S")


def scale_for(values: Iterable[float]) -> tuple[float, str]:
    """(divisor, suffix) so a chart axis shows 万 or 亿 as :func:`format_number` writes the labels
    beside it: 亿 from 100,000,000, 万 from 10,000 (an axis to 79,974 reads 0 … 8万, not 80,000)."""
    top = max(
        (abs(v) for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))), default=0
    )
    if top >= 1e8:
        return 1e8, "亿"
    if top >= 1e4:
        return 1e4, "万"
    return 1.0, ""


def axis_ticks(top: float, divisor: float = 1.0, suffix: str = "", n: int = 5) -> tuple[list[float], list[str]]:
    """Round tick positions from 0 to at least ``top`` (both in units of ``divisor``, as
    :func:`scale_for` gives them) and their labels: ``axis_ticks(8.0, 1e4, "万")`` →
    ([0, 2, 4, 6, 8], ["0", "2万", "4万", "6万", "8万"]). Zero is written "0", never "0万";
    thousands separators below 万."""
    if not top or top <= 0 or math.isnan(top):
        return [0.0], ["0"]
    raw = top / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    count = math.ceil(top / step - 1e-9)
    values = [round(i * step, 10) for i in range(count + 1)]
    labels = ["0" if v == 0 else (f"{_trim(f'{v:.2f}')}{suffix}" if suffix else format_number(v)) for v in values]
    return values, labels


def ratio(numerator: float | None, denominator: float | None, percent: bool = True) -> float | None:
    """numerator / denominator (× 100 when ``percent``), None when the denominator is 0/None."""
    if numerator is None or not denominator:
        return None
    return numerator / denominator * (100.0 if percent else 1.0)
