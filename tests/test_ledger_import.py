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


def _cli(file: Path, *extra: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    args = Namespace(file=file, ledger=LEDGER_ID, dry_run="--dry-run" in extra, allow_removal="--allow-removal" in extra,
                     max_problems=50)
    return cmd_import(args, out=out, err=err), out.getvalue(), err.getvalue()


def _page_script(file_path: str) -> None:
    import streamlit as st

    from huizhi.access import Grant, Identity, Role
    from huizhi.config import load_settings
    from huizhi.context import PageContext
    from huizhi.host import create_host
    from huizhi_pages import ledgers as page

    @st.cache_resource
    def host():
        return create_host(load_settings())

    admin = Identity("t|admin-jxj", "陈静", frozenset({Grant(Role.LEDGER_ADMIN, "jxj")}))
    page.upload_tab(PageContext(_host=host(), identity=admin, plugin="builtin_pages"), host().store.specs["sensing_devices"])


def _page(file: Path) -> AppTest:
    at = AppTest.from_function(_page_script, args=(str(file),), default_timeout=60).run()
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
    problems = at.dataframe[-1].value
    page_problems = sorted(problems[problems["级别"] == "错误"]["问题"].tolist())
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
