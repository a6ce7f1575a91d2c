"""Files connector: Excel, CSV and Parquet files in a configured folder (a department's shared drive).

Excel and CSV (UTF-8 or GB18030) files are handed to the host as a
:class:`huizhi.sources.TableFile`, which the host reads with the same parser as uploaded ledgers:
sniffed for what they really are, then parsed in a separate process with memory, CPU and
wall-clock limits, so a hostile or broken file on a share cannot take the portal down
(``ctx.source`` returns the table; a sync uploads the file as it is). Parquet files are handed
over the same way; the host reads them with pyarrow after checking the footer's row and column
counts against the upload limits (Parquet is written by programs, not typed by people).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from huizhi.sources import TableFile

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

    def read(self, name: str, *, sheet: str | None = None) -> TableFile:
        """The file as a :class:`TableFile` for the host's parser (``ctx.source`` turns it into
        a DataFrame; a sync uploads it). Raises ``FileNotFoundError`` for a missing file,
        ``ValueError`` for another format."""
        path = self._path(name)
        if not path.is_file():
            raise FileNotFoundError(f"files connector: no file {name!r} under {self.root}")
        if path.suffix.lower() not in FORMATS:
            raise ValueError(f"files connector reads {', '.join(FORMATS)} files, not {name!r}")
        return TableFile(path.name, path.read_bytes(), sheet)

    def fetch(self, name: str, params: Mapping[str, Any] | None = None) -> TableFile:
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
