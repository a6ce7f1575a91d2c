"""Versioned ledger storage on the configured store (DuckDB file or PostgreSQL)."""

from __future__ import annotations

import datetime as dt
import threading

import pandas as pd
import pytest
import sqlalchemy as sa
from plugin_fixtures import ASSETS, make_plugin

from huizhi.access import AccessDenied, Grant, Identity, Role, system_identity
from huizhi.context import PageContext
from huizhi.db import current_revision
from huizhi.ledger_store import StaleVersion, Unchanged

SYSTEM = system_identity("test")

V1 = pd.DataFrame({
    "code": ["A1", "A2", "A3"],
    "owner": ["区公安分局", "区水务局", "区公安分局"],
    "street": ["兴丰街道", "瀛海镇", "旧宫镇"],
    "count": [1, 2, 3],
})


@pytest.fixture
def host(make_host):
    return make_host(extra_plugins=[("assets", make_plugin("assets", ledgers=[ASSETS]))])


def staff(dept: str) -> Identity:
    return Identity(subject=f"staff-{dept}", name="员工", grants=frozenset({Grant(Role.STAFF, dept)}))


def test_host_tables_are_created_by_migrations(host):
    assert current_revision(host.engine) is not None
    names = set(sa.inspect(host.engine).get_table_names())
    assert {"ledger_versions", "ledger_heads", "audit_log", "plugin_state", "ledger_assets"} <= names


def test_commit_diff_rollback_keeps_history(host):
    store = host.store
    v1 = store.commit("assets", V1, created_by="u1", expected_version_id=None, file_name="a.xlsx", file_sha256="h1")
    assert (v1.number, v1.added, v1.row_count) == (1, 3, 3)

    v2_data = V1.copy()
    v2_data.loc[0, "count"] = 10  # changed
    v2_data = pd.concat([v2_data.iloc[:2], pd.DataFrame({"code": ["A4"], "owner": ["区水务局"], "street": ["礼贤镇"], "count": [4]})])
    v2 = store.commit("assets", v2_data, created_by="u2", expected_version_id=v1.id, file_sha256="h2")
    assert (v2.number, v2.added, v2.changed, v2.removed, v2.row_count) == (2, 1, 1, 1, 3)

    v3 = store.rollback("assets", 1, created_by="u3", expected_version_id=v2.id)
    assert (v3.number, v3.kind, v3.restored_from) == (3, "rollback", 1)
    assert (v3.added, v3.changed, v3.removed) == (1, 1, 1)
    assert [v.number for v in store.versions("assets")] == [3, 2, 1]
    with host.engine.connect() as conn:
        rows = sorted(conn.execute(store.scoped_select("assets", SYSTEM.row_scope(ASSETS))).fetchall())
    assert [tuple(r) for r in rows] == [tuple(r) for r in V1.itertuples(index=False)]


def test_identical_upload_creates_nothing(host):
    v1 = host.store.commit("assets", V1, created_by="u", expected_version_id=None, file_sha256="same")
    with pytest.raises(Unchanged):
        host.store.commit("assets", V1, created_by="u", expected_version_id=v1.id, file_sha256="same")
    with pytest.raises(Unchanged):  # a different file with the same content
        host.store.commit("assets", V1, created_by="u", expected_version_id=v1.id, file_sha256="other")
    assert len(host.store.versions("assets")) == 1


def test_stale_preview_is_refused_and_leaves_current_version(host):
    v1 = host.store.commit("assets", V1, created_by="a", expected_version_id=None)
    changed = V1.assign(count=[7, 8, 9])
    host.store.commit("assets", changed, created_by="b", expected_version_id=v1.id)
    with pytest.raises(StaleVersion):
        host.store.commit("assets", V1.assign(count=[0, 0, 0]), created_by="a", expected_version_id=v1.id)
    assert host.store.head("assets").number == 2


def test_concurrent_commits_one_wins(host):
    v1 = host.store.commit("assets", V1, created_by="a", expected_version_id=None)
    results: list[str] = []

    def commit(i: int) -> None:
        try:
            host.store.commit("assets", V1.assign(count=[i, i, i + 100]), created_by=f"admin{i}", expected_version_id=v1.id)
            results.append("ok")
        except StaleVersion:
            results.append("stale")

    threads = [threading.Thread(target=commit, args=(i,)) for i in (11, 12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["ok", "stale"]
    assert host.store.head("assets").number == 2


def test_failed_commit_leaves_no_partial_version(host):
    v1 = host.store.commit("assets", V1, created_by="a", expected_version_id=None)
    bad = V1.assign(count=["x", "y", "z"])  # cannot be cast to int
    with pytest.raises(Exception):  # noqa: B017 - any failure, the point is what it leaves behind
        host.store.commit("assets", bad, created_by="a", expected_version_id=v1.id)
    assert host.store.head("assets").version_id == v1.id
    with host.engine.connect() as conn:
        count = conn.execute(sa.text("select count(*) from ledger_assets")).scalar()
    assert count == 3


def test_row_level_scope_is_enforced_in_sql(host):
    host.store.commit("assets", V1, created_by="a", expected_version_id=None)
    reader = PageContext(host=host, identity=staff("gaj"), plugin="test").ledger("assets")
    assert set(reader.frame()["owner"]) == {"区公安分局"}
    assert reader.count() == 2
    # a plugin's own aggregate built on the reader cannot see more
    total = reader.scalar(sa.select(sa.func.sum(reader.c("count"))).select_from(reader.rows))
    assert total == 4
    # the steward department and leaders see everything
    jxj = PageContext(host=host, identity=staff("jxj"), plugin="test")
    assert jxj.ledger("assets").count() == 3
    # no department row and not steward: denied, audited
    with pytest.raises(AccessDenied):
        PageContext(host=host, identity=Identity("admin", "管理员", frozenset({Grant(Role.PLATFORM_ADMIN)})), plugin="t").ledger("assets")
    assert host.audit.search(action="access.denied")[0].target == "ledger:assets"


def test_new_plugin_column_is_added_to_existing_table(make_host):
    from dataclasses import replace

    from huizhi.specs import ColumnSpec

    make_host(extra_plugins=[("assets", make_plugin("assets", ledgers=[ASSETS]))])
    wider = replace(ASSETS, columns=(*ASSETS.columns, ColumnSpec("checked", "核查日期", "date", required=False)))
    host = make_host(extra_plugins=[("assets", make_plugin("assets", ledgers=[wider]))])
    data = V1.assign(checked=[dt.date(2024, 1, 1)] * 3)
    version = host.store.commit("assets", data, created_by="u", expected_version_id=None)
    assert version.row_count == 3


def test_department_upload_replaces_only_its_own_rows(host):
    from huizhi.access import RowScope
    from huizhi.ledger_store import KeyConflict, OutOfScope

    v1 = host.store.commit("assets", V1, created_by="steward", expected_version_id=None)
    admin = Identity("gaj-admin", "公安台账员", frozenset({Grant(Role.LEDGER_ADMIN, "gaj")}))
    scope = admin.upload_scope(ASSETS)
    assert scope == RowScope(department_names=frozenset({"区公安分局"}))
    mine = pd.DataFrame({"code": ["A1", "A5"], "owner": ["区公安分局", "区公安分局"], "street": ["兴丰街道", "榆垡镇"],
                         "count": [10, 5]})
    v2 = host.store.commit("assets", mine, created_by="gaj", expected_version_id=v1.id, replace_scope=scope)
    # A1 changed, A5 added, A3 (gaj's, not re-uploaded) removed; 区水务局's A2 untouched
    assert (v2.added, v2.changed, v2.removed, v2.row_count) == (1, 1, 1, 3)
    reader = PageContext(host=host, identity=staff("jxj"), plugin="t").ledger("assets")
    rows = {r.code: (r.owner, r.count) for r in reader.frame().itertuples()}
    assert rows == {"A1": ("区公安分局", 10), "A2": ("区水务局", 2), "A5": ("区公安分局", 5)}

    with pytest.raises(OutOfScope) as out:
        host.store.commit("assets", V1, created_by="gaj", expected_version_id=v2.id, replace_scope=scope)
    assert "区水务局" in out.value.user_message
    stolen = pd.DataFrame({"code": ["A2"], "owner": ["区公安分局"], "street": ["瀛海镇"], "count": [1]})
    with pytest.raises(KeyConflict) as clash:
        host.store.commit("assets", stolen, created_by="gaj", expected_version_id=v2.id, replace_scope=scope)
    assert "A2" in clash.value.user_message
    assert host.store.head("assets").version_id == v2.id  # neither failure left anything behind


def test_upload_scope_by_role():
    assert Identity("a", "a", frozenset({Grant(Role.LEDGER_ADMIN, "jxj")})).upload_scope(ASSETS).all_rows
    assert Identity("s", "s", frozenset({Grant(Role.STAFF, "gaj")})).upload_scope(ASSETS).empty
    assert Identity("l", "l", frozenset({Grant(Role.LEADER)})).upload_scope(ASSETS).empty
