"""Files connector: Excel, CSV and Parquet files in a configured folder (a department's shared drive).

Excel and CSV (UTF-8 or GB18030) files are read by the same parser as uploaded ledgers: sniffed
for what they really are, then parsed in a separate process with memory, CPU and wall-clock
limits (:func:`huizhi.excel.sandbox.parse_in_worker`), so a hostile or broken file on a share
cannot take the portal down. Parquet files are read with pyarrow after their footer's row and
column counts are checked against the same limits (Parquet is written by programs, not typed by
people; the parser process does not read it).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

CONFIG_KEYS = frozenset({"root", "timeout"})  # the parser process has its own limits
FORMATS = (".xlsx", ".csv", ".parquet")


@dataclass(frozen=True)
class FilesConnection:
    root: Path

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> FilesConnection:
        if "root" not in config:
            raise ValueError("files connector needs 'root' (a folder path) in its configuration")
        unknown = sorted(set(config) - CONFIG_KEYS)
        if unknown:
            raise ValueError(f"files connector: unknown configuration keys {', '.join(unknown)} (known: root, timeout)")
        root = Path(config["root"]).expanduser().resolve()
        if not root.is_dir():
            raise ValueError(f"files connector: root {str(root)!r} is not a folder")
        return cls(root)

    def _path(self, name: str) -> Path:
        path = (self.root / name).resolve()
        if not path.is_relative_to(self.root):  # "../" must not escape the configured folder
            raise ValueError(f"{name!r} is outside {self.root}")
        return path

    def list(self, pattern: str = "*") -> list[str]:
        return sorted(p.relative_to(self.root).as_posix() for p in self.root.glob(pattern) if p.is_file())

    def read_bytes(self, name: str) -> bytes:
        return self._path(name).read_bytes()

    def read(self, name: str, *, sheet: str | None = None) -> pd.DataFrame:
        """The file's table as a DataFrame: the first non-empty row is the header.

        Excel and CSV cells come back as the parser sees them: numbers as floats, dates as
        timestamps, anything mixed as the text Excel shows. Raises
        :class:`huizhi.excel.problems.FileRejected` (Chinese ``message`` and ``hint``) for a file
        the upload parser refuses, ``FileNotFoundError`` for a missing one."""
        path = self._path(name)
        if not path.is_file():
            raise FileNotFoundError(f"files connector: no file {name!r} under {self.root}")
        suffix = path.suffix.lower()
        if suffix == ".parquet":
            return _read_parquet(path)
        if suffix not in FORMATS:
            raise ValueError(f"files connector reads {', '.join(FORMATS)} files, not {name!r}")
        return _read_sheet(path, sheet)

    def fetch(self, name: str, params: Mapping[str, Any] | None = None) -> pd.DataFrame:
        """The uniform read used by ``ctx.source`` and syncs: :meth:`read`; ``params`` may name
        a ``sheet``."""
        options = dict(params or {})
        unknown = sorted(set(options) - {"sheet"})
        if unknown:
            raise ValueError(f"files connector: unknown parameters {', '.join(unknown)} (known: sheet)")
        return self.read(name, sheet=options.get("sheet"))

    def cache_key(self, name: str) -> str:
        """The file's name: a changed file is read again once the cached result is ``max_age``
        old, and a file that turns unreadable keeps its last good data."""
        return name

    def close(self) -> None:
        """Nothing to release: every read opens and closes its file. Here so that the host can
        close every connector alike."""


def _read_sheet(path: Path, sheet: str | None) -> pd.DataFrame:
    import pandas as pd

    from huizhi.excel.convert import render_text
    from huizhi.excel.limits import Limits
    from huizhi.excel.sandbox import parse_in_worker
    from huizhi.excel.sniff import sniff

    limits = Limits()
    tmpdir = tempfile.mkdtemp(prefix="huizhi-files-")
    try:
        sniffed = sniff(str(path), path.name, limits)
        raw, meta = parse_in_worker(str(path), sniffed.kind, os.path.join(tmpdir, "cells.arrow"), limits, sheet=sheet)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)  # the Arrow file stays readable through its mapping
    n_rows, n_cols = meta["n_rows"], meta["n_cols"]
    columns: list[Any] = []
    for j in range(n_cols):
        parts = {k: raw.column(f"c{j}.{k}").combine_chunks() for k in ("s", "n", "d", "b") if f"c{j}.{k}" in raw.column_names}
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


def _read_parquet(path: Path) -> pd.DataFrame:
    import pyarrow.parquet as pq

    from huizhi.excel.limits import Limits

    limits = Limits()
    if path.stat().st_size > limits.max_file_bytes:
        raise ValueError(f"files connector: {path.name} is larger than {limits.max_file_bytes} bytes")
    meta = pq.ParquetFile(path).metadata
    if meta.num_rows > limits.max_rows or meta.num_columns > limits.max_columns:
        raise ValueError(
            f"files connector: {path.name} has {meta.num_rows} rows × {meta.num_columns} columns, more than "
            f"the limits ({limits.max_rows} rows, {limits.max_columns} columns)"
        )
    return pq.read_table(path).to_pandas()
