"""`huizhi check` and `huizhi check-plugin` find what a department must fix before shipping
(issue 11, points 3 and 4): every problem of every spec, tiles that raise, leaks across
departments, undocumented host names, a host requirement pip would refuse."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from plugin_fixtures import ASSETS, install_distribution, make_plugin, page

from huizhi import plugin_check
from huizhi.demo import write_demo_config
from huizhi.plugins import load_registry
from huizhi.specs import Theme, TileSpec, TileValue
from huizhi.testing import create_database, drop_database, test_store

ROOT = Path(__file__).resolve().parents[1]


def test_check_reports_every_problem_of_every_spec():
    bad = make_plugin(
        "bad",
        ledgers=[ASSETS],
        pages=[page("bad-page")],
        tiles=[
            TileSpec(id="untitled", title="", department="jxj", theme=Theme.SENSING, query=lambda ctx: TileValue(1)),
            TileSpec(id="Bad Id", title="坏", department="jxj", theme=Theme.SENSING, query=lambda ctx: TileValue(1)),
        ],
    )
    dangling = make_plugin(
        "dangling",
        tiles=[
            TileSpec(id="reads_nothing", title="读不存在的台账", department="jxj", theme=Theme.SENSING,
                     query=lambda ctx: TileValue(1), ledgers=("no_such_ledger",)),
            TileSpec(id="goes_nowhere", title="下钻不存在", department="jxj", theme=Theme.SENSING,
                     query=lambda ctx: TileValue(1), drilldown="bad-pag"),
        ],
    )
    registry = load_registry(extra_plugins=[("bad", bad), ("dangling", dangling)], use_entry_points=False)
    reason = registry.plugins["bad"].reason
    assert "tile 'untitled': a title is required" in reason and "tile id 'Bad Id'" in reason
    assert registry.plugins["bad"].status == "disabled"
    reason = registry.plugins["dangling"].reason
    # bad-page is gone with the disabled plugin "bad": the drill-down dangles, and says so
    assert "reads ledger 'no_such_ledger', which no enabled plugin declares" in reason
    assert "drills down to page 'bad-pag', which no enabled plugin declares" in reason


def test_a_drilldown_to_a_page_of_another_plugin_is_fine():
    pages = make_plugin("pages", pages=[page("target-page")], ledgers=[ASSETS])
    tiles = make_plugin("tiles", tiles=[TileSpec(id="t", title="指标", department="jxj", theme=Theme.SENSING,
                                                 query=lambda ctx: TileValue(1), drilldown="target-page",
                                                 ledgers=("assets",))])
    registry = load_registry(extra_plugins=[("pages", pages), ("tiles", tiles)], use_entry_points=False)
    assert [r.status for r in registry.plugins.values()] == ["enabled", "enabled"]


RAISING_TILE = """
from huizhi import hookimpl
from huizhi.specs import PluginInfo, Theme, TileSpec

def broken(ctx):
    raise ZeroDivisionError("the tile divides by the number of rows")

@hookimpl
def huizhi_plugin_info():
    return PluginInfo(name="raiser", title="出错的指标", department="swj", version="0.1.0", host_api=">=1.0,<2")

@hookimpl
def huizhi_tiles():
    return [TileSpec(id="raiser_tile", title="总是出错", department="swj", theme=Theme.GOVERNANCE, query=broken)]
"""


def _cli(*args: str, cwd: Path, site: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUIZHI_") or k.startswith("HUIZHI_TEST_")}
    env["HUIZHI_DATABASE_URL"] = f"duckdb:///{cwd / 'cli.duckdb'}"
    if site is not None:
        env["PYTHONPATH"] = str(site)
    return subprocess.run([sys.executable, "-m", "huizhi.cli", *args], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=600)


def test_huizhi_check_fails_on_a_tile_that_raises(tmp_path):
    write_demo_config(tmp_path / "huizhi.toml")
    site = tmp_path / "site"
    install_distribution(site, "huizhi-raiser", "huizhi_raiser_plugin", RAISING_TILE, entry_name="raiser")
    sys.path.remove(str(site))
    result = _cli("check", cwd=tmp_path, site=site)
    assert result.returncode == 1, result.stdout
    assert "raiser_tile" in result.stderr and "ZeroDivisionError" in result.stderr


# -- check-plugin ---------------------------------------------------------------------------------

LEAKY = '''
"""A plugin with the mistakes check-plugin exists to catch."""
import sqlalchemy as sa

from huizhi import hookimpl
from huizhi.access import system_identity  # not in the contract
from huizhi.specs import ColumnSpec, DemoRows, LedgerSpec, PageSpec, PluginInfo, Theme, TileSpec, TileValue

LEDGER = LedgerSpec(
    id="leaky_items", title="泄露测试台账", department="swj", key=("code",), department_column="owner",
    columns=(ColumnSpec("code", "编码"), ColumnSpec("owner", "权属单位"), ColumnSpec("n", "数量", "int")),
)
_BY_VERSION = {}  # a "cache" keyed by the ledger version alone: whoever asks first fills it
_SEEN = []


def total(ctx):
    reader = ctx.ledger(LEDGER.id)
    if reader.version not in _BY_VERSION:
        _BY_VERSION[reader.version] = reader.scalar(sa.select(sa.func.count()).select_from(reader.rows))
    return TileValue(_BY_VERSION[reader.version])


def render(ctx):
    import streamlit as st

    frame = ctx.ledger(LEDGER.id).frame()
    if len(frame) > len(_SEEN):
        _SEEN[:] = list(frame["code"])  # remembers the biggest list anyone saw
    st.write(", ".join(_SEEN) or "空")


@hookimpl
def huizhi_plugin_info():
    return PluginInfo(name="leaky", title="泄露", department="swj", version="0.1.0", host_api=">=1.0,<2")


@hookimpl
def huizhi_ledgers():
    return [LEDGER]


@hookimpl
def huizhi_pages():
    return [PageSpec("共享页面", "leaky-shared", render, department=None)]


@hookimpl
def huizhi_tiles():
    return [TileSpec(id="leaky_total", title="总数", department=None, theme=Theme.GOVERNANCE, query=total,
                     ledgers=(LEDGER.id,))]


@hookimpl
def huizhi_demo_rows():
    return [DemoRows(LEDGER.id, tuple(
        {"code": f"ITEM-{i:03d}", "owner": owner, "n": i}
        for i, owner in enumerate(["区水务局", "区公安分局", "区城市管理委", "区水务局"])
    ))]
'''


def _source_folder(root: Path, name: str, source: str, requirement: str = "huizhi>=0.1") -> Path:
    folder = root / name
    (folder / f"huizhi_{name}").mkdir(parents=True)
    (folder / f"huizhi_{name}" / "__init__.py").write_text("", encoding="utf-8")
    (folder / f"huizhi_{name}" / "plugin.py").write_text(textwrap.dedent(source), encoding="utf-8")
    (folder / "pyproject.toml").write_text(
        f'[project]\nname = "huizhi-{name}"\nversion = "0.1.0"\ndependencies = ["{requirement}"]\n'
        f'[project.entry-points.huizhi]\n{name} = "huizhi_{name}.plugin"\n',
        encoding="utf-8",
    )
    return folder


@pytest.fixture
def check_database(tmp_path):
    url = create_database(tmp_path)
    yield url
    drop_database(url)


def test_check_plugin_catches_leaks_undocumented_names_and_a_bad_requirement(tmp_path, check_database):
    folder = _source_folder(tmp_path, "leaky", LEAKY, requirement="huizhi>=1.0")
    target = plugin_check.resolve(str(folder))
    assert not target.installed and target.entry_points == {"leaky": "huizhi_leaky.plugin"}
    report = plugin_check.check(target, database_url=check_database)
    text = report.text()
    failures = [line for line in report.lines if line.startswith("  FAIL")]
    assert any("requires huizhi>=1.0 but the installed host package is huizhi 0.1.0" in f for f in failures), text
    assert any("plugin.py:6: imports huizhi.access, which is not part of the plugin contract" in f for f in failures), text
    assert any("tile leaky_total for staff of" in f and "rows of other departments reach it" in f for f in failures), text
    assert any("page /leaky-shared for staff of" in f and "ITEM-" in f for f in failures), text
    assert "check-plugin: FAILED" in text


def test_check_plugin_targets_it_cannot_find(tmp_path, capsys):
    assert plugin_check.main("huizhi-no-such-plugin") == 2
    assert "neither an installed distribution nor a folder" in capsys.readouterr().err
    assert plugin_check.main(str(tmp_path / "missing.toml")) == 2
    assert "does not exist" in capsys.readouterr().err


def test_check_plugin_reports_a_declarative_files_mistakes_with_their_lines(tmp_path, capsys):
    shipped = (ROOT / "plugins" / "declarative" / "txb_5g.toml").read_text(encoding="utf-8")
    broken = tmp_path / "water.toml"
    # an unknown column type, on a line of its own further down the file
    broken.write_text(shipped.replace('type = "date"', 'type = "daet"', 1), encoding="utf-8")
    line = next(i for i, text in enumerate(broken.read_text(encoding="utf-8").splitlines(), 1) if '"daet"' in text)
    assert plugin_check.main(str(broken)) == 2
    err = capsys.readouterr().err
    assert "the declarative file has mistakes" in err and f"line {line}" in err, err


def test_the_shipped_declarative_plugin_passes_check_plugin(tmp_path):
    url = create_database(tmp_path) if test_store() == "postgres" else f"duckdb:///{tmp_path / 'check.duckdb'}"
    try:
        result = _cli("check-plugin", str(ROOT / "plugins" / "declarative" / "txb_5g.toml"), "--database-url", url, cwd=tmp_path)
    finally:
        drop_database(url)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "check-plugin: PASSED" in result.stdout


@pytest.mark.parametrize("folder", sorted(p.name for p in (ROOT / "plugins").iterdir() if (p / "pyproject.toml").is_file()))
def test_every_shipped_plugin_passes_check_plugin(folder, tmp_path):
    url = create_database(tmp_path) if test_store() == "postgres" else f"duckdb:///{tmp_path / 'check.duckdb'}"
    try:
        result = _cli("check-plugin", str(ROOT / "plugins" / folder), "--database-url", url, cwd=tmp_path)
    finally:
        drop_database(url)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "check-plugin: PASSED" in result.stdout
    assert "ok    " in result.stdout and "no row of another department reached" in result.stdout


CLASHING = """
from huizhi import hookimpl
from huizhi.specs import PageSpec, PluginInfo

@hookimpl
def huizhi_plugin_info():
    return PluginInfo(name="clash", title="撞车", department="jxj", version="0.1.0", host_api=HOST_API)

@hookimpl
def huizhi_pages():
    return [PageSpec("又一个感知台账", "sensing-ledger", lambda ctx: None, department="jxj")]
"""


@pytest.mark.parametrize(
    ("host_api", "expected"),
    [
        (">=1.0,<2", "page url path 'sensing-ledger' is declared by both plugins 'sensing' and 'clash'"),
        (">=2.0,<3", "supports host API >=2.0,<3, but this host provides API 1.0"),
    ],
)
def test_check_plugin_checks_url_paths_and_host_api_against_the_installed_plugins(
    tmp_path, check_database, host_api, expected
):
    folder = _source_folder(tmp_path, "clash", CLASHING.replace("HOST_API", repr(host_api)))
    report = plugin_check.check(plugin_check.resolve(str(folder)), database_url=check_database)
    failures = "\n".join(line for line in report.lines if line.startswith("  FAIL"))
    assert expected in failures, report.text()
    assert report.failures == 1  # only that: the sources, the requirement and the import are fine
