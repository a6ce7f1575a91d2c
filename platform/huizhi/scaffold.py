"""``huizhi new-plugin``: a working department plugin to start from, shipped as its own distribution.

What it writes installs with ``pip install -e`` and shows up in the portal without an edit: one
ledger (with demo rows), one page with a filter panel, one cockpit tile that drills down to the
page, and the plugin's own tests on the host's fixtures (:mod:`huizhi.testing`).
"""

from __future__ import annotations

from pathlib import Path

from huizhi import HOST_API_VERSION, __version__, district
from huizhi.specs import ID_PATTERN

PYPROJECT = """[build-system]
requires = ["setuptools>=77", "wheel"]
build-backend = "setuptools.build_meta"

[project]
name = "huizhi-{dist}"
version = "0.1.0"
description = "{department_name} {title}（慧治插件）"
readme = "README.md"
requires-python = ">=3.11"
# the host package; the plugin contract's version is checked separately (PluginInfo.host_api)
dependencies = ["huizhi>={host_package}"]

# The host finds the plugin through the `huizhi` entry-point group.
[project.entry-points.huizhi]
{name} = "huizhi_{name}.plugin"

[tool.setuptools]
packages = ["huizhi_{name}"]

[tool.pytest.ini_options]
testpaths = ["tests"]
"""

PLUGIN = '''"""{title}: a huizhi plugin of {department_name}.

Written only against the plugin contract (docs/plugins.md and docs/plugin-guide.md in the huizhi
repository): hooks marked with ``hookimpl`` return typed specs; the page and the tile read the
ledger through the context they are handed, already scoped to the signed-in person.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from huizhi import district, hookimpl, kit
from huizhi.context import PageContext, TileContext
from huizhi.specs import (
    Breakdown,
    ColumnSpec,
    DemoPerson,
    DemoRows,
    LedgerSpec,
    PageSpec,
    PluginInfo,
    Target,
    Theme,
    TileSpec,
    TileValue,
)

DEPARTMENT = "{department}"  # {department_name}
PAGE = "{url}"

RECORDS = LedgerSpec(
    id="{name}_records",
    title="{ledger_title}",
    department=DEPARTMENT,
    key=("record_id",),
    columns=(
        ColumnSpec("record_id", "编号", pattern=r"^[A-Z0-9-]{{4,32}}\\Z", pattern_hint="4-32位大写字母、数字或-",
                   example="REC-0001", description="每条记录唯一，更新时按编号对应"),
        ColumnSpec("name", "名称", example="示例事项", description="事项名称"),
        ColumnSpec("street", "所属镇街", choices=district.street_names(), example="清源街道",
                   description="大兴区的镇街之一"),
        ColumnSpec("amount", "数量", "int", min=0, example="10", description="非负整数"),
        ColumnSpec("updated", "更新日期", "date", example="2025-01-01", description="年-月-日"),
    ),
)

# The page's filter panel (see huizhi.kit): a search box and a street picker, one row; both are
# read from the page's query parameters too (?q=…&street=…), so links can pre-fill them.
FILTERS = (
    (
        kit.Search("search", placeholder="编号或名称中的文字"),
        kit.Pick("streets", "所属镇街", district.street_names(), params=("street",)),
    ),
)


def render(ctx: PageContext) -> None:
    import streamlit as st

    st.title("{title}")
    # Rows already limited to what the signed-in person may see; None: a message was shown.
    reader = kit.open_ledger(ctx, RECORDS.id)
    if reader is None:
        return
    st.caption(kit.data_caption(reader, "可查看全部记录。", "您只能查看 {{names}} 的记录。"))
    chosen = kit.filters(ctx, reader, FILTERS)
    conds = reader.where(
        equals={{"street": chosen["streets"]}},
        search=chosen["search"] or None,
        search_columns=("record_id", "name"),
    )
    total = reader.count(*conds)
    kit.metrics([kit.Metric("记录数", total)])
    kit.paged_table(
        total,
        lambda limit, offset, order: reader.page(*conds, limit=limit, offset=offset),
        key=kit.widget_key(ctx),
        labels=kit.column_labels(RECORDS),
    )


def records_total(ctx: TileContext) -> TileValue:
    """The cockpit tile: how many records, by street; honours the cockpit's street filter."""
    reader = ctx.ledger(RECORDS.id)
    conds = ctx.filter_conditions(reader, street="street", date="updated")
    street = reader.rows.c.street
    counted = sa.func.count()
    stmt = sa.select(street, counted).where(*conds).group_by(street).order_by(counted.desc(), street)
    items = tuple((str(name), float(n)) for name, n in reader.execute(stmt))
    total = sum(n for _, n in items)
    return TileValue(total, as_of=reader.updated_at, detail=Breakdown(items, by="镇街"))


@hookimpl
def huizhi_plugin_info() -> PluginInfo:
    return PluginInfo(name="{name}", title="{title}", department=DEPARTMENT, version="0.1.0",
                      host_api=">={host_major}.0,<{next_major}")


@hookimpl
def huizhi_ledgers() -> list[LedgerSpec]:
    return [RECORDS]


@hookimpl
def huizhi_pages() -> list[PageSpec]:
    return [PageSpec("{title}", PAGE, render, department=DEPARTMENT, icon=":material/list_alt:")]


RECORDS_TOTAL = TileSpec(
    id="{name}_records_total",
    title="{title}记录数",
    department=DEPARTMENT,
    theme=Theme.GOVERNANCE,
    query=records_total,
    unit="条",
    target=Target(value=10, deadline=dt.date(2025, 12, 31), source="示例目标：请改为行动计划中的目标"),
    drilldown=PAGE,
    ledgers=(RECORDS.id,),
)


@hookimpl
def huizhi_tiles() -> list[TileSpec]:
    return [RECORDS_TOTAL]


DEMO_ROWS = tuple(
    {{"record_id": f"REC-{{i:04d}}", "name": f"示例事项{{i}}", "street": street, "amount": i * 3,
     "updated": dt.date(2025, 1, i)}}
    for i, street in enumerate(district.street_names()[:6], start=1)
)


@hookimpl
def huizhi_demo_rows() -> list[DemoRows]:
    return [DemoRows(RECORDS.id, DEMO_ROWS)]


@hookimpl
def huizhi_demo_identities() -> list[DemoPerson]:
    # made-up people `huizhi demo` offers on its sign-in page, as this department's staff
    return [DemoPerson("staff-{url}", "演示用户", DEPARTMENT, title="{department_name} 科员")]
'''

TESTS = '''"""{title}: its own tests, on the host's fixtures (huizhi.testing, active once huizhi is installed).

Run them with ``pytest`` in this folder; ``HUIZHI_TEST_DB=postgres`` runs them on PostgreSQL.
"""

from __future__ import annotations

import huizhi_{name}.plugin as plugin

from huizhi.testing import commit_rows, compute_tile, identity, render_page

PLUGINS = [("{name}", plugin)]


def test_loads_in_strict_mode(huizhi_host):
    host = huizhi_host(plugins=PLUGINS, strict=True)
    assert host.registry.plugins["{name}"].status == "enabled", host.registry.plugins["{name}"].reason
    assert plugin.RECORDS.id in host.registry.ledgers


def test_page_shows_the_rows_and_filters_by_street(huizhi_host):
    host = huizhi_host(plugins=PLUGINS)
    commit_rows(host, plugin.RECORDS.id, list(plugin.DEMO_ROWS))
    at = render_page(host, plugin.PAGE, identity("staff", plugin.DEPARTMENT))
    assert not at.exception, [e.value for e in at.exception]
    assert next(m.value for m in at.metric if m.label == "记录数") == str(len(plugin.DEMO_ROWS))
    street = plugin.DEMO_ROWS[0]["street"]
    at = render_page(host, plugin.PAGE, identity("staff", plugin.DEPARTMENT), params={{"street": street}})
    assert next(m.value for m in at.metric if m.label == "记录数") == "1"


def test_tile_counts_the_rows(huizhi_host):
    host = huizhi_host(plugins=PLUGINS)
    empty = compute_tile(host, "{name}_records_total", identity("leader"))
    assert empty.value == 0
    commit_rows(host, plugin.RECORDS.id, list(plugin.DEMO_ROWS))
    value = compute_tile(host, "{name}_records_total", identity("leader"))
    assert value.value == len(plugin.DEMO_ROWS)
    assert len(value.detail.items) == len({{r["street"] for r in plugin.DEMO_ROWS}})
'''

README = """# {title}

A huizhi plugin of {department_name} (`{department}`): the ledger {ledger_title}, the page
“{title}” (`/{url}`, with a search box and a street filter) and the cockpit tile “{title}记录数”.
See docs/plugin-guide.md in the huizhi repository.

    pip install -e {path}          # install it into the portal's environment
    huizhi check-plugin huizhi-{dist}   # the conformance check, before shipping
    pytest {path}                  # its own tests (HUIZHI_TEST_DB=postgres: on PostgreSQL)
    huizhi demo                    # see it in the portal, with its demo rows
"""


def create_plugin(directory: Path, name: str, department: str, title: str | None = None) -> Path:
    """Write <directory>/<name>/ with pyproject.toml, the plugin package, its tests and a README;
    returns its path."""
    if not ID_PATTERN.match(name):
        raise ValueError(f"plugin name {name!r} must match {ID_PATTERN.pattern}")
    dept = district.department(department)
    root = directory / name
    if root.exists():
        raise FileExistsError(f"{root} already exists")
    major = int(HOST_API_VERSION.split(".")[0])
    plain_title = title or f"{dept.name}应用"
    values = {
        "name": name,
        "dist": name.replace("_", "-"),
        "title": plain_title,
        # "水务监测台账" is already a ledger's name; "水务监测" becomes "水务监测台账"
        "ledger_title": plain_title if plain_title.endswith("台账") else f"{plain_title}台账",
        "department": dept.id,
        "department_name": dept.name,
        "host_major": major,
        "next_major": major + 1,
        "host_package": ".".join(__version__.split(".")[:2]),
        "url": name.replace("_", "-"),
        "path": root,
    }
    package = root / f"huizhi_{name}"
    package.mkdir(parents=True)
    (root / "tests").mkdir()
    (root / "pyproject.toml").write_text(PYPROJECT.format(**values), encoding="utf-8")
    (package / "__init__.py").write_text(f'"""{values["title"]}（慧治插件）."""\n', encoding="utf-8")
    (package / "plugin.py").write_text(PLUGIN.format(**values), encoding="utf-8")
    (root / "tests" / f"test_{name}_plugin.py").write_text(TESTS.format(**values), encoding="utf-8")
    (root / "README.md").write_text(README.format(**values), encoding="utf-8")
    return root
