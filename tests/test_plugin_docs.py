"""The plugin reference is generated from the hookspecs and must not go stale (issue 3, item 2)."""

from __future__ import annotations

import dataclasses
import inspect
from pathlib import Path

from huizhi import hookspecs, specs
from huizhi.plugin_docs import SPEC_TYPES, hook_names, render

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
