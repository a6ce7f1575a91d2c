"""Which store the tests run on, and uniquely named PostgreSQL databases for them.

A plain module (not conftest.py) so that any test can import it unambiguously.
"""

from __future__ import annotations

import os
import uuid

import sqlalchemy as sa

PG_SERVER = os.environ.get("HUIZHI_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def test_store() -> str:
    return os.environ.get("HUIZHI_TEST_DB", "duckdb")


test_store.__test__ = False  # a helper, not a test


def _pg_admin() -> sa.Engine:
    return sa.create_engine(PG_SERVER, isolation_level="AUTOCOMMIT")


def create_pg_database() -> str:
    name = f"huizhi_test_{uuid.uuid4().hex[:12]}"
    engine = _pg_admin()
    with engine.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return sa.engine.make_url(PG_SERVER).set(database=name).render_as_string(hide_password=False)


def drop_pg_database(url: str) -> None:
    name = sa.engine.make_url(url).database
    engine = _pg_admin()
    with engine.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()
