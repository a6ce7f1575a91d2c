"""Engine creation and schema upgrades for the one database URL the host is configured with."""

from __future__ import annotations

import logging
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).with_name("migrations")


class StoreUnavailable(RuntimeError):
    """The database cannot be reached. ``user_message`` is for the page, in Chinese."""

    def __init__(self, url: str, cause: BaseException):
        safe = make_url(url).render_as_string(hide_password=True)
        super().__init__(f"database {safe} is unavailable: {cause}")
        self.user_message = (
            "数据库暂时无法连接，数据未丢失。请稍后刷新页面；如持续出现，请联系平台管理员检查数据库服务"
            f"（{make_url(url).get_backend_name()}）。"
        )


def create_db_engine(url: str) -> Engine:
    """An engine for ``url``; a DuckDB file's folder is created on first use."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "duckdb":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        # One DuckDB file allows one writing process; a pool of one connection per thread is
        # enough for Streamlit's script threads. pre_ping costs nothing here.
        engine = create_engine(url, pool_pre_ping=True)
    else:
        engine = create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)
        if parsed.get_backend_name() == "postgresql":

            @event.listens_for(engine, "connect")
            def _set_timezone(dbapi_conn, _record):  # naive timestamps are UTC everywhere
                with dbapi_conn.cursor() as cur:
                    cur.execute("SET TIME ZONE 'UTC'")
                dbapi_conn.commit()

    return engine


def check_connection(engine: Engine) -> None:
    try:
        with engine.connect() as conn:
            conn.execute(text("select 1"))
    except Exception as exc:
        raise StoreUnavailable(str(engine.url.render_as_string(hide_password=False)), exc) from exc


def alembic_config(engine: Engine):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine) -> None:
    """Bring the host's own tables to the newest migration (idempotent)."""
    from alembic import command

    command.upgrade(alembic_config(engine), "head")


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()
