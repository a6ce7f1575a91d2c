"""The plugin contract holds at run time: every escape route a reviewer found now fails clearly.

Plugins are code the district installs (see docs/architecture.md, trust model): these tests do
not try to stop deliberate malice, they show that the documented path is the only one and that
the accidental leaks are gone (a context's host, a reader running any SQL, an importable
superuser, plugin events that can break a commit).
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
import time

import pandas as pd
import pytest
import sqlalchemy as sa
from databases import test_store
from ledgerkit import admin, commit_rows
from plugin_fixtures import ASSETS, make_plugin

from huizhi.access import Grant, Identity, Role
from huizhi.context import LedgerReader, PageContext, ReaderError, TileContext
from huizhi.events import LedgerChanged

ROWS = pd.DataFrame({"code": ["A1", "A2"], "owner": ["区公安分局", "区水务局"], "street": ["兴丰街道", "瀛海镇"], "count": [1, 2]})
GAJ_STAFF = Identity("staff-gaj", "公安员工", frozenset({Grant(Role.STAFF, "gaj")}))


@pytest.fixture
def host(make_host):
    host = make_host(extra_plugins=[("assets", make_plugin("assets", ledgers=[ASSETS]))])
    commit_rows(host, "assets", ROWS, identity=admin("jxj"))
    return host


@pytest.fixture
def reader(host) -> LedgerReader:
    return PageContext(_host=host, identity=GAJ_STAFF, plugin="nosy").ledger("assets")


def test_contexts_and_readers_expose_no_host_engine_or_store(host, reader):
    ctx = TileContext(_host=host, identity=GAJ_STAFF, plugin="nosy")
    for obj in (ctx, reader, ctx.ledgers):
        with pytest.raises(AttributeError):
            obj.host  # noqa: B018
        public = {name: getattr(obj, name) for name in dir(obj) if not name.startswith("_")}
        leaked = {n for n, v in public.items() if isinstance(v, sa.Engine | sa.Connection) or type(v).__name__ in
                  {"Host", "LedgerStore", "Registry", "LedgerService", "AuditLog"}}
        assert not leaked, f"{type(obj).__name__} exposes {leaked}"
    assert not hasattr(reader, "select")  # the statement the reader is built on stays private


@pytest.mark.parametrize(
    "statement",
    [
        lambda r: sa.text("SELECT * FROM ledger_assets"),
        lambda r: sa.select(sa.table("ledger_assets", sa.column("code"), sa.column("_version_id"))),
        lambda r: sa.select(r.rows).where(sa.text("1=1) UNION SELECT code FROM ledger_assets --")),
        lambda r: sa.select(sa.literal_column("(SELECT count(*) FROM ledger_assets)")).select_from(r.rows),
        lambda r: sa.select(r.rows.c.code).union_all(sa.select(sa.table("ledger_versions", sa.column("ledger_id")))),
        lambda r: sa.select(sa.func.pg_read_file("/etc/passwd")).select_from(r.rows),
        lambda r: sa.select(sa.func.read_csv("/etc/passwd").table_valued()),
        lambda r: sa.select(sa.func.nextval("ledger_versions_id_seq")).select_from(r.rows),
        lambda r: sa.delete(sa.table("ledger_assets")),
        lambda r: sa.insert(sa.table("audit_log", sa.column("actor"))).values(actor="x"),
    ],
    ids=["text", "foreign-table", "text-in-where", "literal-subquery", "union-foreign", "pg_read_file",
         "read_csv", "nextval", "delete", "insert"],
)
def test_a_reader_runs_only_selects_over_its_own_rows(reader, statement):
    stmt = statement(reader)
    for run in (reader.execute, reader.scalar, reader.frame):
        with pytest.raises(ReaderError) as refused:
            run(stmt)
        assert "plugin 'nosy'" in str(refused.value)


def test_what_plugins_do_build_on_reader_rows_still_runs(reader):
    c = reader.rows.c
    stmt = (
        sa.select(c.street, sa.func.count().label("n"), sa.func.sum(c["count"]).label("total"),
                  sa.func.coalesce(sa.func.max(c.code), "").label("top"))
        .where(c.owner.in_(["区公安分局"])).group_by(c.street).order_by(sa.desc("n"))
    )  # fmt: skip
    inner = sa.select(c.code).where(c["count"] > 0).subquery()
    assert [tuple(r) for r in reader.execute(stmt)] == [("兴丰街道", 1, 1, "A1")]
    assert reader.scalar(sa.select(sa.func.count()).select_from(inner)) == 1  # only gaj's row
    assert reader.frame(sa.select(reader.rows.alias("d").c.code)).code.tolist() == ["A1"]


def test_no_superuser_identity_is_importable():
    access = importlib.import_module("huizhi.access")
    assert not hasattr(access, "SYSTEM")
    everywhere = [importlib.import_module(m) for m in ("huizhi", "huizhi.context", "huizhi.specs", "huizhi.kit")]
    for module in everywhere:
        for name in dir(module):
            value = getattr(module, name)
            if isinstance(value, Identity):
                pytest.fail(f"{module.__name__}.{name} is an Identity")


def test_a_plugin_learns_of_commits_and_a_failing_listener_breaks_nothing(make_host, caplog):
    seen: list[LedgerChanged] = []

    def broken(event):
        raise RuntimeError("listener bug")

    host = make_host(extra_plugins=[
        ("assets", make_plugin("assets", ledgers=[ASSETS], huizhi_track_event=lambda event: seen.append(event))),
        ("clumsy", make_plugin("clumsy", huizhi_track_event=broken)),
    ])  # fmt: skip
    with caplog.at_level(logging.ERROR, logger="huizhi.events"):
        version = commit_rows(host, "assets", ROWS, identity=admin("jxj"))
    assert version.number == 1 and host.store.head("assets").number == 1  # the commit stands
    assert [(e.ledger_id, e.version, e.kind) for e in seen] == [("assets", 1, "upload")]
    assert any("plugin clumsy" in r.getMessage() for r in caplog.records)


@pytest.mark.skipif(test_store() != "postgres", reason="LISTEN/NOTIFY is PostgreSQL's; a DuckDB file admits one process")
def test_a_commit_in_one_process_reaches_another_through_notify(make_host):
    plugins = [("assets", make_plugin("assets", ledgers=[ASSETS]))]
    writer, other = make_host(extra_plugins=plugins), make_host(extra_plugins=plugins)
    assert other.channel is not None and other.channel.listening
    received: list[LedgerChanged] = []
    mine: list[LedgerChanged] = []
    other.events.subscribe("test", received.append)
    writer.events.subscribe("test", mine.append)
    commit_rows(writer, "assets", ROWS, identity=admin("jxj"))
    deadline = time.monotonic() + 10
    while not received and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [(e.ledger_id, e.version, e.remote) for e in received] == [("assets", 1, True)]
    time.sleep(0.5)
    assert [e.remote for e in mine] == [False]  # its own NOTIFY is not delivered twice
    writer.dispose()
    other.dispose()
    assert not other.channel.listening


def test_events_round_trip_as_json():
    event = LedgerChanged("assets", 3, 42, "rollback", "system:test", 1, 2, 3, 4)
    again, origin = LedgerChanged.from_json(event.to_json("me"))
    assert again == event and origin == "me"
    assert dataclasses.replace(again, remote=True).remote
