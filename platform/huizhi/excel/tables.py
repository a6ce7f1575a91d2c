"""A table file handed over by a connector (:class:`huizhi.sources.TableFile`) read into a
DataFrame: Excel and CSV by the same sandboxed parser as uploads
(:func:`huizhi.excel.sandbox.parse_in_worker`), Parquet by pyarrow within the upload limits."""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from huizhi.sources import TableFile


def read_table_file(file: TableFile) -> pd.DataFrame:
    """The file's first table: the first non-empty row is the header, empty rows are dropped.

    Numbers come back as floats, dates as timestamps, anything mixed as the text Excel shows.
    Raises :class:`huizhi.excel.problems.FileRejected` (Chinese ``message`` and ``hint``) for a
    file the upload parser refuses."""
    import pandas as pd

    if file.name.lower().endswith(".parquet"):
        return _read_parquet(file)

    from huizhi.excel.convert import render_text
    from huizhi.excel.limits import Limits
    from huizhi.excel.sandbox import parse_in_worker
    from huizhi.excel.sniff import sniff

    limits = Limits()
    tmpdir = tempfile.mkdtemp(prefix="huizhi-table-")
    try:
        path = os.path.join(tmpdir, "source.bin")
        with open(path, "wb") as fh:
            fh.write(file.content)
        sniffed = sniff(path, file.name, limits)
        parsed = parse_in_worker(path, sniffed.kind, os.path.join(tmpdir, "cells.arrow"), limits, sheet=file.sheet)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)  # the Arrow file stays readable through its mapping
    raw, meta = parsed.table, parsed.meta
    n_rows, n_cols = meta["n_rows"], meta["n_cols"]
    columns: list[Any] = []
    for j in range(n_cols):
        parts = {
            k: raw.column(f"c{j}.{k}").combine_chunks() for k in ("s", "n", "d", "b") if f"c{j}.{k}" in raw.column_names
        }
        if set(parts) == {"n"}:
            columns.append(parts["n"].to_pylist())
        elif set(parts) == {"d"}:
            columns.append(parts["d"].to_pylist())
        else:
            columns.append(render_text(parts, n_rows).to_pylist())
    rows = [list(r) for r in zip(*columns, strict=True)] if columns else []
    start = next((i for i, r in enumerate(rows) if any(v not in (None, "") for v in r)), len(rows))
    if start == len(rows):
        return pd.DataFrame()
    header = [str(v).strip() if v not in (None, "") else f"列{j + 1}" for j, v in enumerate(rows[start])]
    body = [r for r in rows[start + 1:] if any(v not in (None, "") for v in r)]
    return pd.DataFrame(body, columns=header)


def _read_parquet(file: TableFile) -> pd.DataFrame:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from huizhi.excel.limits import Limits

    limits = Limits()
    if len(file.content) > limits.max_file_bytes:
        raise ValueError(f"{file.name}: larger than {limits.max_file_bytes} bytes")
    source = pa.BufferReader(file.content)
    meta = pq.ParquetFile(source).metadata
    if meta.num_rows > limits.max_rows or meta.num_columns > limits.max_columns:
        raise ValueError(
            f"{file.name}: {meta.num_rows} rows × {meta.num_columns} columns, more than the limits "
            f"({limits.max_rows} rows, {limits.max_columns} columns)"
        )
    return pq.read_table(pa.BufferReader(file.content)).to_pandas()
