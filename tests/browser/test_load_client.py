"""The load benchmark's browserless client against the real portal (keeps bench/load.py honest).

bench/streamlit_client.py speaks Streamlit's websocket protocol and signs people in through the
real OpenID flow without a browser; bench/load.py measures with it. Nothing else would notice
when a Streamlit release changes the protocol and the benchmark starts timing error pages, so
two leaders sign in here and each opens the cockpit and the ledger page concurrently, as one
round of the benchmark does (a few seconds; the session's portal, DuckDB or PostgreSQL).
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

import load  # noqa: E402
import streamlit_client  # noqa: E402

from huizhi import demo  # noqa: E402

SUBS = ("load-leader-1", "load-leader-2")



# packaging, docs and page text: the same on either store (tests/conftest.py)
pytestmark = pytest.mark.store_independent


def _run(coro):
    """asyncio.run in a thread of its own: Playwright's sync API (the browser tests of this session)
    keeps an event loop running in the main thread, where asyncio.run refuses to start another."""
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


def test_two_signed_in_leaders_open_cockpit_and_ledgers(portal, oidc) -> None:
    leader = demo.demo_identity("leader")
    for sub in SUBS:
        oidc.set_user(sub, leader.claims() | {"sub": sub, "preferred_username": sub})

    async def scenario():
        cookies = await load.sign_in_all(portal.url, list(SUBS))
        t0 = time.perf_counter()
        rounds = await asyncio.gather(*(load.one_round(portal.url, c, 60.0, t0) for c in cookies))
        return cookies, rounds

    cookies, rounds = _run(scenario())
    for jar in cookies:
        assert any(c.name == streamlit_client.USER_COOKIE for c in jar.jar)
    samples = [s for r in rounds for s in r]
    assert [s.page for s in samples] == ["cockpit", "ledgers"] * 2
    assert all(s.status == "ok" for s in samples), [(s.page, s.status, s.detail) for s in samples]
    summary = load.summarise(samples)
    assert summary["errors"] == 0 and summary["cockpit"]["n"] == 2 and summary["ledgers"]["n"] == 2


def test_an_anonymous_session_gets_the_sign_in_page(portal) -> None:
    """Without the identity cookie the same request draws the sign-in page, and the benchmark
    counts it as an error (it would otherwise time the sign-in page as a fast cockpit)."""

    async def scenario():
        import httpx

        session = streamlit_client.Session(portal.url, httpx.Cookies(), timeout=60)
        await session.open()
        try:
            return await session.run("cockpit")
        finally:
            await session.close()

    run = _run(scenario())
    assert run.status == "ok" and any(streamlit_client.LOGIN_KEY in wid for wid in run.buttons), run
    assert load._sample(run, run.seconds).status == "signed out"


def test_the_leader_sees_the_cockpit_not_a_refusal(portal, oidc) -> None:
    """What one cockpit run draws: the leader's name and tiles, no traceback, no error box."""
    sub = SUBS[0]
    oidc.set_user(sub, demo.demo_identity("leader").claims() | {"sub": sub})

    async def scenario():
        cookies = await streamlit_client.sign_in(portal.url, sub)
        session = streamlit_client.Session(portal.url, cookies, timeout=60)
        await session.open()
        try:
            return await session.run("cockpit")
        finally:
            await session.close()

    run = _run(scenario())
    assert run.ok and not run.error_alerts, run
    assert any("王志远" in t for t in run.texts), run.texts[:10]
    assert run.messages > 20  # tiles, not a one-line refusal
