"""What the task queue costs an upload check: the same file checked on the page's path
(``LedgerService.upload`` in this process) and through the queue (``host.tasks.upload``, then a
worker), on PostgreSQL.

    python bench/task_upload.py [--rows 20000] [--pg postgresql+psycopg://postgres@127.0.0.1:5432/postgres]

Creates and drops its own database. The worker runs in this process (``run_worker(until_idle=True)``,
the code path of ``huizhi worker``), so the figure is the queue's overhead (storing the file,
the job round trip, progress writes, pickling the outcome into ``task_runs.result`` and reading
it back), not a process start. Prints one JSON object: rows, file_mb, direct_s, queued_s (queue to outcome read), in_worker_s
(the attempt itself), read_result_s, result_mb, ratio (queued_s / direct_s).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import uuid
from pathlib import Path

import sqlalchemy as sa


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=20000)
    parser.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()

    from huizhi_sensing.schema import LEDGER_ID, SENSING_LEDGER

    from huizhi.config import load_settings
    from huizhi.excel import export_csv
    from huizhi.host import create_host
    from huizhi_seeds import load_demo

    server = sa.engine.make_url(args.pg)
    name = f"huizhi_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = server.set(database=name).render_as_string(hide_password=False)
    try:
        env = {"HUIZHI_DATABASE_URL": url, "HUIZHI_LOAD_PLUGINS": "sensing", "HUIZHI_DATA_DIR": tempfile.mkdtemp()}
        with create_host(load_settings(env)) as host:
            load_demo(host, scale=args.rows / 150_000, ledgers=[LEDGER_ID])
            current = host.ledgers.export(host.system_identity("bench"), LEDGER_ID)
            data = export_csv(current.slice(0, args.rows), SENSING_LEDGER)
            who = host.system_identity("bench")
            started = time.perf_counter()
            direct = host.ledgers.upload(who, LEDGER_ID, data, "bench.csv", mode="upsert")
            direct_s = time.perf_counter() - started
            assert direct.preview is not None
            host.ledgers.discard(who, direct.preview)
            started = time.perf_counter()
            run_id = host.tasks.upload(who, LEDGER_ID, data, "bench.csv", mode="upsert")
            host.tasks.run_worker(name="bench", until_idle=True)
            worked = time.perf_counter()
            queued = host.tasks.upload_result(run_id, who)
            queued_s = time.perf_counter() - started
            read_s = time.perf_counter() - worked
            run = host.tasks.status(run_id)
            assert run.started_at is not None and run.finished_at is not None
            in_worker_s = (run.finished_at - run.started_at).total_seconds()
            host_result = host.tasks.result(run_id) or b""
            assert queued.preview is not None and queued.preview.counts == direct.preview.counts
        print(json.dumps({"rows": direct.result.stats.rows, "file_mb": round(len(data) / 1_048_576, 2),
                          "direct_s": round(direct_s, 2), "queued_s": round(queued_s, 2),
                          "in_worker_s": round(in_worker_s, 2), "read_result_s": round(read_s, 2),
                          "result_mb": round(len(host_result) / 1_048_576, 2), "ratio": round(queued_s / direct_s, 2)}))
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    main()
