"""What is wrong with a declarative file, where, in English (logs, CLI) and Chinese (the admin page)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Problem:
    """One mistake in a declarative file: its ``line`` (1-based; None when it has none, e.g. a
    missing table), the TOML ``path`` of the key (``ledger.columns[2].type``), and what is wrong
    and how to fix it in English (``en``) and Chinese (``zh``)."""

    line: int | None
    path: str
    en: str
    zh: str

    def english(self, file: str = "") -> str:
        place = (f"{file}, line {self.line}" if file else f"line {self.line}") if self.line else (file or "the file")
        key = f" ({self.path})" if self.path else ""
        return f"{place}{key}: {self.en}"

    def chinese(self, file: str = "") -> str:
        place = f"{file} 第 {self.line} 行".strip() if self.line else (file or "文件")
        key = f"（{self.path}）" if self.path else ""
        return f"{place}{key}：{self.zh}"


class DeclarationError(ValueError):
    """A declarative plugin file that cannot be loaded; ``problems`` lists every mistake found."""

    def __init__(self, path: Path | str, problems: list[Problem]):
        self.path = Path(path)
        self.problems = problems
        super().__init__(self.english())

    def english(self) -> str:
        """All problems, one per line (the reason ``huizhi plugins`` and the log show)."""
        head = f"declarative file {self.path.name} has {len(self.problems)} problem(s): "
        return head + "; ".join(p.english(self.path.name) for p in self.problems)

    def chinese(self) -> str:
        return "\n".join(p.chinese(self.path.name) for p in self.problems)
