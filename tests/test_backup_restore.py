"""``huizhi backup`` / ``huizhi restore`` (issue 13, point 4): a database with ledgers, several
versions, a rollback and the audit log is backed up through the command, restored into a fresh
database, and the product then serves it: same head, same history, same audit, and a rollback
on the restored copy works (the sequences came along)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from databases import create_pg_database, drop_pg_database, test_store
from ledgerkit import admin
from plugin_fixtures import ASSETS, make_plugin

from huizhi.backup import BackupError, backup, restore
from huizhi.config import load_settings
from huizhi.host import create_host

ADMIN = admin("jxj")


def _host(url: str, tmp_path: Path):
    plugin = make_plugin("assets", ledgers=[ASSETS])
    return create_host(load_settings({}, database_url=url, data_dir=tmp_path), extra_plugins=[("assets", plugin)],
                       use_entry_points=False)


def _rows(n: int, count: int = 1) -> pd.DataFrame:
    return pd.DataFrame({
        "code": [f"A{i:04d}" for i in range(n)],
        "owner": ["区经济和信息化局"] * n,
        "street": ["黄村镇"] * n,
        "count": [count + i for i in range(n)],
    })  # fmt: skip


def _state(host) -> dict:
    """Everything a restore must bring back, as plain values (the audit log first: the export
    below records an event)."""
    audit = [(e.id, e.occurred_at, e.actor, e.action, e.target, e.outcome, e.detail)
             for e in host.audit.search(limit=10_000)]  # fmt: skip
    versions = host.ledgers.versions(ADMIN, "assets")
    current = host.ledgers.export(ADMIN, "assets").to_pandas().sort_values("code").reset_index(drop=True)
    head = host.ledgers.head("assets")
    return {
        "head": (head.number, head.version_id),
        "versions": [(v.id, v.number, v.kind, v.row_count, v.added, v.changed, v.removed, v.created_by,
                      v.created_at) for v in versions],  # fmt: skip
        "changes": [host.ledgers.changes(ADMIN, "assets", v.number).counts for v in versions],
        "current": current.to_dict("list"),
        "audit": audit,  # newest first
    }


def _cli(env_url: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUIZHI_")}
    return subprocess.run([sys.executable, "-m", "huizhi.cli", *args], env={**env, "HUIZHI_DATABASE_URL": env_url},
                          cwd=cwd, capture_output=True, text=True, timeout=120)


@pytest.fixture
def fresh_url(tmp_path):
    """An empty database of the store under test to restore into."""
    if test_store() == "postgres":
        url = create_pg_database()
        yield url
        drop_pg_database(url)
    else:
        yield f"duckdb:///{tmp_path / 'restored' / 'huizhi.duckdb'}"


def test_backup_and_restore_keep_the_ledger_history_and_the_product_serves_the_copy(
    database_url, fresh_url, tmp_path
):
    host = _host(database_url, tmp_path / "a")
    service = host.ledgers
    service.import_rows(ADMIN, "assets", _rows(50), kind="upload", file_name="v1.xlsx")
    service.import_rows(ADMIN, "assets", _rows(60, count=2), kind="upload", file_name="v2.xlsx")
    service.import_rows(ADMIN, "assets", _rows(40, count=3), kind="upload", file_name="v3.xlsx")
    service.rollback(ADMIN, "assets", 2, expected_version=3)
    host.audit.record(ADMIN, "signin", token="x@1")
    before = _state(host)
    assert before["head"][0] == 4 and len(before["versions"]) == 4
    if test_store() == "duckdb":
        host.dispose()  # a DuckDB file admits one process: the portal stops for its backup

    backup_file = tmp_path / "backups" / "huizhi.backup"
    made = _cli(database_url, "backup", str(backup_file), cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    assert f"to {backup_file}" in made.stdout and backup_file.stat().st_size > 0
    assert not list(backup_file.parent.glob(".*partial"))  # no temporary file left behind
    again = _cli(database_url, "backup", str(backup_file), cwd=tmp_path)
    assert again.returncode == 2 and "already exists" in again.stderr  # never overwritten
    if test_store() == "postgres":
        host.dispose()

    restored = _cli(fresh_url, "restore", str(backup_file), cwd=tmp_path)
    assert restored.returncode == 0, restored.stderr
    assert "restored" in restored.stdout

    copy = _host(fresh_url, tmp_path / "b")  # the product opens the restored database
    try:
        after = _state(copy)
        assert after["audit"][0][3] == "ledger.export"  # made by _state(host) just before the backup
        after["audit"] = after["audit"][1:]
        assert after == before
        # and keeps working on it: a rollback makes a fifth version with a fresh id
        rolled = copy.ledgers.rollback(ADMIN, "assets", 1, expected_version=4)
        assert rolled.number == 5 and rolled.id > max(v[0] for v in before["versions"])
        assert copy.ledgers.export(ADMIN, "assets").num_rows == 50
        assert copy.audit.search(action="ledger.rollback", limit=5)[0].detail.count('"to_version": 1') == 1
    finally:
        copy.dispose()

    # a restore never replaces a database that holds data
    refused = _cli(fresh_url, "restore", str(backup_file), cwd=tmp_path)
    assert refused.returncode == 2 and ("not empty" in refused.stderr or "already exists" in refused.stderr)
    assert "Traceback" not in refused.stderr


def test_restore_refuses_a_file_of_the_other_store_or_no_backup(tmp_path, fresh_url):
    junk = tmp_path / "notes.txt"
    junk.write_text("not a backup", encoding="utf-8")
    with pytest.raises(BackupError, match="neither a PostgreSQL .* nor a DuckDB backup"):
        restore(fresh_url, junk)
    other = tmp_path / "other.backup"
    if test_store() == "postgres":
        duck = f"duckdb:///{tmp_path / 'd' / 'huizhi.duckdb'}"
        _host(duck, tmp_path / "d").dispose()
        backup(duck, other)
        expected = "is a duckdb backup and the configured database is postgresql"
    else:
        other.write_bytes(b"PGDMP\x01\x0f\x00" + b"\x00" * 64)
        expected = "is a postgresql backup and the configured database is duckdb"
    with pytest.raises(BackupError, match=expected):
        restore(fresh_url, other)


@pytest.mark.skipif(test_store() != "duckdb", reason="the embedded DuckDB file's lock")
def test_a_duckdb_file_in_use_is_refused_clearly(tmp_path):
    url = f"duckdb:///{tmp_path / 'huizhi.duckdb'}"
    _host(url, tmp_path).dispose()
    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('held', flush=True); "
         "time.sleep(60)", str(tmp_path / "huizhi.duckdb")],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        started = time.monotonic()
        with pytest.raises(BackupError, match="in use by another process .* stop the portal, back up"):
            backup(url, tmp_path / "b.duckdb")
        assert time.monotonic() - started < 10
        assert not (tmp_path / "b.duckdb").exists()
        assert not list(tmp_path.glob(".b.duckdb.*"))
    finally:
        holder.kill()
        holder.wait()
