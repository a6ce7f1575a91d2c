"""Scheduled syncs: a connector's data becomes a ledger version through the ledger service,
validated, versioned and diffed like an upload; a failing sync is audited and changes nothing.
Sources are real: PostgreSQL and MariaDB databases created and dropped per test, SQLite and
DuckDB files, a folder of files, and the loopback OAuth2 API."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa
from oauth_api import OAuthAPI
from plugin_fixtures import install_distribution, make_plugin, page
from test_connectors import BACKENDS, duckdb_source, mariadb_source, postgresql_source, sqlite_source  # noqa: F401

from huizhi.host import Host
from huizhi.specs import ColumnSpec, ConnectorSpec, LedgerSpec, SpecError, SyncSpec, validate
from huizhi_connectors.files import FilesConnection
from huizhi_connectors.rest import RestConnection
from huizhi_connectors.sql import SQLConnection

DEVICES = LedgerSpec(
    id="jxj_devices", title="设备台账", department="jxj", key=("code",),
    columns=(ColumnSpec("code", "编码"), ColumnSpec("street", "镇街"), ColumnSpec("n", "数量", "int", min=0)),
)  # fmt: skip
QUERY = sa.text("SELECT code, street, n FROM devices WHERE n >= :min ORDER BY code")


def sync_plugin(connector: ConnectorSpec, *syncs: SyncSpec):
    return make_plugin("jxj_plugin", department="jxj", pages=[page("jxj-page")], ledgers=[DEVICES],
                       huizhi_connectors=lambda: [connector], huizhi_syncs=lambda: list(syncs))


def sql_host(make_host: Callable[..., Host], url: str, **sync: Any) -> Host:
    connector = ConnectorSpec("jxj_db", "经信局业务库", lambda config: SQLConnection.from_config({"url": url, **config}),
                              kind="sql")
    spec = SyncSpec(**{"id": "devices_from_db", "ledger_id": "jxj_devices", "connector_id": "jxj_db", "query": QUERY,
                       "params": {"min": -1000}, "every": 3600, **sync})
    return make_host(extra_plugins=[("jxj_plugin", sync_plugin(connector, spec))])


def ledger_rows(host: Host) -> list[tuple[Any, ...]]:
    reader = host.page_context(host.system_identity("test"), "jxj-page").ledger("jxj_devices")
    frame = reader.frame()
    return sorted(tuple(r) for r in frame[["code", "street", "n"]].itertuples(index=False))


def sync_events(host: Host) -> list[dict[str, Any]]:
    return [{"outcome": e.outcome, "actor": e.actor, **json.loads(e.detail)} for e in host.audit.search(action="ledger.sync")]


def write(url: str, *statements: str) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for statement in statements:
            conn.execute(sa.text(statement))
    engine.dispose()


@pytest.fixture(params=BACKENDS)
def source(request: pytest.FixtureRequest) -> str:
    """A seeded database of each backend (the fixtures of test_connectors.py)."""
    return request.getfixturevalue(f"{request.param}_source")


@pytest.fixture
def sqlite_db(request: pytest.FixtureRequest) -> str:
    return request.getfixturevalue("sqlite_source")


def test_a_sql_sync_commits_versions_like_an_upload(make_host, source: str) -> None:
    host = sql_host(make_host, source)
    first = host.syncs.run("devices_from_db")
    assert (first.outcome, first.version, first.rows, first.added) == ("committed", 1, 3, 3), first.error
    assert ledger_rows(host) == [("d1", "黄村镇", 3), ("d2", "西红门镇", 5), ("d3", "黄村镇", 7)]
    again = host.syncs.run("devices_from_db")
    assert again.outcome == "unchanged" and host.ledgers.head("jxj_devices").number == 1

    host.dispose()  # DuckDB admits one configuration per file in a process: the writer needs it closed
    write(source, "UPDATE devices SET n = 9 WHERE code = 'd2'")
    host = sql_host(make_host, source)
    changed = host.syncs.run("devices_from_db")
    assert (changed.outcome, changed.version, changed.changed, changed.added) == ("committed", 2, 1, 0)
    version = host.ledgers.versions(host.system_identity("test"), "jxj_devices")[0]
    assert version.created_by == "system:sync:devices_from_db" and version.kind == "upload"
    events = sync_events(host)
    assert events[0]["outcome"] == "ok" and events[0]["version"] == 2 and events[0]["connector"] == "jxj_db"
    host.dispose()
    last = sql_host(make_host, source).syncs.last("devices_from_db")  # another host: read from the audit log
    assert (last.outcome, last.version, last.changed) == ("committed", 2, 1) and last.started_at <= last.finished_at


def test_rows_that_fail_the_ledgers_checks_change_nothing(make_host, sqlite_db: str) -> None:
    host = sql_host(make_host, sqlite_db)
    assert host.syncs.run("devices_from_db").version == 1
    host.dispose()
    write(sqlite_db, "UPDATE devices SET n = -4 WHERE code = 'd3'")
    host = sql_host(make_host, sqlite_db)
    failed = host.syncs.run("devices_from_db")
    assert failed.outcome == "failed" and not failed.ok
    assert "1 error(s)" in failed.error and "「n」: 小于最小值 0（-4）" in failed.error  # the ledger's own message
    assert host.ledgers.head("jxj_devices").number == 1
    assert ledger_rows(host)[2] == ("d3", "黄村镇", 7)
    [event, _ok] = sync_events(host)
    assert event["outcome"] == "failed" and "小于最小值 0" in event["error"] and event["actor"] == "system:sync:devices_from_db"
    assert host.syncs.last("devices_from_db").error == failed.error


def test_a_source_that_is_down_changes_nothing(make_host, tmp_path: Path) -> None:
    host = sql_host(make_host, f"sqlite:///{tmp_path / 'gone.sqlite'}")
    failed = host.syncs.run("devices_from_db")
    assert failed.outcome == "failed" and "OperationalError" in failed.error
    assert host.ledgers.head("jxj_devices") is None
    assert sync_events(host)[0]["outcome"] == "failed"


def test_a_sync_that_would_empty_most_of_the_ledger_is_refused(make_host, sqlite_db: str) -> None:
    host = sql_host(make_host, sqlite_db)
    host.syncs.run("devices_from_db")
    host.dispose()
    write(sqlite_db, "DELETE FROM devices WHERE code <> 'd1'")
    host = sql_host(make_host, sqlite_db)
    failed = host.syncs.run("devices_from_db")
    assert failed.outcome == "failed" and "allow_mass_removal" in failed.error
    assert len(ledger_rows(host)) == 3
    host.dispose()
    allowed = sql_host(make_host, sqlite_db, allow_mass_removal=True).syncs.run("devices_from_db")
    assert (allowed.outcome, allowed.removed) == ("committed", 2)


def test_a_file_sync_goes_through_the_upload_parser(make_host, tmp_path: Path) -> None:
    root = tmp_path / "share"
    root.mkdir()
    frame = pd.DataFrame({"编码": ["d1", "d2"], "镇街": ["黄村镇", "旧宫镇"], "数量": [1, 2]})
    (root / "设备.csv").write_bytes(frame.to_csv(index=False).encode("gb18030"))
    frame.to_parquet(root / "设备.parquet", index=False)
    connector = ConnectorSpec("jxj_share", "经信局共享盘", FilesConnection.from_config, kind="file")
    syncs = [SyncSpec("from_csv", "jxj_devices", "jxj_share", "设备.csv", cron="0 2 * * *"),
             SyncSpec("from_parquet", "jxj_devices", "jxj_share", "设备.parquet", every=600, mode="upsert")]
    host = make_host(extra_plugins=[("jxj_plugin", sync_plugin(connector, *syncs))],
                     connectors={"jxj_share": {"root": str(root)}})
    assert host.syncs.run("from_csv").version == 1
    assert ledger_rows(host) == [("d1", "黄村镇", 1), ("d2", "旧宫镇", 2)]
    assert host.ledgers.versions(host.system_identity("t"), "jxj_devices")[0].file_name == "设备.csv"
    frame.assign(数量=[1, 5]).to_parquet(root / "设备.parquet", index=False)
    upsert = host.syncs.run("from_parquet")
    assert (upsert.outcome, upsert.changed) == ("committed", 1)
    (root / "设备.csv").write_bytes(b"PK\x03\x04 not a table at all")
    failed = host.syncs.run("from_csv")
    assert failed.outcome == "failed" and host.ledgers.head("jxj_devices").number == 2
    assert [(s.sync_id, s.every, s.cron) for s in host.syncs.schedules()] == [
        ("from_csv", None, "0 2 * * *"), ("from_parquet", 600, None)]


@pytest.fixture
def api() -> Iterator[OAuthAPI]:
    server = OAuthAPI()
    yield server
    server.close()


def test_a_rest_sync_reads_every_page_and_a_failing_api_changes_nothing(make_host, api: OAuthAPI) -> None:
    connector = ConnectorSpec("jxj_api", "经信局设备接口", RestConnection.from_config, kind="rest")
    spec = SyncSpec("from_api", "jxj_devices", "jxj_api", "/devices", every=900)
    host = make_host(extra_plugins=[("jxj_plugin", sync_plugin(connector, spec))], connectors={"jxj_api": api.config()})
    done = host.syncs.run("from_api")
    assert (done.outcome, done.rows) == ("committed", 7), done.error
    api.mode = "fail"
    failed = host.syncs.run("from_api")
    assert failed.outcome == "failed" and "HTTP 500" in failed.error
    assert host.ledgers.head("jxj_devices").number == 1 and len(ledger_rows(host)) == 7


def test_unknown_syncs_and_bad_specs() -> None:
    with pytest.raises(SpecError, match="exactly one of every"):
        validate(SyncSpec("s", "l", "c", "q"))
    with pytest.raises(SpecError, match="five fields"):
        validate(SyncSpec("s", "l", "c", "q", cron="daily"))
    with pytest.raises(SpecError, match="mode"):
        validate(SyncSpec("s", "l", "c", "q", every=600, mode="merge"))  # type: ignore[arg-type]


def test_run_names_the_declared_syncs(make_host, sqlite_db: str) -> None:
    host = sql_host(make_host, sqlite_db)
    with pytest.raises(LookupError, match="declared: devices_from_db"):
        host.syncs.run("nope")


PLUGIN = """
from huizhi import hookimpl
from huizhi.specs import ColumnSpec, LedgerSpec, PluginInfo, SyncSpec

@hookimpl
def huizhi_plugin_info():
    return PluginInfo(name="clisync", title="同步", department="jxj", version="1", host_api=">=1.0")

@hookimpl
def huizhi_ledgers():
    return [LedgerSpec(id="cli_devices", title="设备台账", department="jxj", key=("code",),
                       columns=(ColumnSpec("code", "编码"), ColumnSpec("n", "数量", "int")))]

@hookimpl
def huizhi_syncs():
    return [SyncSpec("cli_sync", "cli_devices", "files", "devices.csv", cron="*/30 * * * *")]
"""


def test_huizhi_sync_runs_one_sync_from_the_command_line(tmp_path: Path, database_url: str, monkeypatch, capsys) -> None:
    import sys

    from huizhi.cli import main

    share = tmp_path / "share"
    share.mkdir()
    (share / "devices.csv").write_text("编码,数量\nd1,3\nd2,4\n", encoding="utf-8")
    config = tmp_path / "huizhi.toml"
    config.write_text(f'[database]\nurl = "{database_url}"\n[connectors.files]\nroot = "{share}"\n'
                      'departments = ["jxj"]\n', encoding="utf-8")
    site = tmp_path / "site"
    install_distribution(site, "huizhi-clisync", "huizhi_clisync_plugin", PLUGIN, entry_name="clisync")
    monkeypatch.setenv("HUIZHI_CONFIG", str(config))
    monkeypatch.setenv("HUIZHI_LOAD_PLUGINS", "clisync")
    monkeypatch.setenv("HUIZHI_DATA_DIR", str(tmp_path))
    try:
        assert main(["sync", "--list"]) == 0
        assert "cli_sync  files -> ledger cli_devices  cron '*/30 * * * *'  (clisync)" in capsys.readouterr().out
        assert main(["sync", "cli_sync"]) == 0
        assert "sync cli_sync: version 1 (2 rows: +2 ~0 -0)" in capsys.readouterr().out
        (share / "devices.csv").write_text("编码,数量\nd1,x\n", encoding="utf-8")
        assert main(["sync", "cli_sync"]) == 1
        assert "sync cli_sync failed" in capsys.readouterr().err
        assert main(["sync", "nope"]) == 2
    finally:
        sys.path.remove(str(site))
        sys.modules.pop("huizhi_clisync_plugin", None)
