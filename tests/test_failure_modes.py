"""Failure behaviour (issue 13, point 5): ``/readyz`` against a database host that accepts and
never answers; a full disk and a read-only data folder under the embedded DuckDB file.

How the disk is made to fail, on a machine where tests may run as root (chmod stops nothing):

* **disk full**: a child process with ``RLIMIT_FSIZE`` set to 1 byte after the host is open and
  ``SIGXFSZ`` ignored, so every write that would extend or rewrite a file past that offset
  fails with ``EFBIG`` ("File too large") exactly where ``ENOSPC`` would; no privileges needed.
* **read-only folder**: as root, ``chattr +i`` on the folder and the file (the kernel then
  refuses writes even through descriptors opened before: "Operation not permitted"); as
  another user, ``chmod a-w``. Skipped, with the reason, where neither is possible.

Each time the upload and the commit are refused with the Chinese storage message, and a fresh
process then finds the ledger at the version it was, with the same rows.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
from databases import test_store
from ledgerkit import admin
from plugin_fixtures import ASSETS, make_plugin
from streamlit.testing.v1 import AppTest

from huizhi import demo
from huizhi.config import load_settings
from huizhi.db import STORAGE, StoreUnavailable, failure_kind
from huizhi.host import create_host

TESTS = Path(__file__).resolve().parent
ADMIN = admin("jxj")
STORAGE_MESSAGE = "服务器磁盘已满或数据目录不可写入，本次操作没有保存，当前版本和已有数据均未受影响"


# ---------------------------------------------------------------------------------------------
# /readyz against a database that never answers


class SilentServer:
    """A TCP server on loopback that accepts every connection and never sends a byte."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.accepted: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted.append(conn)

    def close(self) -> None:
        self.sock.close()
        for conn in self.accepted:
            conn.close()


def test_readyz_answers_in_bounded_time_when_the_database_host_never_answers(tmp_path):
    silent = SilentServer()
    port = demo.free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUIZHI_")}
    env.update(HUIZHI_DATABASE_URL=f"postgresql+psycopg://huizhi@127.0.0.1:{silent.port}/huizhi",
               HUIZHI_DB_CONNECT_TIMEOUT="1", NO_PROXY="127.0.0.1", no_proxy="127.0.0.1")  # fmt: skip
    log = open(tmp_path / "run.log", "ab")  # noqa: SIM115 - the child holds it
    run = subprocess.Popen([sys.executable, "-m", "huizhi.cli", "run", "--port", str(port)], env=env, cwd=tmp_path,
                           stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            assert run.poll() is None, (tmp_path / "run.log").read_text()
            try:
                demo.http_get(f"http://127.0.0.1:{port}/livez", timeout=2)
                break
            except OSError:
                assert time.monotonic() < deadline, "the portal did not start"
                time.sleep(0.2)
        took: list[float] = []
        reports: list[dict] = []

        def probe() -> dict:
            started = time.monotonic()
            status, body = demo.http_get(f"http://127.0.0.1:{port}/readyz", timeout=30)
            took.append(time.monotonic() - started)
            assert status == 503, body
            reports.append(json.loads(body))
            return reports[-1]["checks"]

        deadline = time.monotonic() + 30
        while "database" not in probe():  # "starting" while the start-up build waits for its connection
            assert time.monotonic() < deadline, reports[-1]
            time.sleep(0.1)
        for _ in range(3):  # now every probe tries the database again, and gives up after connect_timeout
            checks = probe()
        assert max(took) < 4.0, took  # connect_timeout is 1 s; without it each probe would hang
        assert checks["database"] == {"ok": False, "kind": "unreachable", "detail": "the database does not answer"}
        assert checks["host"]["ok"] is False
        assert silent.accepted, "the portal never reached the silent server"
        assert "connection timeout expired" in (tmp_path / "run.log").read_text(encoding="utf-8")
    finally:
        run.kill()
        run.wait(10)
        silent.close()


# ---------------------------------------------------------------------------------------------
# the embedded DuckDB file on a full or read-only disk


def _rows(n: int, count: int = 1) -> pd.DataFrame:
    return pd.DataFrame({
        "code": [f"A{i:05d}" for i in range(n)], "owner": ["区经济和信息化局"] * n,
        "street": ["黄村镇"] * n, "count": [count + i for i in range(n)],
    })  # fmt: skip


def _csv(n: int, count: int) -> bytes:
    frame = _rows(n, count).rename(columns={"code": "编码", "owner": "权属单位", "street": "镇街", "count": "数量"})
    return frame.to_csv(index=False).encode("utf-8")


def _host(path: Path):
    plugin = make_plugin("assets", ledgers=[ASSETS])
    return create_host(load_settings({}, database_url=f"duckdb:///{path}", data_dir=path.parent),
                       extra_plugins=[("assets", plugin)], use_entry_points=False)  # fmt: skip


# Run in a child process: open the host, make a preview while the disk still works, then break
# the disk (how: argv[2]) and try an upload and the commit. Prints one JSON line per attempt.
CHILD = textwrap.dedent(
    """
    import json, os, resource, signal, subprocess, sys
    from pathlib import Path
    sys.path.insert(0, sys.argv[3])
    import test_failure_modes as t
    path, how = Path(sys.argv[1]), sys.argv[2]
    host = t._host(path)
    service = host.ledgers
    preview = service.preview_rows(t.ADMIN, "assets", t._rows(1000, count=7))  # staged before the failure
    if how == "full":
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # else the kernel kills the writer
        resource.setrlimit(resource.RLIMIT_FSIZE, (1, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
    def attempt(name, call):
        try:
            call()
        except Exception as exc:
            print(json.dumps({"attempt": name, "error": type(exc).__name__, "kind": getattr(exc, "kind", None),
                              "message": getattr(exc, "user_message", str(exc))}, ensure_ascii=False), flush=True)
        else:
            print(json.dumps({"attempt": name, "error": None}), flush=True)
    attempt("upload", lambda: service.upload(t.ADMIN, "assets", t._csv(5000, 9), "第二版.csv"))
    attempt("stage", lambda: service.preview_rows(t.ADMIN, "assets", t._rows(5000, count=9)))
    attempt("commit", lambda: service.commit(t.ADMIN, preview, confirm_removal=True))
    head = service.head("assets")
    print(json.dumps({"attempt": "head", "number": head.number}), flush=True)
    os._exit(0)  # the disk is broken: no checkpoint at exit
    """
)


def _break_and_try(path: Path, how: str) -> list[dict]:
    done = subprocess.run([sys.executable, "-c", CHILD, str(path), how, str(TESTS)], capture_output=True, text=True,
                          timeout=120, cwd=path.parent)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


def _assert_refused_and_untouched(path: Path, attempts: list[dict], before: dict) -> None:
    by_name = {a["attempt"]: a for a in attempts}
    for name in ("upload", "stage", "commit"):
        got = by_name[name]
        assert got["error"] == "StoreUnavailable" and got["kind"] == STORAGE, got
        assert got["message"].startswith(STORAGE_MESSAGE), got
        assert str(path) not in got["message"]  # the path is for the log, not the page
    assert by_name["head"]["number"] == 1  # the failing process still sees the first version
    host = _host(path)  # a fresh process, the disk working again
    try:
        head = host.ledgers.head("assets")
        rows = host.ledgers.export(ADMIN, "assets").to_pandas().sort_values("code").reset_index(drop=True)
        assert (head.number, head.version_id) == before["head"]
        assert [v.number for v in host.ledgers.versions(ADMIN, "assets")] == [1]
        assert rows.to_dict("list") == before["rows"]
    finally:
        host.dispose()


def _seeded(tmp_path: Path) -> tuple[Path, dict]:
    folder = tmp_path / "data"
    folder.mkdir()
    path = folder / "huizhi.duckdb"
    host = _host(path)
    try:
        host.ledgers.import_rows(ADMIN, "assets", _rows(500))
        head = host.ledgers.head("assets")
        rows = host.ledgers.export(ADMIN, "assets").to_pandas().sort_values("code").reset_index(drop=True)
    finally:
        host.dispose()
    return path, {"head": (head.number, head.version_id), "rows": rows.to_dict("list")}


needs_duckdb = pytest.mark.skipif(test_store() != "duckdb", reason="the embedded DuckDB file's disk")


@needs_duckdb
def test_a_full_disk_refuses_upload_and_commit_and_keeps_the_current_version(tmp_path):
    path, before = _seeded(tmp_path)
    _assert_refused_and_untouched(path, _break_and_try(path, "full"), before)


def _make_read_only(folder: Path) -> list[list[str]]:
    """Make ``folder`` and its files unwritable; returns the commands that undo it."""
    files = [folder, *folder.iterdir()]
    if os.geteuid() != 0:
        for f in files:
            f.chmod(0o555 if f.is_dir() else 0o444)
        return [["chmod", "u+w", str(f)] for f in files]
    done = subprocess.run(["chattr", "+i", *map(str, files)], capture_output=True, text=True)
    if done.returncode != 0:
        subprocess.run(["chattr", "-i", *map(str, files)], capture_output=True)
        pytest.skip(f"running as root and chattr +i is refused here ({done.stderr.strip()}): no way to make a "
                    "folder read-only for root without mounting")
    return [["chattr", "-i", *map(str, files)]]


# Run in the child too, but the folder is made read-only by the parent while the child waits.
CHILD_READ_ONLY = CHILD.replace(
    'if how == "full":', 'print("ready", flush=True)\nsys.stdin.readline()\nif how == "full":'
)


@needs_duckdb
def test_a_read_only_data_folder_refuses_upload_and_commit_and_keeps_the_current_version(tmp_path):
    path, before = _seeded(tmp_path)
    child = subprocess.Popen([sys.executable, "-c", CHILD_READ_ONLY, str(path), "read-only", str(TESTS)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             cwd=tmp_path)  # fmt: skip
    undo: list[list[str]] = []
    try:
        assert child.stdout is not None and child.stdin is not None
        assert child.stdout.readline().strip() == "ready", child.stderr.read() if child.stderr else ""
        undo = _make_read_only(path.parent)  # while the portal holds the file open, as in production
        child.stdin.write("go\n")
        child.stdin.flush()
        out, err = child.communicate(timeout=120)
        assert child.returncode == 0, err[-3000:]
    finally:
        for cmd in undo:
            subprocess.run(cmd, check=True)
        if child.poll() is None:
            child.kill()
            child.wait()
    attempts = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    _assert_refused_and_untouched(path, attempts, before)


def test_storage_errors_are_told_apart_from_a_lost_database():
    full = OSError('IO Error: Could not write file "/var/huizhi/huizhi.duckdb": No space left on device')
    assert failure_kind(full) == STORAGE
    assert failure_kind(OSError('IO Error: Could not write file "/x": Operation not permitted')) == STORAGE
    assert failure_kind(OSError("could not extend file \"base/16384/2619\": No space left on device")) == STORAGE
    assert failure_kind(OSError("connection timeout expired")) == "unreachable"
    down = StoreUnavailable("duckdb:////var/huizhi/huizhi.duckdb", full)
    assert down.user_message.startswith(STORAGE_MESSAGE) and "/var/huizhi" not in down.user_message


def _page_script(path: str) -> None:
    import subprocess
    from pathlib import Path

    import streamlit as st
    import test_failure_modes as t  # tests/ is on sys.path in the AppTest's process (pytest's)
    from plugin_fixtures import ASSETS, make_plugin

    from huizhi.app import _page_runner
    from huizhi.config import load_settings
    from huizhi.host import create_host
    from huizhi.specs import PageSpec

    def render(ctx):  # what the ledger page does with the file someone chose
        upload = ctx.ledgers.upload("assets", t._csv(300, 4), "第二版.csv")
        st.write(f"preview {upload.preview.id if upload.preview else None}")

    spec = PageSpec("上传", "upload-test", render, department="jxj")
    plugin = make_plugin("assets", ledgers=[ASSETS], pages=[spec])
    host = create_host(load_settings({}, database_url=f"duckdb:///{path}", data_dir=Path(path).parent),
                       extra_plugins=[("assets", plugin)], use_entry_points=False)  # fmt: skip
    try:
        folder = Path(path).parent
        files = [str(folder), *map(str, folder.iterdir())]
        subprocess.run(["chattr", "+i", *files], check=True)
        try:
            _page_runner(host, t.ADMIN, spec, "assets", {})()
        finally:
            subprocess.run(["chattr", "-i", *files], check=True)
    finally:
        host.dispose()


@needs_duckdb
@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("chattr"), reason="needs root and chattr (see module doc)")
def test_the_page_shows_the_storage_message_not_a_plugin_failure(tmp_path):
    path, before = _seeded(tmp_path)
    probe = subprocess.run(["chattr", "+i", str(path)], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"chattr +i refused here: {probe.stderr.strip()}")
    subprocess.run(["chattr", "-i", str(path)], check=True)
    at = AppTest.from_function(_page_script, args=(str(path),), default_timeout=60).run()
    assert not at.exception
    assert [e.value for e in at.error] and at.error[0].value.startswith(STORAGE_MESSAGE), [e.value for e in at.error]
    assert not any("运行出错" in e.value for e in at.error)  # not blamed on the plugin
    assert not [m.value for m in at.markdown if m.value.startswith("preview")]
    host = _host(path)
    try:
        assert (host.ledgers.head("assets").number, host.ledgers.head("assets").version_id) == before["head"]
    finally:
        host.dispose()
