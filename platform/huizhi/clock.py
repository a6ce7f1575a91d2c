"""Time as the host keeps it: timestamps stored as naive UTC; dates people mean in Beijing time.

"Today" for a deadline, a reporting period or a "date in the future" check is Beijing's date:
between 00:00 and 08:00 Beijing time the UTC date is still yesterday.
"""

from __future__ import annotations

import datetime as dt

__all__ = ["BEIJING", "beijing_today", "to_beijing", "utcnow"]

BEIJING = dt.timezone(dt.timedelta(hours=8), "北京时间")  # no DST in China: a fixed offset is exact


def utcnow() -> dt.datetime:
    """Naive UTC, like every timestamp the host stores."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def beijing_today() -> dt.date:
    """Today's date in Beijing: the day deadlines, reporting periods and "not in the future" mean."""
    return dt.datetime.now(BEIJING).date()


def to_beijing(utc_naive: dt.datetime) -> dt.datetime:
    """A stored (naive UTC) timestamp as Beijing time."""
    return utc_naive.replace(tzinfo=dt.UTC).astimezone(BEIJING)
