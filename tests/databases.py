"""Which store the tests run on, and uniquely named PostgreSQL databases for them.

A plain module (not conftest.py) so that any test can import it unambiguously. The databases are
made by :mod:`huizhi.testing`, the same code plugin authors' tests use.
"""

from __future__ import annotations

import os
from pathlib import Path

from huizhi.testing import DEFAULT_PG_SERVER, create_database, drop_database, test_store

__all__ = ["PG_SERVER", "create_pg_database", "drop_pg_database", "test_store"]

PG_SERVER = os.environ.get("HUIZHI_TEST_PG_URL", DEFAULT_PG_SERVER)


def create_pg_database() -> str:
    """A new database on the PostgreSQL test server, whichever store ``HUIZHI_TEST_DB`` names
    (for tests that need a server: several processes, a connector's source)."""
    return create_database(Path(), store="postgres")


def drop_pg_database(url: str) -> None:
    drop_database(url)
