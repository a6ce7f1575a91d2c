"""The parser process: whatever happens to it, the caller gets a clear rejection and carries on."""

from __future__ import annotations

import os
import resource
import sys
import time

import excel_corpus as C
import pytest

from huizhi.excel import Limits, ingest, sandbox


def _fake_worker(monkeypatch, code: str) -> None:
    monkeypatch.setattr(sandbox, "_worker_command", lambda: [sys.executable, "-c", code])


def test_worker_abort_becomes_a_rejection(monkeypatch):
    _fake_worker(monkeypatch, "import os, sys; sys.stdin.read(); os.abort()")
    res = ingest(C.typed_xlsx([C.good_row(1)]), "a.xlsx", C.SPEC)
    assert res.rejection.kind == "parser_crashed"
    assert "异常退出" in res.rejection.message and "另存为" in res.rejection.hint
    assert "rc=-6" in res.rejection.detail


def test_worker_out_of_memory_becomes_a_memory_rejection(monkeypatch):
    _fake_worker(monkeypatch, "import sys; sys.stdin.read(); raise MemoryError")
    res = ingest(C.typed_xlsx([C.good_row(1)]), "a.xlsx", C.SPEC, limits=Limits(worker_memory_mb=512))
    assert res.rejection.kind == "parser_memory" and "512 MB" in res.rejection.message


def test_hung_worker_is_killed_at_the_time_limit(monkeypatch):
    _fake_worker(monkeypatch, "import time; time.sleep(60)")
    started = time.monotonic()
    res = ingest(C.typed_xlsx([C.good_row(1)]), "a.xlsx", C.SPEC, limits=Limits(worker_timeout_s=1.0))
    assert time.monotonic() - started < 10
    assert res.rejection.kind == "parser_timeout" and "1 秒" in res.rejection.message


def test_garbage_from_worker_is_not_trusted(monkeypatch):
    _fake_worker(monkeypatch, "import sys; sys.stdin.read(); print('not json'); sys.exit(0)")
    res = ingest(C.typed_xlsx([C.good_row(1)]), "a.xlsx", C.SPEC)
    assert res.rejection.kind == "parser_crashed"


def test_worker_sets_its_own_limits_and_leaves_ours_alone():
    before = resource.getrlimit(resource.RLIMIT_AS)
    res = ingest(C.typed_xlsx([C.good_row(1)]), "a.xlsx", C.SPEC, limits=Limits(worker_memory_mb=1536))
    assert res.ok and resource.getrlimit(resource.RLIMIT_AS) == before
    assert 0 < res.stats.worker_peak_rss_mb < 1536


def test_no_temporary_files_left_behind(tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    res = ingest(C.typed_xlsx([C.good_row(1)]), "a.xlsx", C.SPEC)
    assert res.ok and res.raw is not None  # the parsed cells stay readable (memory-mapped) ...
    assert os.listdir(tmp_path) == []  # ... though their file is already gone
    assert res.marked_workbook()[:2] == b"PK"


@pytest.mark.parametrize("kind", ["xlsx", "csv"])
def test_worker_never_loads_pandas(kind, tmp_path):
    """The parser process stays small: pyarrow and python-calamine only."""
    import json
    import subprocess

    data = C.typed_xlsx([C.good_row(1)]) if kind == "xlsx" else C.csv_bytes([C.HEADERS, C.csv_row(1)])
    src = tmp_path / f"in.{kind}"
    src.write_bytes(data)
    job = {"path": str(src), "kind": kind, "out": str(tmp_path / "o.arrow"), "limits": Limits().to_dict()}
    code = (
        "import runpy, sys, json; sys.argv=['w']; "
        "import huizhi.excel._worker as w; w.main(); "
        "print(json.dumps({'pandas': 'pandas' in sys.modules}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        input=json.dumps(job),
        capture_output=True,
        text=True,
        env=sandbox._worker_env(),
        check=True,
    )
    lines = [json.loads(x) for x in out.stdout.splitlines()]
    assert lines[-2]["event"] == "done" and lines[-1] == {"pandas": False}
