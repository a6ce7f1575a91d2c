"""The plugin reference is generated from the hookspecs and must not go stale (issue 3, item 2)."""

from __future__ import annotations

import ast
import dataclasses
import importlib
import inspect
from pathlib import Path

from huizhi import hookspecs, specs
from huizhi.plugin_docs import (
    SPEC_TYPES,
    contract_violations,
    documented_names,
    hook_names,
    host_uses,
    render,
)

DOC = Path(__file__).resolve().parents[1] / "docs" / "plugins.md"


def test_every_hook_has_a_reference_docstring():
    names = hook_names()
    assert {"huizhi_plugin_info", "huizhi_ledgers", "huizhi_pages", "huizhi_tiles", "huizhi_connectors"} <= set(names)
    for name in names:
        doc = inspect.getdoc(getattr(hookspecs, name)) or ""
        assert len(doc) > 80, f"hook {name} needs a docstring that explains it"


def test_every_spec_type_is_documented_and_listed():
    public = {name for name, obj in vars(specs).items() if dataclasses.is_dataclass(obj) and obj.__module__ == specs.__name__}
    assert public == {cls.__name__ for cls in SPEC_TYPES}, "a spec type is missing from the plugin reference"
    for cls in SPEC_TYPES:
        assert cls.__doc__ and len(cls.__doc__) > 40, f"{cls.__name__} needs a docstring"


def test_committed_reference_is_current():
    assert DOC.read_text(encoding="utf-8") == render(), "docs/plugins.md is stale: run `huizhi docs`"


# -- the plugins use only what the reference documents ------------------------------------------

ROOT = Path(__file__).resolve().parents[1]


def _plugin_sources() -> list[Path]:
    return sorted(
        p for folder in ("plugins", "examples") for p in (ROOT / folder).glob("*/**/*.py") if "tests" not in p.parts
    )


def test_plugins_import_only_documented_host_names():
    sources = _plugin_sources()
    assert len(sources) >= 10, "the department plugins were not found"
    problems = []
    for path in sources:
        problems += contract_violations(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)))
    assert not problems, "\n".join(problems)


def test_the_import_check_catches_undocumented_names():
    bad = ast.parse(
        "from huizhi.access import system_identity\nfrom huizhi.cockpit import compute_tiles\n"
        "from huizhi import kit, portal\nfrom huizhi.fmt import format_number, _trim\nkit.open_ledger\nkit._private\n"
    )
    documented = documented_names()
    flagged = [(m, n) for m, n, _ in host_uses(bad) if m not in documented or (n is not None and n not in documented[m])]
    assert flagged == [("huizhi.access", "system_identity"), ("huizhi.cockpit", "compute_tiles"),
                       ("huizhi.portal", None), ("huizhi.fmt", "_trim"), ("huizhi.kit", "_private")]


def test_every_contract_name_is_rendered_with_a_docstring():
    text = render()
    for module, names in documented_names().items():
        for name in names:
            if module == "huizhi.specs":
                continue  # the spec section above lists them
            assert f"`{name}" in text, f"{module}.{name} is not in docs/plugins.md"
            obj = getattr(importlib.import_module(module), name)
            if inspect.isfunction(obj) or inspect.isclass(obj):
                assert inspect.getdoc(obj), f"{module}.{name} needs a docstring (it is part of the plugin contract)"
