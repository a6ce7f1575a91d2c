"""Engine creation and schema upgrades for the one database URL the host is configured with."""

from __future__ import annotations

import errno
import logging
from pathlib import Path

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url
from sqlalchemy.pool import QueuePool

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).with_name("migrations")

# pg_advisory_xact_lock key serialising schema changes (Alembic upgrades, ledger tables) across
# processes; advisory locks are per database, so this only orders huizhi's own starts.
SCHEMA_LOCK_KEY = 0x6875697A6869  # "huizhi"

# connection pool defaults for a database server (PostgreSQL); see Settings.pool_size
POOL_SIZE, MAX_OVERFLOW, POOL_TIMEOUT = 5, 5, 30.0
# seconds a new connection to a database server may take, TCP and the server's first answer
# included: a host that accepts and never replies must not hold a page or /readyz for minutes
CONNECT_TIMEOUT = 5.0


#: what went wrong with the database, as :attr:`StoreUnavailable.kind` says it
MISSING, LOCKED, LOGIN, UNREACHABLE = "missing", "locked", "login", "unreachable"
STORAGE = "storage"  # the database's disk is full or read-only: nothing was written

_USER_MESSAGES = {
    # Nothing about data: a database that was never created holds none.
    MISSING: "数据库不存在或尚未创建，平台无法启动。请联系平台管理员检查数据库配置（{backend}）。",
    LOCKED: "另一个进程正在使用该数据库文件，平台无法打开它。请联系平台管理员：同一数据库文件只能由一个平台进程使用。",
    LOGIN: "数据库拒绝了平台的登录（账号或密码不正确），平台无法启动。请联系平台管理员检查数据库账号配置（{backend}）。",
    UNREACHABLE: (
        "数据库暂时无法连接，数据未丢失。请稍后刷新页面；如持续出现，请联系平台管理员检查数据库服务（{backend}）。"
    ),
    STORAGE: (
        "服务器磁盘已满或数据目录不可写入，本次操作没有保存，当前版本和已有数据均未受影响。"
        "请联系平台管理员清理磁盘空间或恢复数据目录的写入权限，然后重试（{backend}）。"
    ),
}

# what the operating system says, through the driver, when a write cannot happen (ENOSPC, EFBIG,
# EROFS, EPERM on an immutable file, EACCES, EDQUOT); PostgreSQL's own "could not extend file"
_STORAGE_TEXTS = (
    "No space left on device", "File too large", "Read-only file system", "Operation not permitted",
    "Permission denied", "Disk quota exceeded", "could not extend file",
)  # fmt: skip
_STORAGE_ERRNOS = {errno.ENOSPC, errno.EFBIG, errno.EROFS, errno.EDQUOT, errno.EPERM, errno.EACCES}


def failure_kind(cause: BaseException) -> str:
    """Classify a driver error: ``missing`` (the database or file does not exist), ``locked``
    (a DuckDB file held by another process), ``login`` (account refused), ``storage`` (the disk
    is full or read-only: the write did not happen) or ``unreachable`` (refused, timed out or
    lost: the data itself is where it was).

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
    if sqlstate in {"53100", "53000"} or is_storage_failure(orig):
        return STORAGE
    return UNREACHABLE


def is_storage_failure(cause: BaseException) -> bool:
    """A write refused by the disk (full, read-only, immutable) rather than a lost connection:
    the driver's message, or an OSError of the upload's temporary copy."""
    if isinstance(cause, OSError) and cause.errno in _STORAGE_ERRNOS:
        return True
    orig = getattr(cause, "orig", None) or cause
    text = str(orig)
    return any(t in text for t in _STORAGE_TEXTS) and (
        "IO Error" in text or "write" in text.lower() or "open" in text.lower() or "extend" in text
    )


class StoreUnavailable(RuntimeError):
    """The database cannot be used. ``kind`` says why (:func:`failure_kind`); ``user_message``
    is for the page, in Chinese, and never names the database's host, port or path."""

    def __init__(self, url: str, cause: BaseException):
        parsed = make_url(url)
        safe = parsed.render_as_string(hide_password=True)
        self.kind = failure_kind(cause)
        super().__init__(f"database {safe} is unavailable ({self.kind}): {cause}")
        self.user_message = _USER_MESSAGES[self.kind].format(backend=parsed.get_backend_name())


class StoreBusy(StoreUnavailable):
    """Every pooled connection stayed checked out for ``pool_timeout`` seconds: too many requests
    at once (or connections leaked). Raised by the engine's pool instead of waiting longer."""

    def __init__(self, size: int, max_overflow: int, timeout: float, cause: BaseException):
        RuntimeError.__init__(
            self,
            f"database connection pool exhausted: all {size + max(max_overflow, 0)} connections "
            f"(pool_size={size}, max_overflow={max_overflow}) stayed busy for {timeout:g} s; "
            f"raise [database] pool_size/max_overflow or look for long requests ({cause})",
        )
        self.user_message = "平台当前访问繁忙，请稍后再试；数据未受影响。如持续出现，请联系平台管理员。"


class SchemaOutdated(StoreUnavailable):
    """The database's schema revision is not the one this program needs, and the host was told
    not to migrate (``HUIZHI_MIGRATE=0``): run ``huizhi migrate`` first."""

    def __init__(self, url: str, current: str | None, expected: str, *, newer: bool = False):
        safe = make_url(url).render_as_string(hide_password=True)
        have = current or "none (empty database)"
        if newer:
            advice = "the database is newer than this huizhi: upgrade the program on this replica"
            user = "平台程序版本旧于数据库，暂不能使用，数据未受影响。请平台管理员升级本节点的平台程序。"
        else:
            advice = "run `huizhi migrate` (back up first), then start the portal"
            user = "平台数据库尚未升级到当前版本，暂不能使用，数据未受影响。请平台管理员运行 `huizhi migrate` 后重启平台。"
        RuntimeError.__init__(
            self,
            f"database {safe} is at schema revision {have}, this huizhi needs {expected} "
            f"and starts without migrating (HUIZHI_MIGRATE=0): {advice}",
        )
        self.current, self.expected = current, expected
        self.user_message = user


class _BoundedPool(QueuePool):
    """A QueuePool whose checkout timeout raises :class:`StoreBusy` (a clear, bounded failure
    that pages and the CLI show as such) instead of SQLAlchemy's bare TimeoutError."""

    def _do_get(self):  # type: ignore[no-untyped-def]
        try:
            return super()._do_get()
        except sa_exc.TimeoutError as exc:
            raise StoreBusy(self.size(), self._max_overflow, self._timeout, exc) from exc


def create_db_engine(
    url: str,
    *,
    pool_size: int = POOL_SIZE,
    max_overflow: int = MAX_OVERFLOW,
    pool_timeout: float = POOL_TIMEOUT,
    connect_timeout: float = CONNECT_TIMEOUT,
) -> Engine:
    """An engine for ``url``; a DuckDB file's folder is created on first use.

    The pool settings apply to a database server: at most ``pool_size + max_overflow``
    connections, and a checkout that waits ``pool_timeout`` seconds raises :class:`StoreBusy`.
    A DuckDB file keeps SQLAlchemy's default pool sizes (one process, in-process connections).
    ``connect_timeout`` bounds opening a connection to PostgreSQL (psycopg applies it to the
    whole start-up exchange, not only the TCP connect).
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "duckdb":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        # One DuckDB file allows one writing process; a pool of one connection per thread is
        # enough for Streamlit's script threads. pre_ping costs nothing here.
        engine = create_engine(url, pool_pre_ping=True, poolclass=_BoundedPool, pool_timeout=pool_timeout)
    else:
        engine = create_engine(
            url,
            pool_pre_ping=True,
            poolclass=_BoundedPool,
            pool_size=pool_size,
            max_overflow=max_overflow,
            pool_timeout=pool_timeout,
            connect_args=_connect_args(parsed.get_backend_name(), connect_timeout),
        )
        if parsed.get_backend_name() == "postgresql":

            @event.listens_for(engine, "connect")
            def _set_timezone(dbapi_conn, _record):  # naive timestamps are UTC everywhere
                with dbapi_conn.cursor() as cur:
                    cur.execute("SET TIME ZONE 'UTC'")
                dbapi_conn.commit()

    return engine


def libpq_conninfo(engine: Engine) -> str:
    """The engine's URL as psycopg's connection string (no SQLAlchemy driver suffix), for the
    connections the host opens beside its pool (LISTEN/NOTIFY, the task queue)."""
    url = engine.url.set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


def _connect_args(backend: str, timeout: float) -> dict[str, object]:
    # libpq/psycopg take whole seconds; PyMySQL (tests' MariaDB connector) its own name
    if backend == "postgresql":
        return {"connect_timeout": max(1, round(timeout))}
    if backend in {"mysql", "mariadb"}:
        return {"connect_timeout": timeout}
    return {}


def check_connection(engine: Engine) -> None:
    try:
        with engine.connect() as conn:
            conn.execute(text("select 1"))
    except StoreUnavailable:
        raise
    except Exception as exc:
        raise StoreUnavailable(str(engine.url.render_as_string(hide_password=False)), exc) from exc


def alembic_config(engine: Engine):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = engine
    return cfg


def lock_schema(conn: Connection) -> None:
    """Serialise schema changes across processes, until ``conn``'s transaction ends.

    PostgreSQL: a transaction-level advisory lock (``pg_advisory_xact_lock``) with a fixed key, so
    of several processes starting at once one changes the schema and the others wait, then find
    it current. A DuckDB file admits one process: nothing to do.
    """
    if conn.dialect.name != "postgresql":
        return
    key = {"key": SCHEMA_LOCK_KEY}
    if not conn.execute(text("SELECT pg_try_advisory_xact_lock(:key)"), key).scalar():
        log.info("another process is changing the schema; waiting for it")
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), key)


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the host's own tables to ``revision`` (default the newest; idempotent).

    Runs in one transaction holding :func:`lock_schema`: processes starting together on a fresh
    PostgreSQL database upgrade one after the other instead of racing on ``alembic_version``.
    """
    from alembic import command

    cfg = alembic_config(engine)
    with engine.begin() as conn:
        lock_schema(conn)
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def _scripts():
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return ScriptDirectory.from_config(cfg)


def head_revision() -> str:
    """The newest migration this program ships."""
    head = _scripts().get_current_head()
    assert head is not None, "no migrations"
    return head


def check_schema(engine: Engine) -> None:
    """Raise :class:`SchemaOutdated` unless the database is at :func:`head_revision`."""
    current, expected = current_revision(engine), head_revision()
    if current == expected:
        return
    known = current is None or any(rev.revision == current for rev in _scripts().walk_revisions())
    raise SchemaOutdated(engine.url.render_as_string(hide_password=False), current, expected, newer=not known)


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    import huizhi.migrations  # noqa: F401 (Alembic's DuckDB dialect)

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()
