"""Engine creation and schema upgrades for the one database URL the host is configured with."""

from __future__ import annotations

import logging
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).with_name("migrations")


#: what went wrong with the database, as :attr:`StoreUnavailable.kind` says it
MISSING, LOCKED, LOGIN, UNREACHABLE = "missing", "locked", "login", "unreachable"

_USER_MESSAGES = {
    # Nothing about data: a database that was never created holds none.
    MISSING: "数据库不存在或尚未创建，平台无法启动。请联系平台管理员检查数据库配置（{backend}）。",
    LOCKED: "另一个进程正在使用该数据库文件，平台无法打开它。请联系平台管理员：同一数据库文件只能由一个平台进程使用。",
    LOGIN: "数据库拒绝了平台的登录（账号或密码不正确），平台无法启动。请联系平台管理员检查数据库账号配置（{backend}）。",
    UNREACHABLE: (
        "数据库暂时无法连接，数据未丢失。请稍后刷新页面；如持续出现，请联系平台管理员检查数据库服务（{backend}）。"
    ),
}


def failure_kind(cause: BaseException) -> str:
    """Classify a driver error: ``missing`` (the database or file does not exist), ``locked``
    (a DuckDB file held by another process), ``login`` (account refused) or ``unreachable``
    (refused, timed out or lost: the data itself is where it was).

    psycopg reports connection-time failures without a sqlstate, so the server's message is read
    as well; a sqlstate is used whenever the driver gives one.
    """
    orig = getattr(cause, "orig", None) or cause
    sqlstate = str(getattr(orig, "sqlstate", None) or "")
    text = str(orig)
    if sqlstate == "3D000" or (" does not exist" in text and 'database "' in text):
        return MISSING
    if sqlstate in {"28000", "28P01"} or "password authentication failed" in text or (
        'role "' in text and " does not exist" in text
    ):
        return LOGIN
    if "Could not set lock on file" in text or "Conflicting lock is held" in text:
        return LOCKED
    if "Cannot open file" in text and "No such file or directory" in text:
        return MISSING
    return UNREACHABLE


class StoreUnavailable(RuntimeError):
    """The database cannot be used. ``kind`` says why (:func:`failure_kind`); ``user_message``
    is for the page, in Chinese, and never names the database's host, port or path."""

    def __init__(self, url: str, cause: BaseException):
        parsed = make_url(url)
        safe = parsed.render_as_string(hide_password=True)
        self.kind = failure_kind(cause)
        super().__init__(f"database {safe} is unavailable ({self.kind}): {cause}")
        self.user_message = _USER_MESSAGES[self.kind].format(backend=parsed.get_backend_name())


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
