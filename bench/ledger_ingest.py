"""Ledger upload benchmark: the product's upload → commit, against the usual path.

    python bench/ledger_ingest.py --rows 100000                   # DuckDB store
    python bench/ledger_ingest.py --rows 100000 --store postgres  # PostgreSQL at 127.0.0.1:5432
    python bench/ledger_ingest.py --rows 100000 --baseline-rows 20000   # cap the slow baseline
    python bench/ledger_ingest.py --rows 1000000 --repeat 1 --no-baseline --no-marked   # 1M: vs bare parse

What it measures, each run in a fresh child process (``--_child``) so that peak memory is that
run's own; modules are imported and the host is built before the clock starts (the portal does
both once at start):

* ``ours``: the product path on a host built by :func:`huizhi.host.create_host` with a bench
  plugin declaring the 20-column ledger (registered through ``extra_plugins``, like a
  department plugin), on a fresh store per run (a .duckdb file, or a PostgreSQL database created
  for the run and dropped after) whose current version was committed by a separate ``seed``
  process through ``host.ledgers.import_rows``. Timed: ``host.ledgers.upload`` of a clean
  workbook (the sandboxed :func:`huizhi.excel.ingest` — calamine parse → Arrow → vectorised
  conversion → pandera over the typed frame + key uniqueness + row rules —, then
  ``LedgerStore.stage``: the rows bulk-inserted as a version no head points at, and compared
  in SQL with the current version, counts and first rows in one join: about 5 % of rows
  changed, 1 % removed, 1 % added) and ``host.ledgers.commit`` (the head moved to the staged
  rows, audit, event). Phases: ``parse_validate`` from the ingest result's own timings;
  ``stage`` (``stage_insert``, ``stage_compare``), ``diff`` (0 unless called outside stage)
  and ``publish`` by a clock put around those store methods (nothing else changes).
* ``baseline``: ``pandas.read_excel(engine="openpyxl")`` → pandera (``coerce=True``,
  ``lazy=True``) → ``DataFrame.to_sql`` through SQLAlchemy (duckdb-engine, or psycopg for
  PostgreSQL) — the path most people would write first.
* ``bare``: python-calamine reading the sheet to Python values and nothing else (the floor).
* ``marked``: a workbook of the same size with ``--bad-cells`` bad cells (default rows/10):
  ingest it, then time the marked workbook (every cell written back, bad ones coloured and
  noted, plus 错误清单) and the bad-rows-only workbook (``--no-marked`` skips it).

Medians of ``--repeat`` runs (default 3). ``peak_rss_mb`` is the largest resident size of the
``ours`` process tree: the process plus its parser worker sampled together every 10 ms, and never
less than the process's own high-water mark (VmHWM); ``peak_rss_upper_bound_mb`` adds the two
processes' separate high-water marks (their peaks are not simultaneous, so this overstates).
The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(ROOT / "platform") not in sys.path:
    sys.path.insert(0, str(ROOT / "platform"))

from huizhi.district import DEPARTMENTS, STREETS  # noqa: E402
from huizhi.specs import ColumnSpec, LedgerSpec, RowCheck  # noqa: E402

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/{db}"  # the host's (SQLAlchemy) URL
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"  # to create and drop the run's databases

CATEGORIES = ("道路", "水务", "园林", "环卫", "市政", "建筑", "安全", "信息化")
STATUSES = ("未开始", "进行中", "已完成", "已暂停")
SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华"
WORDS = (
    "智慧",
    "社区",
    "治理",
    "平台",
    "改造",
    "提升",
    "管网",
    "绿化",
    "照明",
    "监测",
    "工程",
    "服务",
    "中心",
    "一期",
    "二期",
)


def _end_after_start(df):
    return df["end_date"].isna() | (df["end_date"] >= df["start_date"])


def _amount_within_budget(df):
    return df["budget"].isna() | (df["amount"] <= df["budget"])


SPEC = LedgerSpec(
    id="bench_projects",
    title="重点项目台账",
    department="jxj",
    key=("record_id",),
    columns=(
        ColumnSpec(
            "record_id",
            "项目编号",
            pattern=r"^DX[0-9]{8}$",
            pattern_hint="DX 加 8 位数字",
            example="DX00000001",
        ),
        ColumnSpec("name", "项目名称", example="智慧社区改造一期"),
        ColumnSpec("department", "责任单位", choices=tuple(d.name for d in DEPARTMENTS)),
        ColumnSpec("street", "所属镇街", choices=tuple(s.name for s in STREETS)),
        ColumnSpec("category", "项目类别", choices=CATEGORIES),
        ColumnSpec("contact", "联系人", example="王伟"),
        ColumnSpec(
            "phone",
            "联系电话",
            pattern=r"^1[3-9][0-9]{9}$",
            pattern_hint="11 位手机号",
            example="13800138000",
        ),
        ColumnSpec("address", "项目地址", required=False),
        ColumnSpec("amount", "完成投资（万元）", dtype="float", min=0),
        ColumnSpec("quantity", "涉及点位数", dtype="int", min=0, max=100_000),
        ColumnSpec("score", "评分", dtype="float", min=0, max=100, required=False),
        ColumnSpec("start_date", "开工日期", dtype="date"),
        ColumnSpec("end_date", "完工日期", dtype="date", required=False),
        ColumnSpec("report_date", "填报日期", dtype="date"),
        ColumnSpec("is_key", "是否重点", dtype="bool"),
        ColumnSpec("done", "是否完成", dtype="bool"),
        ColumnSpec("status", "状态", choices=STATUSES),
        ColumnSpec("progress", "进度（%）", dtype="int", min=0, max=100),
        ColumnSpec("budget", "预算（万元）", dtype="float", min=0, required=False),
        ColumnSpec("remark", "备注", required=False),
    ),
    row_checks=(
        RowCheck("end_after_start", ("start_date", "end_date"), "完工日期早于开工日期", _end_after_start),
        RowCheck("within_budget", ("amount", "budget"), "完成投资超过预算", _amount_within_budget, soft=True),
    ),
)

# columns that can be made bad, and how (each produces exactly one problem)
_BAD = {
    "record_id": "X123",
    "department": "不存在的单位",
    "street": "火星街道",
    "category": "其他类",
    "phone": "1380013800",
    "amount": "一百万",
    "quantity": "-3",
    "score": "120",
    "start_date": "2023-02-30",
    "report_date": "去年",
    "is_key": "也许",
    "done": "待定",
    "status": "完成了",
    "progress": "50%",
}


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- data generation


def _row(i: int, rnd: random.Random, variant: int = 0) -> dict:
    start = dt.date(2022, 1, 1) + dt.timedelta(days=rnd.randrange(700))
    amount = round(rnd.random() * 5000, 2) + variant
    budget = round(amount * (1 + rnd.random()), 2) if rnd.random() < 0.8 else None
    return {
        "record_id": f"DX{i:08d}",
        "name": "".join(rnd.choice(WORDS) for _ in range(3)) + f"{i % 97}号",
        "department": DEPARTMENTS[i % len(DEPARTMENTS)].name,
        "street": STREETS[(i * 7) % len(STREETS)].name,
        "category": CATEGORIES[i % len(CATEGORIES)],
        "contact": rnd.choice(SURNAMES)
        + rnd.choice(GIVEN)
        + (rnd.choice(GIVEN) if rnd.random() < 0.5 else ""),
        "phone": f"1{rnd.choice('3456789')}{rnd.randrange(10**9):09d}",
        "address": f"北京市大兴区{STREETS[i % len(STREETS)].name}{rnd.randrange(1, 300)}号"
        if rnd.random() < 0.9
        else None,
        "amount": amount,
        "quantity": rnd.randrange(0, 5000),
        "score": round(rnd.random() * 100, 1) if rnd.random() < 0.7 else None,
        "start_date": start,
        "end_date": start + dt.timedelta(days=rnd.randrange(30, 400)) if rnd.random() < 0.6 else None,
        "report_date": dt.date(2023, 6, 30) - dt.timedelta(days=rnd.randrange(60)),
        "is_key": rnd.random() < 0.3,
        "done": rnd.random() < 0.4,
        "status": STATUSES[i % len(STATUSES)],
        "progress": rnd.randrange(0, 101),
        "budget": budget,
        "remark": rnd.choice(("", "", "", "按期推进", "资金已到位", "=需复核")),
    }


def write_workbook(path: Path, rows: int, *, bad_cells: int = 0, seed: int = 7) -> int:
    """A realistic workbook: title row, header, typed cells, some numbers/dates typed as text."""
    import xlsxwriter

    rnd = random.Random(seed)
    bad: dict[int, dict[str, str]] = {}
    if bad_cells:
        cols = list(_BAD)
        picked = set()
        while len(picked) < bad_cells:
            picked.add((rnd.randrange(rows), rnd.choice(cols)))
        for r, c in picked:
            bad.setdefault(r, {})[c] = _BAD[c]
    wb = xlsxwriter.Workbook(
        str(path), {"strings_to_formulas": False, "strings_to_numbers": False, "strings_to_urls": False}
    )
    ws = wb.add_worksheet(SPEC.title)
    f_date = wb.add_format({"num_format": "yyyy-mm-dd"})
    ws.merge_range(0, 0, 0, len(SPEC.columns) - 1, f"{SPEC.title}（2023 年第二季度）")
    for j, col in enumerate(SPEC.columns):
        ws.write_string(1, j, col.label)
    names = [c.name for c in SPEC.columns]
    dtypes = [c.dtype for c in SPEC.columns]
    for i in range(rows):
        row = _row(i + 1, rnd)
        r = i + 2
        override = bad.get(i)
        for j, name in enumerate(names):
            v = row[name]
            if override and name in override:
                ws.write_string(r, j, override[name])
                continue
            if v is None or v == "":
                continue
            t = dtypes[j]
            if t == "date":
                if i % 97 == 0:  # some dates typed as text, in the forms people use
                    ws.write_string(
                        r, j, f"{v.year}/{v.month}/{v.day}" if i % 2 else f"{v.year}年{v.month}月{v.day}日"
                    )
                else:
                    ws.write_datetime(r, j, dt.datetime(v.year, v.month, v.day), f_date)
            elif t == "bool":
                ws.write_string(r, j, "是" if v else "否")
            elif t in ("int", "float"):
                if i % 101 == 0:  # numbers stored as text
                    ws.write_string(r, j, str(v))
                else:
                    ws.write_number(r, j, v)
            else:
                ws.write_string(r, j, v)
    wb.close()
    return len(bad) and sum(len(v) for v in bad.values())


def current_version(rows: int, seed: int = 7):
    """The 'current' committed version the upload is compared against (same generator, edited)."""
    import pyarrow as pa

    from huizhi.excel.convert import TYPES

    rnd = random.Random(seed)
    edit = random.Random(seed + 1)
    out = {c.name: [] for c in SPEC.columns}
    removed_in_new = rows // 100  # last 1 % of the new file are additions, not in current
    for i in range(rows - removed_in_new):
        row = _row(i + 1, rnd)
        if edit.random() < 0.05:
            row["amount"] = round(row["amount"] + 1, 2)
            row["status"] = STATUSES[(STATUSES.index(row["status"]) + 1) % len(STATUSES)]
        for k, v in row.items():
            out[k].append(v if v != "" else None)
    for i in range(removed_in_new):  # rows that the new file no longer has
        row = _row(10**7 + i, random.Random(i))
        for k, v in row.items():
            out[k].append(v if v != "" else None)
    return pa.table({c.name: pa.array(out[c.name], TYPES[c.dtype]) for c in SPEC.columns})


# --------------------------------------------------------------------------- the product's host


def _bench_plugin():
    """A plugin object declaring the benchmark ledger, registered through ``extra_plugins`` like a
    department plugin (pluggy accepts any object with hookimpl attributes)."""
    from types import SimpleNamespace

    from huizhi import hookimpl
    from huizhi.specs import PluginInfo

    ns = SimpleNamespace()
    ns.huizhi_plugin_info = hookimpl(
        lambda: PluginInfo(
            name="bench",
            title="台账上传基准测试",
            department=SPEC.department,
            version="1",
            host_api=">=1.0",
            description="bench/ledger_ingest.py",
        )
    )
    ns.huizhi_ledgers = hookimpl(lambda: [SPEC])
    ns.__name__ = "bench_ledger_ingest_plugin"
    return ns


def store_url(store: str, target: str) -> str:
    """The database URL the host is built on: a .duckdb file, or a PostgreSQL database by name."""
    return f"duckdb:///{target}" if store == "duckdb" else PG_URL.format(db=target)


def build_host(store: str, target: str, data_dir: str):
    from huizhi.config import load_settings
    from huizhi.host import create_host

    settings = load_settings({}, database_url=store_url(store, target), data_dir=Path(data_dir))
    return create_host(settings, extra_plugins=[("bench", _bench_plugin())], use_entry_points=False)


def pg_create_db() -> str:
    import psycopg

    name = f"huizhi_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return name


def pg_drop_db(name: str) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def drop_duckdb(path: str) -> None:
    for suffix in ("", ".wal"):
        if os.path.exists(path + suffix):
            os.remove(path + suffix)


# --------------------------------------------------------------------------- measured runs (children)


class TreeSampler:
    """Samples this process's RSS plus its children's (the parser worker) every few ms.

    ``peak_mb`` is the largest simultaneous total: the process tree's real peak, which the
    ``getrusage`` maxima (one per process, at different moments) can only bound from above.
    """

    def __init__(self, interval: float = 0.01):
        import threading

        self.interval = interval
        self.peak_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._page_kb = os.sysconf("SC_PAGE_SIZE") // 1024
        self._me = os.getpid()

    def _rss_kb(self, pid) -> int:
        try:
            with open(f"/proc/{pid}/statm") as fh:
                return int(fh.read().split()[1]) * self._page_kb
        except (OSError, ValueError, IndexError):
            return 0

    def _children(self) -> list[int]:
        kids = []
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            try:
                with open(f"/proc/{name}/stat") as fh:
                    stat = fh.read()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == self._me:
                kids.append(int(name))
        return kids

    def _run(self) -> None:
        tick = 0
        kids: list[int] = []
        while not self._stop.is_set():
            if tick % 5 == 0:
                kids = self._children()
            total = self._rss_kb("self") + sum(self._rss_kb(k) for k in kids)
            self.peak_kb = max(self.peak_kb, total)
            tick += 1
            self._stop.wait(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    @property
    def peak_mb(self) -> float:
        return round(self.peak_kb / 1024, 1)


def _rss_mb() -> tuple[float, float]:
    """(this process's peak, its largest child's peak) in MB.

    Own peak from VmHWM: ``ru_maxrss`` after fork + exec still carries the forking parent's size
    (Linux folds the old mm's high-water mark into it), which here is the benchmark driver's.
    The children figure is ``ru_maxrss`` and has the same inflation; ``ours`` uses the worker's
    own VmHWM instead.
    """
    own = None
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                own = int(line.split()[1]) / 1024
    if own is None:  # pragma: no cover - not Linux
        own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return round(own, 1), round(kids, 1)


class _Timers:
    """Wall time of each call to named methods of one object (the host's ``LedgerStore``): the
    service calls them as usual; only the clock is added."""

    def __init__(self) -> None:
        self.calls: dict[str, list[float]] = {}

    def wrap(self, obj, name: str) -> None:
        original = getattr(obj, name)

        def timed(*args, **kwargs):
            t = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.calls.setdefault(name, []).append(time.perf_counter() - t)

        setattr(obj, name, timed)

    def total(self, name: str) -> float:
        return sum(self.calls.get(name, ()))


def child_seed(store: str, target: str, data_dir: str, rows: int) -> dict:
    """Commit the current version through the service (its own process: its memory is not the
    measured run's)."""
    t0 = time.perf_counter()
    host = build_host(store, target, data_dir)
    try:
        version = host.ledgers.import_rows(
            host.system_identity("bench"), SPEC.id, current_version(rows), kind="seed"
        )
    finally:
        host.dispose()
    return {
        "seconds": round(time.perf_counter() - t0, 3),
        "version": version.number,
        "rows": version.row_count,
    }


def child_ours(file: str, store: str, target: str, data_dir: str) -> dict:
    """The product path: ``host.ledgers.upload`` (sandboxed parse + validate, stage, SQL diff) and
    ``host.ledgers.commit``, on a host built like the portal's (before the clock)."""
    import duckdb  # noqa: F401  (imported before the clock, as in the portal)
    import pandas  # noqa: F401
    import pandera.pandas  # noqa: F401
    import pyarrow
    import pyarrow.csv  # noqa: F401  (the PostgreSQL bulk insert)
    import sqlalchemy as sa

    import huizhi.excel.pipeline  # noqa: F401
    import huizhi.excel.sandbox  # noqa: F401
    from huizhi.excel.validation import warm

    # pandera registers its pandas backends on the first validate, importing more modules
    # (hypothesis, where installed: ~0.4 s of CPU in the dev venv); the portal and `huizhi worker`
    # do that at start (huizhi.excel.validation.warm), so it is done before the clock, for the
    # baseline too
    warm()

    host = build_host(store, target, data_dir)
    who = host.system_identity("bench")
    head_before = host.ledgers.head(SPEC.id)
    timers = _Timers()
    for name in ("stage", "diff", "_bulk_insert", "_compare", "publish"):
        timers.wrap(host.store, name)
    sampler = TreeSampler().__enter__()
    t0 = time.perf_counter()
    upload = host.ledgers.upload(who, SPEC.id, file, os.path.basename(file))
    t_upload = time.perf_counter() - t0
    res = upload.result
    if not res.ok or upload.preview is None:
        raise SystemExit(
            f"benchmark file was not staged: {[p.text() for p in res.errors[:5]]} {upload.refusal or ''}"
        )
    t = time.perf_counter()
    version = host.ledgers.commit(who, upload.preview, confirm_removal=True)
    t_commit = time.perf_counter() - t
    seconds = time.perf_counter() - t0
    sampler.__exit__(None, None, None)
    own, _ = _rss_mb()
    kids = res.stats.worker_peak_rss_mb or 0.0
    t_ingest = res.stats.timings["total"]
    # the comparison with the current version runs once, inside stage (counts and first rows)
    compares = timers.calls.get("_compare", [])
    phases = {
        "parse_validate": t_ingest,  # huizhi.excel.ingest, from its own timings
        "stage": timers.total("stage"),  # bulk insert of the staged version + comparison + preview row
        "stage_insert": timers.total("_bulk_insert"),
        # one join against the current version: the counts and the first 200 rows of each kind
        "stage_compare": compares[0] if compares else 0.0,
        "diff": timers.total("diff"),  # LedgerStore.diff called outside stage (0: the preview has it)
        # head and version reads, audit record
        "upload_other": t_upload - t_ingest - timers.total("stage") - timers.total("diff"),
        "commit": t_commit,  # LedgerService.commit: checks, publish (head moved), audit, event
        "publish": timers.total("publish"),
    }
    with host.engine.connect() as conn:
        current = host.store.scoped_select(SPEC.id, who.row_scope(SPEC)).subquery()
        committed = conn.execute(sa.select(sa.func.count()).select_from(current)).scalar_one()
    host.dispose()
    if committed != res.stats.rows or version.number != (head_before.number if head_before else 0) + 1:
        raise SystemExit(f"commit check failed: {committed} rows current, version {version.number}")
    return {
        "seconds": seconds,
        "phases": {k: round(v, 3) for k, v in phases.items()},
        "ingest_phases": res.stats.timings,
        # the parser worker's own phases, and whether it read the sheet in pieces (excel/_pieces.py)
        "parser": {k: res.raw_meta.get(k) for k in ("timings", "pieces", "worker_peak_rss_mb")},
        "rows": res.stats.rows,
        "committed": committed,
        "version": version.number,
        "diff": {
            "added": version.added,
            "changed": version.changed,
            "removed": version.removed,
            "unchanged": upload.preview.counts.unchanged,
        },
        "rss_tree_mb": sampler.peak_mb,
        "rss_self_mb": own,
        "rss_worker_mb": kids,
    }


def child_baseline(file: str, store: str, target: str) -> dict:
    import pandas as pd
    import pandera.pandas as pa
    import sqlalchemy as sa

    from huizhi.excel.validation import _column_checks

    dtypes = {
        "str": "string",
        "int": "Int64",
        "float": "Float64",
        "date": "datetime64[ns]",
        "bool": "boolean",
    }
    schema = pa.DataFrameSchema(
        {
            c.name: pa.Column(
                dtypes[c.dtype] if c.dtype != "bool" else "object",
                nullable=not c.required,
                checks=[chk for _, chk in _column_checks(c)],
                coerce=c.dtype != "bool",
            )
            for c in SPEC.columns
        },
        unique=list(SPEC.key),
    )
    with contextlib.suppress(pa.errors.SchemaErrors):  # pandera's backends, before the clock (see child_ours)
        schema.validate(pd.DataFrame({c.name: pd.Series([], dtype=dtypes[c.dtype]) for c in SPEC.columns}), lazy=True)
    engine = sa.create_engine(store_url(store, target))
    with engine.begin() as conn:  # a fresh table each run (reflection of an old one fails on duckdb-engine)
        conn.exec_driver_sql("DROP TABLE IF EXISTS ledger_baseline")
    t0 = time.perf_counter()
    df = pd.read_excel(
        file, engine="openpyxl", header=1, dtype={c.label: str for c in SPEC.columns if c.dtype == "str"}
    )
    t_read = time.perf_counter() - t0
    df = df.rename(columns={c.label: c.name for c in SPEC.columns})
    errors = 0
    try:
        df = schema.validate(df, lazy=True)
    except pa.errors.SchemaErrors as exc:
        errors = len(exc.failure_cases)
        df = exc.data
    t_validate = time.perf_counter() - t0 - t_read
    df.to_sql("ledger_baseline", engine, if_exists="fail", index=False)
    seconds = time.perf_counter() - t0
    own, kids = _rss_mb()
    return {
        "seconds": seconds,
        "phases": {
            "read_excel": round(t_read, 3),
            "pandera": round(t_validate, 3),
            "to_sql": round(seconds - t_read - t_validate, 3),
        },
        "rows": len(df),
        "pandera_failure_cases": errors,
        "rss_self_mb": own,
    }


def child_bare(file: str) -> dict:
    import python_calamine

    t0 = time.perf_counter()
    wb = python_calamine.CalamineWorkbook.from_path(file)
    rows = wb.get_sheet_by_index(0).to_python()
    seconds = time.perf_counter() - t0
    own, _ = _rss_mb()
    return {"seconds": seconds, "rows": len(rows), "rss_self_mb": own}


def child_marked(file: str) -> dict:
    import pandas  # noqa: F401
    import pandera.pandas  # noqa: F401

    from huizhi.excel import build_bad_rows_workbook, build_marked_workbook, ingest

    t0 = time.perf_counter()
    res = ingest(file, os.path.basename(file), SPEC)
    t_ingest = time.perf_counter() - t0
    before, _ = _rss_mb()
    t = time.perf_counter()
    marked = build_marked_workbook(res)
    t_marked = time.perf_counter() - t
    after_marked, _ = _rss_mb()
    t = time.perf_counter()
    bad_rows = build_bad_rows_workbook(res)
    t_bad = time.perf_counter() - t
    own, kids = _rss_mb()
    cell_problems = sum(1 for _ in ())  # placeholder for readability below
    cell_problems = int(
        __import__("pyarrow.compute", fromlist=["x"])
        .sum(
            __import__("pyarrow.compute", fromlist=["x"]).greater_equal(
                res.problems_table.column("_src_col"), 0
            )
        )
        .as_py()
        or 0
    )
    return {
        "ingest_seconds": t_ingest,
        "errors": res.stats.errors,
        "warnings": res.stats.warnings,
        "cell_problems": cell_problems,
        "marked_seconds": t_marked,
        "marked_bytes": len(marked),
        "bad_rows_seconds": t_bad,
        "bad_rows_bytes": len(bad_rows),
        "rss_before_marking_mb": before,
        "rss_after_marked_mb": after_marked,
        "rss_self_mb": own,
        "rss_worker_mb": kids,
    }


def run_child(kind: str, file: str = "", store: str = "duckdb", target: str = "", *extra: str) -> dict:
    cmd = [
        sys.executable,
        __file__,
        "--_child",
        kind,
        "--_file",
        file,
        "--store",
        store,
        "--_target",
        target,
        *extra,
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"child {kind} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- main


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=10_000)
    ap.add_argument("--store", choices=("duckdb", "postgres"), default="duckdb")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument(
        "--baseline-rows", type=int, default=None, help="cap the baseline's file size (it is slow)"
    )
    ap.add_argument(
        "--bad-cells", type=int, default=None, help="bad cells in the marked-workbook file (default rows/10)"
    )
    ap.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "huizhi-bench-ledger"))
    ap.add_argument("--baseline-repeat", type=int, default=None, help="baseline runs (default --repeat)")
    ap.add_argument("--no-baseline", action="store_true")
    ap.add_argument("--no-marked", action="store_true", help="skip the marked-workbook run")
    ap.add_argument("--_child")
    ap.add_argument("--_file")
    ap.add_argument("--_target", default="")
    ap.add_argument("--_data-dir", dest="_data_dir", default="")
    args = ap.parse_args()

    if args._child:
        fn = {
            "seed": lambda: child_seed(args.store, args._target, args._data_dir, args.rows),
            "ours": lambda: child_ours(args._file, args.store, args._target, args._data_dir),
            "baseline": lambda: child_baseline(args._file, args.store, args._target),
            "bare": lambda: child_bare(args._file),
            "marked": lambda: child_marked(args._file),
        }[args._child]
        print(json.dumps(fn(), ensure_ascii=False))
        return

    rows = args.rows
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    bad_cells = args.bad_cells if args.bad_cells is not None else max(1, rows // 10)
    base_rows = min(rows, args.baseline_rows) if args.baseline_rows else rows

    def workbook(n: int, bad: int = 0) -> str:
        path = work / f"ledger_{n}_{bad}.xlsx"
        if not path.exists():
            t = time.perf_counter()
            write_workbook(path.with_suffix(".tmp.xlsx"), n, bad_cells=bad)
            path.with_suffix(".tmp.xlsx").rename(path)
            log(
                f"generated {path.name} ({path.stat().st_size / 2**20:.1f} MB) in {time.perf_counter() - t:.1f}s"
            )
        return str(path)

    clean = workbook(rows)
    dirty = workbook(rows, bad_cells) if not args.no_marked else None
    base_file = clean if base_rows == rows else workbook(base_rows)

    made_dbs: list[str] = []
    made_files: list[str] = []

    def fresh_target(prefix: str) -> str:
        """A new, empty database for one run: a .duckdb file, or a PostgreSQL database."""
        if args.store == "postgres":
            made_dbs.append(pg_create_db())
            return made_dbs[-1]
        made_files.append(str(work / f"{prefix}_{uuid.uuid4().hex[:8]}.duckdb"))
        return made_files[-1]

    data_dir = tempfile.mkdtemp(prefix="data_", dir=work)
    marked = None
    load_before = os.getloadavg()
    try:
        ours, bare, base, seeds = [], [], [], []
        for i in range(args.repeat):
            target = fresh_target("store")
            s = run_child("seed", "", args.store, target, "--rows", str(rows), "--_data-dir", data_dir)
            seeds.append(s)
            r = run_child("ours", clean, args.store, target, "--_data-dir", data_dir)
            ours.append(r)
            log(
                f"ours #{i + 1}: {r['seconds']:.2f}s {r['phases']} ingest={r['ingest_phases']} "
                f"rss tree={r['rss_tree_mb']} (self {r['rss_self_mb']}, worker {r['rss_worker_mb']}) MB "
                f"[seeded v{s['version']} of {s['rows']} rows in {s['seconds']:.1f}s] parser={r['parser']}"
            )
            b = run_child("bare", clean)
            bare.append(b)
            log(f"bare parse #{i + 1}: {b['seconds']:.2f}s")
            if args.store == "postgres":
                pg_drop_db(made_dbs.pop())
            else:
                drop_duckdb(made_files.pop())
        if not args.no_baseline:
            base_target = fresh_target("baseline")
            for i in range(args.baseline_repeat or args.repeat):
                r = run_child("baseline", base_file, args.store, base_target)
                base.append(r)
                log(
                    f"baseline #{i + 1} ({base_rows} rows): {r['seconds']:.2f}s {r['phases']} rss={r['rss_self_mb']} MB"
                )
        if dirty:
            marked = run_child("marked", dirty)
            log(
                f"marked: {marked['cell_problems']} problem cells; marked workbook {marked['marked_seconds']:.2f}s, "
                f"bad rows {marked['bad_rows_seconds']:.2f}s, rss {marked['rss_self_mb']} MB"
            )
    finally:
        for name in made_dbs:
            pg_drop_db(name)
        for f in made_files:
            drop_duckdb(f)
        import shutil

        shutil.rmtree(data_dir, ignore_errors=True)

    seconds = statistics.median(r["seconds"] for r in ours)
    bare_s = statistics.median(r["seconds"] for r in bare)
    result = {
        "rows": rows,
        "columns": len(SPEC.columns),
        "store": args.store,
        "path": "host.ledgers.upload + commit",
        "seconds": round(seconds, 3),
        "seconds_all": [round(r["seconds"], 3) for r in ours],
        "phases": {k: round(statistics.median(r["phases"][k] for r in ours), 3) for k in ours[0]["phases"]},
        "ingest_phases": {
            k: round(statistics.median(r["ingest_phases"].get(k, 0) for r in ours), 3)
            for k in ours[0]["ingest_phases"]
        },
        "bare_parse_seconds": round(bare_s, 3),
        "vs_bare_parse": round(seconds / bare_s, 2),
        "peak_rss_mb": max(max(r["rss_tree_mb"], r["rss_self_mb"]) for r in ours),
        "peak_rss_upper_bound_mb": max(round(r["rss_self_mb"] + r["rss_worker_mb"], 1) for r in ours),
        "peak_rss_self_mb": max(r["rss_self_mb"] for r in ours),
        "peak_rss_worker_mb": max(r["rss_worker_mb"] for r in ours),
        "diff": ours[0]["diff"],
        "seed_seconds": round(statistics.median(s["seconds"] for s in seeds), 3),
        "repeat": args.repeat,
        "imports_excluded": True,
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
    }
    if marked:
        result.update(
            {
                "marked_workbook_seconds": round(marked["marked_seconds"], 3),
                "bad_rows_workbook_seconds": round(marked["bad_rows_seconds"], 3),
                "marked_bad_cells": marked["cell_problems"],
                "marked_peak_rss_mb": marked["rss_self_mb"],
            }
        )
    if base:
        base_s = statistics.median(r["seconds"] for r in base)
        scaled = base_s * rows / base_rows
        result.update(
            {
                "baseline_seconds": round(scaled, 3),
                "baseline_measured_seconds": round(base_s, 3),
                "baseline_rows": base_rows,
                "baseline_scaled": base_rows != rows,
                "baseline_phases": {
                    k: round(statistics.median(r["phases"][k] for r in base), 3) for k in base[0]["phases"]
                },
                "baseline_peak_rss_mb": max(r["rss_self_mb"] for r in base),
                "baseline_repeat": len(base),
                "speedup": round(scaled / seconds, 1),
            }
        )
    else:
        result.update({"baseline_seconds": None, "speedup": None})
    print(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    main()
