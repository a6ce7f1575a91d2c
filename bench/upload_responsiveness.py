"""Does the portal stay responsive to other sessions while one admin uploads a large ledger?

    python bench/upload_responsiveness.py --rows 1000000     # 1M × 20 columns, DuckDB store
    python bench/upload_responsiveness.py --rows 500000 --idle 10

What it does:

1. Generates (or reuses) the 20-column workbook of ``bench/ledger_ingest.py`` and, in a separate
   process, commits a current version of the same size on a fresh DuckDB store (its ``seed``
   child), so the upload is diffed against a full ledger as in that benchmark.
2. Starts Streamlit serving this file (``streamlit run bench/upload_responsiveness.py``): a minimal
   app without sign-in that builds one host (``st.cache_resource``, as the portal does) with the
   bench ledger plugin. ``?bench=upload`` runs the product path in that session's script thread,
   exactly as the ledger page does: ``host.ledgers.upload`` with an ``on_progress`` that moves an
   ``st.progress`` bar through every phase (sniff … validate, 暂存数据, 比对变化), then
   ``host.ledgers.commit``. Any other URL is "another session's page": the ledger's versions (a
   query on the same store), a 200-row ``st.dataframe`` and a chart-free summary, ending with a
   marker.
3. In headless Chromium (Debian's /usr/bin/chromium through Playwright, never a downloaded one):
   times the other session's page (a reload until the marker is drawn and Streamlit reports the
   script finished) ``--idle`` times with nothing else running, then opens the upload in a second
   browser context and keeps timing reloads of the other session until the upload has committed,
   noting which phase the upload's bar showed at each sample.

Prints the idle and during figures (median, p90, max), the ratios during / idle and the upload's
own wall time; the last line is one JSON object. The machine is shared: read the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
for extra in (ROOT / "platform", HERE):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

import ledger_ingest as LI  # noqa: E402  (the workbook, the spec, the bench plugin and the seed)

MARKER = "OTHER-SESSION-READY"
DONE = "UPLOAD-COMMITTED"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- the Streamlit app


def serve() -> None:
    import streamlit as st

    st.set_page_config(page_title="上传期间的响应", layout="wide")

    @st.cache_resource
    def host_resource():
        return LI.build_host("duckdb", os.environ["HZ_RESP_TARGET"], os.environ["HZ_RESP_DATA_DIR"])

    host = host_resource()
    who = host.system_identity("bench")
    if st.query_params.get("bench") == "upload":
        from huizhi.excel.pipeline import PHASE_LABELS

        path = os.environ["HZ_RESP_FILE"]
        bar = st.progress(0.0, text="正在读取文件…")
        phase_box = st.empty()
        phases = [p for p in PHASE_LABELS if p != "commit"]  # as pages/ledgers.py

        def on_progress(phase: str, fraction: float) -> None:
            done = (phases.index(phase) + min(max(fraction, 0.0), 1.0)) / len(phases) if phase in phases else 0.0
            bar.progress(min(done, 1.0), text=f"{PHASE_LABELS.get(phase, phase)}…")
            phase_box.caption(f"phase={phase}")

        started = time.perf_counter()
        with open(path, "rb") as fh:
            data = fh.read()  # what st.file_uploader hands the page: the file's bytes
        upload = host.ledgers.upload(who, LI.SPEC.id, data, os.path.basename(path), on_progress=on_progress)
        if upload.preview is None:
            st.error(f"not staged: {[p.text() for p in upload.result.errors[:3]]} {upload.refusal or ''}")
            return
        version = host.ledgers.commit(who, upload.preview, confirm_removal=True)
        seconds = time.perf_counter() - started
        bar.empty()
        phase_box.caption("phase=done")
        st.write(f"{DONE} v{version.number} {version.row_count} rows in {seconds:.2f} s")
        return

    # another session's page: a query on the same store, a small table, text
    import pandas as pd

    st.title("其他用户的页面")
    versions = host.ledgers.versions(who, LI.SPEC.id)
    st.write(f"“{LI.SPEC.title}”共 {len(versions)} 个版本，当前 {versions[-1].row_count if versions else 0:,} 行。")
    st.dataframe(
        pd.DataFrame(
            [{"版本": v.number, "行数": v.row_count, "新增": v.added, "修改": v.changed, "删除": v.removed}
             for v in versions]
        ),
        hide_index=True,
    )
    st.dataframe(pd.DataFrame({"序号": range(200), "值": [i * 1.5 for i in range(200)]}), hide_index=True)
    st.write(MARKER)


# --------------------------------------------------------------------------- the driver

_READY = """(marker) => {
  const app = document.querySelector('[data-testid="stApp"]');
  if (!app) return false;
  if (app.getAttribute('data-test-connection-state') !== 'CONNECTED') return false;
  if (app.getAttribute('data-test-script-state') !== 'notRunning') return false;
  return document.body.innerText.includes(marker);
}"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def page_time(page, url: str, timeout: float = 300.0) -> float:
    started = time.perf_counter()
    page.goto(url, timeout=timeout * 1000)
    page.wait_for_function(_READY, arg=MARKER, timeout=timeout * 1000, polling=20)
    return time.perf_counter() - started


def upload_phase(page) -> str:
    try:
        text = page.evaluate("() => document.body.innerText")
    except Exception:
        return "?"
    if DONE in text:
        return "done"
    for line in text.splitlines():
        if line.startswith("phase="):
            return line[len("phase="):]
    return "starting"


def _summary(values: list[float]) -> dict:
    if not values:
        return {"n": 0}
    ordered = sorted(values)
    return {
        "n": len(values),
        "median_s": round(statistics.median(values), 3),
        "p90_s": round(ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))], 3),
        "max_s": round(ordered[-1], 3),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--idle", type=int, default=10, help="page loads timed before the upload")
    ap.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "huizhi-bench-ledger"))
    args = ap.parse_args()

    from playwright.sync_api import sync_playwright

    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    file = work / f"ledger_{args.rows}_0.xlsx"
    if not file.exists():
        t = time.perf_counter()
        LI.write_workbook(file.with_suffix(".tmp.xlsx"), args.rows)
        file.with_suffix(".tmp.xlsx").rename(file)
        log(f"generated {file.name} ({file.stat().st_size / 2**20:.1f} MB) in {time.perf_counter() - t:.1f}s")
    target = str(work / f"resp_{uuid.uuid4().hex[:8]}.duckdb")
    data_dir = tempfile.mkdtemp(prefix="resp_data_", dir=work)
    seeded = LI.run_child("seed", "", "duckdb", target, "--rows", str(args.rows), "--_data-dir", data_dir)
    log(f"seeded v{seeded['version']} of {seeded['rows']} rows in {seeded['seconds']:.1f}s")

    port = _free_port()
    env = dict(
        os.environ,
        HZ_RESP_TARGET=target,
        HZ_RESP_DATA_DIR=data_dir,
        HZ_RESP_FILE=str(file),
        PYTHONPATH=os.pathsep.join([str(ROOT / "platform"), str(HERE), os.environ.get("PYTHONPATH", "")]),
    )
    cmd = [sys.executable, "-m", "streamlit", "run", str(Path(__file__).resolve()), "--server.headless=true",
           f"--server.port={port}", "--server.address=127.0.0.1", "--browser.gatherUsageStats=false",
           "--server.fileWatcherType=none", "--server.runOnSave=false", "--server.maxUploadSize=400"]
    log_path = work / f"resp_streamlit_{port}.log"
    with open(log_path, "wb") as log_file:
        proc = subprocess.Popen(cmd, env=env, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}/"
    idle: list[float] = []
    during: list[tuple[float, str]] = []
    upload_seconds = None
    load_before = os.getloadavg()
    try:
        for _ in range(300):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=os.environ.get("HUIZHI_CHROMIUM", "/usr/bin/chromium"),
                args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
                proxy={"server": "http://127.0.0.1:9", "bypass": "127.0.0.1,localhost"},
            )
            other = browser.new_context(viewport={"width": 1366, "height": 768}, locale="zh-CN").new_page()
            warm = page_time(other, url)  # the process's first run: host built, imports (not counted)
            log(f"first page (host built): {warm:.2f}s")
            for _ in range(args.idle):
                idle.append(page_time(other, url))
            log(f"idle: {_summary(idle)}")
            admin = browser.new_context(viewport={"width": 1366, "height": 768}, locale="zh-CN").new_page()
            started = time.perf_counter()
            admin.goto(url + "?bench=upload", timeout=60_000)
            while True:
                phase = upload_phase(admin)
                if phase == "done":
                    upload_seconds = time.perf_counter() - started
                    break
                if time.perf_counter() - started > 1800:
                    raise RuntimeError("upload did not finish in 30 minutes")
                seconds = page_time(other, url)
                during.append((seconds, phase))
                log(f"during ({phase}): {seconds:.2f}s")
            text = admin.evaluate("() => document.body.innerText")
            committed = next((line for line in text.splitlines() if DONE in line), "")
            browser.close()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        LI.drop_duckdb(target)
        shutil.rmtree(data_dir, ignore_errors=True)
    load_after = os.getloadavg()
    idle_s = _summary(idle)
    during_s = _summary([s for s, _ in during])
    by_phase: dict[str, list[float]] = {}
    for s, ph in during:
        by_phase.setdefault(ph, []).append(s)
    result = {
        "rows": args.rows,
        "store": "duckdb",
        "idle": idle_s,
        "during": during_s,
        "during_by_upload_phase": {ph: _summary(v) for ph, v in by_phase.items()},
        "ratio_median": round(during_s["median_s"] / idle_s["median_s"], 2) if during else None,
        "ratio_p90": round(during_s["p90_s"] / idle_s["p90_s"], 2) if during else None,
        "ratio_max": round(during_s["max_s"] / idle_s["max_s"], 2) if during else None,
        "upload_commit_seconds_in_browser": round(upload_seconds, 2) if upload_seconds else None,
        "upload_server_line": committed,
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in load_after],
    }
    print(json.dumps(result, ensure_ascii=False))


def _under_streamlit() -> bool:
    try:
        from streamlit.runtime import exists

        return exists()
    except Exception:
        return False


if __name__ == "__main__":
    if _under_streamlit():
        serve()
    else:
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
        main()
