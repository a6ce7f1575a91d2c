"""Test fixtures for plugin authors: a pytest plugin the host ships (entry point ``pytest11``).

Installed with huizhi, it is active in every pytest run; a plugin's own tests use it without
any conftest.py::

    from huizhi.testing import compute_tile, identity, render_page
    import huizhi_water.plugin as plugin

    def test_page(huizhi_host):
        host = huizhi_host(plugins=[("water", plugin)])
        at = render_page(host, "water", identity("staff", "swj"))
        assert not at.exception

Fixtures:

* ``huizhi_database_url``: a fresh, empty database for this test on the store named by
  ``HUIZHI_TEST_DB``: ``duckdb`` (default; a file in the test's tmp dir) or ``postgres`` (a
  uniquely named database on the server ``HUIZHI_TEST_PG_URL``, default
  ``postgresql+psycopg://postgres@127.0.0.1:5432/postgres``, created before and dropped after
  the test).
* ``huizhi_host``: builds hosts on that database, ``huizhi_host(plugins=[(name, module)],
  use_entry_points=False, **settings)``; every host is disposed after the test.

Helpers: :func:`identity` (a signed-in person of a role), :func:`render_page` (a page run in
Streamlit's AppTest, as the portal runs it), :func:`compute_tile` (a tile's query under the host),
:func:`commit_rows` (rows committed through the ledger service, as an upload would).
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import os
import threading
import uuid
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from streamlit.testing.v1 import AppTest

    from huizhi.access import Identity
    from huizhi.context import Filters
    from huizhi.host import Host
    from huizhi.models import LedgerVersion
    from huizhi.specs import TileValue

__all__ = [
    "commit_rows",
    "compute_tile",
    "create_database",
    "drop_database",
    "identity",
    "render_page",
    "test_store",
]

DEFAULT_PG_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def test_store() -> str:
    """The store the tests run on: ``HUIZHI_TEST_DB`` (``duckdb`` or ``postgres``), default duckdb."""
    store = os.environ.get("HUIZHI_TEST_DB", "duckdb")
    if store not in ("duckdb", "postgres"):
        raise ValueError(f"HUIZHI_TEST_DB={store!r}: use 'duckdb' or 'postgres'")
    return store


test_store.__test__ = False  # type: ignore[attr-defined]  # a helper pytest must not collect


def _pg_server() -> str:
    return os.environ.get("HUIZHI_TEST_PG_URL", DEFAULT_PG_SERVER)


def create_database(directory: Path, *, store: str | None = None) -> str:
    """A new empty database URL on the test store (a DuckDB file in ``directory``, or a uniquely
    named PostgreSQL database that :func:`drop_database` removes). ``store="postgres"`` asks for
    the PostgreSQL server whatever ``HUIZHI_TEST_DB`` says (a test that needs several processes)."""
    if (store or test_store()) == "duckdb":
        return f"duckdb:///{directory / f'huizhi-{uuid.uuid4().hex[:8]}.duckdb'}"
    import sqlalchemy as sa

    name = f"huizhi_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(_pg_server(), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    finally:
        admin.dispose()
    return sa.engine.make_url(_pg_server()).set(database=name).render_as_string(hide_password=False)


def drop_database(url: str) -> None:
    """Drop a PostgreSQL database made by :func:`create_database` (a DuckDB file goes with tmp)."""
    if not url.startswith("postgresql"):
        return
    import sqlalchemy as sa

    name = sa.engine.make_url(url).database
    admin = sa.create_engine(_pg_server(), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


def _huizhi_database_url(tmp_path: Path) -> Iterator[str]:
    """A fresh database for this test on the store ``HUIZHI_TEST_DB`` names."""
    url = create_database(tmp_path)
    try:
        yield url
    finally:
        drop_database(url)


def _huizhi_host(huizhi_database_url: str, tmp_path: Path) -> Iterator[Callable[..., Host]]:
    """Build hosts on this test's database: ``huizhi_host(plugins=[("water", module)])``.

    Entry points are off unless ``use_entry_points=True``, so a test sees exactly the plugins it
    names (plus the built-ins when entry points are on). Other keywords are settings
    (``strict=True``, ``access={...}``, ``departments=...``).
    """
    from huizhi.config import load_settings
    from huizhi.host import create_host

    hosts: list[Host] = []

    def build(
        *, plugins: Iterable[tuple[str, object]] = (), use_entry_points: bool = False, **settings: Any
    ) -> Host:
        loaded = load_settings({}, database_url=huizhi_database_url, data_dir=tmp_path, **settings)
        host = create_host(loaded, extra_plugins=plugins, use_entry_points=use_entry_points)
        hosts.append(host)
        return host

    yield build
    for host in hosts:
        host.dispose()


try:  # the fixtures need pytest (a test dependency); the helpers below do not (huizhi check-plugin)
    import pytest
except ImportError:  # pragma: no cover - a deployment without pytest
    pass
else:
    huizhi_database_url = pytest.fixture(_huizhi_database_url, name="huizhi_database_url")
    huizhi_host = pytest.fixture(_huizhi_host, name="huizhi_host")


_counter = itertools.count(1)


def identity(role: str, department: str | None = None, *, name: str = "测试用户") -> Identity:
    """A signed-in person holding ``role`` (``leader``, ``staff``, ``ledger_admin``,
    ``platform_admin``) for ``department`` (an id; None for the district-wide roles)."""
    from huizhi.access import Grant, Identity, Role

    subject = f"test-{role}-{department or 'district'}-{next(_counter)}"
    return Identity(subject, name, frozenset({Grant(Role(role), department)}))


def commit_rows(host: Host, ledger_id: str, rows: Any, *, who: Identity | None = None) -> LedgerVersion | None:
    """Commit ``rows`` (a DataFrame, Arrow table or list of dicts keyed by column name) as a new
    version of the ledger through the ledger service, validated like an upload; by the host's
    own identity unless ``who`` is given. Raises when a row is invalid, naming it."""
    import pandas as pd

    if isinstance(rows, list):
        rows = pd.DataFrame(rows)
    actor = who or host.system_identity("test")
    return host.ledgers.import_rows(actor, ledger_id, rows, kind="import", note="test rows")


def compute_tile(
    host: Host,
    tile_id: str,
    who: Identity,
    *,
    filters: Filters | None = None,
    today: dt.date | None = None,
) -> TileValue:
    """Run a tile's query under the host for ``who``, as the cockpit does (rows scoped to ``who``).

    Raises ``PermissionError`` when ``who`` may not see the tile (the cockpit would not list it),
    and whatever the query raises."""
    from huizhi.context import Filters

    spec, _ = host.registry.tiles[tile_id]
    if not who.allows(spec.permission, spec.department):
        raise PermissionError(f"{who.subject} may not see tile {tile_id!r} ({spec.permission})")
    pinned: dict[str, Any] = {"today": today} if today is not None else {}
    return spec.query(host.tile_context(who, tile_id, filters=filters or Filters(), **pinned))


# AppTest runs its script in a thread of this process: the script finds the host here, by key.
_PAGES_UNDER_TEST: dict[str, tuple[Host, str, Identity, dict[str, Any]]] = {}
_PAGES_LOCK = threading.Lock()


def _render_script(key: str) -> None:  # pragma: no cover - runs inside AppTest
    from huizhi.testing import _render_registered

    _render_registered(key)


def _render_registered(key: str) -> None:
    with _PAGES_LOCK:
        host, url_path, who, params = _PAGES_UNDER_TEST[key]
    spec, _ = host.registry.pages[url_path]
    spec.render(host.page_context(who, url_path, params=params))


def render_page(
    host: Host,
    url_path: str,
    who: Identity,
    params: Mapping[str, Any] | None = None,
    *,
    enforce: bool = True,
    timeout: float = 60,
) -> AppTest:
    """Render a page in Streamlit's AppTest for ``who`` with query ``params``; returns the
    AppTest to inspect (``at.exception``, ``at.metric``, ``at.dataframe``, ``at.error`` …).

    An exception in the page is in ``at.exception`` (the portal would show an error box).
    Raises ``PermissionError`` when ``who`` may not open the page (the portal would refuse it);
    ``enforce=False`` renders it anyway, to test the page's own refusal message.
    """
    from streamlit.testing.v1 import AppTest

    # the page runs "bare" (no server): Streamlit would warn about that once per render
    logging.getLogger("streamlit.runtime.scriptrunner_utils.script_run_context").setLevel(logging.ERROR)
    spec, _ = host.registry.pages[url_path]
    if enforce and not who.allows(spec.permission, spec.department):
        raise PermissionError(f"{who.subject} may not open page {url_path!r} ({spec.permission})")
    key = uuid.uuid4().hex
    with _PAGES_LOCK:
        _PAGES_UNDER_TEST[key] = (host, url_path, who, dict(params or {}))
    at = AppTest.from_function(_render_script, args=(key,), default_timeout=timeout)
    # A test may interact and run it again (at.button[0].click().run()): the page stays
    # registered for as long as its AppTest lives.
    weakref.finalize(at, _forget, key)
    return at.run()


def _forget(key: str) -> None:
    with _PAGES_LOCK:
        _PAGES_UNDER_TEST.pop(key, None)
