"""Submission tracking: which departments have uploaded a periodic ledger this period.

A ledger that declares ``period`` ("monthly" or "quarterly") is due once per period. An upload
of the whole ledger counts for every department that holds rows in it; a department's own upload
to a district-wide ledger (see ``LedgerStore.commit(replace_scope=...)``) counts for that
department. Seed data and rollbacks are not submissions. Periods follow Beijing's calendar.
"""

from __future__ import annotations

import calendar
import datetime as dt
import json
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import sqlalchemy as sa

from huizhi import district
from huizhi.access import RowScope
from huizhi.clock import beijing_today, to_beijing

if TYPE_CHECKING:
    from huizhi.events import LedgerChanged
    from huizhi.host import Host
    from huizhi.specs import LedgerSpec



@dataclass(frozen=True)
class Period:
    start: dt.date
    end: dt.date
    label: str


def period_of(kind: str, day: dt.date) -> Period:
    if kind == "monthly":
        last = calendar.monthrange(day.year, day.month)[1]
        return Period(day.replace(day=1), day.replace(day=last), f"{day.year}年{day.month}月")
    if kind == "quarterly":
        q = (day.month - 1) // 3
        end_month = 3 * q + 3
        end = dt.date(day.year, end_month, calendar.monthrange(day.year, end_month)[1])
        return Period(dt.date(day.year, 3 * q + 1, 1), end, f"{day.year}年第{q + 1}季度")
    raise ValueError(f"unknown reporting period {kind!r}")


def previous_period(kind: str, day: dt.date) -> Period:
    return period_of(kind, period_of(kind, day).start - dt.timedelta(days=1))


@dataclass(frozen=True)
class Submission:
    """One periodic ledger's state in the current period."""

    ledger_id: str
    title: str
    owner: str  # owning department's name
    period: Period
    expected: tuple[str, ...]  # department names that owe a submission
    submitted: dict[str, dt.datetime] = field(default_factory=dict)  # name -> last upload (Beijing)
    last_upload: dt.datetime | None = None  # Beijing time
    stale: bool = False  # nothing uploaded in this period or the one before
    # when the ledger last changed in fact (any commit: upload, seed, rollback), Beijing time
    last_commit: dt.datetime | None = None
    outdated: bool = False  # not even a commit since the previous period began: may be out of date

    @property
    def missing(self) -> tuple[str, ...]:
        return tuple(d for d in self.expected if d not in self.submitted)

    @property
    def deadline(self) -> dt.date:
        """The day this period's submissions are due: its last day (Beijing)."""
        return self.period.end


def _expected_departments(host: Host, spec: LedgerSpec) -> tuple[str, ...]:
    if spec.department_column is None:
        return (district.department_name(spec.department),)
    rows = host.store.scoped_select(spec.id, RowScope(all_rows=True)).subquery()
    col = rows.c[spec.department_column]
    with host.engine.connect() as conn:
        names = {r[0] for r in conn.execute(sa.select(col).distinct()) if r[0]}
    names.add(district.department_name(spec.department))
    order = {d.name: i for i, d in enumerate(district.DEPARTMENTS)}
    return tuple(sorted(names, key=lambda n: (order.get(n, len(order)), n)))


def submission_status(host: Host, today: dt.date | None = None) -> list[Submission]:
    """Every ledger with a reporting period, as of ``today`` (Beijing; default now)."""
    today = today or beijing_today()
    result = []
    for spec, _ in host.registry.ledgers.values():
        if spec.period is None:
            continue
        period = period_of(spec.period, today)
        expected = _expected_departments(host, spec)
        uploads = [v for v in host.store.versions(spec.id) if v.kind == "upload"]
        submitted: dict[str, dt.datetime] = {}
        for version in sorted(uploads, key=lambda v: v.created_at):
            at = to_beijing(version.created_at)
            if period.start <= at.date() <= period.end:
                for name in json.loads(version.scope) if version.scope else expected:
                    submitted[name] = at
        last = to_beijing(max(v.created_at for v in uploads)) if uploads else None
        since = previous_period(spec.period, today).start
        stale = last is None or last.date() < since
        # freshness is the real commit time of any version, not the dates inside the data
        head = host.store.head(spec.id)
        committed = to_beijing(head.updated_at) if head is not None else None
        outdated = committed is None or committed.date() < since
        result.append(
            Submission(spec.id, spec.title, district.department_name(spec.department), period, expected,
                       submitted, last, stale, committed, outdated)
        )
    return result


class SubmissionTracker:
    """Submission status by day, computed once and kept until a ledger changes.

    The host owns one (``host.submissions``) and subscribes it to
    :class:`~huizhi.events.LedgerChanged`: any commit or rollback, in this process or another,
    drops what it knew. The status reads every periodic ledger's versions, so the page and the
    cockpit tile should not compute it on every redraw.
    """

    def __init__(self, host: Host):
        self._host = host
        self._known: dict[dt.date, list[Submission]] = {}
        self._lock = threading.Lock()

    def status(self, today: dt.date | None = None) -> list[Submission]:
        day = today or beijing_today()
        with self._lock:
            known = self._known.get(day)
        if known is None:
            known = submission_status(self._host, day)
            with self._lock:
                self._known = {day: known}  # one day at a time: yesterday's answer is never asked again
        return known

    def on_event(self, event: LedgerChanged) -> None:
        with self._lock:
            self._known.clear()
