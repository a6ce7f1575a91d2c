"""Database settings: migrate on start, the connection pool, and a bounded wait when it is full."""

from __future__ import annotations

import time

import pytest
from databases import test_store

from huizhi.config import load_settings
from huizhi.db import StoreBusy, create_db_engine


def test_pool_settings_come_from_the_environment_over_the_config_file(tmp_path):
    defaults = load_settings({}, data_dir=tmp_path)
    assert (defaults.migrate, defaults.pool_size, defaults.max_overflow, defaults.pool_timeout) == (True, 5, 5, 30.0)
    config = tmp_path / "huizhi.toml"
    config.write_text("[database]\nmigrate = false\npool_size = 20\nmax_overflow = 10\npool_timeout = 5\n", encoding="utf-8")
    from_file = load_settings({"HUIZHI_CONFIG": str(config)}, data_dir=tmp_path)
    assert (from_file.migrate, from_file.pool_size, from_file.max_overflow, from_file.pool_timeout) == (False, 20, 10, 5.0)
    env = {"HUIZHI_CONFIG": str(config), "HUIZHI_MIGRATE": "1", "HUIZHI_DB_POOL_SIZE": "2",
           "HUIZHI_DB_MAX_OVERFLOW": "0", "HUIZHI_DB_POOL_TIMEOUT": "1.5"}
    over = load_settings(env, data_dir=tmp_path)
    assert (over.migrate, over.pool_size, over.max_overflow, over.pool_timeout) == (True, 2, 0, 1.5)
    assert over.pool_options == {"pool_size": 2, "max_overflow": 0, "pool_timeout": 1.5, "connect_timeout": 5.0}
    with pytest.raises(ValueError, match="HUIZHI_DB_POOL_SIZE / \\[database\\] pool_size must be a number"):
        load_settings({"HUIZHI_DB_POOL_SIZE": "many"}, data_dir=tmp_path)
    with pytest.raises(ValueError, match=">= 1"):  # SQLAlchemy would read 0 as "no limit"
        load_settings({"HUIZHI_DB_POOL_SIZE": "0"}, data_dir=tmp_path)
    with pytest.raises(ValueError, match=">= 0"):
        load_settings({"HUIZHI_DB_POOL_TIMEOUT": "-1"}, data_dir=tmp_path)


def test_server_pool_uses_the_settings():
    engine = create_db_engine("postgresql+psycopg://nobody@127.0.0.1:1/none", pool_size=3, max_overflow=2, pool_timeout=7)
    try:
        assert (engine.pool.size(), engine.pool._max_overflow, engine.pool._timeout) == (3, 2, 7)  # type: ignore[attr-defined]
    finally:
        engine.dispose()


@pytest.mark.skipif(test_store() != "postgres", reason="the pool limits apply to a database server")
def test_a_full_pool_fails_clearly_within_its_timeout(make_host):
    host = make_host(pool_size=1, max_overflow=0, pool_timeout=1)
    steward = host.system_identity("test")
    held = host.engine.connect()  # the only connection
    try:
        started = time.monotonic()
        with pytest.raises(StoreBusy) as caught:
            host.audit.search(actor=steward.subject)
        waited = time.monotonic() - started
        assert 0.9 <= waited < 2.0, waited
        assert "connection pool exhausted" in str(caught.value) and "pool_size=1, max_overflow=0" in str(caught.value)
        assert "繁忙" in caught.value.user_message and "稍后再试" in caught.value.user_message
    finally:
        held.close()
    assert host.audit.search(actor=steward.subject) == []  # free again: it works
