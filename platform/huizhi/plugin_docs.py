"""Render docs/plugins.md from the hookspecs and spec docstrings (``huizhi docs``).

The reference lives in code (hookspecs.py docstrings); this file only lays it out, so the doc
cannot drift: a test renders it and compares with the committed file.
"""

from __future__ import annotations

import ast
import dataclasses
import enum
import importlib
import inspect
from types import ModuleType
from typing import Any

from huizhi import HOST_API_VERSION, hookspecs, specs

# What a plugin may import from the host: these modules, and in them only the names documented
# below (their ``__all__``). Everything else in ``huizhi`` is the host's own and may change; a
# test fails when a plugin in plugins/ imports anything else.
CONTRACT_MODULES = (
    "huizhi",
    "huizhi.specs",
    "huizhi.context",
    "huizhi.kit",
    "huizhi.fmt",
    "huizhi.events",
    "huizhi.params",
    "huizhi.clock",
    "huizhi.district",
    "huizhi.sources",
)

SPEC_TYPES = (
    specs.PluginInfo,
    specs.LedgerSpec,
    specs.ColumnSpec,
    specs.RowCheck,
    specs.PageSpec,
    specs.TileSpec,
    specs.TileValue,
    specs.Series,
    specs.Breakdown,
    specs.TopItems,
    specs.Target,
    specs.ConnectorSpec,
    specs.DemoRows,
    specs.DemoPerson,
    specs.SyncSpec,
)


def hook_names() -> list[str]:
    return [
        name for name, _ in inspect.getmembers(hookspecs, inspect.isfunction) if name.startswith("huizhi_")
    ]


def public_names(module: ModuleType) -> list[str]:
    """The documented names of a contract module: its ``__all__`` (every contract module has one)."""
    names = getattr(module, "__all__", None)
    if names is None:
        raise AssertionError(f"contract module {module.__name__} needs __all__")
    return sorted(names)


def documented_names() -> dict[str, frozenset[str]]:
    """``{module: names}`` a plugin may import (see :data:`CONTRACT_MODULES`)."""
    return {name: frozenset(public_names(importlib.import_module(name))) for name in CONTRACT_MODULES}


def host_uses(tree: ast.AST) -> list[tuple[str, str | None, int]]:
    """(module, name or None, line) for every use of a ``huizhi`` name in a parsed source file:
    ``from huizhi.x import n``, ``import huizhi.x``, and ``alias.n`` where ``alias`` is a huizhi
    module imported by name."""
    uses: list[tuple[str, str | None, int]] = []
    modules: dict[str, str] = {}  # local alias -> huizhi module
    documented = documented_names()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and (node.module == "huizhi" or node.module.startswith("huizhi.")):
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                if node.module == "huizhi" and (alias.name not in documented["huizhi"]):
                    uses.append((submodule, None, node.lineno))  # `from huizhi import kit`: a module
                    modules[alias.asname or alias.name] = submodule
                else:
                    uses.append((node.module, alias.name, node.lineno))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "huizhi" or alias.name.startswith("huizhi."):
                    uses.append((alias.name, None, node.lineno))
                    modules[alias.asname or alias.name] = alias.name
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in modules:
            uses.append((modules[node.value.id], node.attr, node.lineno))
    return uses


def contract_violations(source: str, where: str = "<source>") -> list[str]:
    """Every use of a ``huizhi`` name in ``source`` that the plugin contract does not document,
    as ``"where:line: ..."`` messages (empty: the source keeps to the contract)."""
    documented = documented_names()
    problems = []
    for module, name, line in host_uses(ast.parse(source)):
        if module not in documented:
            problems.append(f"{where}:{line}: imports {module}, which is not part of the plugin contract")
        elif name is not None and name not in documented[module]:
            problems.append(f"{where}:{line}: uses {module}.{name}, which docs/plugins.md does not document")
    return problems


def _doc(obj: Any) -> str:
    return inspect.cleandoc(inspect.getdoc(obj) or "")


def _callable_signature(name: str, obj: Any) -> str:
    try:
        return f"{name}{inspect.signature(obj)}"
    except (TypeError, ValueError):
        return name


def _members(cls: type) -> list[tuple[str, Any]]:
    """Public methods and properties a class defines itself (not inherited from object)."""
    out = []
    for name, value in vars(cls).items():
        if name.startswith("_") or name in {"of"} and not callable(value):
            continue
        if isinstance(value, property) or inspect.isfunction(value) or isinstance(value, classmethod | staticmethod):
            out.append((name, value))
    return out


def _render_module(module: ModuleType) -> list[str]:
    out = [f"### `{module.__name__}`", "", _doc(module), ""]
    for name in public_names(module):
        obj = getattr(module, name)
        if inspect.isclass(obj):
            base = ", ".join(b.__name__ for b in obj.__bases__ if b is not object)
            out += [f"#### class `{name}`" + (f" ({base})" if base else ""), "", _doc(obj), ""]
            if dataclasses.is_dataclass(obj):
                fields = [f for f in dataclasses.fields(obj) if not f.name.startswith("_")]
                if fields:
                    out.append("Fields: " + ", ".join(f"`{f.name}`" for f in fields) + ".")
                    out.append("")
            for member, value in _members(obj):
                if isinstance(value, property):
                    out += [f"- `{member}` (property): {_doc(value.fget) or '—'}"]
                else:
                    func = value.__func__ if isinstance(value, classmethod | staticmethod) else value
                    doc = _doc(func).replace("\n", " ") or "—"
                    out += [f"- `{_callable_signature(member, func)}`: {doc}"]
            out.append("")
        elif callable(obj) and not isinstance(obj, type):
            out += [f"#### `{_callable_signature(name, obj)}`", "", _doc(obj) or "—", ""]
        else:
            out += [f"#### `{name}`", "", f"`{obj!r}`"[:300], ""]
    return out


def _signature(func) -> str:
    sig = inspect.signature(func)
    ret = sig.return_annotation
    return f"{func.__name__}({', '.join(sig.parameters)}) -> {ret if isinstance(ret, str) else getattr(ret, '__name__', ret)}"


def render() -> str:
    out = [
        "# Plugin reference",
        "",
        "<!-- Generated by `huizhi docs` from platform/huizhi/hookspecs.py and specs.py. Do not edit by hand. -->",
        "",
        f"Host API version: **{HOST_API_VERSION}**.",
        "",
        inspect.cleandoc(hookspecs.__doc__ or ""),
        "",
        "## Hooks",
        "",
    ]
    for name in hook_names():
        func = getattr(hookspecs, name)
        out += [f"### `{_signature(func)}`", "", inspect.cleandoc(func.__doc__ or ""), ""]
    out += ["## Specs", "", inspect.cleandoc(specs.__doc__ or ""), ""]
    out += ["### Permissions (`Perm`)", "", "| value | meaning |", "| --- | --- |"]
    source = inspect.getsource(specs.Perm)
    for perm in specs.Perm:
        comment = next(
            (
                line.split("#", 1)[1].strip()
                for line in source.splitlines()
                if f'"{perm.value}"' in line and "#" in line
            ),
            "",
        )
        out.append(f"| `Perm.{perm.name}` | {comment} |")
    out += [
        "",
        "### Themes (`Theme`)",
        "",
        ", ".join(f"`Theme.{t.name}` ({t.value})" for t in specs.Theme),
        "",
    ]
    for cls in SPEC_TYPES:
        out += [
            f"### `{cls.__name__}`",
            "",
            inspect.cleandoc(cls.__doc__ or ""),
            "",
            "| field | type | default |",
            "| --- | --- | --- |",
        ]
        for field in dataclasses.fields(cls):
            if isinstance(field.default, enum.Enum):
                default = f"`{type(field.default).__name__}.{field.default.name}`"
            elif field.default is not dataclasses.MISSING:
                default = f"`{field.default!r}`"
            elif field.default_factory is not dataclasses.MISSING:
                default = f"`{field.default_factory()!r}`"  # type: ignore[operator]  # (MISSING was ruled out)
            else:
                default = "required"
            type_text = str(field.type).replace("|", "\\|")  # annotations are strings (PEP 563)
            out.append(f"| `{field.name}` | `{type_text}` | {default} |")
        out.append("")
    out += [
        "## Modules a plugin may import",
        "",
        "A plugin imports from the host only these modules and only the names listed here (a test fails",
        "when a plugin in plugins/ imports anything else). `huizhi.specs` is described above.",
        "",
    ]
    for name in CONTRACT_MODULES:
        if name != "huizhi.specs":
            out += _render_module(importlib.import_module(name))
    return "\n".join(out).rstrip() + "\n"
