"""Shared fixtures: every test that needs a database gets its own.

``HUIZHI_TEST_DB`` selects the store: ``duckdb`` (default, a file in the test's tmp dir) or
``postgres`` (a uniquely named database on 127.0.0.1:5432, created and dropped by the fixture;
``HUIZHI_TEST_PG_URL`` overrides the server URL). ``./dev test`` runs the suite once with each.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from databases import create_pg_database, drop_pg_database, test_store
from store_rule import store_independent

from huizhi.config import load_settings
from huizhi.host import Host, create_host


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # ./dev test runs the suite once per store; what does not depend on the store runs once.
    if not os.environ.get("HUIZHI_TEST_STORE_INDEPENDENT_DONE"):
        return
    skip = pytest.mark.skip(reason="store-independent: ran in the first store pass of ./dev test")
    sources: dict[Path, bool] = {}
    for item in items:
        if store_independent(item, sources):
            item.add_marker(skip)


@pytest.fixture
def database_url(huizhi_database_url: str) -> str:
    """This test's own database: the fixture huizhi.testing ships to plugin authors, so the host's
    tests and theirs make databases the same way."""
    return huizhi_database_url


@pytest.fixture
def make_host(huizhi_host: Callable[..., Host]) -> Callable[..., Host]:
    """Build hosts on this test's database: ``make_host(extra_plugins=[(name, module)], ...)``
    (huizhi.testing's ``huizhi_host``, which calls them ``plugins=``; disposed after the test).

    Entry points are off unless asked for, so tests see exactly the plugins they name.
    """

    def build(*, extra_plugins=(), use_entry_points: bool = False, **overrides) -> Host:
        return huizhi_host(plugins=extra_plugins, use_entry_points=use_entry_points, **overrides)

    return build


@pytest.fixture(scope="session")
def session_database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A database for the whole session, seeded with the full demo data (the browser portal's).

    The seeding host is disposed before anyone else opens it: a DuckDB file admits one process,
    and the portal runs in another.
    """
    from huizhi_seeds.loader import load_demo

    if test_store() == "postgres":
        url = create_pg_database()
    else:
        url = f"duckdb:///{tmp_path_factory.mktemp('session-db') / 'huizhi.duckdb'}"
    host = create_host(load_settings({}, database_url=url, data_dir=tmp_path_factory.mktemp("session-data")))
    try:
        load_demo(host)
    finally:
        host.dispose()
    yield url
    if test_store() == "postgres":
        drop_pg_database(url)
