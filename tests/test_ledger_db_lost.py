"""The database lost in the middle of an upload (issue 13, failure behaviour): the admin is told
so in Chinese, nothing is half-written (the head stays the old version), and their file is kept
for 重试, which re-stages or commits it once the database is back without a new upload.

PostgreSQL only: the database is taken away from a live portal by terminating its connections
(and refusing new ones, or from a trigger inside the write itself). DuckDB runs inside the portal
process and its file, once open, cannot be taken from it by another process."""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa
import pytest
import sqlalchemy as sa
from databases import PG_SERVER, test_store
from huizhi_sensing.schema import LEDGER_ID, SENSING_LEDGER
from streamlit.testing.v1 import AppTest

from huizhi.config import load_settings
from huizhi.excel import export_csv
from huizhi.host import create_host
from huizhi_seeds import load_demo

pytestmark = pytest.mark.skipif(
    test_store() != "postgres",
    reason="needs PostgreSQL: an embedded DuckDB file cannot be taken from the process that has it open",
)

KEPT = "已保留"


@pytest.fixture
def seeded(database_url, tmp_path, monkeypatch) -> Iterator[tuple[str, bytes, str]]:
    """The sensing ledger seeded small (version 1) and a file changing 7 of its rows."""
    monkeypatch.setenv("HUIZHI_DATABASE_URL", database_url)
    monkeypatch.setenv("HUIZHI_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("HUIZHI_LOAD_PLUGINS", "sensing")
    with create_host(load_settings()) as host:
        load_demo(host, scale=0.003, ledgers=[LEDGER_ID])
        current = host.ledgers.export(host.system_identity("test"), LEDGER_ID).slice(0, 50)
        table = host.store.tables[LEDGER_ID].name
    names = current.column("device_name").to_pylist()
    fixed = current.set_column(
        current.schema.get_field_index("device_name"), "device_name",
        pa.array([f"{n}（已核）" if i < 7 else n for i, n in enumerate(names)]),
    )  # fmt: skip
    yield database_url, export_csv(fixed, SENSING_LEDGER), table


def _page_script() -> None:
    import streamlit as st

    from huizhi.access import Grant, Identity, Role
    from huizhi.config import load_settings
    from huizhi.context import PageContext
    from huizhi.host import create_host
    from huizhi_pages import ledgers as page

    # one host for the session, as the portal's is for its process: it cannot be built while
    # the database is away (the test disposes of it)
    if "test_host" not in st.session_state:
        st.session_state.test_host = create_host(load_settings())
    admin = Identity("t|admin-jxj", "陈静", frozenset({Grant(Role.LEDGER_ADMIN, "jxj")}))
    page.render(PageContext(_host=st.session_state.test_host, identity=admin, plugin="builtin_pages"))


@pytest.fixture
def page() -> Iterator[AppTest]:
    at = AppTest.from_function(_page_script, default_timeout=60)
    yield at
    if "test_host" in at.session_state:
        at.session_state.test_host.dispose()


def _admin() -> sa.Engine:
    return sa.create_engine(PG_SERVER, isolation_level="AUTOCOMMIT")


def _set_reachable(url: str, reachable: bool) -> None:
    """Refuse new connections to the database and end the open ones (the portal's pool too)."""
    name = sa.engine.make_url(url).database
    engine = _admin()
    with engine.connect() as conn:
        conn.execute(sa.text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {str(reachable).lower()}'))
        if not reachable:
            conn.execute(
                sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n AND pid <> pg_backend_pid()"),
                {"n": name},
            )
    engine.dispose()


def _kill_connection_on(url: str, table: str, event: str) -> None:
    """The next ``event`` (INSERT, UPDATE) on ``table`` ends its own connection mid-transaction."""
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text(
            "CREATE OR REPLACE FUNCTION test_lose_connection() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN PERFORM pg_terminate_backend(pg_backend_pid()); RETURN NEW; END $$"
        ))  # fmt: skip
        conn.execute(sa.text(
            f"CREATE TRIGGER test_lose_connection BEFORE {event} ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION test_lose_connection()"
        ))  # fmt: skip
    engine.dispose()


def _drop_trigger(url: str, table: str) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text(f"DROP TRIGGER test_lose_connection ON {table}"))
    engine.dispose()


def _state(url: str, table: str) -> tuple[int, int, int, int]:
    """(head version number, versions, staged previews, rows in the ledger's table)."""
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        head = conn.execute(sa.text("SELECT v.number FROM ledger_versions v JOIN ledger_heads h ON h.version_id = v.id "
                                    "WHERE h.ledger_id = :l"), {"l": LEDGER_ID}).scalar_one()
        versions = conn.execute(sa.text("SELECT count(*) FROM ledger_versions WHERE ledger_id = :l"),
                                {"l": LEDGER_ID}).scalar_one()
        previews = conn.execute(sa.text("SELECT count(*) FROM ledger_previews")).scalar_one()
        rows = conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one()
    engine.dispose()
    return head, versions, previews, rows


def _errors(at: AppTest) -> str:
    return " ".join(e.value for e in at.error)


def _says_kept(at: AppTest) -> None:
    assert not at.exception, at.exception
    text = _errors(at)
    assert "数据库暂时无法连接" in text and "没有提交任何内容" in text and "当前版本未被改动" in text, text
    assert "“devices.csv”" + KEPT in text and "无需重新上传" in text, text
    assert "5432" not in text and "huizhi_test" not in text  # no server details for the user
    assert at.button(key=f"retry-{LEDGER_ID}")


def _upload(at: AppTest, data: bytes) -> None:
    at.run()
    at.radio(key=f"mode-{LEDGER_ID}").set_value("upsert").run()
    at.file_uploader[0].set_value(("devices.csv", data, "text/csv")).run()
    assert not at.exception, at.exception


def _committed(at: AppTest) -> str:
    return " ".join(s.value for s in at.success)


def test_database_lost_between_preview_and_commit_keeps_the_preview_for_retry(seeded, page):
    url, data, table = seeded
    _upload(page, data)
    assert {m.label: m.value for m in page.metric}["修改"] == "7"
    before = _state(url, table)
    assert before[0] == 1 and before[2] == 1  # version 1 current, the upload staged

    _set_reachable(url, False)
    try:
        page.button(key=f"commit-{LEDGER_ID}").click().run()
        _says_kept(page)
        page.button(key=f"retry-{LEDGER_ID}").click().run()  # still away: still kept, same message
        _says_kept(page)
    finally:
        _set_reachable(url, True)
    assert _state(url, table) == before  # nothing written while it was away

    # back, but the connection is lost again inside the commit itself (after the version's rows)
    _kill_connection_on(url, "ledger_heads", "UPDATE")
    page.button(key=f"retry-{LEDGER_ID}").click().run()
    assert not page.exception, page.exception
    assert any("保留的文件“devices.csv”" in i.value for i in page.info)  # no new upload needed
    assert page.radio(key=f"mode-{LEDGER_ID}").value == "upsert"  # the mode the file was checked in
    page.button(key=f"commit-{LEDGER_ID}").click().run()
    _says_kept(page)
    _drop_trigger(url, table="ledger_heads")
    assert _state(url, table) == before  # the half-done commit was rolled back: head still version 1

    page.button(key=f"retry-{LEDGER_ID}").click().run()
    page.button(key=f"commit-{LEDGER_ID}").click().run()
    assert not page.exception and not page.error, (page.exception, _errors(page))
    assert "已提交为第 2 版" in _committed(page) and "修改 7" in _committed(page)
    head, versions, previews, _ = _state(url, table)
    assert (head, versions, previews) == (2, 2, 0)
    page.run()  # the kept file is gone with the commit: the uploader is empty, nothing offered
    assert not any("保留的文件" in i.value for i in page.info)


def test_database_lost_while_staging_keeps_the_file_and_retry_stages_it(seeded, page):
    url, data, table = seeded
    before = _state(url, table)
    _kill_connection_on(url, "ledger_previews", "INSERT")  # after the staged rows are written
    _upload(page, data)
    _says_kept(page)
    assert f"commit-{LEDGER_ID}" not in {b.key for b in page.button}  # no preview: nothing to commit
    _drop_trigger(url, "ledger_previews")
    assert _state(url, table) == before  # the staged rows went with the transaction

    page.button(key=f"retry-{LEDGER_ID}").click().run()  # staged again from the kept file
    assert not page.exception and not page.error, (page.exception, _errors(page))
    assert {m.label: m.value for m in page.metric}["修改"] == "7"
    page.button(key=f"commit-{LEDGER_ID}").click().run()
    assert "已提交为第 2 版" in _committed(page)
    assert _state(url, table)[:3] == (2, 2, 0)
