"""``huizhi ledger import`` and the ledger page give the same result for the same file: both call
the ledger service (same problems, same preview counts, same stored version, same audit)."""

from __future__ import annotations

import io
import subprocess
import sys
from argparse import Namespace
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from huizhi_sensing.schema import LEDGER_ID, SENSING_LEDGER
from streamlit.testing.v1 import AppTest

from huizhi.config import load_settings
from huizhi.excel import export_csv
from huizhi.host import create_host
from huizhi.ledger_cli import cmd_import
from huizhi_seeds import load_demo

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def sensing_db(database_url, tmp_path, monkeypatch):
    """The sensing ledger seeded small, and two files: one with three bad cells, one fixed, each
    changing some rows of the current version."""
    monkeypatch.setenv("HUIZHI_DATABASE_URL", database_url)
    monkeypatch.setenv("HUIZHI_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("HUIZHI_LOAD_PLUGINS", "sensing")
    with create_host(load_settings()) as host:
        load_demo(host, scale=0.003, ledgers=[LEDGER_ID])
        current = host.ledgers.export(host.system_identity("test"), LEDGER_ID).slice(0, 200)
    names = current.column("device_name").to_pylist()
    fixed = current.set_column(
        current.schema.get_field_index("device_name"), "device_name",
        pa.array([f"{n}（已核）" if i < 7 else n for i, n in enumerate(names)]),
    )  # fmt: skip
    bad = fixed.set_column(
        fixed.schema.get_field_index("lon"), "lon", pc.if_else(pc.less(pa.array(range(200)), 3), 200.0, fixed.column("lon"))
    )
    good_file, bad_file = tmp_path / "devices.csv", tmp_path / "devices-bad.csv"
    good_file.write_bytes(export_csv(fixed, SENSING_LEDGER))
    bad_file.write_bytes(export_csv(bad, SENSING_LEDGER))
    return database_url, good_file, bad_file


def _cli(file: Path, *extra: str, mode: str = "replace") -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    args = Namespace(file=file, ledger=LEDGER_ID, dry_run="--dry-run" in extra, allow_removal="--allow-removal" in extra,
                     max_problems=50, mode=mode)
    return cmd_import(args, out=out, err=err), out.getvalue(), err.getvalue()


def _page_script(file_path: str) -> None:
    from huizhi.access import Grant, Identity, Role
    from huizhi.config import load_settings
    from huizhi.context import PageContext
    from huizhi.host import create_host
    from huizhi_pages import ledgers as page

    admin = Identity("t|admin-jxj", "陈静", frozenset({Grant(Role.LEDGER_ADMIN, "jxj")}))
    # a host per run, not st.cache_resource: the cache outlives the test (and its database)
    with create_host(load_settings()) as host:
        page.upload_tab(PageContext(_host=host, identity=admin, plugin="builtin_pages"), host.store.specs["sensing_devices"])


def _page(file: Path, mode: str | None = "replace") -> AppTest:
    """The upload tab with ``file`` uploaded in ``mode`` (None: the page's default mode)."""
    at = AppTest.from_function(_page_script, args=(str(file),), default_timeout=60).run()
    if mode is not None:
        at.radio(key=f"mode-{LEDGER_ID}").set_value(mode).run()
    at.file_uploader[0].set_value((file.name, file.read_bytes(), "text/csv")).run()
    assert not at.exception, at.exception
    return at


def test_page_and_cli_agree_on_problems_and_counts(sensing_db):
    _, good, bad = sensing_db
    code, out, err = _cli(bad, "--dry-run")
    assert code == 1 and "3 处错误" in out and "未提交" in err
    cli_problems = sorted(line.split("] ", 1)[1] for line in out.splitlines() if line.startswith("  [错误]"))
    assert len(cli_problems) == 3 and all("经度" in p for p in cli_problems)

    at = _page(bad)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["错误"] == "3"
    problems = at.table[-1].value.reset_index()  # the problem list: a table, so long hints wrap
    page_problems = sorted(problems[problems["级别"] == "错误"]["问题"].tolist())
    assert len(page_problems) == 3
    assert all(p.split("：", 1)[-1].split("。")[0] in " ".join(cli_problems) for p in page_problems)
    assert not at.button  # no commit button for a file with errors

    code, out, err = _cli(good, "--dry-run", "--allow-removal")
    assert code == 0, err
    cli_counts = out.split("变更：", 1)[1].splitlines()[0]
    at = _page(good)
    metrics = {m.label: m.value for m in at.metric}
    page_counts = f"新增 {metrics['新增']}，修改 {metrics['修改']}，删除 {metrics['删除']}，未变 {metrics['未变']}"
    assert cli_counts == page_counts and "修改 7" in page_counts


def test_cli_commits_what_it_previewed_and_audits_it(sensing_db):
    database_url, good, _ = sensing_db
    code, out, err = _cli(good)
    assert code == 1 and "--allow-removal" in err  # 200 rows would replace the whole ledger
    code, out, err = _cli(good, "--allow-removal")
    assert code == 0, err
    assert "已提交为第 2 版，共 200 行" in out
    with create_host(load_settings()) as host:
        version = host.store.version(LEDGER_ID, 2)
        assert (version.changed, version.row_count) == (7, 200)
        assert version.created_by.startswith("system:import:")
        actions = {(e.action, e.outcome) for e in host.audit.search(actor="system:import:")}
        assert {("ledger.upload", "ok"), ("ledger.commit", "ok")} <= actions
    code, out, _ = _cli(good, "--allow-removal")
    assert code == 0 and "无需提交" in out  # the same file again changes nothing


def test_cli_names_an_unknown_ledger_and_a_missing_file(sensing_db, tmp_path):
    env = {"PATH": "/usr/bin:/bin"}
    missing = subprocess.run([sys.executable, "-m", "huizhi.cli", "ledger", "import", str(tmp_path / "nope.xlsx"),
                              "--ledger", LEDGER_ID], capture_output=True, text=True, cwd=ROOT, env=env)
    assert missing.returncode == 2 and "does not exist" in missing.stderr
    args = Namespace(file=sensing_db[1], ledger="no_such", dry_run=True, allow_removal=False, max_problems=5)
    err = io.StringIO()
    assert cmd_import(args, out=io.StringIO(), err=err) == 2
    assert "no_such" in err.getvalue() and LEDGER_ID in err.getvalue()


# -- update modes (issue 12) ------------------------------------------------------------------------


def _rows_now(host) -> int:
    return host.store.head(LEDGER_ID) and host.store.version(LEDGER_ID, host.store.head(LEDGER_ID).number).row_count


def test_template_with_twenty_new_devices_adds_twenty_and_deletes_none(sensing_db):
    from ledgerkit import admin, fill_template, new_device

    from huizhi.excel import build_template
    from huizhi.ledgers import Mode

    filled = fill_template(build_template(SENSING_LEDGER), [new_device(i) for i in range(1, 21)])
    with create_host(load_settings()) as host:
        before = _rows_now(host)
        steward = admin("jxj")
        upload = host.ledgers.upload(steward, LEDGER_ID, filled, "感知设备-新增20台.xlsx", mode=Mode.UPSERT)
        assert upload.result.ok, upload.result.problems
        counts = upload.preview.counts
        assert (counts.added, counts.changed, counts.removed, counts.unchanged) == (20, 0, 0, before)
        assert not upload.preview.needs_confirmation
        version = host.ledgers.commit(steward, upload.preview)
        assert (version.added, version.removed, version.row_count, version.mode) == (20, 0, before + 20, "upsert")


def test_page_defaults_to_add_and_update(sensing_db):
    _, good, _ = sensing_db  # 200 of the current rows, 7 of them renamed
    at = _page(good, mode=None)
    assert at.radio(key=f"mode-{LEDGER_ID}").value == "upsert"
    metrics = {m.label: m.value for m in at.metric}
    assert (metrics["修改"], metrics["删除"]) == ("7", "0")
    assert not [w for w in at.warning if "本次提交将删除" in w.value]
    assert [b for b in at.button if b.label == "提交为新版本"]  # no confirmation needed


def test_delete_mode_reads_only_the_key_column(sensing_db, tmp_path):
    database_url, good, _ = sensing_db
    with create_host(load_settings()) as host:
        current = host.ledgers.export(host.system_identity("test"), LEDGER_ID)
    doomed = current.column("device_id").to_pylist()[:5]
    keys_only = tmp_path / "待删除.csv"
    keys_only.write_text("城市码\n" + "\n".join([*doomed, "110115-SP-99999999"]) + "\n", encoding="utf-8")
    code, out, err = _cli(keys_only, mode="delete")
    assert code == 0, err
    assert "0 处错误，0 处提醒" in out and "删除 5，" in out and "删除所列行" in out
    assert "1 个编号在当前版本中不存在" in out and "110115-SP-99999999" in out
    # an export with every column filled in works as well, without a warning about the other columns
    export = tmp_path / "导出.csv"
    export.write_bytes(export_csv(current.slice(5, 3), SENSING_LEDGER))
    code, out, err = _cli(export, "--dry-run", mode="delete")
    assert code == 0 and "0 处提醒" in out and "删除 3，" in out, out + err
    with create_host(load_settings()) as host:
        assert host.store.version(LEDGER_ID, 2).mode == "delete"
        assert host.store.version(LEDGER_ID, 2).row_count == current.num_rows - 5


def test_warnings_on_rows_the_upload_leaves_unchanged_are_counted_not_listed(sensing_db, tmp_path):
    from ledgerkit import admin

    from huizhi.ledgers import Mode

    with create_host(load_settings()) as host:
        steward = admin("jxj")
        current = host.ledgers.export(steward, LEDGER_ID)
        whole = tmp_path / "全表.csv"
        whole.write_bytes(export_csv(current, SENSING_LEDGER))
        first = host.ledgers.upload(steward, LEDGER_ID, whole.read_bytes(), whole.name, mode=Mode.REPLACE)
        warned = first.result.stats.warnings
        assert warned > 0  # the seeded rows carry soft reminders (e.g. stopped but networked)
        assert first.preview.unchanged and first.quiet_warnings == warned
        assert first.result.stats.warnings == warned and not first.result.problems  # counted, not listed

        # change one warned row: its reminder is listed again, the others stay quiet
        row_pos = next(
            p for p in range(current.num_rows)
            if current.column("status")[p].as_py() == "停用" and current.column("networked")[p].as_py()
        )  # fmt: skip
        names = current.column("device_name").to_pylist()
        names[row_pos] += "（已核）"
        edited = current.set_column(current.schema.get_field_index("device_name"), "device_name", pa.array(names))
        changed = tmp_path / "全表-改一行.csv"
        changed.write_bytes(export_csv(edited, SENSING_LEDGER))
        second = host.ledgers.upload(steward, LEDGER_ID, changed.read_bytes(), changed.name, mode=Mode.REPLACE)
        assert second.preview.counts.changed == 1
        listed = second.result.problems
        assert listed and {p.row for p in listed} == {row_pos + 2}  # Excel row: header is row 1
        assert second.quiet_warnings == warned - len(listed)


def _template_with(rows: list[dict], *, keep_examples: bool = True, change: dict | None = None) -> bytes:
    """The downloaded template with ``rows`` typed in below its example rows (kept as they came,
    or with ``change`` typed over the first example's cells by header)."""
    import openpyxl
    from ledgerkit import fill_template

    from huizhi.excel import build_template

    template = build_template(SENSING_LEDGER)
    if not keep_examples:
        return fill_template(template, rows)
    wb = openpyxl.load_workbook(io.BytesIO(template))
    ws = wb.worksheets[0]
    headers = [c.value for c in ws[1]]
    for header, value in (change or {}).items():
        ws.cell(2, headers.index(header) + 1, value)
    start = ws.max_row + 1
    for r, row in enumerate(rows, start=start):
        for c, header in enumerate(headers, start=1):
            ws.cell(r, c, row.get(header))
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def test_the_templates_example_rows_are_refused_in_every_mode(sensing_db):
    """The template's two example rows carry realistic 城市码: uploaded with them still in, the
    file would overwrite (or delete) real devices with those codes. Refused, naming the rows."""
    from ledgerkit import admin, commit_rows, new_device

    from huizhi.excel.template import example_rows
    from huizhi.ledgers import Mode

    examples = example_rows(SENSING_LEDGER)
    codes = [e["device_id"] for e in examples]
    with create_host(load_settings()) as host:
        # a real device that has the first example's code (what made the upsert overwrite it)
        real = host.ledgers.export(host.system_identity("test"), LEDGER_ID)
        # its type as the code says (typed rows get the row rules too: 城市码 type code vs 设备类型)
        twin = real.slice(0, 1).to_pylist()[0] | {"device_id": codes[0], "device_type": examples[0]["device_type"]}
        commit_rows(host, LEDGER_ID, pa.concat_tables([real, pa.Table.from_pylist([twin], schema=real.schema)]))
        head = host.store.head(LEDGER_ID).number
        steward = admin("jxj")
        filled = _template_with([new_device(i) for i in range(1, 4)])
        for mode in Mode:
            upload = host.ledgers.upload(steward, LEDGER_ID, filled, "感知设备-带示例.xlsx", mode=mode)
            assert upload.preview is None and upload.refusal, mode
            assert f"第 2 行（{codes[0]}）" in upload.refusal and f"第 3 行（{codes[1]}）" in upload.refusal
            assert "示例行" in upload.refusal and "第 4 行" not in upload.refusal
            assert ("只保留“城市码”列" in upload.refusal) == (mode == Mode.DELETE)
        assert host.store.head(LEDGER_ID).number == head  # nothing committed, nothing staged over it
        rejected = [e for e in host.audit.search(action="ledger.upload", limit=10) if e.outcome == "rejected"]
        assert len(rejected) == 3 and all("template example rows" in e.detail for e in rejected)

        # the examples deleted (the template route): accepted
        upload = host.ledgers.upload(
            steward, LEDGER_ID, _template_with([new_device(i) for i in range(1, 4)], keep_examples=False),
            "感知设备-新增3台.xlsx", mode=Mode.UPSERT,
        )  # fmt: skip
        assert upload.refusal is None and upload.preview.counts.added == 3
        # an example typed over with a real device's data is no example any more
        changed = _template_with([], change={"设备名称": "兴华大街与金星路交叉口视频监控1号（已核）"})
        upload = host.ledgers.upload(steward, LEDGER_ID, changed, "感知设备-改写示例.xlsx", mode=Mode.UPSERT)
        assert upload.refusal is None or f"第 2 行（{codes[0]}）" not in upload.refusal
        assert upload.refusal and f"第 3 行（{codes[1]}）" in upload.refusal  # the second example is still one
        # a delete file of keys only lists the code on purpose: not refused
        keys_only = export_csv(pa.table({"device_id": [codes[0]]}), _key_only_spec())
        upload = host.ledgers.upload(steward, LEDGER_ID, keys_only, "删除.csv", mode=Mode.DELETE)
        assert upload.refusal is None and upload.preview.counts.removed == 1


def _key_only_spec():
    import dataclasses

    return dataclasses.replace(SENSING_LEDGER, columns=(SENSING_LEDGER.column("device_id"),), row_checks=())
