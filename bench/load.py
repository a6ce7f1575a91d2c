"""Load benchmark: N signed-in leaders opening the cockpit and a ledger page while an admin uploads.

    python bench/load.py                         # N = 1, 10, 50 × one portal / two behind nginx
    python bench/load.py --sessions 1,10 --topologies one --scale 0.1 --upload-rows 20000   # quick look

What it does, all on this machine, against PostgreSQL (``--pg-url``, the server the tests use):

1. Creates a fresh database and seeds the demo data into it (``huizhi_seeds.load_demo``, about
   23万 rows at ``--scale 1``), writes two ``--upload-rows`` workbooks of the sensing ledger
   (``sensing_devices``) through the product's own export (different seeds, so each upload
   changes what the one before committed).
2. Starts ``oidc-provider-mock`` with one leader identity per virtual user (``leader-01`` …, the
   demo leader's claims), then per topology: ``one`` = one portal process (``huizhi/server.py``,
   as ``huizhi run`` starts it); ``two`` = two portal processes behind Debian's nginx rendered
   from ``deploy/nginx/huizhi.conf.in`` (cookie affinity, tests/browser/nginx_proxy.py).
3. Signs every virtual user in through the real OpenID flow over plain HTTP and drives
   Streamlit's websocket protocol directly (bench/streamlit_client.py), many sessions in this one
   asyncio process, no browser: a browser on the same two cores measures the browser.
4. For each N: the ledger admin (``admin-jxj``), in one headless Chromium (Debian's, never a
   downloaded one), uploads a workbook on 台账上传与版本 and commits it; meanwhile N leaders each
   loop: open a new session on 领导驾驶舱 (``cockpit``), then navigate to 台账上传与版本
   (``ledgers``), think 0.5–1.5 s, again — until the admin has committed (at least
   ``--min-rounds`` times). Before the first N, one leader alone (no upload) gives the idle
   baseline the other figures are divided by.

"Page-ready" is the time from the page request (for the cockpit: the health check, opening the
websocket and the script run) to Streamlit's ``script_finished``: the server's part of a page load,
without downloading and drawing the JavaScript app. An error is a run that did not finish within
``--timeout`` seconds, a lost connection, a traceback element, a red 错误 box, a page not found,
or a sign-in page where the leader should be signed in.

Prints one table row per (topology, N) with p50/p95/max per page, errors, the admin's upload and
commit times, CPU used by the portals, by PostgreSQL, by this load generator and by the whole
machine; the last line is one JSON object. The machine is shared with other work: read the CPU
columns and the ratios to the idle baseline together with the seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import random
import re
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
for extra in (ROOT / "platform", ROOT, HERE, ROOT / "tests" / "browser"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

import streamlit_client as client  # noqa: E402

from huizhi import demo  # noqa: E402

LEDGER_ID = "sensing_devices"
ADMIN = "admin-jxj"
PAGES = ("cockpit", "ledgers")
DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
UPLOADS = itertools.count()


def log(msg: str) -> None:
    print(f"[load {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------------------------
# Figures


@dataclass
class Sample:
    page: str
    seconds: float
    status: str  # "ok" or what went wrong
    detail: str = ""
    at: float = 0.0  # seconds since the run started


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); nan for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def summarise(samples: list[Sample]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for page in PAGES:
        ok = [s.seconds for s in samples if s.page == page and s.status == "ok"]
        out[page] = {
            "n": len(ok),
            "p50_s": round(statistics.median(ok), 3) if ok else None,
            "p95_s": round(percentile(ok, 95), 3) if ok else None,
            "max_s": round(max(ok), 3) if ok else None,
        }
    every = [s.seconds for s in samples if s.status == "ok"]
    out["all"] = {
        "n": len(every),
        "p50_s": round(statistics.median(every), 3) if every else None,
        "p95_s": round(percentile(every, 95), 3) if every else None,
    }
    errors: dict[str, int] = {}
    for s in samples:
        if s.status != "ok":
            errors[s.status] = errors.get(s.status, 0) + 1
    out["errors"] = sum(errors.values())
    out["errors_by_kind"] = errors
    out["error_examples"] = sorted(
        {f"{s.page}: {s.status}: {s.detail}"[:300] for s in samples if s.status != "ok"}
    )[:5]
    return out


class CpuMeter:
    """CPU seconds used between start() and stop(): given processes, PostgreSQL, this process, the machine."""

    def __init__(self, pids: list[int]) -> None:
        self.pids = pids
        self.tick = os.sysconf("SC_CLK_TCK")

    def _proc(self, pid: int, children: bool = False) -> float:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        ticks = int(fields[11]) + int(fields[12])  # utime + stime
        if children:
            ticks += int(fields[13]) + int(fields[14])  # children already waited for (the Excel parser)
        return ticks / self.tick

    def _tree(self, pids: list[int]) -> float:
        """The processes, their finished children and their live descendants (the sandboxed
        Excel parser runs in a child process of the portal)."""
        parents: dict[int, int] = {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                with contextlib.suppress(OSError, IndexError, ValueError):
                    parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        tree, frontier = set(pids), list(pids)
        while frontier:
            parent = frontier.pop()
            for child, ppid in parents.items():
                if ppid == parent and child not in tree:
                    tree.add(child)
                    frontier.append(child)
        return sum(self._proc(p, children=True) for p in tree)

    def _postgres(self) -> dict[int, float]:
        out = {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                with contextlib.suppress(OSError):
                    if (entry / "comm").read_text().strip() == "postgres":
                        out[int(entry.name)] = self._proc(int(entry.name))
        return out

    def _machine(self) -> tuple[float, float]:
        cpu = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
        values = [int(v) for v in cpu]
        idle = values[3] + values[4]
        return (sum(values) - idle) / self.tick, sum(values) / self.tick

    def snapshot(self) -> dict[str, Any]:
        busy, total = self._machine()
        return {
            "portals": self._tree(self.pids),
            "postgres": self._postgres(),
            "loadgen": time.process_time(),
            "busy": busy,
            "total": total,
            "wall": time.perf_counter(),
        }

    def start(self) -> None:
        self.begin = self.snapshot()

    def stop(self) -> dict[str, float]:
        end = self.snapshot()
        wall = end["wall"] - self.begin["wall"]
        before, after = self.begin.pop("postgres"), end.pop("postgres")
        used = {k: end[k] - self.begin[k] for k in end}
        # backends that ended in between are lost (other work on the server counts): a rough figure
        used["postgres"] = sum(t - before.get(pid, 0.0) for pid, t in after.items())
        cores = os.cpu_count() or 1
        return {
            "wall_s": round(wall, 1),
            "portals_cpu_s": round(used["portals"], 1),
            "portals_cpu_pct": round(100 * used["portals"] / wall / cores, 1),
            "postgres_cpu_pct": round(100 * used["postgres"] / wall / cores, 1),
            "loadgen_cpu_pct": round(100 * used["loadgen"] / wall / cores, 1),
            "machine_busy_pct": round(100 * used["busy"] / used["total"], 1) if used["total"] else 0.0,
        }


# ----------------------------------------------------------------------------------------------
# Virtual users


async def one_round(base: str, cookies: Any, timeout: float, t0: float) -> list[Sample]:
    """A leader opens the cockpit in a new tab (new session), then clicks 台账上传与版本."""
    started = time.perf_counter()
    session = client.Session(base, cookies, timeout=timeout)
    out: list[Sample] = []
    try:
        await session.open()
    except Exception as error:
        return [
            Sample(
                "cockpit", time.perf_counter() - started, "connect failed", repr(error)[:200], started - t0
            )
        ]
    try:
        for n, page in enumerate(PAGES):
            run = await session.run(page, started=started if n == 0 else None)
            out.append(_sample(run, time.perf_counter() - t0))
            if run.status != "ok":
                break  # a broken session: the next page would measure the breakage again
    finally:
        await session.close()
    return out


def _sample(run: client.PageRun, at: float) -> Sample:
    status, detail = run.status, ""
    if run.exceptions:
        status, detail = "exception", run.exceptions[0]
    elif run.error_alerts:
        status, detail = "error message", run.error_alerts[0]
    elif any(client.LOGIN_KEY in wid for wid in run.buttons):
        status, detail = "signed out", "the sign-in page instead of the page"
    return Sample(run.page, run.seconds, status, detail, at - run.seconds)


async def virtual_user(
    base: str, cookies: Any, stop: asyncio.Event, *, min_rounds: int, think: float, timeout: float,
    t0: float, rng: random.Random, samples: list[Sample],
) -> None:  # fmt: skip
    await asyncio.sleep(rng.uniform(0, think))  # people do not all press Enter in the same millisecond
    rounds = 0
    while rounds < min_rounds or not stop.is_set():
        samples.extend(await one_round(base, cookies, timeout, t0))
        rounds += 1
        await asyncio.sleep(rng.uniform(0.5, 1.5) * think)


async def sign_in_all(base: str, subs: list[str], parallel: int = 5) -> list[Any]:
    gate = asyncio.Semaphore(parallel)

    async def one(sub: str) -> Any:
        async with gate:
            return await client.sign_in(base, sub)

    return list(await asyncio.gather(*(one(s) for s in subs)))


# ----------------------------------------------------------------------------------------------
# The admin: one headless Chromium uploading and committing a workbook


class Admin(threading.Thread):
    """Signs the ledger admin in, opens 台账上传与版本, then (on go) uploads and commits."""

    def __init__(self, base: str, provider: demo.Provider, workbook: Path, timeout: float = 1800.0) -> None:
        super().__init__(daemon=True)
        self.base, self.provider, self.workbook, self.timeout = base, provider, workbook, timeout
        self.ready, self.go, self.done = threading.Event(), threading.Event(), threading.Event()
        self.result: dict[str, Any] = {}
        self.page: Any = None

    def run(self) -> None:
        try:
            self._run()
        except Exception as error:
            self.result["error"] = f"{error.__class__.__name__}: {error}"[:500]
            log(f"admin failed: {error}; screenshot {self.workbook.with_suffix('.failed.png')}")
        finally:
            self.ready.set()
            self.done.set()

    def _run(self) -> None:
        from harness import CHROMIUM, CHROMIUM_ARGS, NO_NETWORK_PROXY, sign_in, wait_rendered
        from playwright.sync_api import sync_playwright

        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, proxy=NO_NETWORK_PROXY)
            try:
                page = browser.new_context(
                    viewport={"width": 1400, "height": 1000}, locale="zh-CN"
                ).new_page()
                page.set_default_timeout(120_000)
                self.page = page
                sign_in(page, ADMIN, SimpleNamespace(url=self.base), self.provider)
                page.goto(f"{self.base}/ledgers")
                wait_rendered(page, timeout=120)
                self.ready.set()
                self.go.wait()
                started = time.perf_counter()
                page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(
                    str(self.workbook)
                )
                main = page.locator('[data-testid="stMain"]')
                main.get_by_text(re.compile("变更预览|处错误|无法读取")).first.wait_for(
                    timeout=self.timeout * 1000
                )
                wait_rendered(page, timeout=self.timeout)
                self.result["preview_s"] = round(time.perf_counter() - started, 1)
                text = main.inner_text()
                if "变更预览" not in text:
                    raise RuntimeError(f"no preview after the upload: {text[-600:]}")
                committed = time.perf_counter()
                page.get_by_role("button", name="提交为新版本").click()
                # under load the rerun may not have started 0.5 s after the click: wait for its answer
                answer = main.get_by_text(re.compile("已提交为第|台账在您预览之后已被他人更新")).first
                answer.wait_for(timeout=self.timeout * 1000)
                wait_rendered(page, timeout=self.timeout)
                text = main.inner_text()
                line = next((ln for ln in text.splitlines() if "已提交为第" in ln), "")
                if not line:
                    raise RuntimeError(f"no commit confirmation: {answer.inner_text()[:300]}")
                self.result["commit_s"] = round(time.perf_counter() - committed, 1)
                self.result["total_s"] = round(time.perf_counter() - started, 1)
                self.result["committed"] = line.strip()
            except Exception:
                with contextlib.suppress(Exception):
                    self.page.screenshot(path=str(self.workbook.with_suffix(".failed.png")), full_page=True)
                raise
            finally:
                browser.close()


# ----------------------------------------------------------------------------------------------
# Processes


@contextlib.contextmanager
def topology(
    kind: str, state: Path, provider: demo.Provider, database_url: str, config: Path
) -> Iterator[tuple[str, list[demo.Portal], list[int]]]:
    """``one``: a portal process; ``two``: two behind nginx. Yields (the URL people open, portals)."""
    from nginx_proxy import running

    count = {"one": 1, "two": 2}[kind]
    ports = [demo.free_port() for _ in range(count)]
    front = ports[0] if count == 1 else demo.free_port()
    state.mkdir(parents=True, exist_ok=True)
    # one secrets file for every process: one cookie secret, the redirect URI where people are
    secrets_file = demo.write_auth_secrets(
        state / "auth-secrets.toml",
        portal_port=front,
        oidc_port=provider.port,
        cookie_secret=secrets.token_urlsafe(32),
    )
    with contextlib.ExitStack() as stack:
        portals = []
        for n, port in enumerate(ports):
            portals.append(
                stack.enter_context(
                    demo.portal(
                        demo.default_app_path(),
                        port=port,
                        secrets_files=[secrets_file],
                        env={
                            "HUIZHI_DATABASE_URL": database_url,
                            "HUIZHI_CONFIG": str(config),
                            "HUIZHI_DATA_DIR": str(state / f"data-{n}"),
                        },
                        log_file=state / f"portal-{n}.log",
                        extra_args=["--server.fileWatcherType", "none", "--server.runOnSave", "false"],
                        timeout=180,
                    )
                )
            )
        # Uploads from 2 MiB are checked by the task queue: on PostgreSQL that is `huizhi worker`,
        # run beside the portals as a deployment runs it (deploy/compose); without it they wait.
        worker_log = (state / "worker.log").open("wb")
        stack.callback(worker_log.close)
        worker = subprocess.Popen(
            [str(Path(sys.executable).with_name("huizhi")), "worker", "--name", "bench"],
            env={**os.environ, "HUIZHI_DATABASE_URL": database_url, "HUIZHI_CONFIG": str(config),
                 "HUIZHI_DATA_DIR": str(state / "data-worker"), "HUIZHI_MIGRATE": "0"},
            stdout=worker_log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        stack.callback(lambda: (worker.terminate(), worker.wait(timeout=60)))
        for p in portals:
            wait_ready(p)
        pids = [p.process.pid for p in portals] + [worker.pid]  # the worker's CPU counts with the portals'
        if count == 1:
            yield portals[0].url, portals, pids
        else:
            proxy = stack.enter_context(
                running(state / "nginx", front, [f"{demo.LOOPBACK}:{p.port}" for p in portals])
            )
            yield proxy.url, portals, pids


def wait_ready(portal: demo.Portal, timeout: float = 300.0) -> None:
    """Until /readyz says the database, migrations and host are ready (the host is built at start)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            status, _ = demo.http_get(f"{portal.url}/readyz", timeout=10)
        except OSError:
            status = 0
        if status == 200:
            return
        if portal.process.poll() is not None or time.monotonic() > deadline:
            raise demo.StartupError(f"portal :{portal.port} not ready:\n{demo._tail(portal.log_file)}")
        time.sleep(0.5)


def seed(database_url: str, state: Path, scale: float, upload_rows: int) -> tuple[dict[str, Any], list[Path]]:
    from huizhi.config import load_settings
    from huizhi.excel import export_xlsx
    from huizhi.host import create_host
    from huizhi_seeds.loader import load_demo

    started = time.perf_counter()
    host = create_host(load_settings({}, database_url=database_url, data_dir=state / "seed-data"))
    try:
        load_demo(host, scale=scale)
        who = host.system_identity("bench")
        counts = {
            lid: v[-1].row_count for lid in host.registry.ledgers if (v := host.ledgers.versions(who, lid))
        }
        seconds = time.perf_counter() - started
        spec, _ = host.registry.ledgers[LEDGER_ID]
        workbooks = []
        if upload_rows:
            import pyarrow as pa

            # the first rows of the current ledger, each with its 安装地点 rechecked: two variants,
            # so every upload (alternating) changes every one of its rows and adds none — the
            # ledger keeps its size from run to run, the cockpit its work
            current = host.ledgers.export(who, LEDGER_ID).slice(0, upload_rows)
            column = current.schema.get_field_index("location")
            for n, mark in enumerate(("（复核甲）", "（复核乙）")):
                places = [f"{p or ''}{mark}" for p in current.column("location").to_pylist()]
                table = current.set_column(column, "location", pa.array(places))
                path = state / f"感知设备-{table.num_rows}-{n}.xlsx"
                path.write_bytes(export_xlsx(table, spec))
                workbooks.append(path)
                log(f"workbook {path.name}: {table.num_rows} rows, {path.stat().st_size / 2**20:.1f} MB")
    finally:
        host.dispose()
    return {"seed_s": round(seconds, 1), "rows": counts, "total_rows": sum(counts.values())}, workbooks


@contextlib.contextmanager
def database(server_url: str, keep: bool) -> Iterator[str]:
    import sqlalchemy as sa

    name = f"huizhi_load_{os.getpid()}_{int(time.time())}"
    admin = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield sa.engine.make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        if not keep:
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


# ----------------------------------------------------------------------------------------------
# Runs


async def measure(
    base: str, cookies: list[Any], *, admin: Admin | None, min_rounds: int, think: float, timeout: float,
    meter: CpuMeter, seed_value: int,
) -> dict[str, Any]:  # fmt: skip
    """len(cookies) leaders looping while the admin uploads (or for min_rounds without one)."""
    samples: list[Sample] = []
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    if admin is not None:
        admin.start()
        await loop.run_in_executor(None, admin.ready.wait)
        if "error" in admin.result:
            raise RuntimeError(f"admin could not start: {admin.result['error']}")
    else:
        stop.set()
    t0 = time.perf_counter()
    meter.start()
    rng = random.Random(seed_value)
    users = [
        asyncio.create_task(
            virtual_user(base, c, stop, min_rounds=min_rounds, think=think, timeout=timeout, t0=t0,
                         rng=random.Random(rng.random()), samples=samples)
        )
        for c in cookies
    ]  # fmt: skip
    if admin is not None:
        admin.go.set()
        await loop.run_in_executor(None, admin.done.wait)
        stop.set()
    await asyncio.gather(*users)
    cpu = meter.stop()
    result = {"sessions": len(cookies), **summarise(samples), "cpu": cpu}
    # what a page costs the portals in CPU (the upload's share included), whatever else the machine runs
    result["portal_cpu_ms_per_page"] = round(1000 * cpu["portals_cpu_s"] / max(1, len(samples)))
    if admin is not None:
        result["upload"] = admin.result
        if (
            "total_s" in admin.result
        ):  # the figures while the upload ran (the sessions keep a round going after it)
            during = [s for s in samples if s.at < admin.result["total_s"]]
            result["during_upload"] = {p: summarise(during)[p] for p in PAGES} | {
                "errors": summarise(during)["errors"]
            }
    return result


def fmt(v: Any) -> str:
    return "—" if v is None else (f"{v:.2f}" if isinstance(v, float) else str(v))


def print_table(rows: list[dict[str, Any]], idle: dict[str, dict[str, Any]]) -> None:
    head = (
        f"{'topology':<9}{'N':>4}  {'cockpit p50/p95/max s':>22}  {'ledgers p50/p95/max s':>22}  "
        f"{'p95 ÷ idle':>10}  {'samples':>7}  {'errors':>6}  {'upload+commit s':>15}  "
        f"{'CPU % portals/pg/loadgen/machine':>33}"
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        c, led = r["cockpit"], r["ledgers"]
        base = idle.get(r["topology"], {}).get("all", {}).get("p95_s")
        ratio = (r["all"]["p95_s"] / base) if base and r["all"]["p95_s"] else None
        up = r.get("upload", {})
        upload = (
            f"{fmt(up.get('preview_s'))}+{fmt(up.get('commit_s'))}"
            if up and "error" not in up
            else ("ERR" if up else "—")
        )
        cpu = r["cpu"]
        print(
            f"{r['topology']:<9}{r['sessions']:>4}  "
            f"{fmt(c['p50_s']) + '/' + fmt(c['p95_s']) + '/' + fmt(c['max_s']):>22}  "
            f"{fmt(led['p50_s']) + '/' + fmt(led['p95_s']) + '/' + fmt(led['max_s']):>22}  "
            f"{fmt(ratio):>10}  {r['all']['n']:>7}  {r['errors']:>6}  {upload:>15}  "
            f"{cpu['portals_cpu_pct']:>8}/{cpu['postgres_cpu_pct']}/{cpu['loadgen_cpu_pct']}/{cpu['machine_busy_pct']}"
        )


async def run_topology(kind: str, args: argparse.Namespace, provider: demo.Provider, database_url: str,
                       config: Path, state: Path, subs: list[str], workbooks: list[Path]) -> tuple[dict, list[dict]]:  # fmt: skip
    rows: list[dict[str, Any]] = []
    with topology(kind, state / kind, provider, database_url, config) as (base, portals, pids):
        log(f"{kind}: {len(portals)} portal(s) ready at {base}")
        meter = CpuMeter(pids)
        t = time.perf_counter()
        cookies = await sign_in_all(base, subs)
        log(f"{kind}: {len(cookies)} leaders signed in in {time.perf_counter() - t:.1f}s")
        # warm-up: every process builds its pages and tile caches once (not counted)
        await measure(base, cookies[: 4 * len(portals)], admin=None, min_rounds=1, think=0.2,
                      timeout=args.timeout, meter=meter, seed_value=0)  # fmt: skip
        idle = await measure(base, cookies[:1], admin=None, min_rounds=args.idle_rounds, think=args.think,
                             timeout=args.timeout, meter=meter, seed_value=1)  # fmt: skip
        idle["topology"] = kind
        log(f"{kind}: idle baseline {idle['all']}")
        for n in args.sessions:
            # alternate across topologies too: each upload differs from what the one before committed
            workbook = workbooks[next(UPLOADS) % len(workbooks)] if workbooks else None
            admin = Admin(base, provider, workbook) if workbook else None
            result = await measure(base, cookies[:n], admin=admin, min_rounds=args.min_rounds, think=args.think,
                                   timeout=args.timeout, meter=meter, seed_value=100 + n)  # fmt: skip
            result["topology"] = kind
            rows.append(result)
            log(f"{kind} N={n}: cockpit {result['cockpit']} ledgers {result['ledgers']} errors {result['errors']} "
                f"{result['error_examples']} upload {result.get('upload')} cpu {result['cpu']}")  # fmt: skip
    return idle, rows


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", default="1,10,50", help="comma-separated N (default 1,10,50)")
    ap.add_argument("--topologies", default="one,two", help="one (a portal process), two (two behind nginx)")
    ap.add_argument("--scale", type=float, default=1.0, help="demo data scale (1 ≈ 23万 rows)")
    ap.add_argument(
        "--upload-rows", type=int, default=100_000, help="rows in the admin's workbook; 0: no upload"
    )
    ap.add_argument(
        "--min-rounds", type=int, default=2, help="rounds per leader at least (then until the commit)"
    )
    ap.add_argument("--idle-rounds", type=int, default=5)
    ap.add_argument("--think", type=float, default=1.0, help="mean seconds between a leader's rounds")
    ap.add_argument("--timeout", type=float, default=60.0, help="a page not ready after this is an error")
    ap.add_argument("--pg-url", default=os.environ.get("HUIZHI_TEST_PG_URL", DEFAULT_PG))
    ap.add_argument("--keep", action="store_true", help="keep the database and the state folder")
    args = ap.parse_args(argv)
    args.sessions = [int(x) for x in args.sessions.split(",")]
    kinds = [k.strip() for k in args.topologies.split(",")]

    state = Path(tempfile.mkdtemp(prefix="huizhi-load-"))
    log(f"state in {state}")
    result: dict[str, Any] = {
        "command": "python bench/load.py " + " ".join(argv if argv is not None else sys.argv[1:])
    }
    with database(args.pg_url, args.keep) as url:
        result["data"], workbooks = seed(url, state, args.scale, args.upload_rows)
        log(f"seeded {result['data']}")
        config = demo.write_demo_config(state / "huizhi.toml")
        subs = [f"leader-{n:02d}" for n in range(1, max(args.sessions) + 1)]
        leader = demo.demo_identity("leader")
        with demo.oidc_provider(demo.free_port(), log_file=state / "oidc.log") as provider:
            for sub in subs:
                provider.set_user(sub, leader.claims() | {"sub": sub, "preferred_username": sub})
            idle: dict[str, dict[str, Any]] = {}
            rows: list[dict[str, Any]] = []
            for kind in kinds:
                idle[kind], more = asyncio.run(
                    run_topology(kind, args, provider, url, config, state, subs, workbooks)
                )
                rows.extend(more)
    result["idle"] = idle
    result["runs"] = rows
    result["loadavg"] = os.getloadavg()
    result["cpus"] = os.cpu_count()
    print()
    print_table(rows, idle)
    print(json.dumps(result, ensure_ascii=False, default=str))
    if not args.keep:
        import shutil

        shutil.rmtree(state, ignore_errors=True)
    return result


if __name__ == "__main__":
    main()
