"""Finding, checking and isolating plugins.

:func:`load_registry` builds a :class:`Registry` from the ``huizhi`` entry-point group (and any
plugin objects a test passes in). Each plugin's hooks are called one plugin at a time, so a
plugin that fails to import, raises in a hook, returns an invalid spec, targets an incompatible
host API, implements a hook that does not exist (a misspelt name), or clashes with another plugin
is *disabled with a reason* while the rest load.
In strict mode (``HUIZHI_STRICT=1``, used by CI) any such problem raises :class:`PluginError`.
"""

from __future__ import annotations

import difflib
import importlib.metadata
import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pluggy
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from huizhi import HOST_API_VERSION, hookspecs
from huizhi.district import DAXING, Departments
from huizhi.specs import (
    ConnectorSpec,
    DemoPerson,
    DemoRows,
    LedgerSpec,
    PageSpec,
    PluginInfo,
    SpecError,
    SyncSpec,
    TileSpec,
    validate,
)

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "huizhi"
BUILTIN_PLUGINS = frozenset({"builtin_pages", "builtin_connectors"})

# The hooks a plugin may implement: every function of the hookspec module named huizhi_*.
HOOK_NAMES = tuple(sorted(n for n in dir(hookspecs) if n.startswith("huizhi_")))

Status = Literal["enabled", "disabled", "not loaded"]


class PluginError(RuntimeError):
    """Raised in strict mode when any plugin could not be loaded cleanly."""


@dataclass
class PluginRecord:
    """What the host knows about one plugin: shown by ``huizhi plugins`` and the admin page."""

    name: str  # the entry-point name (the plugin's registration name)
    module: str
    distribution: str | None = None
    info: PluginInfo | None = None
    status: Status = "enabled"
    reason: str = ""
    builtin: bool = False
    declared: Path | None = None  # the declarative file this plugin comes from (huizhi.declarative)
    reason_zh: str = ""  # the reason in Chinese, when the host has one (a declarative file's problems)
    ledgers: list[LedgerSpec] = field(default_factory=list)
    pages: list[PageSpec] = field(default_factory=list)
    tiles: list[TileSpec] = field(default_factory=list)
    connectors: list[ConnectorSpec] = field(default_factory=list)
    demo_rows: list[DemoRows] = field(default_factory=list)
    demo_people: list[DemoPerson] = field(default_factory=list)
    syncs: list[SyncSpec] = field(default_factory=list)

    @property
    def title(self) -> str:
        return self.info.title if self.info else self.name

    @property
    def version(self) -> str:
        return self.info.version if self.info else ""

    @property
    def department(self) -> str | None:
        return self.info.department if self.info else None

    # each reason on its own (``reason`` joins them with "; "), for reports that list them
    problems: list[str] = field(default_factory=list)

    def disable(self, reason: str) -> None:
        self.problems.append(reason)
        if self.status == "enabled":
            self.status = "disabled"
            self.reason = reason
        else:
            self.reason = f"{self.reason}; {reason}"
        log.warning("plugin %s disabled: %s", self.name, reason)


@dataclass
class Registry:
    """Everything the enabled plugins contribute, keyed by id. Built once per host."""

    plugins: dict[str, PluginRecord]
    ledgers: dict[str, tuple[LedgerSpec, str]] = field(default_factory=dict)
    pages: dict[str, tuple[PageSpec, str]] = field(default_factory=dict)
    tiles: dict[str, tuple[TileSpec, str]] = field(default_factory=dict)
    connectors: dict[str, tuple[ConnectorSpec, str]] = field(default_factory=dict)
    demo_rows: dict[str, tuple[DemoRows, str]] = field(default_factory=dict)
    demo_people: list[tuple[DemoPerson, str]] = field(default_factory=list)
    syncs: dict[str, tuple[SyncSpec, str]] = field(default_factory=dict)
    # the plugin manager the plugins are registered with, for hooks called after loading (events)
    pm: pluggy.PluginManager | None = field(default=None, repr=False)

    def enabled(self) -> list[PluginRecord]:
        return [p for p in self.plugins.values() if p.status == "enabled"]

    def problems(self) -> list[PluginRecord]:
        return [p for p in self.plugins.values() if p.status == "disabled"]

    def ledger(self, ledger_id: str) -> LedgerSpec:
        try:
            return self.ledgers[ledger_id][0]
        except KeyError:
            raise KeyError(f"no enabled plugin declares ledger {ledger_id!r}") from None

    def plugin_of_page(self, url_path: str) -> str:
        return self.pages[url_path][1]

    def event_listeners(self) -> list[tuple[str, Any]]:
        """(plugin name, function) of every enabled plugin's ``huizhi_track_event``."""
        if self.pm is None:
            return []
        return [
            (impl.plugin_name, impl.function)
            for impl in self.pm.hook.huizhi_track_event.get_hookimpls()
            if impl.plugin_name in self.plugins and self.plugins[impl.plugin_name].status == "enabled"
        ]


def create_plugin_manager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager("huizhi")
    pm.add_hookspecs(hookspecs)
    return pm


def _entry_points() -> list[importlib.metadata.EntryPoint]:
    return sorted(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: ep.name)


def _call(pm: pluggy.PluginManager, hook_name: str, plugin_name: str) -> Any:
    """Call one plugin's implementation of one hook; ``None`` when it has none."""
    for impl in getattr(pm.hook, hook_name).get_hookimpls():
        if impl.plugin_name == plugin_name:
            return impl.function()
    return None


def _unknown_hooks(pm: pluggy.PluginManager, plugin: object) -> list[str]:
    """Problems for this plugin's hook implementations that match no hookspec.

    A misspelt hook (``huizhi_tile`` for ``huizhi_tiles``) would otherwise never be called and
    nobody would know: the rule of pluggy's ``PluginManager.check_pending()`` (an implementation
    without a spec must be marked ``optionalhook``), applied to one plugin so the message names it.
    """
    problems = []
    for caller in pm.get_hookcallers(plugin) or []:
        if caller.has_spec():
            continue
        if any(impl.plugin is plugin and not impl.optionalhook for impl in caller.get_hookimpls()):
            close = difflib.get_close_matches(caller.name, HOOK_NAMES, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else f" (known hooks: {', '.join(HOOK_NAMES)})"
            problems.append(f"hook implementation {caller.name!r} matches no huizhi hook{hint}")
    return problems


def _collect(record: PluginRecord, pm: pluggy.PluginManager, departments: Departments) -> None:
    """Call every hook of one plugin and check what it returns; disable it on any problem.

    Every problem of every spec is reported (joined with "; "), not only the first, so an author
    fixes them in one round; a plugin with any problem contributes nothing.
    """
    name = record.name
    problems: list[str] = []
    try:
        info = _call(pm, "huizhi_plugin_info", name)
        if info is None:
            raise SpecError("it does not implement huizhi_plugin_info (required)")
        if not isinstance(info, PluginInfo):
            raise SpecError(f"huizhi_plugin_info returned {type(info).__name__}, expected PluginInfo")
        validate(info)
        record.info = info
        if Version(HOST_API_VERSION) not in SpecifierSet(info.host_api):
            problems.append(
                f"it supports host API {info.host_api}, but this host provides API {HOST_API_VERSION}; "
                f"install a plugin version that supports {HOST_API_VERSION} (or a host whose API version "
                f"is in {info.host_api})"
            )
        problems.extend(_department_problems(departments, info.department, f"plugin {info.name!r}"))
    except Exception as exc:  # a plugin can fail in any way; contain it and say how
        log.exception("plugin %s failed while loading", name)
        record.disable(f"{type(exc).__name__}: {exc}")
        return
    collected: dict[str, list[Any]] = {}
    for hook, kind, attr in (
        ("huizhi_ledgers", LedgerSpec, "ledgers"),
        ("huizhi_pages", PageSpec, "pages"),
        ("huizhi_tiles", TileSpec, "tiles"),
        ("huizhi_connectors", ConnectorSpec, "connectors"),
        ("huizhi_syncs", SyncSpec, "syncs"),
        ("huizhi_demo_rows", DemoRows, "demo_rows"),
        ("huizhi_demo_identities", DemoPerson, "demo_people"),
    ):
        try:
            specs = _call(pm, hook, name) or []
        except Exception as exc:
            log.exception("plugin %s: %s raised", name, hook)
            problems.append(f"{hook} raised {type(exc).__name__}: {exc}")
            continue
        if not isinstance(specs, list | tuple):
            problems.append(f"{hook} returned {type(specs).__name__}, expected a list of {kind.__name__}")
            continue
        good = []
        for spec in specs:
            if not isinstance(spec, kind):
                problems.append(f"{hook} returned a {type(spec).__name__}, expected {kind.__name__}")
                continue
            spec_problems = []
            try:
                validate(spec)
            except SpecError as exc:
                spec_problems.append(f"SpecError: {exc}")
            spec_problems += _department_problems(departments, getattr(spec, "department", None), f"{hook} item")
            for granted in getattr(spec, "departments", ()):  # a connector's grants
                spec_problems += _department_problems(
                    departments, granted, f"{hook} item {getattr(spec, 'id', '')!r} departments"
                )
            problems.extend(spec_problems)
            if not spec_problems:
                good.append(spec)
        ids = [_spec_key(spec) for spec in specs]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            problems.append(f"{hook} declares {', '.join(map(repr, dupes))} more than once")
        collected[attr] = good
    own_ledgers = {ledger.id for ledger in collected.get("ledgers", ())}
    for demo in collected.get("demo_rows", ()):
        if demo.ledger not in own_ledgers:
            problems.append(f"huizhi_demo_rows: ledger {demo.ledger!r} is not one of this plugin's ledgers")
    if problems:
        for problem in problems:
            record.disable(problem)
        return
    for attr, specs in collected.items():
        setattr(record, attr, list(specs))


def _spec_key(spec: object) -> str:
    for attr in ("id", "url_path", "ledger", "sub"):
        value = getattr(spec, attr, None)
        if value:
            return str(value)
    return repr(spec)


def _department_problems(departments: Departments, dept_id: str | None, where: str) -> list[str]:
    try:
        _check_department(departments, dept_id, where)
    except SpecError as exc:
        return [f"SpecError: {exc}"]
    return []


def _check_references(records: list[PluginRecord]) -> None:
    """A tile that reads a ledger no enabled plugin declares, or drills down to a page that does
    not exist, would fail or lead nowhere in front of a leader: disable its plugin, saying which.
    Repeated until nothing changes, since disabling one plugin removes its ledgers and pages."""
    while True:
        enabled = [r for r in records if r.status == "enabled"]
        ledgers = {ledger.id for r in enabled for ledger in r.ledgers}
        pages = {page.url_path for r in enabled for page in r.pages}
        changed = False
        for record in enabled:
            problems = []
            for tile in record.tiles:
                problems += [
                    f"tile {tile.id!r} reads ledger {lid!r}, which no enabled plugin declares "
                    f"(declared: {', '.join(sorted(ledgers)) or 'none'})"
                    for lid in tile.ledgers
                    if lid not in ledgers
                ]
                if tile.drilldown is not None and tile.drilldown not in pages:
                    close = difflib.get_close_matches(tile.drilldown, sorted(pages), n=1)
                    hint = f" (did you mean {close[0]!r}?)" if close else ""
                    problems.append(
                        f"tile {tile.id!r} drills down to page {tile.drilldown!r}, which no enabled plugin declares{hint}"
                    )
            for problem in problems:
                record.disable(problem)
            changed = changed or bool(problems)
        if not changed:
            return


def _check_department(departments: Departments, dept_id: str | None, where: str) -> None:
    """Department ids are checked against the deployment's list (``Settings.departments``)."""
    if dept_id is None:
        return
    try:
        departments.get(dept_id)
    except KeyError as exc:
        raise SpecError(f"{where}: {exc.args[0]}") from None


def _keys(record: PluginRecord) -> Iterable[tuple[str, str]]:
    """Every id a plugin claims, as (kind, id), for clash detection."""
    if record.info:
        yield "plugin name", record.info.name
    for ledger in record.ledgers:
        yield "ledger", ledger.id
    for page in record.pages:
        yield "page url path", page.url_path
    for tile in record.tiles:
        yield "tile", tile.id
    for conn in record.connectors:
        yield "connector", conn.id
    for sync in record.syncs:
        yield "sync", sync.id


def _resolve_clashes(records: list[PluginRecord]) -> None:
    """Two plugins claiming one id: disable both, naming each other (a built-in keeps its id)."""
    owners: dict[tuple[str, str], list[PluginRecord]] = defaultdict(list)
    for record in records:
        if record.status == "enabled":
            for key in _keys(record):
                owners[key].append(record)
    for (kind, value), claimants in owners.items():
        if len(claimants) < 2:
            continue
        names = " and ".join(repr(c.name) for c in claimants)
        builtins = [c for c in claimants if c.builtin]
        losers = [c for c in claimants if not c.builtin] if builtins else claimants
        for loser in losers:
            loser.disable(f"{kind} {value!r} is declared by both plugins {names}")


def _declared_name(path: Path) -> str:
    """The plugin name a declarative file gives itself (``[plugin] name``), else its file name's
    stem: a broken file is listed under the name it meant to have when that much can be read."""
    import tomllib

    try:
        name = tomllib.loads(path.read_text(encoding="utf-8")).get("plugin", {}).get("name")
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, AttributeError):
        name = None
    return name if isinstance(name, str) and name else path.stem


def load_registry(
    load_plugins: Iterable[str] | None = None,
    *,
    strict: bool = False,
    extra_plugins: Iterable[tuple[str, object]] = (),
    disabled_by_admin: Iterable[str] = (),
    use_entry_points: bool = True,
    departments: Departments = DAXING,
    declarative_dir: Path | None = None,
) -> Registry:
    """Discover, check and register plugins.

    ``load_plugins`` is an allow-list of entry-point names (None loads all; built-ins are
    always loaded). ``extra_plugins`` registers (name, module-or-object) pairs directly, for tests
    and scaffolding. ``disabled_by_admin`` names plugins an admin switched off. ``departments``
    is the deployment's list (``Settings.departments``; the host always passes it) that plugin
    and spec department ids are checked against. ``declarative_dir`` is the folder of declarative
    plugin files (``Settings.declarative_dir``): each ``*.toml`` there is checked by
    :func:`huizhi.declarative.load` and registered like a plugin module; a file with mistakes is
    disabled with every problem and its line as the reason.
    """
    from huizhi import declarative

    allow = None if load_plugins is None else set(load_plugins) | BUILTIN_PLUGINS
    admin_off = set(disabled_by_admin)
    pm = create_plugin_manager()
    records: dict[str, PluginRecord] = {}

    candidates: list[tuple[str, Any]] = []
    if use_entry_points:
        for ep in _entry_points():
            candidates.append((ep.name, ep))
    candidates.extend(extra_plugins)
    for path in declarative.discover(declarative_dir):
        try:
            candidates.append((_declared_name(path), declarative.load(path, departments)))
        except declarative.DeclarationError as exc:
            candidates.append((_declared_name(path), exc))

    for name, source in candidates:
        is_ep = isinstance(source, importlib.metadata.EntryPoint)
        broken = source if isinstance(source, declarative.DeclarationError) else None
        record = PluginRecord(
            name=name,
            module=(
                source.value if is_ep
                else f"declarative:{broken.path.name}" if broken
                else getattr(source, "__name__", type(source).__name__)
            ),  # fmt: skip
            distribution=source.dist.name if is_ep and source.dist else None,
            builtin=name in BUILTIN_PLUGINS,
            declared=broken.path if broken else source.path if isinstance(source, declarative.DeclaredPlugin) else None,
        )
        if name in records:
            records[name].disable(f"two plugins are registered under the name {name!r}")
            continue
        records[name] = record
        if allow is not None and name not in allow:
            record.status, record.reason = "not loaded", "not in the allow-list (HUIZHI_LOAD_PLUGINS)"
            continue
        if name in admin_off and not record.builtin:
            record.status, record.reason = "disabled", "disabled by a platform admin"
            continue
        if broken is not None:
            record.disable(broken.english())
            record.reason_zh = broken.chinese()
            continue
        try:
            module = source.load() if is_ep else source
            pm.register(module, name=name)
        except Exception as exc:
            log.exception("plugin %s failed to import or register", name)
            record.disable(f"{type(exc).__name__}: {exc}")
            continue
        _collect(record, pm, departments)
        # A plugin with a misspelt hook is disabled, like one with an invalid spec: loading the
        # rest of it would show a department's pages without the tiles or ledgers it meant to add.
        for problem in _unknown_hooks(pm, module):
            record.disable(problem)

    ordered = list(records.values())
    _resolve_clashes(ordered)
    _check_references(ordered)

    registry = Registry(plugins=records, pm=pm)
    for record in ordered:
        if record.status != "enabled":
            continue
        for ledger in record.ledgers:
            registry.ledgers[ledger.id] = (ledger, record.name)
        for page in record.pages:
            registry.pages[page.url_path] = (page, record.name)
        for tile in record.tiles:
            registry.tiles[tile.id] = (tile, record.name)
        for conn in record.connectors:
            registry.connectors[conn.id] = (conn, record.name)
        for demo in record.demo_rows:
            registry.demo_rows[demo.ledger] = (demo, record.name)
        registry.demo_people += [(person, record.name) for person in record.demo_people]
        for sync in record.syncs:
            registry.syncs[sync.id] = (sync, record.name)

    problems = [r for r in ordered if r.status == "disabled" and r.reason != "disabled by a platform admin"]
    if strict and problems:
        detail = "\n".join(f"- {r.name}: {r.reason}" for r in problems)
        raise PluginError(f"strict mode: {len(problems)} plugin(s) could not be loaded:\n{detail}")
    return registry
