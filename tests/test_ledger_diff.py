"""The one diff (SQL, in the store) as a preview shows it, on the configured store.

These carry over what the in-process ``diff_frames`` tests checked, against
``host.ledgers.preview_rows``: rows matched by key (composite keys too), added / removed rows,
changed cells as text (是/否 for booleans, ISO dates, plain numbers, NULL and '' kept apart),
counts, an identical upload, a first version, and duplicate keys refused.
"""

from __future__ import annotations

import datetime as dt

import excel_corpus as C
import pyarrow as pa
import pytest
from ledgerkit import commit_rows
from plugin_fixtures import make_plugin

from huizhi.excel import ProblemKind
from huizhi.ledgers import RowsRejected
from huizhi.specs import ColumnSpec, LedgerSpec

CASES = LedgerSpec(
    id="diffcase",
    title="比对台账",
    department="jxj",
    key=("k",),
    columns=(
        ColumnSpec("k", "编号"),
        ColumnSpec("v", "数量", "int", required=False),
        ColumnSpec("f", "是否重点", "bool", required=False),
        ColumnSpec("s", "备注", required=False),
        ColumnSpec("d", "日期", "date", required=False),
        ColumnSpec("x", "金额", "float", required=False),
    ),
)

PAIRS = LedgerSpec(
    id="diffpairs",
    title="复合键台账",
    department="jxj",
    key=("k1", "k2"),
    columns=(
        ColumnSpec("k1", "单位"),
        ColumnSpec("k2", "序号", "int"),
        ColumnSpec("v", "金额", "float", required=False),
        ColumnSpec("d", "日期", "date", required=False),
    ),
)

D1, D2 = dt.date(2023, 1, 1), dt.date(2023, 5, 1)


def cases(k, v, f, s, d, x) -> pa.Table:
    return pa.table(
        {
            "k": pa.array(k, pa.string()),
            "v": pa.array(v, pa.int64()),
            "f": pa.array(f, pa.bool_()),
            "s": pa.array(s, pa.string()),
            "d": pa.array(d, pa.date32()),
            "x": pa.array(x, pa.float64()),
        }
    )


CURRENT = cases(
    k=["a", "b", "c", "d", "g"],
    v=[1, 2, 3, 4, 7],
    f=[True, False, None, True, False],
    s=["x", "", "=1", None, ""],
    d=[D1, D1, D1, None, D1],
    x=[1.0, 2.5, 3.0, 4.0, 0.1],
)
NEW = cases(
    k=["b", "c", "d", "e", "g"],
    v=[2, 30, 4, 5, 7],
    f=[False, True, True, None, True],
    s=["", "=1", "y", None, None],
    d=[D1, D2, None, None, D1],
    x=[2.5, 3.0, 4.5, 5.0, 0.1],
)


@pytest.fixture
def host(make_host):
    return make_host(extra_plugins=[("diffs", make_plugin("diffs", ledgers=[CASES, PAIRS]))])


def counts(preview) -> tuple[int, int, int, int]:
    c = preview.counts
    return (c.added, c.changed, c.removed, c.unchanged)


def store_as_is(host, ledger_id: str, rows) -> None:
    """Rows straight into the store, below the service's cell checks: an empty text '' (which
    the checks store as NULL, as an upload does) as a version written before them may hold it."""
    staged = host.store.stage(ledger_id, rows, subject="test", kind="import")
    host.store.publish(ledger_id, staged.preview.id, created_by="test")


def test_rows_matched_by_key_and_changed_cells_as_text(host):
    who = host.system_identity("test")
    store_as_is(host, "diffcase", CURRENT)
    preview = host.ledgers.preview_rows(who, "diffcase", NEW)  # its '' is checked into NULL
    assert counts(preview) == (1, 4, 1, 0)
    assert preview.diff.added_rows.column("k").to_pylist() == ["e"]
    assert preview.diff.removed_rows.column("k").to_pylist() == ["a"]
    assert preview.diff.added_rows.to_pylist() == [
        {"k": "e", "v": 5, "f": None, "s": None, "d": None, "x": 5.0}
    ]
    assert preview.diff.removed_rows.to_pylist() == [
        {"k": "a", "v": 1, "f": True, "s": "x", "d": D1, "x": 1.0}
    ]
    # ordered by key, then by the spec's column order; old and new as the page shows them
    assert preview.diff.changed_cells.to_pylist() == [
        {"k": "b", "column": "s", "old": "", "new": None},  # '' and NULL are different cells
        {"k": "c", "column": "v", "old": "3", "new": "30"},
        {"k": "c", "column": "f", "old": None, "new": "是"},
        {"k": "c", "column": "d", "old": "2023-01-01", "new": "2023-05-01"},
        {"k": "d", "column": "s", "old": None, "new": "y"},
        {"k": "d", "column": "x", "old": "4", "new": "4.5"},
        {"k": "g", "column": "f", "old": "否", "new": "是"},
        {"k": "g", "column": "s", "old": "", "new": None},  # '' and NULL are different cells
    ]
    assert preview.diff.changed_cells.schema.field("k").type == pa.string()
    # what was previewed is what a commit records
    version = host.ledgers.commit(who, preview)
    assert (version.added, version.changed, version.removed, version.row_count) == (1, 4, 1, 5)


def test_first_version_is_all_added(host):
    preview = host.ledgers.preview_rows(host.system_identity("test"), "diffcase", NEW.to_pandas())
    assert counts(preview) == (5, 0, 0, 0)
    assert preview.base_version is None
    assert sorted(preview.diff.added_rows.column("k").to_pylist()) == ["b", "c", "d", "e", "g"]
    assert preview.diff.removed_rows.num_rows == 0 and preview.diff.changed_cells.num_rows == 0


def test_composite_key_and_identical_rows(host):
    who = host.system_identity("test")
    rows = pa.table(
        {
            "k1": ["a", "a", "b"],
            "k2": pa.array([1, 2, 1], pa.int64()),
            "v": [0.1, 0.2, 0.3],
            "d": pa.array([D1, D1, None], pa.date32()),
        }
    )
    commit_rows(host, "diffpairs", rows)
    same = host.ledgers.preview_rows(who, "diffpairs", rows)
    assert same.unchanged and counts(same) == (0, 0, 0, 3)
    assert same.diff.changed_cells.num_rows == 0

    # (a, 2) changes; (b, 1) goes; (b, 2) comes: the key is both columns, not k1 alone
    edited = pa.table(
        {
            "k1": ["a", "a", "b"],
            "k2": pa.array([1, 2, 2], pa.int64()),
            "v": [0.1, 0.25, 0.3],
            "d": pa.array([D1, D2, None], pa.date32()),
        }
    )
    preview = host.ledgers.preview_rows(who, "diffpairs", edited)
    assert counts(preview) == (1, 1, 1, 1)
    assert preview.diff.changed_cells.to_pylist() == [
        {"k1": "a", "k2": 2, "column": "v", "old": "0.2", "new": "0.25"},
        {"k1": "a", "k2": 2, "column": "d", "old": "2023-01-01", "new": "2023-05-01"},
    ]
    assert preview.diff.added_rows.select(["k1", "k2"]).to_pylist() == [{"k1": "b", "k2": 2}]
    assert preview.diff.removed_rows.select(["k1", "k2"]).to_pylist() == [{"k1": "b", "k2": 1}]


def test_upload_with_duplicate_keys_is_refused(host):
    """An upload with a key twice never reaches the diff: the file fails its check (per cell)."""
    who = host.system_identity("test")
    commit_rows(host, "diffcase", CURRENT)
    data = C.typed_xlsx(
        [["a", 1, "是", "x", D1, 1.0], ["a", 2, "否", "y", D1, 2.0]],
        headers=[c.label for c in CASES.columns],
    )
    upload = host.ledgers.upload(who, "diffcase", data, "dup.xlsx")
    assert upload.preview is None and not upload.result.ok
    assert {p.kind for p in upload.result.errors} == {ProblemKind.DUPLICATE}
    assert host.ledgers.head("diffcase").number == 1


def test_typed_rows_with_duplicate_keys_are_refused(host):
    who = host.system_identity("test")
    commit_rows(host, "diffcase", CURRENT)
    twice = cases(k=["a", "a"], v=[1, 2], f=[None] * 2, s=[None] * 2, d=[None] * 2, x=[None] * 2)
    with pytest.raises(RowsRejected) as refused:  # checked like an upload: both rows named
        host.ledgers.preview_rows(who, "diffcase", twice)
    assert [(p.row, p.column, p.kind) for p in refused.value.errors] == [(0, "k", "duplicate"), (1, "k", "duplicate")]
    assert "（a）" in refused.value.user_message and "重复" in refused.value.user_message
    assert host.ledgers.head("diffcase").number == 1


def test_upload_progress_reports_ingest_then_stage_and_diff_in_order(host):
    """The page's progress bar follows one callback: the ingest phases, then the service's own
    暂存 (stage) and 比对 (diff), each from 0 to 1, in order."""
    from huizhi.excel.pipeline import PHASE_LABELS

    who = host.system_identity("test")
    commit_rows(host, "diffcase", CURRENT)
    data = C.typed_xlsx(
        [["a", 1, "是", "x", D1, 1.0], ["z", 2, "否", "y", D2, 2.0]], headers=[c.label for c in CASES.columns]
    )
    seen: list[tuple[str, float]] = []
    upload = host.ledgers.upload(who, "diffcase", data, "p.xlsx", on_progress=lambda ph, f: seen.append((ph, f)))
    assert upload.preview is not None
    phases = [ph for ph, _ in seen]
    order = [p for i, p in enumerate(phases) if i == 0 or phases[i - 1] != p]
    assert order == ["sniff", "parse", "header", "convert", "validate", "stage", "diff"]
    assert all(0.0 <= f <= 1.0 for _, f in seen)
    assert ("stage", 0.0) in seen and ("stage", 1.0) in seen and seen[-1] == ("diff", 1.0)
    assert PHASE_LABELS["stage"] == "暂存数据" and PHASE_LABELS["diff"] == "比对变化"
    assert list(PHASE_LABELS).index("validate") < list(PHASE_LABELS).index("stage") < list(PHASE_LABELS).index("diff")

    # the same file again: nothing to stage, the bar still ends at the diff
    commit = host.ledgers.commit(who, upload.preview, confirm_removal=True)
    assert commit.number == 2
    seen.clear()
    again = host.ledgers.upload(who, "diffcase", data, "p.xlsx", on_progress=lambda ph, f: seen.append((ph, f)))
    assert again.preview is not None and again.preview.unchanged
    assert [ph for ph, _ in seen][-2:] == ["stage", "diff"] and seen[-1] == ("diff", 1.0)
