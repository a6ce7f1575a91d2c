"""Submission tracking for periodic ledgers (issue 5, item 6)."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pandas as pd
from ledgerkit import admin, commit_rows
from plugin_fixtures import ASSETS, make_plugin

from huizhi.submissions import period_of, previous_period, submission_status

MONTHLY = dataclasses.replace(ASSETS, period="monthly")
ROWS = pd.DataFrame({
    "code": ["A1", "A2", "A3"],
    "owner": ["区公安分局", "区水务局", "区公安分局"],
    "street": ["兴丰街道", "瀛海镇", "旧宫镇"],
    "count": [1, 2, 3],
})


def test_periods_follow_the_calendar():
    assert period_of("monthly", dt.date(2026, 2, 14)).end == dt.date(2026, 2, 28)
    q = period_of("quarterly", dt.date(2026, 11, 24))
    assert (q.start, q.end, q.label) == (dt.date(2026, 10, 1), dt.date(2026, 12, 31), "2026年第4季度")
    assert previous_period("quarterly", dt.date(2026, 1, 5)).label == "2025年第4季度"


def test_who_has_submitted_this_period(make_host):
    host = make_host(extra_plugins=[("assets", make_plugin("assets", ledgers=[MONTHLY]))])
    today = dt.datetime.now(dt.UTC).astimezone(dt.timezone(dt.timedelta(hours=8))).date()
    commit_rows(host, "assets", ROWS, kind="seed")
    (status,) = submission_status(host, today)
    assert status.expected == ("区经济和信息化局", "区公安分局", "区水务局")  # owner first, then rows' departments
    assert status.missing == status.expected  # seed data is not a submission
    assert status.stale

    commit_rows(host, "assets", ROWS[ROWS.owner == "区公安分局"].assign(count=[5, 6]), identity=admin("gaj"))
    (status,) = submission_status(host, today)
    assert set(status.submitted) == {"区公安分局"} and not status.stale
    assert status.missing == ("区经济和信息化局", "区水务局")

    commit_rows(host, "assets", ROWS.assign(count=[9, 9, 9]), identity=admin("jxj"))
    (status,) = submission_status(host, today)
    assert status.missing == ()  # a whole-ledger upload counts for everyone

    next_month = period_of("monthly", today).end + dt.timedelta(days=1)
    (later,) = submission_status(host, next_month)
    assert later.missing == later.expected and not later.stale  # due again; last month's upload is recent
    (much_later,) = submission_status(host, next_month + dt.timedelta(days=40))
    assert much_later.stale


def test_the_tracker_keeps_its_answer_until_a_ledger_changes(make_host, monkeypatch):
    import huizhi.submissions as submissions

    host = make_host(extra_plugins=[("assets", make_plugin("assets", ledgers=[MONTHLY]))])
    today = dt.datetime.now(dt.UTC).astimezone(dt.timezone(dt.timedelta(hours=8))).date()
    commit_rows(host, "assets", ROWS, kind="seed")
    computed = []
    real = submissions.submission_status
    monkeypatch.setattr(submissions, "submission_status", lambda h, day: computed.append(day) or real(h, day))
    first = host.submissions.status(today)
    assert host.submissions.status(today) is first and computed == [today]  # the page and the tile share it
    commit_rows(host, "assets", ROWS[ROWS.owner == "区公安分局"].assign(count=[5, 6]), identity=admin("gaj"))
    (status,) = host.submissions.status(today)  # the commit's LedgerChanged event dropped it
    assert computed == [today, today] and set(status.submitted) == {"区公安分局"}
