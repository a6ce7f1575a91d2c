"""Browser end-to-end harness: a real OpenID provider, a real portal, Debian's Chromium.

Fixtures (all processes on 127.0.0.1, started once per test session):

``oidc``            the running ``oidc-provider-mock`` (:class:`huizhi.demo.Provider`) with
                    ``huizhi.demo.DEMO_IDENTITIES``; ``oidc.set_user(sub, claims)`` changes claims.
``portal_database_url``  the portal's ``HUIZHI_DATABASE_URL`` for the session: a parent
                    conftest's session fixture ``session_database_url`` if there is one; else env
                    ``HUIZHI_TEST_DATABASE_URL``; else per ``HUIZHI_TEST_DB`` a fresh PostgreSQL
                    database (dropped afterwards) or a fresh DuckDB file.
``start_portal``    ``start_portal(app_path, env=None) -> Portal``: a portal for any Streamlit
                    script, signing in through ``oidc``; started once per (script, env), kept up
                    for the session.
``portal``          the huizhi portal itself (``huizhi/app.py``) on ``portal_database_url``.
``browser``         Playwright's Chromium (``/usr/bin/chromium``, no network beyond loopback).
``page``            a fresh browser context (no cookies) and page per test, zh-CN, 1280x900;
                    on failure a screenshot goes to test-artifacts/browser/.
``sign_in``         ``sign_in(page, sub, portal=None)``: portal home → 登录 → the provider's own
                    form (types ``sub``, presses Authorize) → back on the portal, rendered.
``sign_out``        ``sign_out(page, portal=None)``: 退出登录 → the provider's end-session page → back.
``wait_rendered``   ``wait_rendered(page, timeout=30)``: Streamlit connected, script not running,
                    nothing loading or stale, for 1 s in a row.
``screenshot``      ``screenshot(page, path, full_page=True)``: stretches the viewport to the
                    main container's scroll height first, so a "full page" shot has everything.

Every test in this directory is marked ``browser``. The sign-in and sign-out buttons are found
by their Streamlit keys, ``login-<provider>`` and ``logout…`` (``st.button(..., key=k)`` gives the
element the class ``st-key-<k>``), else by the labels ``使用…登录`` / ``登录`` and ``退出登录``.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from harness import (
    ARTIFACTS,
    CHROMIUM,
    CHROMIUM_ARGS,
    NO_NETWORK_PROXY,
    VIEWPORT,
    screenshot,
    sign_in,
    sign_out,
    wait_rendered,
)

from huizhi import demo


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).resolve().parent
    for item in items:
        if here in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.browser)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    report = yield
    if report.when == "call":
        item.stash[_REPORT_KEY] = report
    return report


_REPORT_KEY = pytest.StashKey[pytest.TestReport]()


# ----------------------------------------------------------------------------------------------
# Processes


@pytest.fixture(scope="session")
def browser_state_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("signin")


# (name, process, log file) of every process the session started, checked before each test and
# reported with its log when a test fails: a dead portal otherwise looks like a 20 s timeout.
_CHILDREN: list[tuple[str, Any, Path | None]] = []


def _dead_children() -> list[str]:
    dead = []
    for name, process, log_file in _CHILDREN:
        code = process.poll()
        if code is not None:
            how = f"killed by signal {-code}" if code < 0 else f"exit code {code}"
            dead.append(f"{name} (pid {process.pid}) is gone: {how}\n{demo._tail(log_file)}")
    return dead


def _save_logs() -> None:
    logs = ARTIFACTS / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    for name, _, log_file in _CHILDREN:
        if log_file is not None and log_file.exists():
            safe = re.sub(r"[^\w.-]+", "_", name)
            shutil.copyfile(log_file, logs / f"{safe}.log")


@pytest.fixture(scope="session")
def oidc(browser_state_dir: Path) -> Iterator[demo.Provider]:
    log_file = browser_state_dir / "oidc-provider.log"
    with demo.oidc_provider(demo.free_port(), log_file=log_file) as provider:
        _CHILDREN.append((f"oidc-provider-mock :{provider.port}", provider.process, log_file))
        yield provider


@pytest.fixture(scope="session")
def portal_database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The portal's HUIZHI_DATABASE_URL, for the whole session (the portal process outlives tests).

    In order: a session-scoped fixture ``session_database_url`` from a parent conftest; the env
    var HUIZHI_TEST_DATABASE_URL; else by HUIZHI_TEST_DB: a fresh database on the PostgreSQL
    server HUIZHI_TEST_PG_URL (dropped at the end), or a fresh DuckDB file.
    """
    try:
        url = str(request.getfixturevalue("session_database_url"))
    except pytest.FixtureLookupError:
        url = os.environ.get("HUIZHI_TEST_DATABASE_URL", "")
    if url:
        yield url
    elif os.environ.get("HUIZHI_TEST_DB", "duckdb") == "postgres":
        import sqlalchemy as sa

        server = os.environ.get("HUIZHI_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
        name = f"huizhi_browser_{os.getpid()}_{int(time.time())}"
        admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        try:
            yield sa.engine.make_url(server).set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()
    else:
        yield f"duckdb:///{tmp_path_factory.mktemp('portal-db') / 'huizhi.duckdb'}"


@pytest.fixture(scope="session")
def start_portal(oidc: demo.Provider, browser_state_dir: Path) -> Iterator[Callable[..., demo.Portal]]:
    from contextlib import ExitStack

    running: dict[tuple[str, tuple[tuple[str, str], ...]], demo.Portal] = {}
    with ExitStack() as stack:

        def start(app_path: Path, env: Mapping[str, str] | None = None) -> demo.Portal:
            key = (str(Path(app_path).resolve()), tuple(sorted((env or {}).items())))
            if key not in running:
                port = demo.free_port()
                state = browser_state_dir / f"portal-{port}"
                secrets_file = demo.write_auth_secrets(
                    state / "auth-secrets.toml", portal_port=port, oidc_port=oidc.port
                )
                running[key] = stack.enter_context(
                    demo.portal(
                        Path(app_path),
                        port=port,
                        secrets_files=[secrets_file],
                        env=dict(env or {}),
                        log_file=state / "streamlit.log",
                        extra_args=["--server.fileWatcherType", "none", "--server.runOnSave", "false"],
                    )
                )
                _CHILDREN.append(
                    (
                        f"streamlit {Path(app_path).name} :{port}",
                        running[key].process,
                        state / "streamlit.log",
                    )
                )
            return running[key]

        yield start


@pytest.fixture(scope="session")
def portal(
    start_portal: Callable[..., demo.Portal], portal_database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> demo.Portal:
    """The huizhi portal on the session's seeded database and the demo's role mapping, with one
    deliberately broken plugin installed beside the real ones (it must show up as disabled while
    everything else works)."""
    from plugin_fixtures import BROKEN_IMPORT, install_distribution

    site = tmp_path_factory.mktemp("portal-site")
    install_distribution(site, "huizhi-broken", "huizhi_broken_plugin", BROKEN_IMPORT, entry_name="broken")
    sys.path.remove(str(site))  # installed for the portal process only, not for this one
    app = demo.default_app_path()
    # the demo's role mapping, given explicitly: without [access] the portal denies everyone
    config = demo.write_demo_config(tmp_path_factory.mktemp("portal-config") / "huizhi.toml")
    return start_portal(
        app,
        env={"HUIZHI_DATABASE_URL": portal_database_url, "PYTHONPATH": str(site), "HUIZHI_CONFIG": str(config)},
    )


# ----------------------------------------------------------------------------------------------
# Browser


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} not found: run ./dev setup (installs Debian's chromium + fonts-noto-cjk)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, proxy=NO_NETWORK_PROXY, headless=True
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    dead = _dead_children()
    if dead:
        _save_logs()
        pytest.fail("\n\n".join(dead), pytrace=False)
    context = browser.new_context(viewport=VIEWPORT, locale="zh-CN", timezone_id="Asia/Shanghai")
    context.set_default_timeout(20_000)
    page = context.new_page()
    try:
        yield page
    finally:
        report = request.node.stash.get(_REPORT_KEY, None)
        if report is not None and report.failed:
            name = re.sub(r"[^\w.-]+", "_", request.node.nodeid)[-150:]
            with contextlib.suppress(Exception):
                ARTIFACTS.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
                (ARTIFACTS / f"{name}.html").write_text(page.content(), encoding="utf-8")
            _save_logs()
            for message in _dead_children():
                print(f"\n[browser harness] {message}", file=sys.stderr)
        context.close()


# ----------------------------------------------------------------------------------------------
# The helpers as fixtures, bound to the session's provider and portal


@pytest.fixture(name="sign_in")
def sign_in_fixture(oidc: demo.Provider, request: pytest.FixtureRequest) -> Callable[..., None]:
    def _sign_in(page: Any, sub: str, portal: demo.Portal | None = None) -> None:
        sign_in(page, sub, portal or request.getfixturevalue("portal"), oidc)

    return _sign_in


@pytest.fixture(name="sign_out")
def sign_out_fixture(oidc: demo.Provider, request: pytest.FixtureRequest) -> Callable[..., None]:
    def _sign_out(page: Any, portal: demo.Portal | None = None) -> None:
        sign_out(page, portal or request.getfixturevalue("portal"), oidc)

    return _sign_out


@pytest.fixture(name="wait_rendered")
def wait_rendered_fixture() -> Callable[..., None]:
    return wait_rendered


@pytest.fixture(name="screenshot")
def screenshot_fixture() -> Callable[..., Path]:
    return screenshot
