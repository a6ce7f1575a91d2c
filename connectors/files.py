"""Files connector: Excel and CSV files in a configured folder (a department's shared drive)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class FilesConnection:
    root: Path

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> FilesConnection:
        if "root" not in config:
            raise ValueError("files connector needs 'root' (a folder path) in its configuration")
        return cls(Path(config["root"]).expanduser().resolve())

    def _path(self, name: str) -> Path:
        path = (self.root / name).resolve()
        if not path.is_relative_to(self.root):  # "../" must not escape the configured folder
            raise ValueError(f"{name!r} is outside {self.root}")
        return path

    def list(self, pattern: str = "*") -> list[str]:
        return sorted(p.relative_to(self.root).as_posix() for p in self.root.glob(pattern) if p.is_file())

    def read_bytes(self, name: str) -> bytes:
        return self._path(name).read_bytes()

    def close(self) -> None:
        """Nothing to release: every read opens and closes its file. Here so that the host can
        close every connector alike."""
