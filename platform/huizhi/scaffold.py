"""``huizhi new-plugin``: a working department plugin to start from, shipped as its own distribution."""

from __future__ import annotations

from pathlib import Path

from huizhi import HOST_API_VERSION, district
from huizhi.specs import ID_PATTERN

PYPROJECT = """[build-system]
requires = ["setuptools>=69"]
build-backend = "setuptools.build_meta"

[project]
name = "huizhi-{name}"
version = "0.1.0"
description = "{title}"
requires-python = ">=3.11"
dependencies = ["huizhi>={host_major}.0"]

[project.entry-points.huizhi]
{name} = "huizhi_{name}.plugin"

[tool.setuptools]
packages = ["huizhi_{name}"]
"""

PLUGIN = '''"""{title}: a huizhi department plugin. Reference: docs/plugins.md in the huizhi repository."""

from __future__ import annotations

from huizhi import hookimpl, kit
from huizhi.context import PageContext
from huizhi.specs import ColumnSpec, LedgerSpec, PageSpec, PluginInfo

DEPARTMENT = "{department}"  # {department_name}

RECORDS = LedgerSpec(
    id="{name}_records",
    title="{title}台账",
    department=DEPARTMENT,
    key=("record_id",),
    columns=(
        ColumnSpec("record_id", "编号", pattern=r"^[A-Z0-9-]{{4,32}}\\Z", pattern_hint="4-32位大写字母、数字或-", example="REC-0001"),
        ColumnSpec("name", "名称", example="示例事项"),
        ColumnSpec("amount", "数量", "int", min=0, example="10"),
        ColumnSpec("updated", "更新日期", "date", example="2025-01-01"),
    ),
)

# The page's filter panel (see huizhi.kit): one row with a search box, read from ?q=… in links.
FILTERS = ((kit.Search("search", placeholder="编号或名称中的文字"),),)


def render(ctx: PageContext) -> None:
    import streamlit as st

    st.title(RECORDS.title)
    # Rows already limited to what the signed-in person may see; None: a message was shown.
    reader = kit.open_ledger(ctx, RECORDS.id)
    if reader is None:
        return
    st.caption(kit.data_caption(reader, "可查看全部记录。", "您只能查看 {{names}} 的记录。"))
    chosen = kit.filters(ctx, reader, FILTERS)
    conds = reader.where(search=chosen["search"] or None, search_columns=("record_id", "name"))
    total = reader.count(*conds)
    kit.metrics([kit.Metric("记录数", total)])
    kit.paged_table(
        total,
        lambda limit, offset, order: reader.page(*conds, limit=limit, offset=offset),
        key=kit.widget_key(ctx),
        labels=kit.column_labels(RECORDS),
    )


@hookimpl
def huizhi_plugin_info() -> PluginInfo:
    return PluginInfo(name="{name}", title="{title}", department=DEPARTMENT, version="0.1.0", host_api=">={host_major}.0,<{next_major}")


@hookimpl
def huizhi_ledgers() -> list[LedgerSpec]:
    return [RECORDS]


@hookimpl
def huizhi_pages() -> list[PageSpec]:
    return [PageSpec("{title}", "{url}", render, department=DEPARTMENT, icon=":material/list_alt:")]
'''


def create_plugin(directory: Path, name: str, department: str, title: str | None = None) -> Path:
    """Write plugins/<name>/ with pyproject.toml, a plugin module and a README; returns its path."""
    if not ID_PATTERN.match(name):
        raise ValueError(f"plugin name {name!r} must match {ID_PATTERN.pattern}")
    dept = district.department(department)
    root = directory / name
    if root.exists():
        raise FileExistsError(f"{root} already exists")
    major = int(HOST_API_VERSION.split(".")[0])
    values = {
        "name": name,
        "title": title or f"{dept.name}应用",
        "department": dept.id,
        "department_name": dept.name,
        "host_major": major,
        "next_major": major + 1,
        "url": name.replace("_", "-"),
    }
    package = root / f"huizhi_{name}"
    package.mkdir(parents=True)
    (root / "pyproject.toml").write_text(PYPROJECT.format(**values), encoding="utf-8")
    (package / "__init__.py").write_text(f'"""{values["title"]}."""\n', encoding="utf-8")
    (package / "plugin.py").write_text(PLUGIN.format(**values), encoding="utf-8")
    (root / "README.md").write_text(
        f"# {values['title']}\n\nA huizhi plugin of {dept.name}.\n\n"
        f"    pip install -e {root}\n    huizhi check      # load every plugin in strict mode\n    huizhi demo       # see it in the portal\n",
        encoding="utf-8",
    )
    return root
