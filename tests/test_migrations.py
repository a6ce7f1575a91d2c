"""Schema upgrades: from every earlier revision with data in it, and never racing.

Each upgrade test builds the database as an older release left it (Alembic to that revision,
then rows inserted with plain SQL in *that* revision's schema, a ledger table as the host then
created it), starts a current host on it and checks that nothing was lost and the product works.
The race tests start several processes on one fresh PostgreSQL database at the same moment.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from databases import create_pg_database, drop_pg_database, test_store
from ledgerkit import admin, commit_rows
from plugin_fixtures import ASSETS, make_plugin

from huizhi.db import _scripts, alembic_config, create_db_engine, current_revision, head_revision

on_postgres = pytest.mark.skipif(test_store() != "postgres", reason="several processes need PostgreSQL")


# every revision a deployment may still be at; the newest is what create_host upgrades to
EARLIER = ["0001", "0002", "0003", "0004", "0005"]
T0 = dt.datetime(2026, 1, 5, 8, 30)
STEWARD = admin("jxj")


def test_every_earlier_revision_is_covered():
    revisions = {rev.revision for rev in _scripts().walk_revisions()}
    assert revisions - {head_revision()} <= set(EARLIER) <= revisions


def _old_database(url: str, revision: str) -> dict[str, list[tuple]]:
    """The database as a release at ``revision`` left it, with data; returns what it holds."""
    from alembic import command

    engine = create_db_engine(url)
    try:
        command.upgrade(alembic_config(engine), revision)
        assert current_revision(engine) == revision
        with engine.begin() as conn:
            return _insert(conn, revision)
    finally:
        engine.dispose()


def _insert(conn: sa.Connection, rev: str) -> dict[str, list[tuple]]:
    """Plain SQL in revision ``rev``'s schema: two versions of ledger ``assets`` (the head at the
    second), its rows in ``ledger_assets`` as the host created it then, audit entries, a plugin
    switched off, pins (0002+), a department scope (0003+), a staged preview and a name (0004+)."""
    x = conn.execute
    x(sa.text("CREATE TABLE ledger_assets (_version_id BIGINT NOT NULL, code TEXT, owner TEXT, street TEXT, count BIGINT)"))

    def version(number: int, kind: str, by: str, rows: list[tuple], scope: str | None = None) -> int:
        cols = {"ledger_id": "assets", "number": number, "created_by": by, "created_at": T0 + dt.timedelta(days=number),
                "file_name": f"v{number}.xlsx", "file_sha256": f"sha{number}", "row_count": len(rows),
                "added": len(rows) if number == 1 else 0, "changed": 0 if number == 1 else 1,
                "removed": 0 if number == 1 else 1, "kind": kind, "restored_from": None, "note": f"第{number}版"}
        if rev >= "0003":
            cols["scope"] = scope
        if rev >= "0004":
            cols["created_by_name"] = "经信局管理员" if by == "admin-jxj" else None
        names = ", ".join(cols)
        vid = x(sa.text(f"INSERT INTO ledger_versions ({names}) VALUES ({', '.join(':' + c for c in cols)}) RETURNING id"),
                cols).scalar_one()
        for row in rows:
            x(sa.text("INSERT INTO ledger_assets VALUES (:v, :code, :owner, :street, :count)"),
              {"v": vid, "code": row[0], "owner": row[1], "street": row[2], "count": row[3]})
        return vid

    version(1, "seed", "system:seed", [("A1", "区公安分局", "兴丰街道", 1), ("A2", "区水务局", "瀛海镇", 2),
                                         ("A3", "区公安分局", "旧宫镇", 3)])
    v2 = version(2, "upload", "admin-jxj", [("A1", "区公安分局", "兴丰街道", 1), ("A2", "区水务局", "瀛海镇", 20)],
                 scope=None)
    x(sa.text("INSERT INTO ledger_heads VALUES ('assets', :v, 2, :t)"), {"v": v2, "t": T0 + dt.timedelta(days=2)})
    for n, action in enumerate(["ledger.seed", "ledger.commit"]):
        x(sa.text("INSERT INTO audit_log (occurred_at, actor, actor_name, action, target, outcome, detail) "
                  "VALUES (:t, :a, '经信局管理员', :act, 'ledger:assets', 'ok', '{}')"),
          {"t": T0 + dt.timedelta(days=n + 1), "a": "admin-jxj", "act": action})
    x(sa.text("INSERT INTO plugin_state VALUES ('extra', false, 'admin-platform', :t)"), {"t": T0})
    if rev >= "0002":
        x(sa.text("INSERT INTO cockpit_pins VALUES ('leader-1', 'extra_tile', 0, :t)"), {"t": T0})
    if rev >= "0004":  # an upload previewed but not committed: its staged rows wait under its id
        staged = x(sa.text("SELECT nextval('ledger_versions_id_seq')")).scalar_one()
        x(sa.text("INSERT INTO ledger_assets VALUES (:v, 'A9', '区水务局', '礼贤镇', 9)"), {"v": staged})
        x(sa.text("INSERT INTO ledger_previews (id, ledger_id, base_version_id, subject, created_at, kind, file_name, "
                  "file_sha256, row_count, added, changed, removed, unchanged, scope, note) VALUES "
                  "(:id, 'assets', :base, 'admin-jxj', :t, 'upload', 'v3.xlsx', 'sha3', 1, 1, 0, 2, 0, NULL, '')"),
          {"id": staged, "base": v2, "t": T0})
    return _snapshot(conn)


def _snapshot(conn: sa.Connection) -> dict[str, list[tuple]]:
    """Every table's rows in the columns the oldest schema has (plus pins and previews)."""
    tables = {
        "ledger_versions": "id, ledger_id, number, created_by, created_at, file_name, file_sha256, row_count, "
                           "added, changed, removed, kind, restored_from, note",
        "ledger_heads": "ledger_id, version_id, number, updated_at",
        "audit_log": "id, occurred_at, actor, actor_name, action, target, outcome, detail",
        "plugin_state": "name, enabled, changed_by, changed_at",
        "ledger_assets": "_version_id, code, owner, street, count",
    }
    have = set(sa.inspect(conn).get_table_names())
    if "cockpit_pins" in have:
        tables["cockpit_pins"] = "subject, tile_id, position, pinned_at"
    if "ledger_previews" in have:
        tables["ledger_previews"] = "id, ledger_id, base_version_id, subject, row_count"
    return {
        name: sorted(tuple(r) for r in conn.execute(sa.text(f"SELECT {cols} FROM {name}")))
        for name, cols in tables.items()
    }


def _plugins():
    return [("assets", make_plugin("assets", ledgers=[ASSETS])), ("extra", make_plugin("extra"))]


@pytest.mark.parametrize("revision", [None, *EARLIER])
def test_upgrade_from_an_earlier_revision_keeps_the_data_and_the_product_works(revision, database_url, make_host):
    before = _old_database(database_url, revision) if revision else None

    host = make_host(extra_plugins=_plugins())  # create_host upgrades to head
    assert current_revision(host.engine) == head_revision()
    svc = host.ledgers
    if before is not None:
        with host.engine.connect() as conn:
            after = _snapshot(conn)
        for table, rows in before.items():
            assert after[table] == rows, table  # nothing lost, nothing changed
        if revision < "0002":
            assert after["cockpit_pins"] == []
        if revision < "0004":
            assert after["ledger_previews"] == []
        # new columns have sensible values: old versions covered the whole ledger, and are shown
        # under whoever made them when no name was recorded
        v2, v1 = svc.versions(STEWARD, "assets")
        assert (v1.number, v1.scope, v1.author, v1.kind) == (1, None, "system:seed", "seed")
        assert (v2.number, v2.scope) == (2, None)
        assert v2.author == ("经信局管理员" if revision >= "0004" else "admin-jxj")
        assert host.registry.plugins["extra"].status == "disabled"  # the admin's switch still holds
        assert len(host.audit.search(actor="admin-jxj")) == 2
        # the old versions' rows are readable: version 2's change is recomputed from them
        counts = svc.changes(STEWARD, "assets", 2).counts
        assert (counts.added, counts.changed, counts.removed, counts.unchanged) == (0, 1, 1, 1)

    # the product works on it: a commit through the ledger service, then a read
    rows = pd.DataFrame({"code": ["A1", "A4"], "owner": ["区公安分局", "区水务局"], "street": ["兴丰街道", "礼贤镇"],
                         "count": [5, 4]})
    version = commit_rows(host, "assets", rows, identity=STEWARD, file_sha256="new")
    assert version is not None
    assert version.number == (3 if before is not None else 1)
    assert version.author == "jxj台账管理员"
    with host.engine.connect() as conn:
        current = sorted(tuple(r) for r in conn.execute(host.store.scoped_select("assets", host.system_identity("t").row_scope(ASSETS))))
    assert current == [("A1", "区公安分局", "兴丰街道", 5), ("A4", "区水务局", "礼贤镇", 4)]
    assert [v.number for v in svc.versions(STEWARD, "assets")] == ([3, 2, 1] if before is not None else [1])
    if before is not None:  # ids kept counting from the old sequence: the new version is newer
        assert version.id > max(r[0] for r in before["ledger_versions"])


def _env(url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUIZHI_")}
    return {**env, "HUIZHI_DATABASE_URL": url, **extra}


def _run_at_once(argv: list[str], url: str, cwd: Path, processes: int) -> list[subprocess.CompletedProcess]:
    """Start ``processes`` copies of ``python argv`` together; wait for all."""
    started = [
        subprocess.Popen([sys.executable, *argv], cwd=cwd, env=_env(url), text=True,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(processes)
    ]
    done = []
    for p in started:
        out, err = p.communicate(timeout=180)
        done.append(subprocess.CompletedProcess(p.args, p.returncode, out, err))
    return done


@on_postgres
@pytest.mark.parametrize("command", ["migrate", "plugins"])
def test_processes_starting_together_on_a_fresh_database_do_not_race(command, tmp_path):
    from huizhi.db import create_db_engine, current_revision, head_revision

    for _round in range(3):
        url = create_pg_database()
        try:
            results = _run_at_once(["-m", "huizhi.cli", command], url, tmp_path, 3)
            for r in results:
                assert r.returncode == 0, f"{command} failed:\n{r.stderr[-3000:]}"
            engine = create_db_engine(url)
            try:
                assert current_revision(engine) == head_revision()
                if command == "plugins":  # ledger tables from the installed plugins, each once
                    tables = set(sa.inspect(engine).get_table_names())
                    assert any(t.startswith("ledger_") and t not in {"ledger_versions", "ledger_heads", "ledger_previews"}
                               for t in tables), tables
            finally:
                engine.dispose()
        finally:
            drop_pg_database(url)


def test_a_replica_started_without_migrating_refuses_an_old_schema_naming_both_revisions(database_url, make_host):
    from huizhi.db import SchemaOutdated

    _old_database(database_url, "0003")
    with pytest.raises(SchemaOutdated) as caught:
        make_host(extra_plugins=_plugins(), migrate=False)  # [database] migrate = false
    message = str(caught.value)
    assert "at schema revision 0003" in message and f"needs {head_revision()}" in message
    assert "huizhi migrate" in message and "HUIZHI_MIGRATE=0" in message
    assert "huizhi migrate" in caught.value.user_message and "数据未受影响" in caught.value.user_message
    # nothing was changed on the way: the database is still at 0003
    engine = create_db_engine(database_url)
    try:
        assert current_revision(engine) == "0003"
        assert "ledger_previews" not in sa.inspect(engine).get_table_names()
    finally:
        engine.dispose()


def test_huizhi_migrate_then_replicas_start_without_migrating(database_url, tmp_path, make_host):
    _old_database(database_url, "0002")
    env = {**_env(database_url), "HUIZHI_MIGRATE": "0"}  # what a replica's environment says
    migrate = subprocess.run([sys.executable, "-m", "huizhi.cli", "migrate"], cwd=tmp_path, env=env,
                             capture_output=True, text=True, timeout=180)
    assert migrate.returncode == 0, migrate.stderr
    assert migrate.stdout.strip() == f"database at revision {head_revision()} (was 0002)"
    again = subprocess.run([sys.executable, "-m", "huizhi.cli", "migrate"], cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=180)
    assert again.stdout.strip() == f"database at revision {head_revision()} (already current)"

    from huizhi.config import load_settings

    assert load_settings({"HUIZHI_MIGRATE": "0"}).migrate is False
    host = make_host(extra_plugins=_plugins(), migrate=False)
    assert commit_rows(host, "assets", pd.DataFrame({"code": ["B1"], "owner": ["区水务局"], "street": ["瀛海镇"],
                                                     "count": [1]}), identity=STEWARD).number == 3


def test_a_database_newer_than_the_program_is_refused_as_such(database_url, make_host):
    from huizhi.db import SchemaOutdated, upgrade

    engine = create_db_engine(database_url)
    try:
        upgrade(engine)
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))
    finally:
        engine.dispose()
    with pytest.raises(SchemaOutdated, match="at schema revision 9999.*newer than this huizhi") as caught:
        make_host(migrate=False)
    assert "升级本节点的平台程序" in caught.value.user_message
