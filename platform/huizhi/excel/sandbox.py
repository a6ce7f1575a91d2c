"""Run the parser (:mod:`huizhi.excel._worker`) in a separate process with limits.

:func:`parse_in_worker` starts ``python -m huizhi.excel._worker``, hands it the job on stdin,
relays its progress, enforces the wall-clock limit (the worker sets its own address-space and
CPU-time limits before it imports a parser) and memory-maps the Arrow file it writes. Whatever
happens to the worker — a Rust abort in python-calamine, an out-of-memory kill, a hang — becomes a
:class:`~huizhi.excel.problems.FileRejected` with a Chinese message; the calling process (the
portal) keeps running. ``subprocess`` without ``preexec_fn`` is safe to call from Streamlit's
script threads.
"""

from __future__ import annotations

import json
import logging
import mmap
import os
import re
import selectors
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

from huizhi.excel.limits import Limits
from huizhi.excel.problems import FileRejected

log = logging.getLogger(__name__)

_MAX_LINE = 64 * 1024 * 1024  # longest protocol line kept (details are bounded by the worker)
_MAX_DETAIL = 2000  # characters of a rejection's detail kept for logs

_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])  # the directory that holds huizhi/


def _worker_command() -> list[str]:
    """The worker's argv (tests replace this to simulate crashes and hangs)."""
    return [sys.executable, "-m", "huizhi.excel._worker"]


def _worker_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = _PACKAGE_ROOT + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["RUST_BACKTRACE"] = "0"
    env.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")
    env["OMP_NUM_THREADS"] = "1"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def _drain(stream, sink: list[bytes], limit: int = 64 * 1024) -> None:
    size = 0
    for chunk in iter(lambda: stream.read(4096), b""):
        if size < limit:
            sink.append(chunk[: limit - size])
            size += len(chunk)


def _crash_rejection(returncode: int, stderr: str, limits: Limits) -> FileRejected:
    sig = -returncode if returncode < 0 else None
    alloc = re.search(r"memory allocation of (\d+) bytes failed", stderr)
    if alloc or "MemoryError" in stderr or sig == signal.SIGKILL and "Killed" in stderr:
        need = f"（解析器试图申请 {int(alloc.group(1)) / 2**30:.1f} GB 内存）" if alloc else ""
        return FileRejected(
            "parser_memory",
            f"读取这个文件需要的内存超过了上限 {limits.worker_memory_mb} MB{need}。"
            "常见原因是工作表里在很远的位置（例如 XFD1048576 单元格）有内容，使数据区域变得极大",
            "请在 Excel 中按 Ctrl+End 找到最后一个单元格，删除多余的行和列后保存，再上传；"
            "数据确实很多时，请拆成几个文件分别上传。",
            f"worker died (rc={returncode}); stderr tail: {stderr[-500:]!r}",
        )
    if sig in (signal.SIGXCPU, signal.SIGKILL):
        return _timeout_rejection(limits, f"worker killed by signal {sig}")
    return FileRejected(
        "parser_crashed",
        "读取文件时解析程序异常退出，文件可能已损坏或结构异常",
        "请用 Excel 或 WPS 打开文件，另存为新的 .xlsx 后再上传；如仍失败，请联系平台管理员并提供该文件。",
        f"worker died (rc={returncode}); stderr tail: {stderr[-500:]!r}",
    )


def _timeout_rejection(limits: Limits, detail: str) -> FileRejected:
    return FileRejected(
        "parser_timeout",
        f"读取文件超过了时间上限（{limits.worker_timeout_s:.0f} 秒）",
        "文件可能过大或结构异常。请删除多余的工作表、行和列后另存为 .xlsx 再上传，或拆成几个文件。",
        detail,
    )


def parse_in_worker(
    path: str,
    kind: str,
    out_path: str,
    limits: Limits,
    *,
    sheet: str | None = None,
    prefer_sheets: tuple[str, ...] = (),
    on_progress: Callable[[float], None] | None = None,
):
    """Parse ``path`` in a worker; returns :class:`ParsedCells` or raises FileRejected."""
    import pyarrow as pa

    job = {
        "path": path,
        "kind": kind,
        "out": out_path,
        "limits": limits.to_dict(),
        "sheet": sheet,
        "prefer_sheets": list(prefer_sheets),
    }
    started = time.monotonic()
    proc = subprocess.Popen(
        _worker_command(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=_worker_env(),
        cwd=os.path.dirname(out_path),
        start_new_session=True,  # so a timeout kills the whole group
    )
    err_chunks: list[bytes] = []
    err_thread = threading.Thread(target=_drain, args=(proc.stderr, err_chunks), daemon=True)
    err_thread.start()
    final: dict | None = None
    # Popen with stdin/stdout/stderr=PIPE: the pipes exist
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    try:
        try:
            proc.stdin.write(json.dumps(job).encode())
            proc.stdin.close()
        except BrokenPipeError:
            pass
        sel = selectors.DefaultSelector()
        sel.register(proc.stdout, selectors.EVENT_READ)
        # Linear in the output: bytes are appended to one bytearray, each byte is searched for a
        # newline once (``scanned``), and consumed lines are cut off in one step per read.
        buf = bytearray()
        scanned = 0
        eof = False
        while not eof:
            remaining = limits.worker_timeout_s - (time.monotonic() - started)
            if remaining <= 0:
                raise _timeout_rejection(limits, f"worker exceeded {limits.worker_timeout_s}s wall clock")
            if not sel.select(timeout=min(remaining, 0.5)):
                continue
            data = os.read(proc.stdout.fileno(), 1 << 20)
            if not data:
                eof = True
            buf += data
            begin = 0
            while (nl := buf.find(b"\n", scanned)) >= 0:
                line = bytes(buf[begin:nl])
                begin = scanned = nl + 1
                try:
                    msg = json.loads(line)
                except ValueError:
                    continue
                if msg.get("event") == "progress" and on_progress is not None:
                    on_progress(float(msg.get("fraction", 0.0)))
                elif msg.get("event") in ("done", "rejected"):
                    final = msg
            if begin:
                del buf[:begin]
            scanned = len(buf)  # no newline in what is left
            if len(buf) > _MAX_LINE:  # the worker's lines are small; this is not one of them
                del buf[:]
                scanned = 0
        sel.close()
        try:
            proc.wait(timeout=max(1.0, limits.worker_timeout_s - (time.monotonic() - started)))
        except subprocess.TimeoutExpired as exc:
            raise _timeout_rejection(limits, "worker did not exit") from exc
    finally:
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                proc.kill()
            proc.wait()
        err_thread.join(timeout=2)
        proc.stdout.close()
    stderr = b"".join(err_chunks).decode("utf-8", "replace")
    if final is None or proc.returncode != 0:
        rej = _crash_rejection(proc.returncode, stderr, limits)
        log.warning("ledger parser worker failed: %s", rej.detail)
        raise rej
    if final["event"] == "rejected":
        log.info(
            "ledger file rejected by worker: %s (%s)",
            final.get("kind"),
            str(final.get("detail"))[:_MAX_DETAIL],
        )
        detail = str(final.get("detail", ""))[:_MAX_DETAIL]
        raise FileRejected(final["kind"], final["message"], final["hint"], detail)
    with open(out_path, "rb") as fh:
        mapping = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
    table = pa.ipc.open_file(pa.BufferReader(pa.py_buffer(mapping))).read_all()  # zero-copy
    meta = json.loads(table.schema.metadata[b"huizhi"].decode())
    pieces = meta.get("pieces") or {}
    if pieces.get("why_not"):
        log.debug("sheet %r read in full, not in pieces: %s", meta.get("sheet"), pieces["why_not"])
    meta["worker_wall_seconds"] = round(time.monotonic() - started, 4)
    return ParsedCells(table, meta, mapping)


class ParsedCells(NamedTuple):
    """The worker's cells (a table over the memory-mapped Arrow file), its metadata, the mapping."""

    table: Any  # pyarrow.Table
    meta: dict
    mapping: mmap.mmap

    def evict(self) -> None:
        """Drop the file's pages from this process's resident set once the cells have been read
        (1M rows × 20 columns: ~270 MB). The table stays valid: a later read (a marked workbook)
        faults the pages back in from the page cache or the file."""
        if hasattr(mmap, "MADV_DONTNEED"):
            self.mapping.madvise(mmap.MADV_DONTNEED)
