"""Issue 10: how long and how much memory a large CSV takes to be rejected for its encoding.

``python bench/csv_reject.py [--mb 20] [--valid]`` writes a ~20 MB UTF-8 CSV whose one bad byte (0xFF,
valid in neither UTF-8 nor GB18030) sits near the end, then runs ``huizhi.excel.ingest`` on it in
this process (imports done before the clock) and reports wall seconds and the peak RSS of the
process tree (this process + the parser worker, sampled every 10 ms), next to a bare
baseline: reading the file and decoding it as UTF-8 in plain Python.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))

from ledger_ingest import TreeSampler  # noqa: E402


def make_csv(path: str, mb: float, bad: bool = True) -> None:
    header = "编号,名称,数量,金额,开始日期,结束日期,是否完成,街道,预算,备注\r\n"
    rows = []
    size = len(header.encode())
    i = 0
    target = int(mb * 1024 * 1024)
    while size < target:
        i += 1
        line = f"JD{i % 10000:04d},项目{i},{i % 100},{i * 1.5},2023-01-01,2023-06-01,是,兴丰街道,{i * 2 + 10},备注{i}\r\n"
        rows.append(line)
        size += len(line.encode())
    data = bytearray((header + "".join(rows)).encode("utf-8"))
    if bad:
        data[len(data) - 200] = 0xFF
    with open(path, "wb") as fh:
        fh.write(data)


if __name__ == "__main__":  # pragma: no cover
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=float, default=20)
    ap.add_argument("--valid", action="store_true", help="no bad byte: the accepted path, for comparison")
    args = ap.parse_args()
    from huizhi.excel import ingest
    from huizhi.specs import ColumnSpec, LedgerSpec

    spec = LedgerSpec(
        id="bench", title="测试台账", department="jxj", key=("code",),
        columns=(ColumnSpec("code", "编号"), ColumnSpec("name", "名称"), ColumnSpec("qty", "数量", "int")),
    )  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "big.csv")
        make_csv(path, args.mb, bad=not args.valid)
        size = os.path.getsize(path)
        t = time.perf_counter()
        with open(path, "rb") as fh:
            raw = fh.read()
        with contextlib.suppress(UnicodeDecodeError):
            raw.decode("utf-8")
        bare = time.perf_counter() - t
        del raw
        with TreeSampler() as idle:
            time.sleep(0.1)
        with TreeSampler() as sampler:
            t = time.perf_counter()
            res = ingest(path, "big.csv", spec)
            took = time.perf_counter() - t
        rej = res.rejection
        print(f"file {size / 2**20:.1f} MB; bare read+decode {bare:.2f} s")
        print(f"ingest {took:.2f} s, peak RSS (tree) {sampler.peak_mb} MB (before ingest: {idle.peak_mb} MB)")
        print(f"rejection: {rej.kind if rej else None}; detail {len(rej.detail) if rej else 0} chars")
        print(f"message: {rej.message if rej else [p.text() for p in res.problems[:3]]}")
