"""Connectors (issue 9): granted per department, every refusal audited, closed with the host, and
the SQL connector read-only in fact on each backend it supports.

Real parts only: the SQL tests run against a PostgreSQL and a MariaDB database created and
dropped per test (uniquely named), and DuckDB and SQLite files in tmp_path. Each write is tried
twice: through ``query()`` (refused by the statement check) and straight on the connector's engine
(past that check, as a plugin reaching into the object could), where the database itself must
refuse it. After each attempt the table is read back through a separate, writable connection.
"""

from __future__ import annotations

import json
import os
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
import sqlalchemy as sa
from databases import create_pg_database, drop_pg_database
from plugin_fixtures import make_plugin, page

import huizhi_connectors.plugin as builtin_connectors
from huizhi.access import AccessDenied, Grant, Identity, Role
from huizhi.district import DAXING
from huizhi.host import Host, check_connector_config
from huizhi.specs import ConnectorSpec, Perm
from huizhi_connectors.files import FilesConnection
from huizhi_connectors.sql import ReadOnlyError, SQLConnection, check_read_only

MARIADB_SERVER = os.environ.get("HUIZHI_TEST_MARIADB_URL", "mysql+pymysql://root@127.0.0.1:3306/")

SEED = [("d1", "黄村镇", 3), ("d2", "西红门镇", 5), ("d3", "黄村镇", 7)]


# --- databases to read -------------------------------------------------------------------------


def _seed(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE devices (code VARCHAR(20) PRIMARY KEY, street VARCHAR(50), n INTEGER)"))
        conn.execute(sa.text("INSERT INTO devices VALUES (:c, :s, :n)"), [dict(zip("csn", r, strict=True)) for r in SEED])


def _mariadb_admin() -> sa.Engine:
    engine = sa.create_engine(MARIADB_SERVER, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect():
            pass
    except sa.exc.OperationalError as exc:
        engine.dispose()
        if "HUIZHI_TEST_MARIADB_URL" in os.environ:  # ./dev test started it: its absence is a failure
            raise
        pytest.skip(f"no MariaDB at {MARIADB_SERVER} ({exc.orig}); ./dev test starts one")
    return engine


@pytest.fixture
def postgresql_source() -> Iterator[str]:
    url = create_pg_database()
    try:
        writer = sa.create_engine(url)
        _seed(writer)
        writer.dispose()
        yield url
    finally:
        drop_pg_database(url)


@pytest.fixture
def mariadb_source() -> Iterator[str]:
    admin = _mariadb_admin()
    name = f"huizhi_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE `{name}`"))
    url = sa.make_url(MARIADB_SERVER).set(database=name).render_as_string(hide_password=False)
    try:
        writer = sa.create_engine(url)
        _seed(writer)
        writer.dispose()
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS `{name}`"))
        admin.dispose()


@pytest.fixture
def duckdb_source(tmp_path: Path) -> str:
    path = tmp_path / "dept.duckdb"
    writer = sa.create_engine(f"duckdb:///{path}")
    _seed(writer)
    writer.dispose()
    return f"duckdb:///{path}"


@pytest.fixture
def sqlite_source(tmp_path: Path) -> str:
    path = tmp_path / "dept.sqlite"
    writer = sa.create_engine(f"sqlite:///{path}")
    _seed(writer)
    writer.dispose()
    return f"sqlite:///{path}"


BACKENDS = [
    pytest.param("postgresql", marks=pytest.mark.postgres),
    pytest.param("mariadb", marks=pytest.mark.mariadb),
    "duckdb",
    "sqlite",
]


@pytest.fixture(params=BACKENDS)
def source(request: pytest.FixtureRequest) -> str:
    """The URL of a seeded database of each backend (one test per backend)."""
    return request.getfixturevalue(f"{request.param}_source")


@pytest.fixture
def sql(source: str) -> Iterator[SQLConnection]:
    conn = SQLConnection.from_config({"url": source, "statement_timeout": 5})
    yield conn
    conn.close()


def _table_as_written(url: str) -> list[tuple[Any, ...]]:
    """The table read back through a fresh writable connection (the connector's is closed first
    by the caller on DuckDB, which admits one configuration per file in a process)."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text("SELECT code, street, n FROM devices ORDER BY code"))]
    finally:
        engine.dispose()


def _tables(url: str) -> set[str]:
    engine = sa.create_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


WRITES = {
    "insert": "INSERT INTO devices (code, street, n) VALUES ('d9', '旧宫镇', 1)",
    "update": "UPDATE devices SET n = 0",
    "delete": "DELETE FROM devices",
    "create": "CREATE TABLE stolen (a INTEGER)",
}


# --- the SQL connector -------------------------------------------------------------------------


def test_select_with_bound_parameters(sql: SQLConnection) -> None:
    frame = sql.query(sa.text("SELECT code, n FROM devices WHERE street = :street ORDER BY code"), street="黄村镇")
    assert list(frame.columns) == ["code", "n"]
    assert frame.to_dict("records") == [{"code": "d1", "n": 3}, {"code": "d3", "n": 7}]
    rows = sql.rows(sa.text("WITH t AS (SELECT n FROM devices) SELECT SUM(n) AS total FROM t WHERE n > :min"), min=4)
    assert [tuple(r) for r in rows] == [(12,)]
    # the parameter is bound, not spliced in: a quote in it is data
    assert sql.rows(sa.text("SELECT code FROM devices WHERE street = :s"), s="黄村镇' OR '1'='1") == []


@pytest.mark.parametrize("kind", sorted(WRITES))
def test_writes_are_refused_by_query(sql: SQLConnection, source: str, kind: str) -> None:
    with pytest.raises(ReadOnlyError, match=f"read-only.*not {kind.upper()}"):
        sql.query(sa.text(WRITES[kind]))
    sql.close()
    assert _table_as_written(source) == SEED
    assert "stolen" not in _tables(source)


@pytest.mark.parametrize("kind", sorted(WRITES))
def test_the_database_refuses_writes_past_the_statement_check(sql: SQLConnection, source: str, kind: str) -> None:
    """The session is read-only at the database: a write sent on the connector's own engine,
    committed, still fails there."""
    with pytest.raises(sa.exc.DBAPIError, match=r"(?i)read[- ]?only"), sql._engine.begin() as conn:
        conn.execute(sa.text(WRITES[kind]))
    sql.close()
    assert _table_as_written(source) == SEED
    assert "stolen" not in _tables(source)


def test_a_second_statement_is_refused(sql: SQLConnection, source: str) -> None:
    with pytest.raises(ReadOnlyError, match="one statement"):
        sql.query(sa.text("SELECT 1; DELETE FROM devices"))
    with pytest.raises(ReadOnlyError, match="one statement"):
        sql.query(sa.text("SELECT 1 /* ; */ ; COMMIT"))
    sql.close()
    assert _table_as_written(source) == SEED


@pytest.mark.parametrize("statement", [
    "  -- a comment\n  /* and another */ (SELECT 1 AS one);",
    "select 1 as one",
])
def test_the_statement_check_allows_selects(statement: str) -> None:
    check_read_only(statement)


@pytest.mark.parametrize("statement", [
    "SET SESSION TRANSACTION READ WRITE", "PRAGMA query_only = OFF", "ATTACH 'x.db' AS x", "COMMIT",
    "/* SELECT */ DROP TABLE devices", "", "EXPLAIN ANALYZE DELETE FROM devices", "COPY devices TO '/tmp/x'",
])
def test_the_statement_check_refuses_everything_else(statement: str) -> None:
    with pytest.raises(ReadOnlyError, match="read-only"):
        check_read_only(statement)


@pytest.mark.postgres
def test_postgres_refuses_a_write_hidden_in_a_with(postgresql_source: str) -> None:
    sql = SQLConnection.from_config({"url": postgresql_source})
    with pytest.raises(sa.exc.DBAPIError, match="read-only transaction"):
        sql.query(sa.text("WITH gone AS (DELETE FROM devices RETURNING code) SELECT count(*) FROM gone"))
    sql.close()
    assert _table_as_written(postgresql_source) == SEED


@pytest.mark.postgres
def test_postgres_a_session_setting_does_not_outlive_its_query(postgresql_source: str) -> None:
    """``SELECT set_config(...)`` passes the statement check and turns the session's read-only
    default off; the query's transaction is rolled back, and the setting with it."""
    sql = SQLConnection.from_config({"url": postgresql_source})
    assert sql.rows(sa.text("SELECT set_config('default_transaction_read_only', 'off', false)")) == [("off",)]
    assert sql.rows(sa.text("SELECT current_setting('default_transaction_read_only')")) == [("on",)]
    with pytest.raises(sa.exc.DBAPIError, match="read-only transaction"):
        sql.query(sa.text("WITH added AS (INSERT INTO devices VALUES ('d9', 'x', 1) RETURNING code) SELECT * FROM added"))
    sql.close()
    assert _table_as_written(postgresql_source) == SEED


def test_duckdb_cannot_attach_or_copy_out(duckdb_source: str, tmp_path: Path) -> None:
    """Past the statement check, a DuckDB connection cannot reach another (writable) file."""
    sql = SQLConnection.from_config({"url": duckdb_source})
    with sql._engine.connect() as conn:
        for statement in (f"ATTACH '{tmp_path / 'other.duckdb'}' AS other", f"COPY devices TO '{tmp_path / 'out.csv'}'"):
            with pytest.raises(sa.exc.DBAPIError, match="disabled by configuration"):
                conn.execute(sa.text(statement))
            conn.rollback()
        with pytest.raises(sa.exc.DBAPIError, match="locked"):
            conn.execute(sa.text("SET enable_external_access = true"))
    sql.close()
    assert not (tmp_path / "other.duckdb").exists() and not (tmp_path / "out.csv").exists()


def test_sqlite_attached_databases_are_read_only_too(sqlite_source: str, tmp_path: Path) -> None:
    other = tmp_path / "other.sqlite"
    sqlite3.connect(other).close()
    sql = SQLConnection.from_config({"url": sqlite_source})
    with sql._engine.connect() as conn:
        conn.execute(sa.text(f"ATTACH DATABASE '{other}' AS other"))
        with pytest.raises(sa.exc.DBAPIError, match="readonly"):
            conn.execute(sa.text("CREATE TABLE other.stolen (a INTEGER)"))
    sql.close()
    assert sqlite3.connect(other).execute("SELECT count(*) FROM sqlite_master").fetchone() == (0,)


@pytest.mark.postgres
def test_statement_timeout_postgres(postgresql_source: str) -> None:
    sql = SQLConnection.from_config({"url": postgresql_source, "statement_timeout": 0.3})
    with pytest.raises(sa.exc.OperationalError, match="statement timeout"):
        sql.rows(sa.text("SELECT pg_sleep(3)"))
    sql.close()


@pytest.mark.mariadb
def test_statement_timeout_mariadb(mariadb_source: str) -> None:
    sql = SQLConnection.from_config({"url": mariadb_source, "statement_timeout": 0.3})
    with pytest.raises(sa.exc.OperationalError, match="max_statement_time"):
        sql.rows(sa.text("SELECT SLEEP(3)"))
    sql.close()


def test_configuration_is_checked() -> None:
    with pytest.raises(ValueError, match="no read-only setting is known for 'mssql'"):
        SQLConnection.from_config({"url": "mssql+pyodbc://user@server/db"})
    with pytest.raises(ValueError, match="unknown configuration keys statment_timeout"):
        SQLConnection.from_config({"url": "sqlite:///x.db", "statment_timeout": 1})
    with pytest.raises(ValueError, match="needs 'url'"):
        SQLConnection.from_config({})
    with pytest.raises(ValueError, match="database file"):
        SQLConnection.from_config({"url": "sqlite://"})


def test_a_missing_sqlite_file_is_not_created(tmp_path: Path) -> None:
    sql = SQLConnection.from_config({"url": f"sqlite:///{tmp_path / 'typo.sqlite'}"})
    with pytest.raises(sa.exc.OperationalError):
        sql.rows(sa.text("SELECT 1"))
    sql.close()
    assert not (tmp_path / "typo.sqlite").exists()


# --- grants --------------------------------------------------------------------------------------


def person(*grants: tuple[Role, str | None], name: str = "测试用户") -> Identity:
    return Identity(subject=f"test|{uuid.uuid4().hex[:8]}", name=name,
                    grants=frozenset(Grant(role, dept) for role, dept in grants))


JXJ_STAFF = person((Role.STAFF, "jxj"), name="经信局职员")
GAJ_STAFF = person((Role.STAFF, "gaj"), name="公安分局职员")
LEADER = person((Role.LEADER, None), name="区领导")
PLATFORM_ADMIN = person((Role.PLATFORM_ADMIN, None), name="平台管理员")


def connector_plugin(name: str, department: str | None, *specs: ConnectorSpec, url_path: str | None = None):
    pages = [page(url_path or f"{name}-page", department=department)]
    return make_plugin(name, department=department, pages=pages, huizhi_connectors=lambda: list(specs))


def sql_spec(url: str, connector_id: str = "jxj_db", **kw: Any) -> ConnectorSpec:
    return ConnectorSpec(connector_id, "经信局业务库", lambda config: SQLConnection.from_config({"url": url, **config}),
                         kind="sql", **kw)


def denials(host: Host, connector_id: str) -> list[dict[str, Any]]:
    events = host.audit.search(action="access.denied", text=f"connector:{connector_id}")
    return [{"actor": e.actor, "target": e.target, "outcome": e.outcome, **json.loads(e.detail)} for e in events]


@pytest.fixture
def jxj_host(make_host: Callable[..., Host], sqlite_source: str) -> Host:
    """jxj's plugin declares a SQL connector; gaj's plugin declares none."""
    return make_host(extra_plugins=[
        ("jxj_plugin", connector_plugin("jxj_plugin", "jxj", sql_spec(sqlite_source))),
        ("gaj_plugin", connector_plugin("gaj_plugin", "gaj")),
    ])


def test_the_declaring_department_uses_its_connector(jxj_host: Host) -> None:
    ctx = jxj_host.page_context(JXJ_STAFF, "jxj_plugin-page")
    conn = ctx.connector("jxj_db")
    assert conn.rows(sa.text("SELECT count(*) FROM devices")) == [(3,)]
    assert ctx.connector("jxj_db") is conn  # built once, cached by the host
    # leaders read every department: through jxj's own page they may use it too
    assert jxj_host.page_context(LEADER, "jxj_plugin-page").connector("jxj_db") is conn
    assert denials(jxj_host, "jxj_db") == []


def test_another_departments_plugin_is_refused_and_audited(jxj_host: Host) -> None:
    ctx = jxj_host.page_context(GAJ_STAFF, "gaj_plugin-page")
    with pytest.raises(AccessDenied) as refused:
        ctx.connector("jxj_db")
    assert "经信局业务库" in refused.value.user_message and "插件未获准" in refused.value.user_message
    [event] = denials(jxj_host, "jxj_db")
    assert event == {"actor": GAJ_STAFF.subject, "target": "connector:jxj_db", "outcome": "denied",
                     "plugin": "gaj_plugin", "how": "connector", "refused": "plugin", "granted": ["jxj"]}
    # a leader does not make another department's plugin a grantee either
    with pytest.raises(AccessDenied):
        jxj_host.page_context(LEADER, "gaj_plugin-page").connector("jxj_db")
    assert len(denials(jxj_host, "jxj_db")) == 2
    assert jxj_host._connections == {}  # nothing was built for a refused caller


@pytest.mark.parametrize("who", [GAJ_STAFF, PLATFORM_ADMIN, person()], ids=["other-staff", "platform-admin", "no-role"])
def test_an_identity_without_the_permission_is_refused_and_audited(jxj_host: Host, who: Identity) -> None:
    ctx = jxj_host.page_context(who, "jxj_plugin-page")
    with pytest.raises(AccessDenied) as refused:
        ctx.connector("jxj_db")
    assert refused.value.user_message.startswith("您没有使用数据连接“经信局业务库”的权限")
    [event] = denials(jxj_host, "jxj_db")
    assert (event["actor"], event["plugin"], event["refused"], event["how"]) == (who.subject, "jxj_plugin", "identity", "connector")


def test_a_tile_context_is_checked_the_same_way(make_host: Callable[..., Host], sqlite_source: str) -> None:
    from plugin_fixtures import tile

    plugin = make_plugin("jxj_plugin", department="jxj", tiles=[tile("jxj_tile")],
                         huizhi_connectors=lambda: [sql_spec(sqlite_source)])
    host = make_host(extra_plugins=[("jxj_plugin", plugin)])
    assert host.tile_context(JXJ_STAFF, "jxj_tile").connector("jxj_db").rows(sa.text("SELECT 1")) == [(1,)]
    with pytest.raises(AccessDenied):
        host.tile_context(GAJ_STAFF, "jxj_tile").connector("jxj_db")
    assert [e["refused"] for e in denials(host, "jxj_db")] == ["identity"]


def test_declared_departments_widen_the_grant(make_host: Callable[..., Host], sqlite_source: str) -> None:
    spec = sql_spec(sqlite_source, departments=("jxj", "gaj"))
    host = make_host(extra_plugins=[
        ("jxj_plugin", connector_plugin("jxj_plugin", "jxj", spec)),
        ("gaj_plugin", connector_plugin("gaj_plugin", "gaj")),
        ("swj_plugin", connector_plugin("swj_plugin", "swj")),
    ])
    assert host.page_context(GAJ_STAFF, "gaj_plugin-page").connector("jxj_db").rows(sa.text("SELECT 1")) == [(1,)]
    with pytest.raises(AccessDenied):
        host.page_context(person((Role.STAFF, "swj")), "swj_plugin-page").connector("jxj_db")
    assert [e["plugin"] for e in denials(host, "jxj_db")] == ["swj_plugin"]


def test_the_permission_is_the_connectors(make_host: Callable[..., Host], sqlite_source: str) -> None:
    """A connector that needs LEDGER_UPLOAD: staff are refused, the department's ledger admin is not."""
    spec = sql_spec(sqlite_source, permission=Perm.LEDGER_UPLOAD)
    host = make_host(extra_plugins=[("jxj_plugin", connector_plugin("jxj_plugin", "jxj", spec))])
    with pytest.raises(AccessDenied):
        host.page_context(JXJ_STAFF, "jxj_plugin-page").connector("jxj_db")
    admin = person((Role.LEDGER_ADMIN, "jxj"))
    assert host.page_context(admin, "jxj_plugin-page").connector("jxj_db").rows(sa.text("SELECT 1")) == [(1,)]


def test_builtin_connectors_are_granted_by_configuration(make_host: Callable[..., Host], sqlite_source: str) -> None:
    """The built-in ``sql`` connector is declared by a plugin without a department: nobody may
    use it until ``[connectors.sql] departments`` names some (and that key is the host's, not
    passed to the connection, whose configuration check would refuse it)."""
    plugins = [("builtin_connectors", builtin_connectors), ("jxj_plugin", connector_plugin("jxj_plugin", "jxj"))]
    closed = make_host(extra_plugins=plugins, connectors={"sql": {"url": sqlite_source}})
    with pytest.raises(AccessDenied):
        closed.page_context(LEADER, "jxj_plugin-page").connector("sql")
    assert [e["refused"] for e in denials(closed, "sql")] == ["plugin"]

    granted = make_host(extra_plugins=plugins, connectors={"sql": {"url": sqlite_source, "departments": ["jxj"]}})
    conn = granted.page_context(JXJ_STAFF, "jxj_plugin-page").connector("sql")
    assert isinstance(conn, SQLConnection) and conn.rows(sa.text("SELECT count(*) FROM devices")) == [(3,)]
    with pytest.raises(AccessDenied):
        granted.page_context(GAJ_STAFF, "jxj_plugin-page").connector("sql")


def test_files_connector_granted_the_same_way(make_host: Callable[..., Host], tmp_path: Path) -> None:
    (tmp_path / "share").mkdir()
    (tmp_path / "share" / "a.csv").write_text("x\n1\n", encoding="utf-8")
    host = make_host(
        extra_plugins=[("builtin_connectors", builtin_connectors),
                       ("jxj_plugin", connector_plugin("jxj_plugin", "jxj")),
                       ("gaj_plugin", connector_plugin("gaj_plugin", "gaj"))],
        connectors={"files": {"root": str(tmp_path / "share"), "departments": ["jxj"]}},
    )
    files = host.page_context(JXJ_STAFF, "jxj_plugin-page").connector("files")
    assert isinstance(files, FilesConnection) and files.list() == ["a.csv"]
    with pytest.raises(AccessDenied):
        host.page_context(GAJ_STAFF, "gaj_plugin-page").connector("files")
    with pytest.raises(AccessDenied):
        host.page_context(GAJ_STAFF, "gaj_plugin-page").connector("rest")
    assert {e.target for e in host.audit.search(action="access.denied")} == {"connector:files", "connector:rest"}


def test_configured_departments_are_checked(make_host: Callable[..., Host], sqlite_source: str) -> None:
    assert check_connector_config({"sql": {"departments": ["jxj", "nope"]}}, DAXING) == [
        "[connectors.sql] departments: unknown department id 'nope' (known: "
        + ", ".join(DAXING.ids()) + ")"
    ]
    assert check_connector_config({"sql": {"departments": "jxj"}}, DAXING) == [
        "[connectors.sql] departments must be a list of department ids"
    ]
    assert check_connector_config({"sql": {"url": "x", "departments": ["jxj"]}, "rest": {}}, DAXING) == []
    host = make_host(extra_plugins=[("builtin_connectors", builtin_connectors),
                                    ("jxj_plugin", connector_plugin("jxj_plugin", "jxj"))],
                     connectors={"sql": {"url": sqlite_source, "departments": ["jxj", "nope"]}})
    with pytest.raises(ValueError, match="unknown department id 'nope'"):
        host.page_context(JXJ_STAFF, "jxj_plugin-page").connector("sql")


@pytest.mark.parametrize(("departments", "reason"), [
    (("jxj", "nope"), "unknown department id 'nope'"),
    ("jxj", "departments must be a tuple"),
])
def test_declared_departments_are_checked_at_load(make_host: Callable[..., Host], departments: Any, reason: str) -> None:
    spec = ConnectorSpec("jxj_db", "经信局业务库", lambda config: None, departments=departments)
    host = make_host(extra_plugins=[("jxj_plugin", connector_plugin("jxj_plugin", "jxj", spec))])
    record = host.registry.plugins["jxj_plugin"]
    assert record.status == "disabled" and reason in record.reason
    assert "jxj_db" not in host.registry.connectors


def test_an_unknown_connector_names_the_plugin(jxj_host: Host) -> None:
    with pytest.raises(LookupError, match=r"plugin 'gaj_plugin' asked for connector 'nope'.*declared: jxj_db"):
        jxj_host.page_context(GAJ_STAFF, "gaj_plugin-page").connector("nope")


# --- closing -------------------------------------------------------------------------------------


def test_dispose_closes_every_cached_connection(make_host: Callable[..., Host], duckdb_source: str) -> None:
    """DuckDB admits one configuration per file within a process: while the connector holds the
    file read-only, it cannot be opened for writing here; after the host is disposed it can."""
    path = sa.make_url(duckdb_source).database
    host = make_host(extra_plugins=[("jxj_plugin", connector_plugin("jxj_plugin", "jxj", sql_spec(duckdb_source)))])
    host.page_context(JXJ_STAFF, "jxj_plugin-page").connector("jxj_db").rows(sa.text("SELECT 1"))
    with pytest.raises(duckdb.Error):
        duckdb.connect(path).close()
    host.dispose()
    assert host._connections == {}
    duckdb.connect(path).close()


class _Recorder:
    """A plugin's own connection type (plugins may return any object with a close())."""

    def __init__(self, log: list[str], name: str, fail: bool = False):
        self.log, self.name, self.fail = log, name, fail

    def close(self) -> None:
        self.log.append(self.name)
        if self.fail:
            raise RuntimeError("cannot close")


def test_one_failing_close_does_not_stop_the_others(make_host: Callable[..., Host]) -> None:
    closed: list[str] = []
    specs = [
        ConnectorSpec("first", "甲", lambda config: _Recorder(closed, "first", fail=True)),
        ConnectorSpec("second", "乙", lambda config: _Recorder(closed, "second")),
        ConnectorSpec("plain", "丙", lambda config: object()),  # no close(): nothing to call
    ]
    host = make_host(extra_plugins=[("jxj_plugin", connector_plugin("jxj_plugin", "jxj", *specs))])
    ctx = host.page_context(JXJ_STAFF, "jxj_plugin-page")
    for connector_id in ("first", "second", "plain"):
        ctx.connector(connector_id)
    host.dispose()
    assert closed == ["first", "second"]
