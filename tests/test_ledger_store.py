"""Versioned ledgers through the ledger service, on the configured store (DuckDB file or PostgreSQL).

The service is the only way a ledger changes: these tests drive it as the page, the CLI and the
seed loader do, and check what the store then holds.
"""

from __future__ import annotations

import datetime as dt
import json
import threading

import pandas as pd
import pytest
import sqlalchemy as sa
from ledgerkit import admin, commit_rows
from plugin_fixtures import ASSETS, make_plugin

from huizhi.access import AccessDenied, Grant, Identity, Role, system_identity
from huizhi.context import PageContext
from huizhi.db import current_revision
from huizhi.ledgers import ConfirmationRequired, KeyConflict, NotYours, OutOfScope, StaleVersion, Unchanged

SYSTEM = system_identity("test")
STEWARD = admin("jxj")  # ASSETS belongs to 区经济和信息化局 (jxj)

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


def ctx(host, identity: Identity) -> PageContext:
    return PageContext(_host=host, identity=identity, plugin="test")


def current_rows(host) -> list[tuple]:
    with host.engine.connect() as conn:
        return sorted(tuple(r) for r in conn.execute(host.store.scoped_select("assets", SYSTEM.row_scope(ASSETS))))


def ledger_row_count(host) -> int:
    with host.engine.connect() as conn:
        return conn.execute(sa.text("select count(*) from ledger_assets")).scalar()


def test_host_tables_are_created_by_migrations(host):
    assert current_revision(host.engine) == "0006"
    names = set(sa.inspect(host.engine).get_table_names())
    assert {"ledger_versions", "ledger_heads", "ledger_previews", "audit_log", "plugin_state", "ledger_assets",
            "task_runs"} <= names
    assert ("procrastinate_jobs" in names) == (host.engine.dialect.name == "postgresql")


def test_commit_diff_rollback_keeps_history(host):
    svc = host.ledgers
    v1 = commit_rows(host, "assets", V1, identity=STEWARD, file_sha256="h1")
    assert (v1.number, v1.added, v1.row_count, v1.created_by, v1.author) == (1, 3, 3, "admin-jxj", "jxj台账管理员")

    v2_data = V1.copy()
    v2_data.loc[0, "count"] = 10  # changed
    v2_data = pd.concat([v2_data.iloc[:2], pd.DataFrame({"code": ["A4"], "owner": ["区水务局"], "street": ["礼贤镇"], "count": [4]})])
    preview = svc.preview_rows(STEWARD, "assets", v2_data, file_sha256="h2")
    assert (preview.counts.added, preview.counts.changed, preview.counts.removed, preview.counts.unchanged) == (1, 1, 1, 1)
    assert preview.diff.changed_cells.to_pylist() == [{"code": "A1", "column": "count", "old": "1", "new": "10"}]
    assert preview.diff.added_rows.column("code").to_pylist() == ["A4"]
    assert preview.diff.removed_rows.column("code").to_pylist() == ["A3"]
    v2 = svc.commit(STEWARD, preview)
    # what was previewed is what was stored
    assert (v2.number, v2.added, v2.changed, v2.removed, v2.row_count) == (2, 1, 1, 1, 3)

    v3 = svc.rollback(STEWARD, "assets", 1, expected_version=2)
    assert (v3.number, v3.kind, v3.restored_from) == (3, "rollback", 1)
    assert (v3.added, v3.changed, v3.removed) == (1, 1, 1)
    assert [v.number for v in svc.versions(STEWARD, "assets")] == [3, 2, 1]
    assert current_rows(host) == sorted(tuple(r) for r in V1.itertuples(index=False))
    # the history view recomputes any version's change exactly
    assert svc.changes(STEWARD, "assets", 2).counts == preview.counts
    actions = [(e.action, e.outcome) for e in host.audit.search(actor="admin-jxj")]
    assert ("ledger.commit", "ok") in actions and ("ledger.rollback", "ok") in actions


def test_staged_rows_are_invisible_until_commit_and_gone_when_discarded(host):
    commit_rows(host, "assets", V1, identity=STEWARD)
    preview = host.ledgers.preview_rows(STEWARD, "assets", V1.assign(count=[5, 5, 5]))
    assert current_rows(host) == sorted(tuple(r) for r in V1.itertuples(index=False))
    assert ledger_row_count(host) == 6  # staged, not current
    host.ledgers.discard(STEWARD, preview)
    assert ledger_row_count(host) == 3
    with pytest.raises(StaleVersion):
        host.ledgers.commit(STEWARD, preview)


def test_identical_upload_creates_nothing(host):
    commit_rows(host, "assets", V1, identity=STEWARD, file_sha256="same")
    same_file = host.ledgers.preview_rows(STEWARD, "assets", V1, file_sha256="same")
    same_rows = host.ledgers.preview_rows(STEWARD, "assets", V1, file_sha256="other")  # other file, same content
    assert same_file.unchanged and same_rows.unchanged
    with pytest.raises(Unchanged):
        host.ledgers.commit(STEWARD, same_rows)
    assert commit_rows(host, "assets", V1, identity=STEWARD) is None
    assert len(host.store.versions("assets")) == 1
    assert ledger_row_count(host) == 3  # nothing staged was left behind


def test_stale_preview_is_refused_and_leaves_current_version(host):
    commit_rows(host, "assets", V1, identity=STEWARD)
    late = host.ledgers.preview_rows(STEWARD, "assets", V1.assign(count=[0, 0, 0]))
    commit_rows(host, "assets", V1.assign(count=[7, 8, 9]), identity=admin("jxj"))
    with pytest.raises(StaleVersion) as stale:
        host.ledgers.commit(STEWARD, late)
    assert "他人更新" in stale.value.user_message
    assert host.store.head("assets").number == 2
    assert ledger_row_count(host) == 6  # v1 and v2; the stale preview's rows are gone
    assert host.audit.search(action="ledger.commit")[0].outcome == "rejected"


def test_concurrent_commits_one_wins(host):
    commit_rows(host, "assets", V1, identity=STEWARD)
    previews = [host.ledgers.preview_rows(STEWARD, "assets", V1.assign(count=[i, i, i + 100])) for i in (11, 12)]
    results: list[str] = []

    def commit(preview) -> None:
        try:
            host.ledgers.commit(STEWARD, preview)
            results.append("ok")
        except StaleVersion:
            results.append("stale")

    threads = [threading.Thread(target=commit, args=(p,)) for p in previews]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["ok", "stale"]
    assert host.store.head("assets").number == 2


def test_failed_stage_leaves_nothing(host):
    v1 = commit_rows(host, "assets", V1, identity=STEWARD)
    bad = V1.assign(count=["x", "y", "z"])  # cannot be cast to int
    with pytest.raises(Exception):  # noqa: B017 - any failure, the point is what it leaves behind
        host.ledgers.preview_rows(STEWARD, "assets", bad)
    assert host.store.head("assets").version_id == v1.id
    assert ledger_row_count(host) == 3


def test_only_whoever_previewed_commits_and_removals_need_confirming(host):
    commit_rows(host, "assets", V1, identity=STEWARD)
    preview = host.ledgers.preview_rows(STEWARD, "assets", V1.iloc[:1])
    assert preview.needs_confirmation and preview.counts.removed == 2
    with pytest.raises(NotYours):
        host.ledgers.commit(Identity("other", "别人", frozenset({Grant(Role.LEDGER_ADMIN, "jxj")})), preview)
    with pytest.raises(ConfirmationRequired) as unconfirmed:
        host.ledgers.commit(STEWARD, preview)
    assert "2 行" in unconfirmed.value.user_message
    assert host.ledgers.commit(STEWARD, preview, confirm_removal=True).row_count == 1


def test_refusals_are_audited_as_denials(host):
    commit_rows(host, "assets", V1, identity=STEWARD)
    with pytest.raises(AccessDenied):
        host.ledgers.preview_rows(staff("jxj"), "assets", V1)
    with pytest.raises(AccessDenied):
        host.ledgers.rollback(admin("gaj"), "assets", 1, expected_version=1)  # not the steward
    denied = host.audit.search(action="access.denied")
    assert {(e.actor, e.outcome) for e in denied} == {("staff-jxj", "denied"), ("admin-gaj", "denied")}
    assert not host.audit.search(action="ledger.commit", actor="staff-jxj")


def test_row_level_scope_is_enforced_in_sql(host):
    commit_rows(host, "assets", V1, identity=STEWARD)
    reader = ctx(host, staff("gaj")).ledger("assets")
    assert set(reader.frame()["owner"]) == {"区公安分局"}
    assert reader.count() == 2
    # a plugin's own aggregate built on the reader cannot see more
    total = reader.scalar(sa.select(sa.func.sum(reader.c("count"))).select_from(reader.rows))
    assert total == 4
    # the steward department and leaders see everything
    assert ctx(host, staff("jxj")).ledger("assets").count() == 3
    # no department row and not steward: denied, audited
    admin_only = Identity("admin", "管理员", frozenset({Grant(Role.PLATFORM_ADMIN)}))
    with pytest.raises(AccessDenied):
        ctx(host, admin_only).ledger("assets")
    assert host.audit.search(action="access.denied")[0].target == "ledger:assets"


def test_new_plugin_column_is_added_to_existing_table(make_host):
    from dataclasses import replace

    from huizhi.specs import ColumnSpec

    make_host(extra_plugins=[("assets", make_plugin("assets", ledgers=[ASSETS]))])
    wider = replace(ASSETS, columns=(*ASSETS.columns, ColumnSpec("checked", "核查日期", "date", required=False)))
    host = make_host(extra_plugins=[("assets", make_plugin("assets", ledgers=[wider]))])
    data = V1.assign(checked=[dt.date(2024, 1, 1)] * 3)
    assert commit_rows(host, "assets", data, identity=STEWARD).row_count == 3


def test_department_upload_replaces_only_its_own_rows(host):
    from huizhi.access import RowScope

    commit_rows(host, "assets", V1, identity=STEWARD)
    gaj = admin("gaj")
    assert gaj.upload_scope(ASSETS) == RowScope(department_names=frozenset({"区公安分局"}))
    mine = pd.DataFrame({"code": ["A1", "A5"], "owner": ["区公安分局", "区公安分局"], "street": ["兴丰街道", "榆垡镇"],
                         "count": [10, 5]})
    preview = host.ledgers.preview_rows(gaj, "assets", mine)
    assert preview.departments == ("区公安分局",)
    v2 = host.ledgers.commit(gaj, preview)
    # A1 changed, A5 added, A3 (gaj's, not re-uploaded) removed; 区水务局's A2 untouched
    assert (v2.added, v2.changed, v2.removed, v2.row_count) == (1, 1, 1, 3)
    reader = ctx(host, staff("jxj")).ledger("assets")
    rows = {r.code: (r.owner, r.count) for r in reader.frame().itertuples()}
    assert rows == {"A1": ("区公安分局", 10), "A2": ("区水务局", 2), "A5": ("区公安分局", 5)}

    with pytest.raises(OutOfScope) as out:
        host.ledgers.preview_rows(gaj, "assets", V1)
    assert "区水务局" in out.value.user_message
    stolen = pd.DataFrame({"code": ["A2"], "owner": ["区公安分局"], "street": ["瀛海镇"], "count": [1]})
    with pytest.raises(KeyConflict) as clash:
        host.ledgers.preview_rows(gaj, "assets", stolen)
    assert "A2" in clash.value.user_message
    assert host.store.head("assets").version_id == v2.id  # neither refusal left anything behind
    assert ledger_row_count(host) == 6
    refusals = [e for e in host.audit.search(action="ledger.upload", actor="admin-gaj")]
    assert [e.outcome for e in refusals] == ["denied", "denied"]  # never audited as ok


def test_commits_publish_events_to_subscribers_and_plugins(host):
    seen = []
    host.events.subscribe("test", seen.append)
    v1 = commit_rows(host, "assets", V1, identity=STEWARD)
    commit_rows(host, "assets", V1.assign(count=[4, 5, 6]), identity=STEWARD)
    host.ledgers.rollback(STEWARD, "assets", 1, expected_version=2)
    assert [(e.ledger_id, e.version, e.kind, e.actor) for e in seen] == [
        ("assets", 1, "upload", "admin-jxj"), ("assets", 2, "upload", "admin-jxj"), ("assets", 3, "rollback", "admin-jxj"),
    ]
    assert seen[0].version_id == v1.id and not seen[0].remote


def test_upload_scope_by_role():
    assert Identity("a", "a", frozenset({Grant(Role.LEDGER_ADMIN, "jxj")})).upload_scope(ASSETS).all_rows
    assert Identity("s", "s", frozenset({Grant(Role.STAFF, "gaj")})).upload_scope(ASSETS).empty
    assert Identity("l", "l", frozenset({Grant(Role.LEADER)})).upload_scope(ASSETS).empty


# -- update modes (issue 12) ------------------------------------------------------------------------


def test_upsert_adds_and_updates_by_key_and_keeps_every_other_row(host):
    from huizhi.ledgers import Mode

    commit_rows(host, "assets", V1, identity=STEWARD)
    rows = pd.DataFrame({"code": ["A1", "A4"], "owner": ["区公安分局", "区水务局"], "street": ["兴丰街道", "礼贤镇"],
                         "count": [10, 4]})
    preview = host.ledgers.preview_rows(STEWARD, "assets", rows, mode=Mode.UPSERT)
    assert (preview.counts.added, preview.counts.changed, preview.counts.removed, preview.counts.unchanged) == (1, 1, 0, 2)
    assert not preview.needs_confirmation and preview.mode == Mode.UPSERT
    v2 = host.ledgers.commit(STEWARD, preview)
    assert (v2.added, v2.changed, v2.removed, v2.row_count, v2.mode) == (1, 1, 0, 4, "upsert")
    assert {r[0]: r[3] for r in current_rows(host)} == {"A1": 10, "A2": 2, "A3": 3, "A4": 4}
    assert json.loads(host.audit.search(action="ledger.commit")[0].detail)["mode"] == "upsert"
    # rollback is the same as for any version: a new version with the old rows
    v3 = host.ledgers.rollback(STEWARD, "assets", 1, expected_version=2)
    assert (v3.mode, v3.removed, v3.changed) == ("replace", 1, 1)
    assert current_rows(host) == sorted(tuple(r) for r in V1.itertuples(index=False))


def test_delete_removes_only_the_listed_keys_and_names_the_unknown_ones(host):
    from huizhi.ledgers import Mode

    commit_rows(host, "assets", V1, identity=STEWARD)
    listed = pd.DataFrame({"code": ["A2", "A9"]})  # only the key column; A9 does not exist
    preview = host.ledgers.preview_rows(STEWARD, "assets", listed, mode=Mode.DELETE)
    assert (preview.counts.added, preview.counts.changed, preview.counts.removed) == (0, 0, 1)
    assert preview.diff.removed_rows.column("code").to_pylist() == ["A2"]
    assert (preview.unmatched, preview.unmatched_keys) == (1, (("A9",),))
    assert ledger_row_count(host) == 5  # v1 + the staged version; the listed keys are not kept
    v2 = host.ledgers.commit(STEWARD, preview)
    assert (v2.removed, v2.row_count, v2.mode) == (1, 2, "delete")
    assert [r[0] for r in current_rows(host)] == ["A1", "A3"]
    # listing only keys that are gone changes nothing
    again = host.ledgers.preview_rows(STEWARD, "assets", listed, mode=Mode.DELETE)
    assert again.unchanged and again.unmatched == 2


def test_a_delete_of_most_rows_still_needs_confirming(host):
    from huizhi.ledgers import Mode

    commit_rows(host, "assets", V1, identity=STEWARD)
    preview = host.ledgers.preview_rows(STEWARD, "assets", V1[["code"]].iloc[:2], mode=Mode.DELETE)
    assert preview.needs_confirmation and preview.counts.removed == 2
    with pytest.raises(ConfirmationRequired):
        host.ledgers.commit(STEWARD, preview)
    assert host.ledgers.commit(STEWARD, preview, confirm_removal=True).row_count == 1


def test_department_modes_stay_within_its_own_rows(host):
    from huizhi.ledgers import Mode

    commit_rows(host, "assets", V1, identity=STEWARD)  # gaj: A1, A3; 区水务局: A2
    gaj = admin("gaj")
    mine = pd.DataFrame({"code": ["A5"], "owner": ["区公安分局"], "street": ["榆垡镇"], "count": [5]})
    preview = host.ledgers.preview_rows(gaj, "assets", mine, mode=Mode.UPSERT)
    assert (preview.counts.added, preview.counts.removed, preview.row_count) == (1, 0, 4)  # A3 is kept
    host.ledgers.commit(gaj, preview)

    theirs = pd.DataFrame({"code": ["A2"], "owner": ["区公安分局"], "street": ["瀛海镇"], "count": [1]})
    with pytest.raises(KeyConflict) as changed:
        host.ledgers.preview_rows(gaj, "assets", theirs, mode=Mode.UPSERT)
    assert "A2" in changed.value.user_message and "不能修改" in changed.value.user_message
    with pytest.raises(KeyConflict) as deleted:
        host.ledgers.preview_rows(gaj, "assets", pd.DataFrame({"code": ["A3", "A2"]}), mode=Mode.DELETE)
    assert "A2" in deleted.value.user_message and "不能删除" in deleted.value.user_message
    uploads = host.audit.search(action="ledger.upload", actor="admin-gaj")
    assert [e.outcome for e in uploads] == ["denied", "denied"]  # the ok one was preview_rows: not audited
    assert ledger_row_count(host) == 7  # v1 (3) + v2 (4): neither refusal left rows behind

    own = host.ledgers.preview_rows(gaj, "assets", pd.DataFrame({"code": ["A3"]}), mode=Mode.DELETE)
    v3 = host.ledgers.commit(gaj, own)
    assert (v3.removed, v3.row_count, v3.mode) == (1, 3, "delete")
    assert sorted(r[0] for r in current_rows(host)) == ["A1", "A2", "A5"]


def test_the_same_file_in_another_mode_is_previewed_again(host):
    from huizhi.ledgers import Mode

    commit_rows(host, "assets", V1, identity=STEWARD, file_sha256="f1")
    part = V1.iloc[:1].assign(count=[9])
    v2 = host.ledgers.import_rows(STEWARD, "assets", part, file_sha256="f2", mode=Mode.UPSERT)
    assert (v2.changed, v2.row_count) == (1, 3)
    assert host.ledgers.preview_rows(STEWARD, "assets", part, file_sha256="f2", mode=Mode.UPSERT).unchanged
    replace = host.ledgers.preview_rows(STEWARD, "assets", part, file_sha256="f2", mode=Mode.REPLACE)
    assert replace.counts.removed == 2  # the file alone would replace the ledger
