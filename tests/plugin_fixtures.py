"""Small plugins for tests, and a way to *install* one (a real dist-info with an entry point)."""

from __future__ import annotations

import importlib
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

from huizhi import hookimpl
from huizhi.specs import ColumnSpec, LedgerSpec, PageSpec, Perm, PluginInfo, Theme, TileSpec, TileValue


def make_plugin(name: str, department: str | None = "jxj", host_api: str = ">=1.0,<2", pages=(), ledgers=(), tiles=(),
                info: bool = True, **hooks):
    """A plugin object with the given specs (pluggy accepts any object with hookimpl attributes)."""
    ns = SimpleNamespace()
    if info:
        ns.huizhi_plugin_info = hookimpl(lambda: PluginInfo(name=name, title=f"{name} 插件", department=department,
                                                             version="1.0", host_api=host_api))
    ns.huizhi_pages = hookimpl(lambda: list(pages))
    ns.huizhi_ledgers = hookimpl(lambda: list(ledgers))
    ns.huizhi_tiles = hookimpl(lambda: list(tiles))
    for hook, func in hooks.items():
        setattr(ns, hook, hookimpl(func))
    ns.__name__ = f"test_plugin_{name}"
    return ns


def page(url_path: str, department: str | None = "jxj", permission: Perm = Perm.VIEW, render=None) -> PageSpec:
    return PageSpec(title=f"页面 {url_path}", url_path=url_path, render=render or (lambda ctx: None),
                    department=department, permission=permission)


def tile(tile_id: str, department: str | None = "jxj", value: float | None = 1.0) -> TileSpec:
    return TileSpec(id=tile_id, title=f"指标 {tile_id}", department=department, theme=Theme.SENSING,
                    query=lambda ctx: TileValue(value))


ASSETS = LedgerSpec(
    id="assets",
    title="资产台账",
    department="jxj",
    key=("code",),
    department_column="owner",
    columns=(
        ColumnSpec("code", "编码"),
        ColumnSpec("owner", "权属单位"),
        ColumnSpec("street", "镇街"),
        ColumnSpec("count", "数量", "int", min=0),
    ),
)


def install_distribution(site: Path, dist: str, module_name: str, source: str, entry_name: str | None = None) -> None:
    """Install a plugin the way pip would, minus the wheel: a module plus a dist-info folder with
    METADATA and entry_points.txt, on a directory that is put on sys.path. importlib.metadata then
    discovers it exactly like an installed department plugin."""
    site.mkdir(parents=True, exist_ok=True)
    (site / f"{module_name}.py").write_text(textwrap.dedent(source), encoding="utf-8")
    info = site / f"{dist.replace('-', '_')}-0.1.0.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1.0\n", encoding="utf-8")
    (info / "entry_points.txt").write_text(f"[huizhi]\n{entry_name or module_name} = {module_name}\n", encoding="utf-8")
    if str(site) not in sys.path:
        sys.path.insert(0, str(site))
    importlib.invalidate_caches()


BROKEN_IMPORT = """
raise ImportError("this plugin needs a package that is not installed: huizhi-gis-tools")
"""

GOOD_INSTALLED = """
from huizhi import hookimpl
from huizhi.specs import PageSpec, PluginInfo

@hookimpl
def huizhi_plugin_info():
    return PluginInfo(name="goodplug", title="好插件", department="swj", version="0.1.0", host_api=">=1.0,<2")

@hookimpl
def huizhi_pages():
    return [PageSpec("水务页面", "water-page", lambda ctx: None, department="swj")]
"""
