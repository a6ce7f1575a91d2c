"""Plugins without Python: a department's ledger, pages and tiles declared in one TOML file.

A file in the configured folder (``[plugins] declarative_dir`` in huizhi.toml,
``HUIZHI_DECLARATIVE_DIR``) becomes a plugin like any installed distribution: :func:`load`
checks it and turns it into a :class:`DeclaredPlugin`, an object whose hook implementations
return the same typed specs a Python plugin returns (:class:`~huizhi.specs.PluginInfo`,
:class:`~huizhi.specs.LedgerSpec`, :class:`~huizhi.specs.PageSpec`,
:class:`~huizhi.specs.TileSpec`). The host registers it with pluggy beside the entry-point
plugins, so template, upload, validation, history, pages and tiles work as for any plugin. A file
with mistakes raises :class:`DeclarationError` listing every one with its line, in English and
Chinese; the host then disables that one plugin with the English text as its reason.

Why TOML: the host already reads its settings with the standard library's ``tomllib`` (no new
dependency, no YAML pitfalls such as ``no`` read as false or ``010`` as 8), TOML has real dates
(``deadline = 2025-12-31``) and its ``[[ledger.columns]]`` tables read like a form. tomllib keeps
no positions, so :mod:`huizhi.declarative.locate` finds each key's line in the source.

The file format is the reference in docs/declarative-plugins.md.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from huizhi import hookimpl
from huizhi.declarative.parse import Declaration, PageDecl, TileDecl, parse, parse_text
from huizhi.declarative.problems import DeclarationError, Problem
from huizhi.district import DAXING, Departments
from huizhi.specs import LedgerSpec, PageSpec, PluginInfo, SpecError, TileSpec, validate

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = [
    "Declaration",
    "DeclarationError",
    "DeclaredPlugin",
    "PageDecl",
    "Problem",
    "TileDecl",
    "build",
    "discover",
    "load",
    "load_text",
    "parse",
]

log = logging.getLogger(__name__)

SUFFIX = ".toml"
SHARED_SECTION = "全区共享台账"  # the menu section of the Python plugins' shared pages too


class DeclaredPlugin:
    """A declarative file as a plugin: register it with pluggy like a plugin module."""

    def __init__(self, declaration: Declaration, pages: list[PageSpec], tiles: list[TileSpec]):
        self.declaration = declaration
        self.path = declaration.path
        self._pages = pages
        self._tiles = tiles
        # what the plugin status page and `huizhi plugins` show as the plugin's module
        self.__name__ = f"declarative:{declaration.path.name}"

    @property
    def name(self) -> str:
        return self.declaration.info.name

    @property
    def ledger(self) -> LedgerSpec:
        return self.declaration.ledger

    @hookimpl
    def huizhi_plugin_info(self) -> PluginInfo:
        return self.declaration.info

    @hookimpl
    def huizhi_ledgers(self) -> list[LedgerSpec]:
        return [self.declaration.ledger]

    @hookimpl
    def huizhi_pages(self) -> list[PageSpec]:
        return list(self._pages)

    @hookimpl
    def huizhi_tiles(self) -> list[TileSpec]:
        return list(self._tiles)

    def demo_rows(self) -> pa.Table | None:
        """The file's demo rows (``demo_rows``: a CSV beside it, headed like the template), read
        and checked cell by cell by the same parser as an upload; None when it names none.
        Raises ValueError naming the first problems when the rows do not pass."""
        path = self.declaration.demo_rows
        if path is None:
            return None
        from huizhi.excel.pipeline import ingest

        result = ingest(path.read_bytes(), path.name, self.ledger)
        if not result.ok or result.table is None:
            shown = "; ".join(str(p) for p in result.problems[:3])
            why = result.rejection.message if result.rejection else shown
            raise ValueError(f"demo rows {path.name} of {self.path.name} do not pass validation: {why}")
        return result.table

    def __repr__(self) -> str:
        return f"<DeclaredPlugin {self.name} from {self.path}>"


def build(declaration: Declaration) -> DeclaredPlugin:
    """The plugin for a checked declaration: page renderers and tile queries made from it."""
    from huizhi.declarative import pages, tiles
    from huizhi.specs import Perm

    spec = declaration.ledger
    page_specs = [
        PageSpec(
            title=p.title, url_path=p.url_path, render=pages.make_render(declaration, p),
            department=None if p.shared else spec.department, section=SHARED_SECTION if p.shared else None,
            permission=Perm.LEDGER_READ if p.shared else Perm.VIEW, icon=p.icon, order=p.order,
        )  # fmt: skip
        for p in declaration.pages
    ]
    tile_specs = [
        TileSpec(
            id=t.id, title=t.title, department=spec.department, theme=t.theme, query=tiles.make_query(declaration, t),
            unit=t.unit, target=t.target, drilldown=t.drilldown, ledgers=(spec.id,), description=t.description,
            order=t.order,
        )  # fmt: skip
        for t in declaration.tiles
    ]
    problems = []
    for item in (*page_specs, *tile_specs):
        try:
            validate(item)
        except SpecError as exc:  # the parser's checks should make this unreachable; say so if not
            problems.append(Problem(None, "", str(exc), f"声明无效：{exc}"))
    if problems:
        raise DeclarationError(declaration.path, problems)
    return DeclaredPlugin(declaration, page_specs, tile_specs)


def load(path: Path | str, departments: Departments = DAXING) -> DeclaredPlugin:
    """Check the declarative file at ``path`` and build its plugin.

    Raises :class:`DeclarationError` (``.problems``: every :class:`Problem` with its line;
    ``.english()`` / ``.chinese()``: the report) when the file has mistakes. ``departments`` is
    the deployment's list the plugin's department is checked against. What ``huizhi
    check-plugin FILE`` and the admin page's install call."""
    return build(parse(path, departments))


def load_text(text: str, path: Path | str, departments: Departments = DAXING) -> DeclaredPlugin:
    """:func:`load` for a file's contents not yet saved (the admin page checks before saving)."""
    return build(parse_text(text, Path(path), departments))


def discover(folder: Path | None) -> list[Path]:
    """The declarative files in ``folder`` (``*.toml``, sorted; none when it is None or absent)."""
    if folder is None or not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix == SUFFIX and p.is_file() and not p.name.startswith("."))
