"""The layers hold, and the host's modules form no import cycle (issue 9, ../shared/DESIGN.md).

The import graph is read with :mod:`ast` from the source files (nothing is imported), keeping three
kinds of import apart: *module* (runs when the module is imported), *function* (inside a def or a
lambda: runs when it is called) and *typing* (under ``if TYPE_CHECKING:``: never runs). Importing
``a.b.c`` runs ``a/__init__`` and ``a/b/__init__`` first, so an import counts for its parent
packages too (except the importer's own parents, which are already being imported). A module
that calls ``importlib.import_module`` imports every string literal in it that names a host
module (``huizhi.excel``'s lazy public names); other dynamic names (``huizhi_pages.plugin``'s
``f"huizhi_pages.{module}"``) are not followed.

The layers, bottom to top; a module may import its own layer and the ones below, never above:

contract
    What plugins see (rendered into docs/plugins.md): the package ``huizhi`` (``hookimpl``,
    ``HOST_API_VERSION``), hookspecs, specs, contexts, the page kit, formatting, events, query
    parameters, the clock, the district's departments, and ``huizhi.access`` — the identity
    model handed to plugins as ``ctx.identity`` (Identity, Grant, Role, RowScope, AccessDenied).
    ``access.map_claims``/``check_access_config`` (claims to grants by configuration) live beside
    the model they build and import nothing above the contract, so the module stays whole.
engines
    Parsing, validation, diff, storage, tile computation, settings, logging and plugin loading
    (with ``huizhi.declarative``, which turns a declarative file into a plugin's specs): no
    permission decisions of their own (they are handed an identity or a row scope). ``config``
    and ``plugins`` sit here rather than in services: they read settings and load plugins and
    change no data. The cell-by-cell validation is ``huizhi.excel.validation``, inside the excel
    package rather than beside it: ingest and the template call it and it is built on excel's
    messages and problems, so as a sibling module it and ``huizhi.excel`` imported each other.
services
    The only code that changes data or decides permissions, and what composes everything:
    ``host`` (the composition root), the ledger service, audit, submissions, the CLI, the demo,
    the scaffolder, ``plugin_check`` (``huizhi check-plugin``) and ``testing`` (the plugin
    authors' pytest fixtures), both building hosts like the CLI, ``portal.host_of`` (the portal
    pages' way to the host), ``health`` (the process's one host and its readiness), ``doctor``,
    ``backup`` and ``huizhi_seeds`` (the demo data,
    committed through the host by ``huizhi seed`` and the demo).
portal
    Streamlit: ``huizhi.app`` (the shell), ``huizhi.server`` (the ``st.App`` with the health
    routes) and ``huizhi_pages`` (the built-in pages).

Plugins (``plugins/*/`` and the built-in connectors, ``huizhi_connectors``, registered the way a
department registers one) import only contract modules from the host, and the host never imports
them: they are loaded through the ``huizhi`` entry points.
"""

from __future__ import annotations

import ast
import textwrap
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: import name -> folder (pyproject's package-dir)
HOST_PACKAGES = {
    "huizhi": ROOT / "platform" / "huizhi",
    "huizhi_pages": ROOT / "pages",
    "huizhi_connectors": ROOT / "connectors",
    "huizhi_seeds": ROOT / "seeds",
}
DEPARTMENT_PLUGINS = {
    d.name: d for d in sorted((ROOT / "plugins").glob("*/huizhi_*")) if (d / "__init__.py").is_file()
}
#: packages that are plugins: they may import only the contract (built-in connectors included)
PLUGIN_PACKAGES = {"huizhi_connectors", *DEPARTMENT_PLUGINS}

# A name ending in ".*" is a package and everything in it.
CONTRACT = (
    "huizhi", "huizhi.hookspecs", "huizhi.specs", "huizhi.context", "huizhi.kit", "huizhi.fmt",
    "huizhi.events", "huizhi.params", "huizhi.clock", "huizhi.district", "huizhi.access", "huizhi.sources",
)  # fmt: skip
ENGINES = (
    "huizhi.excel.*", "huizhi.cockpit.*", "huizhi.migrations.*", "huizhi.ledger_store", "huizhi.db",
    "huizhi.models", "huizhi.exports", "huizhi.config", "huizhi.plugins", "huizhi.plugin_docs",
    "huizhi.signin", "huizhi.logs", "huizhi.declarative.*",
)  # fmt: skip
SERVICES = (
    "huizhi.ledgers", "huizhi.audit", "huizhi.submissions", "huizhi.host", "huizhi.portal", "huizhi.tasks",
    "huizhi.scaffold", "huizhi.demo", "huizhi.cli", "huizhi.ledger_cli", "huizhi_seeds.*",
    "huizhi.health", "huizhi.doctor", "huizhi.syncs", "huizhi.backup", "huizhi.plugin_check",
    "huizhi.testing",
)  # fmt: skip
PORTAL = ("huizhi.app", "huizhi.server", "huizhi_pages.*")
LAYERS = {"contract": CONTRACT, "engines": ENGINES, "services": SERVICES, "portal": PORTAL}
RANK = {name: i for i, name in enumerate(LAYERS)}

#: Type hints that name a module of a higher layer, and why. Never imported at run time.
TYPING_UP = {
    # contexts hold the host privately and type what its services return
    ("huizhi.context", "huizhi.host"),
    ("huizhi.context", "huizhi.ledger_store"),
    ("huizhi.context", "huizhi.ledgers"),
    ("huizhi.context", "huizhi.models"),
    # the cockpit is built by the host and handed it (the runner, pins, compute_tiles)
    ("huizhi.cockpit", "huizhi.host"),
    ("huizhi.cockpit.pins", "huizhi.host"),
    ("huizhi.cockpit.runner", "huizhi.host"),
}

#: Host modules that draw with Streamlit, and where (None: anywhere in the module).
STREAMLIT_ALLOWED: dict[str, frozenset[str] | None] = {
    "huizhi.kit": None,  # the plugins' page kit
    "huizhi.context": frozenset({"PageContext.link"}),  # st.page_link to another page
    # the pages a declarative file declares: the host draws them for the file, as a plugin page would
    "huizhi.declarative.pages": frozenset({"make_render.render", "_map"}),
    "huizhi.testing": frozenset({"render_page"}),  # Streamlit's AppTest runs a page under test
}


@dataclass(frozen=True)
class Import:
    source: str  # importing module
    target: str  # imported module (a host module when it names one, else the dotted name)
    kind: str  # "module" | "function" | "typing"
    line: int
    scope: str  # qualified name of the enclosing def/class, "" at module level

    def __str__(self) -> str:
        where = f" in {self.scope}" if self.scope else ""
        return f"{self.source}:{self.line} imports {self.target} ({self.kind}{where})"


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def parse_imports(module: str, source: str, *, is_package: bool, known: set[str]) -> list[Import]:
    """Every import in one module's source; ``known`` is the set of modules to resolve names to."""
    tree = ast.parse(source)
    package = module if is_package else module.rpartition(".")[0]
    found: list[Import] = []
    lazy = any(
        isinstance(n, ast.Attribute | ast.Name)
        and getattr(n, "attr", getattr(n, "id", None)) == "import_module"
        for n in ast.walk(tree)
    )

    def add(target: str, kind: str, node: ast.AST, scope: list[str]) -> None:
        found.append(Import(module, target, kind, node.lineno, ".".join(scope)))

    def visit(node: ast.AST, kind: str, scope: list[str]) -> None:
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name, kind, node, scope)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([node.module] if node.module else []))
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                add(sub if sub in known else base, kind, node, scope)
        elif lazy and isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in known:
            add(node.value, "typing" if kind == "typing" else "function", node, scope)
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.body:
                visit(child, "typing", scope)
            for child in node.orelse:
                visit(child, kind, scope)
            return
        inner_kind, inner_scope = kind, scope
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            inner_kind = kind if kind == "typing" else "function"
            inner_scope = [*scope, getattr(node, "name", "<lambda>")]
        elif isinstance(node, ast.ClassDef):
            inner_scope = [*scope, node.name]
        for child in ast.iter_child_nodes(node):
            visit(child, inner_kind, inner_scope)

    visit(tree, "module", [])
    return found


def module_files(packages: dict[str, Path]) -> dict[str, Path]:
    files = {}
    for top, folder in packages.items():
        for path in sorted(folder.rglob("*.py")):
            parts = [top, *path.relative_to(folder).with_suffix("").parts]
            files[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return files


def build_graph(sources: dict[str, tuple[str, bool]]) -> dict[str, list[Import]]:
    """module -> its imports, parents of each imported host module included."""
    known = set(sources)
    graph = {}
    for module, (text, is_package) in sources.items():
        imports = []
        for imp in parse_imports(module, text, is_package=is_package, known=known):
            imports.append(imp)
            parts = imp.target.split(".")
            for i in range(1, len(parts)):
                parent = ".".join(parts[:i])
                if parent in known and not (module == parent or module.startswith(parent + ".")):
                    imports.append(Import(module, parent, imp.kind, imp.line, imp.scope))
        graph[module] = imports
    return graph


FILES = module_files({**HOST_PACKAGES, **DEPARTMENT_PLUGINS})
GRAPH = build_graph({m: (p.read_text(encoding="utf-8"), p.name == "__init__.py") for m, p in FILES.items()})


def layer_of(module: str) -> str | None:
    for layer, names in LAYERS.items():
        for name in names:
            if module == name or (
                name.endswith(".*") and (module == name[:-2] or module.startswith(name[:-1]))
            ):
                return layer
    return None


def is_host(module: str) -> bool:
    return module.split(".")[0] in HOST_PACKAGES and module.split(".")[0] not in PLUGIN_PACKAGES


def is_plugin(module: str) -> bool:
    return module.split(".")[0] in PLUGIN_PACKAGES


# --- the checks, as functions over a graph (so the tests below can show each one failing) -------


def unplaced(graph: dict[str, list[Import]]) -> list[str]:
    return sorted(m for m in graph if is_host(m) and layer_of(m) is None)


def upward_imports(graph: dict[str, list[Import]]) -> list[Import]:
    bad = []
    for module, imports in graph.items():
        if not is_host(module) or layer_of(module) is None:
            continue
        for imp in imports:
            target_layer = layer_of(imp.target) if is_host(imp.target) else None
            if target_layer is None or RANK[target_layer] <= RANK[layer_of(module)]:
                continue
            if imp.kind == "typing" and (module, imp.target) in TYPING_UP:
                continue
            bad.append(imp)
    return bad


def host_imports_plugins(graph: dict[str, list[Import]]) -> list[Import]:
    return [imp for m, imports in graph.items() if is_host(m) for imp in imports if is_plugin(imp.target)]


def cycles(
    graph: dict[str, list[Import]], kinds=("module", "function")
) -> list[tuple[list[str], list[Import]]]:
    """Each group of host modules that import each other (runtime imports only), with its shortest
    cycle through the group's first module."""
    edges: dict[str, dict[str, Import]] = {m: {} for m in graph if is_host(m)}
    for m in edges:
        for imp in graph[m]:
            if imp.kind in kinds and imp.target in edges and imp.target != m:
                edges[m].setdefault(imp.target, imp)

    def shortest_paths(start: str) -> dict[str, Import]:
        """Breadth first: for each module reachable from start, the import that first reached it."""
        back: dict[str, Import] = {}
        queue = deque([start])
        while queue:
            node = queue.popleft()
            for nxt, imp in sorted(edges[node].items()):
                if nxt not in back:
                    back[nxt] = imp
                    queue.append(nxt)
        return back

    reach = {m: shortest_paths(m) for m in sorted(edges)}
    found, grouped = [], set()
    for start in sorted(edges):
        if start in grouped or start not in reach[start]:
            continue
        group = sorted(m for m in reach[start] if start in reach[m])
        grouped.update(group)
        path, node = [], start
        while True:
            imp = reach[start][node]
            path.append(imp)
            node = imp.source
            if node == start:
                break
        path.reverse()
        found.append((group, path))
    return found


def streamlit_outside_portal(graph: dict[str, list[Import]]) -> list[Import]:
    bad = []
    for module, imports in graph.items():
        if not is_host(module) or layer_of(module) == "portal":
            continue
        allowed = STREAMLIT_ALLOWED.get(module, frozenset())
        for imp in imports:
            if imp.target.split(".")[0] != "streamlit" or imp.kind == "typing":
                continue
            if allowed is None or imp.scope in allowed:
                continue
            bad.append(imp)
    return bad


def plugins_beyond_contract(graph: dict[str, list[Import]]) -> list[Import]:
    return [
        imp
        for module, imports in graph.items()
        if is_plugin(module)
        for imp in imports
        if imp.target.split(".")[0] in HOST_PACKAGES
        and not is_plugin(imp.target)
        and layer_of(imp.target) != "contract"
    ]


def _report(what: str, items) -> str:
    return f"{what}:\n" + "\n".join(f"  {item}" for item in items)


# --- the architecture -------------------------------------------------------------------------


def test_the_graph_is_read_from_every_package():
    assert {"huizhi.host", "huizhi.excel.pipeline", "huizhi_pages.home", "huizhi_seeds.loader"} <= set(GRAPH)
    assert DEPARTMENT_PLUGINS and all(any(m.startswith(p) for m in GRAPH) for p in DEPARTMENT_PLUGINS)
    assert any(imp.target == "huizhi.specs" for imp in GRAPH["huizhi.hookspecs"])


def test_every_host_module_has_a_layer():
    assert not unplaced(GRAPH), _report(
        "place these modules in a layer (tests/test_architecture.py)", unplaced(GRAPH)
    )


def test_imports_go_to_the_same_or_a_lower_layer():
    bad = upward_imports(GRAPH)
    assert not bad, _report(
        "imports of a higher layer", [f"{i}: {layer_of(i.source)} -> {layer_of(i.target)}" for i in bad]
    )


def test_the_host_never_imports_a_plugin():
    bad = host_imports_plugins(GRAPH)
    assert not bad, _report("the host imports a plugin (plugins load through the entry points)", bad)


def test_the_type_hints_that_point_up_are_still_needed():
    typing = {
        (imp.source, imp.target) for imports in GRAPH.values() for imp in imports if imp.kind == "typing"
    }
    assert not TYPING_UP - typing, f"no longer imported, drop from TYPING_UP: {sorted(TYPING_UP - typing)}"


def test_no_import_cycle_among_the_host_modules():
    found = cycles(GRAPH)
    assert not found, "import cycles (runtime imports, module and function level):\n" + "\n".join(
        f"  {len(group)} modules import each other: {', '.join(group)}; for example\n"
        f"  {' -> '.join([path[0].source, *(imp.target for imp in path)])}\n"
        + "\n".join(f"    {imp}" for imp in path)
        for group, path in found
    )


def test_only_the_portal_and_the_page_kit_import_streamlit():
    bad = streamlit_outside_portal(GRAPH)
    assert not bad, _report("streamlit outside the portal (or add the module to STREAMLIT_ALLOWED)", bad)


def test_plugins_import_only_the_contract():
    bad = plugins_beyond_contract(GRAPH)
    assert not bad, _report("plugins importing host modules outside the contract", bad)


# --- each check can fail ------------------------------------------------------------------------


def _graph(**modules: str) -> dict[str, list[Import]]:
    """A graph over made-up sources: keyword ``huizhi__specs`` is module ``huizhi.specs``."""
    sources = {
        name.replace("__", "."): (textwrap.dedent(text), name == "huizhi") for name, text in modules.items()
    }
    return build_graph(sources)


def test_an_upward_import_is_found_at_any_level_and_typing_only_where_allowed():
    graph = _graph(
        huizhi="",
        huizhi__specs="def f():\n    from huizhi.ledgers import LedgerService\n",
        huizhi__ledgers="",
        huizhi__host="",
        huizhi__fmt="from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from huizhi.host import Host\n",
        huizhi__context="from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from huizhi.host import Host\n",
        huizhi__cockpit__runner="import huizhi.app\n",
        huizhi__app="",
        huizhi__plugins="import huizhi_citymgmt.plugin\n",
        huizhi_citymgmt__plugin="",
    )
    assert [(i.source, i.target, i.kind) for i in upward_imports(graph)] == [
        ("huizhi.specs", "huizhi.ledgers", "function"),
        ("huizhi.fmt", "huizhi.host", "typing"),
        ("huizhi.cockpit.runner", "huizhi.app", "module"),
    ]
    assert [i.target for i in host_imports_plugins(graph)] == ["huizhi_citymgmt.plugin"]
    assert unplaced(_graph(huizhi="", huizhi__newthing="")) == ["huizhi.newthing"]


def test_a_cycle_is_found_through_functions_and_parent_packages_and_printed():
    graph = _graph(
        huizhi="",
        huizhi__a="from huizhi import b\n",
        huizhi__b="def f():\n    from huizhi.excel.c import x\n",
        huizhi__excel="import importlib\n_LAZY = {'y': 'huizhi.excel.d'}\n"
        "def __getattr__(name):\n    return importlib.import_module(_LAZY[name])\n",
        huizhi__excel__c="",
        huizhi__excel__d="import huizhi.a\n",
        huizhi__e="from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import huizhi.a\n",
    )
    [(group, cycle)] = cycles(graph)
    assert group == ["huizhi.a", "huizhi.b", "huizhi.excel", "huizhi.excel.d"]
    assert [imp.source for imp in cycle] == ["huizhi.a", "huizhi.b", "huizhi.excel", "huizhi.excel.d"]
    assert str(cycle[1]) == "huizhi.b:2 imports huizhi.excel (function in f)"
    typing_only = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import huizhi.a\n"
    assert not cycles(_graph(huizhi="", huizhi__a="import huizhi.e\n", huizhi__e=typing_only))


def test_streamlit_is_found_outside_its_allowed_places():
    graph = _graph(
        huizhi="",
        huizhi__context="class PageContext:\n    def link(self):\n        import streamlit\n"
                        "    def other(self):\n        import streamlit as st\n",
        huizhi__kit="def f():\n    import streamlit\n",
        huizhi__cockpit__theme="from streamlit.runtime import x\n",
        huizhi_pages__home="import streamlit\n",
    )  # fmt: skip
    assert [(i.source, i.scope) for i in streamlit_outside_portal(graph)] == [
        ("huizhi.context", "PageContext.other"),
        ("huizhi.cockpit.theme", ""),
    ]


def test_a_plugin_importing_beyond_the_contract_is_found():
    graph = _graph(
        huizhi="",
        huizhi__portal="",
        huizhi__specs="",
        huizhi_sensing__pages="from huizhi.specs import PageSpec\nfrom huizhi.portal import host_of\n",
        huizhi_connectors__plugin="from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from huizhi.host import Host\n",
    )
    assert [(i.source, i.target) for i in plugins_beyond_contract(graph)] == [
        ("huizhi_sensing.pages", "huizhi.portal"),
        ("huizhi_connectors.plugin", "huizhi.host"),
    ]


@pytest.mark.parametrize("module", sorted(STREAMLIT_ALLOWED))
def test_the_streamlit_allowances_are_still_needed(module):
    assert any(imp.target == "streamlit" or imp.target.startswith("streamlit.") for imp in GRAPH[module])


def test_no_public_name_of_a_lazy_package_is_hidden_by_a_submodule():
    """Importing a submodule sets it as an attribute of its package: a submodule named like one of
    the package's lazily exported names (``huizhi.excel.ingest`` was both a module and a function)
    turns that name into the module for everyone once anything imports the submodule."""
    import importlib
    import pkgutil
    import types

    import huizhi.excel

    for info in pkgutil.iter_modules(huizhi.excel.__path__):
        importlib.import_module(f"huizhi.excel.{info.name}")
    shadowed = [name for name in huizhi.excel.__all__ if isinstance(getattr(huizhi.excel, name), types.ModuleType)]
    assert not shadowed, shadowed
    assert callable(huizhi.excel.ingest)
