"""Ledger upload benchmark: parse → validate every cell → diff → commit, against the usual path.

    python bench/ledger_ingest.py --rows 100000                   # DuckDB store
    python bench/ledger_ingest.py --rows 100000 --store postgres  # PostgreSQL at 127.0.0.1:5432
    python bench/ledger_ingest.py --rows 100000 --baseline-rows 20000   # cap the slow baseline

What it measures, each run in a fresh child process (``--_child``) so that peak memory is that
run's own; modules are imported before the clock starts (the portal imports them once at start):

* ``ours``: :func:`huizhi.excel.ingest` on a clean 20-column workbook (sandboxed calamine parse →
  Arrow → vectorised conversion → pandera over the typed frame + key uniqueness + row rules),
  reading the current version from the store (``--overlap-read``: in a thread while the parser
  process works), :func:`huizhi.excel.diff_frames` against it (about
  5 % of rows changed, 1 % removed, 1 % added), and the commit as the versioned store does it: in
  one transaction, bulk-insert the new version's rows (tagged ``_version_id``) and move the
  ledger's head (DuckDB: Arrow + ``INSERT ... SELECT`` on a temp .duckdb file; PostgreSQL:
  ``COPY`` into a database created for the run and dropped after).
* ``baseline``: ``pandas.read_excel(engine="openpyxl")`` → pandera (``coerce=True``,
  ``lazy=True``) → ``DataFrame.to_sql`` through SQLAlchemy (duckdb-engine, or psycopg for
  PostgreSQL) — the path most people would write first.
* ``bare``: python-calamine reading the sheet to Python values and nothing else (the floor).
* ``marked``: a workbook of the same size with ``--bad-cells`` bad cells (default rows/10):
  ingest it, then time the marked workbook (every cell written back, bad ones coloured and
  noted, plus 错误清单) and the bad-rows-only workbook.

Medians of ``--repeat`` runs (default 3). ``peak_rss_mb`` is the largest resident size of the
``ours`` process tree: the process plus its parser worker sampled together every 10 ms, and never
less than the process's own high-water mark (VmHWM); ``peak_rss_upper_bound_mb`` adds the two
processes' separate high-water marks (their peaks are not simultaneous, so this overstates).
The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
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

PG_URL = "postgresql://postgres@127.0.0.1:5432/{db}"
TABLE = "ledger_bench_projects"

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


# --------------------------------------------------------------------------- stores


def _create_sql(dialect: str) -> str:
    from huizhi.excel.bulk import postgres_type
    from huizhi.excel.convert import TYPES

    duck = {"str": "VARCHAR", "int": "BIGINT", "float": "DOUBLE", "date": "DATE", "bool": "BOOLEAN"}
    cols = ["_version_id BIGINT NOT NULL"]
    for c in SPEC.columns:
        typ = duck[c.dtype] if dialect == "duckdb" else postgres_type(TYPES[c.dtype])
        cols.append(f'"{c.name}" {typ}')
    return f"CREATE TABLE {TABLE} ({', '.join(cols)})"


def _with_version(table, version: int):
    import pyarrow as pa

    return table.add_column(0, "_version_id", pa.repeat(pa.scalar(version, pa.int64()), table.num_rows))


HEADS = "ledger_bench_heads"


def pg_create_db() -> str:
    import psycopg

    name = f"huizhi_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_URL.format(db="postgres"), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return name


def pg_drop_db(name: str) -> None:
    import psycopg

    with psycopg.connect(PG_URL.format(db="postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def prepare_store(store: str, target: str, rows: int) -> None:
    """Create the ledger table holding the current version."""
    from huizhi.excel.bulk import copy_arrow_postgres, insert_arrow_duckdb

    current = current_version(rows)
    if store == "duckdb":
        import duckdb

        con = duckdb.connect(target)
        con.execute(f"DROP TABLE IF EXISTS {TABLE}")
        con.execute(f"DROP TABLE IF EXISTS {HEADS}")
        con.execute(_create_sql("duckdb"))
        con.execute(f"CREATE TABLE {HEADS} (ledger VARCHAR PRIMARY KEY, version_id BIGINT)")
        insert_arrow_duckdb(con, TABLE, _with_version(current, 1))
        con.execute(f"INSERT INTO {HEADS} VALUES ('{SPEC.id}', 1)")
        con.close()
    else:
        import psycopg

        with psycopg.connect(PG_URL.format(db=target)) as conn:
            conn.execute(f"DROP TABLE IF EXISTS {TABLE}")
            conn.execute(f"DROP TABLE IF EXISTS {HEADS}")
            conn.execute(_create_sql("postgres"))
            conn.execute(f"CREATE INDEX ON {TABLE} (_version_id)")
            conn.execute(f"CREATE TABLE {HEADS} (ledger TEXT PRIMARY KEY, version_id BIGINT)")
            copy_arrow_postgres(conn, TABLE, _with_version(current, 1))
            conn.execute(f"INSERT INTO {HEADS} VALUES ('{SPEC.id}', 1)")


def _pg_read(conn):
    """Current version out of PostgreSQL as Arrow: COPY TO STDOUT (csv) into Arrow's CSV reader."""
    import io

    import pyarrow as pa
    import pyarrow.csv as pacsv

    from huizhi.excel.convert import TYPES

    buf = io.BytesIO()
    cols = ", ".join(f'"{c.name}"' for c in SPEC.columns)
    head = f"(SELECT version_id FROM {HEADS} WHERE ledger = '{SPEC.id}')"
    query = f"COPY (SELECT {cols} FROM {TABLE} WHERE _version_id = {head}) TO STDOUT (FORMAT csv, HEADER)"
    with conn.cursor() as cur, cur.copy(query) as copy:
        for data in copy:
            buf.write(data)
    buf.seek(0)
    types = {c.name: TYPES[c.dtype] for c in SPEC.columns}
    return pacsv.read_csv(
        buf,
        convert_options=pacsv.ConvertOptions(
            column_types=types,
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
            true_values=["t"],
            false_values=["f"],
        ),
    ).cast(pa.schema([(c.name, types[c.name]) for c in SPEC.columns]))


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


def child_ours(file: str, store: str, target: str, overlap: bool = False) -> dict:
    import threading

    import duckdb  # noqa: F401  (imported before the clock, as in the portal)
    import pandas  # noqa: F401
    import pandera.pandas  # noqa: F401

    from huizhi.excel import diff_frames, ingest
    from huizhi.excel.bulk import copy_arrow_postgres, insert_arrow_duckdb

    phases: dict[str, float] = {}
    sampler = TreeSampler().__enter__()
    t0 = time.perf_counter()
    cols = ", ".join(f'"{c.name}"' for c in SPEC.columns)
    if store == "duckdb":
        import duckdb

        conn = duckdb.connect(target)
    else:
        import psycopg

        conn = psycopg.connect(PG_URL.format(db=target))
    loaded: dict = {}

    def read_current() -> None:
        # With --overlap-read this runs while the parser process works (the portal process is idle
        # then); on this 2-core machine the extra CPU slows the parser about as much as it saves.
        t = time.perf_counter()
        if store == "duckdb":
            head = conn.sql(f"SELECT version_id FROM {HEADS} WHERE ledger = '{SPEC.id}'").fetchall()[0][0]
            loaded["current"] = conn.sql(
                f"SELECT {cols} FROM {TABLE} WHERE _version_id = {head}"
            ).to_arrow_table()
        else:
            head = conn.execute(f"SELECT version_id FROM {HEADS} WHERE ledger = %s", (SPEC.id,)).fetchone()[0]
            loaded["current"] = _pg_read(conn)
            conn.commit()
        loaded["head"] = head
        loaded["seconds"] = time.perf_counter() - t

    reader = threading.Thread(target=read_current)
    if overlap:
        reader.start()
    res = ingest(file, os.path.basename(file), SPEC)
    phases["ingest"] = time.perf_counter() - t0
    if not res.ok:
        raise SystemExit(f"benchmark file did not validate: {[p.text() for p in res.errors[:5]]}")
    t = time.perf_counter()
    if not overlap:
        reader.start()
    reader.join()
    current, head = loaded["current"], loaded["head"]
    phases["read_current"] = time.perf_counter() - t
    t = time.perf_counter()
    diff = diff_frames(current, res.table, SPEC.key)
    phases["diff"] = time.perf_counter() - t
    t = time.perf_counter()
    if store == "duckdb":
        conn.execute("BEGIN TRANSACTION")
        insert_arrow_duckdb(conn, TABLE, _with_version(res.table, head + 1))
        conn.execute(
            f"UPDATE {HEADS} SET version_id = {head + 1} WHERE ledger = '{SPEC.id}' AND version_id = {head}"
        )
        conn.execute("COMMIT")
        committed = conn.sql(f"SELECT count(*) FROM {TABLE} WHERE _version_id = {head + 1}").fetchall()[0][0]
    else:
        locked = conn.execute(
            f"SELECT version_id FROM {HEADS} WHERE ledger = %s FOR UPDATE", (SPEC.id,)
        ).fetchone()[0]
        if locked != head:
            raise SystemExit("the ledger changed since it was read")
        copy_arrow_postgres(conn, TABLE, _with_version(res.table, head + 1))
        conn.execute(f"UPDATE {HEADS} SET version_id = %s WHERE ledger = %s", (head + 1, SPEC.id))
        conn.commit()
        committed = conn.execute(
            f"SELECT count(*) FROM {TABLE} WHERE _version_id = %s", (head + 1,)
        ).fetchone()[0]
    conn.close()
    phases["commit"] = time.perf_counter() - t
    seconds = time.perf_counter() - t0
    sampler.__exit__(None, None, None)
    own, _ = _rss_mb()
    kids = res.stats.worker_peak_rss_mb or 0.0
    return {
        "seconds": seconds,
        "phases": {k: round(v, 3) for k, v in phases.items()},
        "ingest_phases": res.stats.timings,
        "rows": res.stats.rows,
        "committed": committed,
        "diff": diff.summary() | {"changed_by_column": None},
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
    url = (
        f"duckdb:///{target}"
        if store == "duckdb"
        else "postgresql+psycopg://postgres@127.0.0.1:5432/" + target
    )
    engine = sa.create_engine(url)
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


def run_child(kind: str, file: str, store: str = "duckdb", target: str = "", overlap: bool = False) -> dict:
    cmd = [sys.executable, __file__, "--_child", kind, "--_file", file, "--store", store, "--_target", target]
    if overlap:
        cmd.append("--overlap-read")
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
    ap.add_argument("--no-baseline", action="store_true")
    ap.add_argument("--overlap-read", action="store_true", help="read the current version while parsing")
    ap.add_argument("--_child")
    ap.add_argument("--_file")
    ap.add_argument("--_target", default="")
    args = ap.parse_args()

    if args._child:
        fn = {
            "ours": lambda: child_ours(args._file, args.store, args._target, args.overlap_read),
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
    dirty = workbook(rows, bad_cells)
    base_file = clean if base_rows == rows else workbook(base_rows)

    pg_db = None
    duck_file = str(work / f"store_{uuid.uuid4().hex[:8]}.duckdb")
    base_duck = str(work / f"baseline_{uuid.uuid4().hex[:8]}.duckdb")
    try:
        if args.store == "postgres":
            pg_db = pg_create_db()
            target = base_target = pg_db
        else:
            target, base_target = duck_file, base_duck
        ours, bare, base = [], [], []
        for i in range(args.repeat):
            prepare_store(args.store, target, rows)
            r = run_child("ours", clean, args.store, target, args.overlap_read)
            ours.append(r)
            log(
                f"ours #{i + 1}: {r['seconds']:.2f}s {r['phases']} ingest={r['ingest_phases']} "
                f"rss tree={r['rss_tree_mb']} (self {r['rss_self_mb']}, worker {r['rss_worker_mb']}) MB"
            )
            b = run_child("bare", clean)
            bare.append(b)
            log(f"bare parse #{i + 1}: {b['seconds']:.2f}s")
        if not args.no_baseline:
            for i in range(args.repeat):
                r = run_child("baseline", base_file, args.store, base_target)
                base.append(r)
                log(
                    f"baseline #{i + 1} ({base_rows} rows): {r['seconds']:.2f}s {r['phases']} rss={r['rss_self_mb']} MB"
                )
        marked = run_child("marked", dirty)
        log(
            f"marked: {marked['cell_problems']} problem cells; marked workbook {marked['marked_seconds']:.2f}s, "
            f"bad rows {marked['bad_rows_seconds']:.2f}s, rss {marked['rss_self_mb']} MB"
        )
    finally:
        if pg_db:
            pg_drop_db(pg_db)
        for f in (duck_file, base_duck):
            for suffix in ("", ".wal"):
                if os.path.exists(f + suffix):
                    os.remove(f + suffix)

    seconds = statistics.median(r["seconds"] for r in ours)
    bare_s = statistics.median(r["seconds"] for r in bare)
    result = {
        "rows": rows,
        "columns": len(SPEC.columns),
        "store": args.store,
        "overlap_read": args.overlap_read,
        "seconds": round(seconds, 3),
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
        "marked_workbook_seconds": round(marked["marked_seconds"], 3),
        "bad_rows_workbook_seconds": round(marked["bad_rows_seconds"], 3),
        "marked_bad_cells": marked["cell_problems"],
        "marked_peak_rss_mb": marked["rss_self_mb"],
        "repeat": args.repeat,
        "imports_excluded": True,
    }
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
                "speedup": round(scaled / seconds, 1),
            }
        )
    else:
        result.update({"baseline_seconds": None, "speedup": None})
    print(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    main()
