"""``huizhi check-plugin``: the conformance check a department runs before shipping a plugin.

Given an installed distribution's name, a distribution's source folder or (once the host has
``huizhi.declarative``) a declarative plugin file, it

1. imports each of the plugin's modules in a fresh interpreter (no other plugin loaded first);
2. loads it beside every installed plugin on a temporary database: every spec valid, its ids and
   url paths clash with no installed plugin's, its tiles read declared ledgers and drill down to
   existing pages, the declared host API range (``PluginInfo.host_api``) and the ``huizhi``
   requirement of the distribution admit this host;
3. scans its sources: every ``huizhi`` name it uses is in the documented contract;
4. renders each page (Streamlit AppTest) and computes each tile under the host, on empty ledgers
   and then with demo rows (``huizhi_demo_rows``, or the host's generators for the shipped
   plugins), for a demo identity of each role: no exception, and no row of another department
   reaches a page or tile of a department's staff (see :func:`_leaks`).

It prints a readable report (English, for developers) and returns an exit code: 0 when every
check passed, 1 when one failed, 2 when the target could not be found.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.version import Version

from huizhi import HOST_API_VERSION, __version__
from huizhi.plugins import ENTRY_POINT_GROUP

DECLARATIVE_SUFFIXES = (".toml", ".yaml", ".yml")


class TargetError(LookupError):
    """The thing to check could not be found or read; the message says what was tried."""


@dataclass
class Target:
    """What is being checked: entry points (name -> module) and where their sources are."""

    label: str
    entry_points: dict[str, str]
    requirements: list[str] = field(default_factory=list)
    sys_path: list[str] = field(default_factory=list)  # a source folder not installed
    installed: bool = True
    plugin_object: tuple[str, object] | None = None  # a declarative plugin, loaded by the host


@dataclass
class Report:
    lines: list[str] = field(default_factory=list)
    failures: int = 0
    warnings: int = 0

    def ok(self, text: str) -> None:
        self.lines.append(f"  ok    {text}")

    def fail(self, text: str) -> None:
        self.failures += 1
        self.lines.append(f"  FAIL  {text}")

    def warn(self, text: str) -> None:
        self.warnings += 1
        self.lines.append(f"  warn  {text}")

    def section(self, title: str) -> None:
        self.lines.append(f"\n{title}")

    def text(self) -> str:
        verdict = "PASSED" if not self.failures else f"FAILED ({self.failures} problem(s))"
        return "\n".join([*self.lines, "", f"check-plugin: {verdict}, {self.warnings} warning(s)"])


# -- finding the target -------------------------------------------------------------------------


def resolve(target: str) -> Target:
    """An installed distribution's name, a source folder with pyproject.toml, or a declarative file."""
    path = Path(target)
    if path.suffix.lower() in DECLARATIVE_SUFFIXES:
        return _declarative(path)
    if path.is_dir():
        return _source_folder(path.resolve())
    try:
        dist = importlib.metadata.distribution(target)
    except importlib.metadata.PackageNotFoundError:
        raise TargetError(
            f"{target!r} is neither an installed distribution nor a folder with a pyproject.toml "
            "(give a distribution name such as huizhi-sensing, a path such as plugins/sensing, "
            "or a declarative plugin file)"
        ) from None
    eps = {ep.name: ep.value for ep in dist.entry_points if ep.group == ENTRY_POINT_GROUP}
    if not eps:
        raise TargetError(f"distribution {dist.name} declares no entry point in the {ENTRY_POINT_GROUP!r} group")
    return Target(f"distribution {dist.name} {dist.version}", eps, list(dist.requires or []))


def _source_folder(path: Path) -> Target:
    pyproject = path / "pyproject.toml"
    if not pyproject.is_file():
        raise TargetError(f"{path} has no pyproject.toml: a plugin is a Python distribution (see `huizhi new-plugin`)")
    with pyproject.open("rb") as fh:
        project = tomllib.load(fh).get("project", {})
    eps = dict(project.get("entry-points", {}).get(ENTRY_POINT_GROUP, {}))
    if not eps:
        raise TargetError(
            f"{pyproject} declares no [project.entry-points.{ENTRY_POINT_GROUP}]: the host would never find the plugin"
        )
    name = project.get("name", path.name)
    try:
        dist = importlib.metadata.distribution(name)
        installed = {ep.name: ep.value for ep in dist.entry_points if ep.group == ENTRY_POINT_GROUP} == eps
    except importlib.metadata.PackageNotFoundError:
        installed = False
    return Target(
        f"{path} ({name}{', installed' if installed else ', not installed'})",
        eps,
        list(project.get("dependencies", [])),
        sys_path=[] if installed else [str(path)],
        installed=installed,
    )


def _declarative(path: Path) -> Target:
    # A declarative file is checked by the same loader the host uses (huizhi.declarative), so a
    # file that passes here loads in the portal; every mistake is reported with its line.
    from huizhi.declarative import DeclarationError, load

    if not path.is_file():
        raise TargetError(f"{path} does not exist")
    try:
        plugin = load(path)
    except DeclarationError as exc:
        raise TargetError(f"{path}: the declarative file has mistakes:\n{exc.english()}") from exc
    name = _plugin_name(plugin, path.stem)
    return Target(f"declarative file {path}", {}, installed=False, plugin_object=(name, plugin))


def _plugin_name(plugin: object, default: str) -> str:
    info = getattr(plugin, "huizhi_plugin_info", None)
    try:
        return str(info().name) if callable(info) else default
    except Exception:
        return default


# -- the checks ---------------------------------------------------------------------------------


def _import_in_isolation(target: Target, report: Report) -> bool:
    report.section("import in isolation (a fresh interpreter, no other plugin loaded)")
    if target.plugin_object is not None:
        report.ok("declarative file: loaded by the host, nothing to import")
        return True
    imported = True
    env_path = ":".join(target.sys_path)
    for name, module in sorted(target.entry_points.items()):
        code = f"import importlib, sys; sys.path[:0] = {target.sys_path!r}; importlib.import_module({module!r})"
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
        if done.returncode == 0:
            report.ok(f"{name}: import {module}")
        else:
            last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
            report.fail(f"{name}: import {module} failed{' (with ' + env_path + ' on sys.path)' if env_path else ''}: {last}")
            imported = False
    return imported


def _requirements(target: Target, report: Report) -> None:
    report.section("host version")
    host_reqs = []
    for text in target.requirements:
        try:
            req = Requirement(text)
        except InvalidRequirement:
            report.fail(f"requirement {text!r} is not a valid requirement")
            continue
        if req.name.lower() == "huizhi" and (req.marker is None or req.marker.evaluate()):
            host_reqs.append(req)
    if target.plugin_object is not None:
        pass
    elif not host_reqs:
        report.warn("the distribution does not require huizhi (add dependencies = [\"huizhi>=0.1\"])")
    for req in host_reqs:
        if req.specifier and Version(__version__) not in req.specifier:
            report.fail(
                f"requires {req} but the installed host package is huizhi {__version__}: pip would refuse it "
                f"(the host package version is not the host API version {HOST_API_VERSION}; "
                "see docs/plugin-guide.md, versioning)"
            )
        else:
            report.ok(f"requires {req}; host package huizhi {__version__} satisfies it")


def _modules(target: Target) -> Iterator[Path]:
    """The .py files of the packages the entry points live in (tests excluded)."""
    seen: set[Path] = set()
    old = list(sys.path)
    sys.path[:0] = target.sys_path
    try:
        for module in target.entry_points.values():
            top = module.split(":")[0].split(".")[0]
            spec = importlib.util.find_spec(top)
            if spec is None or spec.origin is None:
                continue
            origin = Path(spec.origin)
            files = sorted(origin.parent.rglob("*.py")) if origin.name == "__init__.py" else [origin]
            for file in files:
                if "tests" not in file.relative_to(origin.parent).parts and file not in seen:
                    seen.add(file)
                    yield file
    finally:
        sys.path[:] = old


def _contract(target: Target, report: Report) -> None:
    from huizhi.plugin_docs import contract_violations

    report.section("uses only the documented plugin contract (docs/plugins.md)")
    if target.plugin_object is not None:
        report.ok("declarative file: no Python source")
        return
    files = list(_modules(target))
    problems = [p for f in files for p in contract_violations(f.read_text(encoding="utf-8"), str(f))]
    for problem in problems:
        report.fail(problem)
    if not problems:
        report.ok(f"{len(files)} source file(s): every huizhi name used is documented")


def _fresh_import(module: str) -> object:
    """Import a source folder's module anew: a module of that name imported earlier in this
    process (an older copy of the folder) must not stand in for what is on disk now."""
    top = module.split(".")[0]
    for name in [m for m in sys.modules if m == top or m.startswith(f"{top}.")]:
        del sys.modules[name]
    importlib.invalidate_caches()
    return importlib.import_module(module)


def _plugin_names(target: Target, registry: Any) -> list[str]:
    if target.plugin_object is not None:
        return [target.plugin_object[0]]
    return [name for name in sorted(target.entry_points) if name in registry.plugins]


def check(target: Target, *, database_url: str | None = None, data_dir: Path | None = None) -> Report:
    """Run every check on ``target``; the report says what passed and what did not."""
    report = Report([f"huizhi check-plugin: {target.label}", f"host package huizhi {__version__}, host API {HOST_API_VERSION}"])
    imported = _import_in_isolation(target, report)
    _requirements(target, report)
    _contract(target, report)
    if not imported:
        report.lines.append("\n(not loaded under the host: it does not import)")
        return report
    with tempfile.TemporaryDirectory(prefix="huizhi-check-") as tmp:
        _under_host(target, report, database_url or f"duckdb:///{Path(tmp) / 'check.duckdb'}", data_dir or Path(tmp))
    return report


def _under_host(target: Target, report: Report, database_url: str, data_dir: Path) -> None:
    from huizhi.config import load_settings
    from huizhi.host import create_host

    extra: list[tuple[str, object]] = []
    old = list(sys.path)
    sys.path[:0] = target.sys_path
    try:
        if target.plugin_object is not None:
            extra.append(target.plugin_object)
        elif not target.installed:
            extra += [(name, _fresh_import(module.split(":")[0])) for name, module in target.entry_points.items()]
        settings = load_settings({}, database_url=database_url, data_dir=data_dir)
        with create_host(settings, extra_plugins=extra, use_entry_points=True) as host:
            report.section("loads beside every installed plugin (specs, ids, url paths, host API, references)")
            names = _plugin_names(target, host.registry)
            if not names:
                report.fail("no plugin of this target was found by the host")
                return
            for name in names:
                record = host.registry.plugins[name]
                if record.status != "enabled":
                    for reason in record.problems or [record.reason]:
                        report.fail(f"{name}: {reason}")
                    continue
                info = record.info
                assert info is not None
                report.ok(
                    f"{name}: {info.title} v{info.version}, host API {info.host_api} admits {HOST_API_VERSION}; "
                    f"{len(record.ledgers)} ledger(s), {len(record.pages)} page(s), {len(record.tiles)} tile(s), "
                    f"{len(record.connectors)} connector(s)"
                )
            enabled = [host.registry.plugins[n] for n in names if host.registry.plugins[n].status == "enabled"]
            if enabled:
                _run_everything(host, enabled, report)
    finally:
        sys.path[:] = old


# -- rendering and computing under each role -----------------------------------------------------


@dataclass(frozen=True)
class _Who:
    label: str
    identity: Any
    outsider: bool = False  # staff of a department that owns none of the seeded rows


def _identities(host: Any, records: list[Any], outsider: str) -> list[_Who]:
    from huizhi.testing import identity

    depts = sorted({r.department for r in records if r.department} | {
        spec.department for r in records for spec in r.ledgers
    })
    people = [_Who("leader", identity("leader")), _Who("platform_admin", identity("platform_admin"))]
    for dept in depts:
        people += [_Who(f"staff of {dept}", identity("staff", dept)), _Who(f"ledger_admin of {dept}", identity("ledger_admin", dept))]
    people.append(_Who(f"staff of {outsider} (owns none of the rows)", identity("staff", outsider), outsider=True))
    return people


def _outsider(host: Any, records: list[Any]) -> str:
    """A department that is none of the plugin's and whose rows are left out of the seed."""
    own = {r.department for r in records} | {spec.department for r in records for spec in r.ledgers}
    for dept in host.settings.departments.ids():
        if dept not in own:
            return str(dept)
    raise RuntimeError("every department is one of the plugin's: cannot check row scoping")


def _demo_rows(host: Any, ledger_id: str) -> tuple[Any, str] | None:
    """The rows to seed a ledger with and where they came from, or None."""
    import pandas as pd

    shipped = host.registry.demo_rows.get(ledger_id)
    if shipped is not None:
        columns = [c.name for c in host.registry.ledger(ledger_id).columns]
        frame = pd.DataFrame([{c: row.get(c) for c in columns} for row in shipped[0].rows], columns=columns)
        return frame, "the plugin's huizhi_demo_rows"
    try:
        from huizhi_seeds.loader import GENERATORS, generate
    except ImportError:
        return None
    if ledger_id not in GENERATORS:
        return None
    return generate(ledger_id, scale=0.005).to_pandas(), "the host's demo generator (scale 0.005)"


def _page_text(at: Any) -> str:
    """Everything an AppTest run shows as text, for the leak check."""
    parts: list[str] = []
    for kind in ("title", "header", "subheader", "markdown", "caption", "text", "code", "error", "warning",
                 "info", "success", "json"):
        parts += [str(getattr(e, "value", "")) for e in getattr(at, kind, [])]
    parts += [f"{m.label} {m.value}" for m in at.metric]
    for frame in list(at.dataframe) + list(at.table):
        value = frame.value
        parts.append(value.to_csv() if hasattr(value, "to_csv") else str(value))
    return "\n".join(parts)


def _tile_fingerprint(value: Any) -> str:
    return repr((getattr(value, "value", value), getattr(value, "detail", None)))


def _run_everything(host: Any, records: list[Any], report: Report) -> None:
    from huizhi.access import AccessDenied
    from huizhi.specs import TileValue
    from huizhi.testing import commit_rows, compute_tile, render_page

    outsider = _outsider(host, records)
    outsider_name = host.settings.departments.name(outsider)
    people = _identities(host, records, outsider)
    pages = [p for r in records for p in r.pages]
    tiles = [t for r in records for t in r.tiles]
    ledgers = [spec for r in records for spec in r.ledgers]

    def tiles_for(who: _Who, phase: str) -> dict[str, str]:
        seen = {}
        for tile in tiles:
            if not who.identity.allows(tile.permission, tile.department):
                continue
            try:
                value = compute_tile(host, tile.id, who.identity)
            except AccessDenied:
                report.ok(f"tile {tile.id} ({phase}) for {who.label}: refused with a message (AccessDenied)")
                continue
            except Exception as exc:
                report.fail(f"tile {tile.id} ({phase}) for {who.label}: raised {type(exc).__name__}: {exc}")
                continue
            if not isinstance(value, TileValue):
                report.fail(f"tile {tile.id} ({phase}) for {who.label}: returned {type(value).__name__}, not TileValue")
                continue
            seen[tile.id] = _tile_fingerprint(value)
        return seen

    def pages_for(who: _Who, phase: str, canaries: Iterable[str] = ()) -> int:
        shown = 0
        for page in pages:
            if not who.identity.allows(page.permission, page.department):
                continue
            at = render_page(host, page.url_path, who.identity)
            shown += 1
            if at.exception:
                report.fail(f"page /{page.url_path} ({phase}) for {who.label}: {at.exception[0].value}")
                continue
            text = _page_text(at)
            leaked = sorted({c for c in canaries if c in text})
            if leaked:
                report.fail(
                    f"page /{page.url_path} for {who.label} shows rows of other departments: "
                    f"{', '.join(leaked[:5])}"
                )
        return shown

    report.section("pages and tiles on empty ledgers, for each role")
    failures_before = report.failures
    empty = {who.label: tiles_for(who, "empty") for who in people}
    shown = sum(pages_for(who, "empty") for who in people)
    if report.failures == failures_before:
        report.ok(f"{shown} page render(s), {sum(len(v) for v in empty.values())} tile computation(s), no exception")

    report.section(f"with demo rows (rows of {outsider_name} left out), for each role")
    canaries: set[str] = set()
    seeded = 0
    for spec in ledgers:
        found = _demo_rows(host, spec.id)
        if found is None:
            report.warn(f"ledger {spec.id}: no demo rows (ship huizhi_demo_rows): pages and tiles were checked empty only")
            continue
        frame, source = found
        if spec.department_column is not None:
            frame = frame[frame[spec.department_column] != outsider_name]
        try:
            commit_rows(host, spec.id, frame.reset_index(drop=True))
        except Exception as exc:
            report.fail(f"ledger {spec.id}: its demo rows ({source}) do not pass the ledger's own validation: {exc}")
            continue
        seeded += 1
        report.ok(f"ledger {spec.id}: {len(frame)} rows committed from {source}")
        keys = [k for k in spec.key if spec.column(k).dtype == "str"]
        for key in keys:
            canaries |= {str(v) for v in frame[key].dropna() if len(str(v)) >= 4}
    if not seeded:
        return
    failures_before = report.failures
    for who in people:
        values = tiles_for(who, "with rows")
        if who.outsider:
            # The outsider owns none of the seeded rows: whatever it may see must look exactly as
            # on empty ledgers. A difference means rows of other departments reached it.
            for tile_id, fingerprint in values.items():
                if empty[who.label].get(tile_id) != fingerprint:
                    report.fail(
                        f"tile {tile_id} for {who.label} changed when only other departments' rows were "
                        f"added: rows of other departments reach it ({empty[who.label].get(tile_id)} -> {fingerprint})"
                    )
        row_canaries = canaries if who.outsider else ()
        pages_for(who, "with rows", row_canaries)
    if report.failures == failures_before:
        report.ok(
            f"{len(people)} identities ({', '.join(w.label for w in people)}): every visible page rendered and "
            f"tile computed; no row of another department reached staff of {outsider}"
        )


def main(target_text: str, database_url: str | None = None) -> int:
    try:
        target = resolve(target_text)
    except TargetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    report = check(target, database_url=database_url)
    print(report.text())
    return 1 if report.failures else 0
