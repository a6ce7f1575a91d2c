"""The task queue (huizhi.tasks): uploads off the page's thread, retries with a limit, periodic
jobs once across workers, and a worker killed in the middle of an upload.

On PostgreSQL the workers are real ``huizhi worker`` processes on the test's own database
(procrastinate's tables from migration 0006); on DuckDB the same work runs on the host's
threads. Timings are shortened through the documented ``HUIZHI_TASK_*`` settings.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from databases import test_store
from huizhi_sensing.schema import LEDGER_ID, SENSING_LEDGER

from huizhi.config import TaskSettings, load_settings
from huizhi.excel import export_csv
from huizhi.host import Host, create_host
from huizhi.tasks import FAILED, SUCCEEDED, RunView
from huizhi_seeds import load_demo

on_postgres = pytest.mark.skipif(test_store() != "postgres", reason="procrastinate and its workers need PostgreSQL")
on_duckdb = pytest.mark.skipif(test_store() != "duckdb", reason="the in-process path is the embedded store's")

FAST = {"HUIZHI_TASK_HEARTBEAT": "0.5", "HUIZHI_TASK_STALLED_AFTER": "2", "HUIZHI_TASK_RETRY_WAIT": "0",
        "HUIZHI_TASK_RETRIES": "2"}  # fmt: skip


def _env(database_url: str, tmp_path: Path, **extra: str) -> dict[str, str]:
    return {"HUIZHI_DATABASE_URL": database_url, "HUIZHI_DATA_DIR": str(tmp_path), "HUIZHI_LOAD_PLUGINS": "sensing",
            **FAST, **extra}  # fmt: skip


@pytest.fixture
def sensing(database_url, tmp_path):
    """A host with the sensing ledger seeded small, and a CSV that replaces it with 60 rows."""
    host = create_host(load_settings(_env(database_url, tmp_path)))
    try:
        load_demo(host, scale=0.003, ledgers=[LEDGER_ID])
        current = host.ledgers.export(host.system_identity("test"), LEDGER_ID)
        yield host, export_csv(current.slice(0, 60), SENSING_LEDGER), current.num_rows
    finally:
        host.dispose()


def _wait(host: Host, run_id: int, timeout: float = 60.0, until=lambda run: run.done) -> RunView:
    deadline = time.monotonic() + timeout
    while True:
        run = host.tasks.status(run_id)
        if until(run):
            return run
        assert time.monotonic() < deadline, f"task run {run_id} still {run.status} ({run.phase}) after {timeout} s"
        time.sleep(0.05)


def _worker(env: dict[str, str], cwd: Path, name: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "huizhi.cli", "worker", "--name", name], cwd=cwd,
                            env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip


def _stop(worker: subprocess.Popen) -> str:
    if worker.poll() is None:
        worker.send_signal(signal.SIGTERM)
    _, err = worker.communicate(timeout=30)
    return err


def _flaky(failures: int):
    calls: list[int] = []

    def fn() -> None:
        calls.append(1)
        if len(calls) <= failures:
            raise ConnectionError(f"source refused the connection (call {len(calls)})")

    return fn, calls


# -- the embedded store: the same work on the host's threads ----------------------------------------------


@on_duckdb
def test_in_process_upload_gives_the_page_its_preview_without_a_worker(sensing):
    host, data, rows = sensing
    who = host.system_identity("tester")
    run_id = host.tasks.upload(who, LEDGER_ID, data, "设备.csv", mode="replace")
    assert host.tasks.status(run_id).status in {"queued", "running"}  # returned before the work is done
    run = _wait(host, run_id)
    assert (run.status, run.attempts, run.phase, run.progress) == (SUCCEEDED, 1, "diff", 1.0)
    upload = host.tasks.upload_result(run_id, who)
    assert upload.result.stats.rows == 60 and upload.preview is not None
    assert (upload.preview.counts.removed, upload.preview.counts.unchanged) == (rows - 60, 60)
    assert host.ledgers.head(LEDGER_ID).number == 1  # staged, not committed
    version = host.ledgers.commit(who, upload.preview, confirm_removal=True)
    assert (version.number, version.row_count) == (2, 60)
    with pytest.raises(PermissionError):  # only whoever queued it reads the outcome
        host.tasks.upload_result(run_id, host.system_identity("someone-else"))


@on_duckdb
def test_in_process_failures_are_retried_up_to_the_limit_and_the_error_is_kept(sensing):
    host, _, _ = sensing
    always, always_calls = _flaky(failures=99)
    once, once_calls = _flaky(failures=1)
    host.tasks.periodic("always-fails", "0 0 1 1 *", always)
    host.tasks.periodic("fails-once", "0 0 1 1 *", once)
    failed = _wait(host, host.tasks.run_now("always-fails"))
    recovered = _wait(host, host.tasks.run_now("fails-once"))
    assert (failed.status, failed.attempts, len(always_calls)) == (FAILED, 3, 3)  # 1 + HUIZHI_TASK_RETRIES=2
    assert failed.error == "ConnectionError: source refused the connection (call 3)"
    assert (recovered.status, recovered.attempts, len(once_calls)) == (SUCCEEDED, 2, 2)
    assert [r.id for r in host.tasks.recent(statuses=(FAILED,))] == [failed.id]


@on_duckdb
def test_in_process_scheduler_runs_periodic_jobs_on_their_schedule(sensing):
    host, _, _ = sensing
    ticks: list[float] = []
    host.tasks.periodic("tick", "* * * * * *", lambda: ticks.append(time.time()))  # every second
    host.tasks.start()
    deadline = time.monotonic() + 10
    while len(ticks) < 2:
        assert time.monotonic() < deadline, "the scheduler ran no periodic job"
        time.sleep(0.05)
    runs = [r for r in host.tasks.recent(50) if r.task == "periodic:tick"]
    stamps = [json.loads(_args(host, r.id))["timestamp"] for r in runs]
    assert len(stamps) == len(set(stamps)) >= 2


@on_duckdb
def test_in_process_runs_left_by_a_stopped_portal_are_taken_up_by_the_next(database_url, tmp_path, sensing):
    host, data, _ = sensing
    who = host.system_identity("tester")
    first, second = (host.tasks.upload(who, LEDGER_ID, data, f"设备{n}.csv") for n in (1, 2))
    host.dispose()  # one thread: the second waits in the queue and is dropped with the process
    with create_host(load_settings(_env(database_url, tmp_path))) as again:
        assert again.tasks.status(second).status == "queued"
        again.tasks.start()
        assert [_wait(again, r).status for r in (first, second)] == [SUCCEEDED, SUCCEEDED]
        assert again.tasks.upload_result(second, who).preview is not None


@on_duckdb
def test_old_files_and_records_are_cleaned_up(sensing):
    import datetime as dt

    host, data, _ = sensing
    who = host.system_identity("tester")
    run_id = host.tasks.upload(who, LEDGER_ID, data, "设备.csv")
    finished = _wait(host, run_id).finished_at
    assert finished is not None and host.tasks.result(run_id)
    host.tasks.clean_up(now=finished + dt.timedelta(days=1))
    assert host.tasks.result(run_id)  # the page may still pick it up
    host.tasks.clean_up(now=finished + dt.timedelta(days=3))
    assert host.tasks.result(run_id) is None and host.tasks.status(run_id).status == SUCCEEDED
    host.tasks.clean_up(now=finished + dt.timedelta(days=31))
    with pytest.raises(KeyError):
        host.tasks.status(run_id)


def test_syncs_run_in_the_minutes_their_schedules_name_each_as_its_own_run(make_host, tmp_path):
    import datetime as dt

    import pandas as pd
    from plugin_fixtures import make_plugin, page

    from huizhi.clock import BEIJING
    from huizhi.specs import ColumnSpec, ConnectorSpec, LedgerSpec, SyncSpec
    from huizhi_connectors.files import FilesConnection

    share = tmp_path / "share"
    share.mkdir()
    pd.DataFrame({"编码": ["d1", "d2"], "数量": [1, 2]}).to_csv(share / "设备.csv", index=False)
    ledger = LedgerSpec(id="jxj_devices", title="设备台账", department="jxj", key=("code",),
                        columns=(ColumnSpec("code", "编码"), ColumnSpec("n", "数量", "int", min=0)))  # fmt: skip
    connector = ConnectorSpec("jxj_share", "经信局共享目录", lambda config: FilesConnection.from_config(
        {"root": str(share), **config}), kind="files")  # fmt: skip
    syncs = [SyncSpec("nightly", "jxj_devices", "jxj_share", "设备.csv", cron="0 2 * * *", title="设备夜间同步"),
             SyncSpec("gone", "jxj_devices", "jxj_share", "没有这个文件.csv", every=600)]
    plugin = make_plugin("jxj_plugin", department="jxj", pages=[page("jxj-page")], ledgers=[ledger],
                         huizhi_connectors=lambda: [connector], huizhi_syncs=lambda: syncs)  # fmt: skip
    host = make_host(extra_plugins=[("jxj_plugin", plugin)])

    def at(hour: int, minute: int) -> int:
        return int(dt.datetime(2026, 12, 2, hour, minute, 30, tzinfo=BEIJING).timestamp())

    ran = json.loads(host.tasks.run_due_syncs(at(2, 0)))["syncs"]  # 02:00 Beijing: both are due
    assert [(r["sync"], r["status"]) for r in ran] == [("gone", FAILED), ("nightly", SUCCEEDED)]
    assert host.ledgers.head("jxj_devices").number == 1
    failed = host.tasks.status(ran[0]["run"])
    assert (failed.task, failed.attempts, failed.max_attempts) == ("connector-sync", 1, 1)
    assert "sync gone failed" in failed.error and host.tasks.status(ran[1]["run"]).label == "定时同步：设备夜间同步"
    assert json.loads(host.tasks.run_due_syncs(at(2, 5)))["syncs"] == []  # neither is due at 02:05
    assert [r["sync"] for r in json.loads(host.tasks.run_due_syncs(at(2, 10)))["syncs"]] == ["gone"]


def _args(host: Host, run_id: int) -> str:
    with host.engine.connect() as conn:
        return conn.execute(sa.text("SELECT args FROM task_runs WHERE id = :id"), {"id": run_id}).scalar_one()


def test_large_uploads_go_to_the_queue_small_ones_stay_on_the_page(database_url, tmp_path):
    settings = load_settings(_env(database_url, tmp_path), tasks=TaskSettings(upload_bytes=1000))
    with create_host(settings) as host:
        assert host.tasks.uses_queue(1000) and not host.tasks.uses_queue(999)
        assert set(host.tasks.periodic_jobs) == {"submission-reminders", "cockpit-export", "task-cleanup",
                                                "connector-syncs"}
        with pytest.raises(ValueError, match="not a cron expression"):
            host.tasks.periodic("bad", "every day", lambda: None)


# -- PostgreSQL: procrastinate and real worker processes -------------------------------------------------


@on_postgres
def test_a_worker_process_runs_a_queued_upload_and_stops_cleanly_on_sigterm(sensing, database_url, tmp_path):
    host, data, rows = sensing
    who = host.system_identity("tester")
    worker = _worker(_env(database_url, tmp_path), tmp_path, "w1")
    try:
        run_id = host.tasks.upload(who, LEDGER_ID, data, "设备.csv", mode="replace")
        run = _wait(host, run_id)
    finally:
        err = _stop(worker)
    assert (run.status, run.attempts) == (SUCCEEDED, 1), err
    assert run.worker.startswith("w1 ")
    upload = host.tasks.upload_result(run_id, who)
    assert upload.preview is not None and upload.preview.counts.removed == rows - 60
    assert worker.returncode == 0 and "worker stopped" in err
    with host.engine.connect() as conn:  # the worker's heartbeat row went with it
        assert conn.execute(sa.text("SELECT count(*) FROM procrastinate_workers")).scalar_one() == 0


@on_postgres
def test_a_failing_job_is_retried_with_a_limit_and_its_error_recorded(sensing):
    host, _, _ = sensing
    always, always_calls = _flaky(failures=99)
    once, once_calls = _flaky(failures=1)
    host.tasks.periodic("always-fails", "0 0 1 1 *", always)
    host.tasks.periodic("fails-once", "0 0 1 1 *", once)
    failed_id, recovered_id = host.tasks.run_now("always-fails"), host.tasks.run_now("fails-once")
    host.tasks.run_worker(name="test", until_idle=True)  # this process, until the queue is empty
    failed, recovered = host.tasks.status(failed_id), host.tasks.status(recovered_id)
    assert (failed.status, failed.attempts, len(always_calls)) == (FAILED, 3, 3)
    assert failed.error == "ConnectionError: source refused the connection (call 3)"
    assert (recovered.status, recovered.attempts, len(once_calls)) == (SUCCEEDED, 2, 2)
    with host.engine.connect() as conn:  # procrastinate agrees: failed for good, attempts counted
        job = conn.execute(sa.text("SELECT j.status, j.attempts FROM procrastinate_jobs j JOIN task_runs r "
                                   "ON r.job_id = j.id WHERE r.id = :id"), {"id": failed_id}).one()  # fmt: skip
    assert tuple(job) == ("failed", 3)


@on_postgres
def test_a_periodic_job_runs_once_per_period_with_two_workers(sensing, database_url, tmp_path):
    host, _, _ = sensing
    env = _env(database_url, tmp_path, HUIZHI_TASK_REMINDER_CRON="* * * * * *")  # every second
    workers = [_worker(env, tmp_path, f"w{n}") for n in (1, 2)]
    try:
        deadline = time.monotonic() + 40
        while True:
            with host.engine.connect() as conn:
                runs = conn.execute(sa.text(
                    "SELECT args, status, worker FROM task_runs WHERE task = 'periodic:submission-reminders'"
                )).all()  # fmt: skip
            if sum(r.status == SUCCEEDED for r in runs) >= 4 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    finally:
        errors = [_stop(w) for w in workers]
    stamps = [json.loads(r.args)["timestamp"] for r in runs]
    assert sum(r.status == SUCCEEDED for r in runs) >= 4, errors
    assert len(stamps) == len(set(stamps)), f"a period ran twice: {sorted(stamps)}"
    assert all(w.returncode == 0 for w in workers), errors


@on_postgres
def test_a_worker_killed_mid_upload_is_retried_elsewhere_and_nothing_half_written(sensing, database_url, tmp_path):
    host, data, rows = sensing
    who = host.system_identity("tester")
    env = _env(database_url, tmp_path)
    table = f"ledger_{LEDGER_ID}"
    with host.engine.connect() as conn:
        count = conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one()
    # Hold the ledger table against writes so the first worker stops inside the staging
    # transaction (its rows half inserted, nothing committed), then kill it there.
    blocker = host.engine.connect()
    blocker.execute(sa.text(f"LOCK TABLE {table} IN SHARE MODE"))
    first = _worker(env, tmp_path, "doomed")
    second = None
    try:
        run_id = host.tasks.upload(who, LEDGER_ID, data, "设备.csv", mode="replace")
        running = _wait(host, run_id, until=lambda r: r.phase == "stage")
        time.sleep(0.5)  # into the blocked INSERT
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        blocker.rollback()
        blocker.close()
        assert (running.status, running.attempts) == ("running", 1)
        second = _worker(env, tmp_path, "rescuer")
        run = _wait(host, run_id, timeout=60)
    finally:
        for w in (first, second):
            if w is not None and w.poll() is None:
                _stop(w)
    assert (run.status, run.attempts) == (SUCCEEDED, 2), run
    assert run.worker.startswith("rescuer ") and "interrupted" in run.error
    upload = host.tasks.upload_result(run_id, who)
    assert upload.preview is not None and upload.preview.counts.unchanged == 60
    with host.engine.connect() as conn:
        previews = conn.execute(sa.text("SELECT id FROM ledger_previews WHERE ledger_id = :l"), {"l": LEDGER_ID}).all()
        staged = conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one()
    assert host.ledgers.head(LEDGER_ID).number == 1  # the current version never moved
    assert [p.id for p in previews] == [upload.preview.id]  # the killed attempt left no staged version
    assert staged == count + 60  # only the retry's 60 staged rows were added
    assert host.ledgers.commit(who, upload.preview, confirm_removal=True).row_count == 60


# -- the ledger page: a large file goes through the queue and ends in the same preview ------------------


def _upload_page_script() -> None:
    from huizhi.access import Grant, Identity, Role
    from huizhi.config import load_settings
    from huizhi.context import PageContext
    from huizhi.host import create_host
    from huizhi_pages import ledgers as page

    admin = Identity("t|admin-jxj", "陈静", frozenset({Grant(Role.LEDGER_ADMIN, "jxj")}))
    # a host per run (the cache would outlive the test's database); on DuckDB its dispose at the
    # end of the run waits for the background check, as a portal process would simply keep going
    with create_host(load_settings()) as host:
        page.upload_tab(PageContext(_host=host, identity=admin, plugin="builtin_pages"), host.store.specs["sensing_devices"])


def test_a_large_upload_on_the_page_is_checked_in_the_background_with_the_same_preview(
    sensing, database_url, tmp_path, monkeypatch
):
    from streamlit.testing.v1 import AppTest

    host, data, rows = sensing
    for key, value in _env(database_url, tmp_path).items():
        monkeypatch.setenv(key, value)

    def page(threshold: int) -> AppTest:
        monkeypatch.setenv("HUIZHI_TASK_UPLOAD_BYTES", str(threshold))
        at = AppTest.from_function(_upload_page_script, default_timeout=60).run()
        at.radio(key=f"mode-{LEDGER_ID}").set_value("replace").run()
        return at.file_uploader[0].set_value(("设备.csv", data, "text/csv")).run()

    def counts(at: AppTest) -> dict[str, str]:
        return {m.label: m.value for m in at.metric}

    direct = host.ledgers.upload(host.system_identity("test"), LEDGER_ID, data, "设备.csv", mode="replace")
    assert direct.preview is not None
    host.ledgers.discard(host.system_identity("test"), direct.preview)
    c = direct.preview.counts
    expected = {"新增": f"{c.added:,}", "修改": f"{c.changed:,}", "删除": f"{c.removed:,}", "未变": f"{c.unchanged:,}"}
    queued = page(threshold=len(data))
    assert not queued.exception, queued.exception
    assert any("可以离开本页" in c.value for c in queued.caption)  # progress, no preview yet
    assert "删除" not in counts(queued)
    if host.tasks.on_postgres:
        with create_host(load_settings()) as worker_host:
            worker_host.tasks.run_worker(name="page-test", until_idle=True)
    done = queued.run()
    assert not done.exception, done.exception
    shown = counts(done)
    assert {k: shown[k] for k in expected} == expected  # the same preview as the service gives directly
    assert shown["数据行"] == "60" and shown["错误"] == "0"
    assert [c.label for c in done.checkbox] == [f"我确认删除这 {rows - 60:,} 行"]  # then 提交为新版本


def _admin_tasks_script() -> None:
    from huizhi.access import Grant, Identity, Role
    from huizhi.config import load_settings
    from huizhi.context import PageContext
    from huizhi.host import create_host
    from huizhi_pages import admin as page

    platform_admin = Identity("t|ops", "运维", frozenset({Grant(Role.PLATFORM_ADMIN)}))
    with create_host(load_settings()) as host:
        page.tasks_section(PageContext(_host=host, identity=platform_admin, plugin="builtin_pages"))


def test_the_admin_page_lists_a_failed_task_with_its_reason(sensing, database_url, tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    host, _, _ = sensing
    for key, value in _env(database_url, tmp_path).items():
        monkeypatch.setenv(key, value)
    always, _ = _flaky(failures=99)
    host.tasks.periodic("always-fails", "0 0 1 1 *", always, label="区水务局雨量同步")
    run_id = host.tasks.run_now("always-fails")
    if host.tasks.on_postgres:
        host.tasks.run_worker(name="admin-test", until_idle=True)
    assert _wait(host, run_id).status == FAILED
    at = AppTest.from_function(_admin_tasks_script, default_timeout=60).run()
    assert not at.exception, at.exception
    table = at.dataframe[0].value
    row = table[table["编号"] == run_id].iloc[0]
    assert (row["任务"], row["状态"], row["尝试"]) == ("区水务局雨量同步", "失败", "3/3")
    assert row["错误详情"] == "ConnectionError: source refused the connection (call 3)"
    assert "不再自动重试" in row["说明"]
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["近24小时失败"] == "1"
    if host.tasks.on_postgres:  # no worker runs now: the page says so
        assert metrics["工作进程"] == "0 个在线" and any("huizhi worker" in e.value for e in at.error)


@on_postgres
def test_doctor_checks_the_queue_schema_and_that_a_worker_is_alive(sensing, database_url, tmp_path):
    from huizhi.doctor import FAIL, OK, WARN, check_queue

    host, _, _ = sensing
    settings = load_settings(_env(database_url, tmp_path))
    assert [(f.status, f.detail.split(" ")[0]) for f in check_queue(settings)] == [(OK, "procrastinate"), (WARN, "no")]
    worker = _worker(_env(database_url, tmp_path), tmp_path, "w1")
    try:
        deadline = time.monotonic() + 30
        while not host.tasks.live_workers():
            assert time.monotonic() < deadline and worker.poll() is None, "the worker never sent a heartbeat"
            time.sleep(0.2)
        alive = check_queue(settings)
    finally:
        _stop(worker)
    assert [f.status for f in alive] == [OK, OK] and "1 worker(s)" in alive[1].detail
    with host.engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE procrastinate_jobs CASCADE"))
    missing = check_queue(settings)
    assert [f.status for f in missing] == [FAIL] and "huizhi migrate" in missing[0].detail
