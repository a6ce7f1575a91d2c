"""Typed specs that plugins return from their hooks.

Every hook in :mod:`huizhi.hookspecs` returns one of these (or a list of them). The host checks
each spec with :func:`validate` when it loads a plugin; a spec that fails is reported against the
plugin that returned it and the plugin is disabled, so a mistake is found at start-up, not when a
leader opens the cockpit.

Ids are lower-case ASCII (``[a-z][a-z0-9_]*``) because they become table names and URL paths.
Titles are what people read (Chinese in this deployment).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from huizhi.context import PageContext, TileContext

__all__ = [
    "Breakdown",
    "ColumnSpec",
    "ColumnType",
    "ConnectorSpec",
    "DemoPerson",
    "DemoRows",
    "ID_PATTERN",
    "LedgerSpec",
    "PageSpec",
    "Perm",
    "PluginInfo",
    "RowCheck",
    "Series",
    "SpecError",
    "SyncSpec",
    "Target",
    "Theme",
    "TileSpec",
    "TileValue",
    "TopItems",
    "URL_PATH_PATTERN",
    "validate",
]

ID_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
URL_PATH_PATTERN = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")


class SpecError(ValueError):
    """A spec returned by a plugin is invalid. The message says which field and why."""


class Perm(StrEnum):
    """What an action needs. The host decides who has it (see :mod:`huizhi.access`).

    Department-scoped permissions (``VIEW``, ``LEDGER_*``) are checked against the department
    that owns the page, tile or ledger.
    """

    SIGNED_IN = "signed_in"  # any identity that maps to at least one role (the home page)
    VIEW = "view"  # a department's pages and tiles: its staff, its ledger admins, leaders
    LEDGER_READ = "ledger.read"  # read ledger rows (row-level scoped by department)
    LEDGER_UPLOAD = "ledger.upload"  # upload and commit a new version of a ledger
    LEDGER_ROLLBACK = "ledger.rollback"  # roll a ledger back to an earlier version
    COCKPIT = "cockpit"  # the leadership cockpit
    PLATFORM_ADMIN = "platform.admin"  # plugin status, role mapping, audit log


class Theme(StrEnum):
    """Cockpit themes, following the chapters of the action plan."""

    SENSING = "感知底座"
    GOVERNMENT = "数字政府"
    PUBLIC_SERVICE = "公共服务"
    GOVERNANCE = "城市治理"
    ECONOMY = "数字经济"


@dataclass(frozen=True)
class PluginInfo:
    """Who a plugin is. Returned by ``huizhi_plugin_info``.

    ``host_api`` is a version specifier (PEP 440, e.g. ``">=1.0,<2"``) for the host API versions
    the plugin was written against; the host refuses the plugin when its own
    :data:`huizhi.HOST_API_VERSION` is outside that range.
    """

    name: str
    title: str
    department: str | None
    version: str
    host_api: str
    description: str = ""


ColumnType = Literal["str", "int", "float", "date", "bool"]


@dataclass(frozen=True)
class ColumnSpec:
    """One column of a ledger: its stored name, its Chinese header and its rules.

    The rules here are what the template explains, what validation enforces cell by cell and what
    the error messages quote, so they are data rather than code.
    """

    name: str
    label: str
    dtype: ColumnType = "str"
    required: bool = True
    choices: tuple[str, ...] | None = None
    min: float | None = None
    max: float | None = None
    pattern: str | None = None
    pattern_hint: str = ""  # how to write a value that matches ``pattern``, in words
    unique: bool = False
    description: str = ""
    example: str = ""
    aliases: tuple[str, ...] = ()  # other headers accepted on upload (e.g. old template wording)


@dataclass(frozen=True)
class RowCheck:
    """A rule across columns of one row, declared by a plugin.

    ``check`` receives the typed DataFrame and returns a boolean Series (True = row passes).
    ``columns`` names the cells an error is reported against. ``soft`` rules are warnings: they
    are shown but do not block a commit.
    """

    name: str
    columns: tuple[str, ...]
    message: str
    check: Callable[[Any], Any]
    soft: bool = False


@dataclass(frozen=True)
class LedgerSpec:
    """A department ledger (台账): a table kept current by uploads, versioned by the host.

    ``key`` names the columns that identify a row across versions (diffs and uniqueness).
    ``department_column``, when set, holds each row's owning department (its Chinese name as in
    :mod:`huizhi.district`); staff of a department read only their own rows, while the ledger's
    owning ``department`` (the steward of a district-wide ledger) and leaders read all rows.
    """

    id: str
    title: str
    department: str
    columns: tuple[ColumnSpec, ...]
    key: tuple[str, ...]
    department_column: str | None = None
    row_checks: tuple[RowCheck, ...] = ()
    period: Literal["monthly", "quarterly"] | None = None
    description: str = ""

    @property
    def table_name(self) -> str:
        return f"ledger_{self.id}"

    def column(self, name: str) -> ColumnSpec:
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(name)


@dataclass(frozen=True)
class PageSpec:
    """A Streamlit page in the portal.

    ``render(ctx)`` draws the page; it gets a :class:`huizhi.context.PageContext` with the
    signed-in identity and permission-scoped data access. ``department`` puts the page in that
    department's menu section (``None`` for platform pages, which use ``section``).
    """

    title: str
    url_path: str
    render: Callable[[PageContext], None]
    department: str | None = None
    permission: Perm = Perm.VIEW
    icon: str = ":material/article:"
    section: str | None = None
    order: int = 100
    default: bool = False


@dataclass(frozen=True)
class Target:
    """A dated target from the action plan, e.g. 10 cockpit scenes by 2023-12-31.

    ``baseline`` and ``start`` give the line from which progress is expected to run; without them
    a tile is only judged at and after the deadline (and "at risk" in the last ``warn_days``).
    ``higher_is_better`` is False for targets like "overdue inspections at most 5%".
    ``source`` cites the plan (e.g. "行动计划 第105行").

    ``scope`` says which data the target applies to. ``"district"`` (the default): a figure for
    the whole district over the whole plan, such as 16万 devices registered; when the cockpit's
    street, department or period filter narrows the value, the value is shown without a verdict
    (监测, with a note saying the target is district-wide). ``"each"``: the target holds for any
    part of the district, such as a rate (联网率 100%, 按期办结率 95%); it is judged under every
    filter.
    """

    value: float
    deadline: dt.date
    baseline: float | None = None
    start: dt.date = dt.date(2022, 10, 9)  # the plan's date of issue
    higher_is_better: bool = True
    tolerance: float = 0.05  # how far behind the expected line still counts as on track
    warn_days: int = 90
    source: str = ""
    scope: Literal["district", "each"] = "district"


@dataclass(frozen=True)
class TileValue:
    """What a tile's query returns.

    ``detail`` is a :class:`Series`, :class:`Breakdown` or :class:`TopItems` (the cockpit draws
    them), or anything the tile's own ``render`` draws. ``as_of`` is when the data was current,
    in UTC (naive) or any time zone (the host normalises it). ``target``, when given, is this
    value's own target and is used instead of ``TileSpec.target``: a target that moves with the
    data, such as this reporting period's deadline."""

    value: float | None
    as_of: dt.datetime | None = None
    detail: Any = None
    note: str = ""
    target: Target | None = None


# What a tile's ``detail`` may be: the cockpit draws these without any plotting code in the plugin.


@dataclass(frozen=True)
class Series:
    """A time series (trend). ``points`` are (date or label, value). ``target`` draws a line.

    ``unit`` is the unit of the points (``"%"``: percentages, 91.2 not 0.912), which may differ
    from the tile's; None means the tile's unit (the cockpit fills it in when the tile returns).
    Every chart, table and export of the series formats its points with this unit, never the
    tile's.
    """

    points: tuple[tuple[Any, float], ...]
    name: str = ""
    unit: str | None = None
    kind: Literal["line", "bar"] = "line"
    target: float | None = None
    # True: the last point is a period still running (this month so far). It is drawn apart,
    # labelled 本月至今, and the "最新" value is the last complete point; a tile's headline and
    # verdict must not be that point. None: the cockpit decides — a monthly series (dates on the
    # 1st) whose last point is the month of ``ctx.today`` is partial. False: it is complete.
    partial: bool | None = None


@dataclass(frozen=True)
class Breakdown:
    """Values by street (镇街), department or category: drawn as horizontal bars.

    ``unit`` is the unit of the items, which may differ from the tile's (a count tile broken
    down into percentages of a baseline says ``unit="%"``); None means the tile's unit. Every
    chart, table and export formats the items with this unit.
    """

    items: tuple[tuple[str, float], ...]
    by: str = "镇街"  # what the labels are, as a Chinese column header
    unit: str | None = None
    limit: int = 12  # bars shown; the Excel export has them all


@dataclass(frozen=True)
class TopItems:
    """A small table of the top items (e.g. the most overdue devices)."""

    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]


@dataclass(frozen=True)
class TileSpec:
    """A cockpit tile.

    ``query(ctx)`` computes a :class:`TileValue` from permission-scoped ledger reads
    (``ctx.ledger(...)``); ``render(ctx, value)`` optionally draws a chart under the number.
    ``ledgers`` lists the ledgers the query reads, so the host can invalidate cached results
    exactly when one of them commits. ``drilldown`` is the url path of the page to open.
    """

    id: str
    title: str
    department: str | None  # None: a cross-department tile (any cockpit viewer; rows still scoped)
    theme: Theme
    query: Callable[[TileContext], TileValue]
    unit: str = ""
    render: Callable[[TileContext, TileValue], None] | None = None
    target: Target | None = None
    drilldown: str | None = None
    permission: Perm = Perm.COCKPIT
    ledgers: tuple[str, ...] = ()
    freshness: dt.timedelta | None = None
    description: str = ""
    order: int = 100


@dataclass(frozen=True)
class ConnectorSpec:
    """A way to reach data outside the host: files, SQL databases, REST APIs.

    ``factory(config)`` builds a connection object from the deployment's configuration for
    ``id`` (``[connectors.<id>]`` in huizhi.toml); secrets come from there, never from code.
    The host builds it once, hands the same object to every permitted caller of
    ``ctx.connector(id)``, and calls its ``close()`` (when it has one) when the host is disposed.

    Who may use it: ``departments`` are the department ids whose plugins and people may use the
    connector (empty: only the declaring plugin's own department). A ``departments = [...]``
    list in ``[connectors.<id>]`` replaces it for a deployment (that is how the built-in
    connectors, declared by a plugin without a department, are granted). The calling plugin
    must be the declaring one or belong to one of those departments, and the signed-in
    identity must hold ``permission`` for one of them; otherwise ``ctx.connector`` refuses
    (audited) with :class:`huizhi.access.AccessDenied`.

    A connection that has ``fetch(query, params)`` (every built-in one does) may also be read
    with ``ctx.source`` (cached, with a timeout and the last good data when the source is down,
    :class:`huizhi.sources.SourceResult`) and fed into a ledger by a :class:`SyncSpec`. An
    optional ``cache_key(query)`` says how a query is keyed in the cache (default ``repr``).
    """

    id: str
    title: str
    factory: Callable[[dict[str, Any]], Any]
    kind: Literal["file", "sql", "rest", "other"] = "other"
    description: str = ""
    config_keys: tuple[str, ...] = field(default_factory=tuple)
    departments: tuple[str, ...] = ()
    permission: Perm = Perm.VIEW


@dataclass(frozen=True)
class DemoRows:
    """Demo rows a plugin ships for one of its own ledgers. Returned by ``huizhi_demo_rows``.

    ``rows`` are mappings from column name to value (as typed by the ledger: ``int``, ``float``,
    ``datetime.date``, ``bool`` or ``str``; ``None`` for an empty optional cell). ``huizhi seed``
    and ``huizhi demo`` commit them as a version of kind ``seed`` when the ledger is empty,
    validated like an upload (a row that breaks a rule stops the seed and names the row).
    ``huizhi check-plugin`` uses them to render pages and compute tiles with data in them.
    """

    ledger: str
    rows: tuple[dict[str, Any], ...]
    note: str = ""


DEMO_SUB_PATTERN = re.compile(r"^[a-z][a-z0-9-]{0,62}$")


@dataclass(frozen=True)
class DemoPerson:
    """A made-up person the demo's local sign-in provider offers. Returned by
    ``huizhi_demo_identities``.

    ``sub`` is what one clicks or types on the provider's page (lower-case ASCII and ``-``,
    unique in the demo, e.g. ``"staff-swj"``); ``name`` and ``title`` (职务) are shown; the person
    is ``role`` (``"staff"`` or ``"ledger_admin"``) of ``department`` (an id). The demo's own
    role mapping grants it through the groups ``dept-<id>-staff`` / ``dept-<id>-ledger-admin``;
    a deployment's ``[access]`` never sees demo people.
    """

    sub: str
    name: str
    department: str
    role: Literal["staff", "ledger_admin"] = "staff"
    title: str = ""


@dataclass(frozen=True)
class SyncSpec:
    """A scheduled sync: a connector's data becomes a new version of a ledger.

    ``query`` is what the connector's ``fetch`` takes: a file name under the files connector's
    folder (``"设备台账.xlsx"``, ``.csv`` or ``.parquet``), a ``sqlalchemy.text`` statement with
    bound ``:parameters`` or a ``sqlalchemy.select`` for the SQL connector, a path for the REST
    connector; ``params`` are its parameters. The rows go through the ledger service exactly as
    an upload does (every cell checked against the ledger's columns, staged, diffed, committed
    as a new version by the system identity ``system:sync:<id>``; ``mode`` as for an upload:
    ``"replace"``, ``"upsert"`` or ``"delete"``). Columns are matched by the ledger's column
    names, labels or aliases. A sync whose data fails a check, or whose source fails, changes
    nothing and records the error in the audit log (action ``ledger.sync``).

    When it runs: ``every`` seconds (at least 60), or ``cron`` (five fields, Beijing time, e.g.
    ``"0 2 * * *"``): exactly one of them. The host's task queue runs it on schedule; ``huizhi
    sync <id>`` runs it by hand or from cron. A sync that would remove more than half of the
    ledger's rows is refused unless ``allow_mass_removal`` (a broken export must not empty a
    ledger).
    """

    id: str
    ledger_id: str
    connector_id: str
    query: Any
    params: Mapping[str, Any] = field(default_factory=dict)
    every: float | None = None
    cron: str | None = None
    mode: Literal["replace", "upsert", "delete"] = "replace"
    title: str = ""
    allow_mass_removal: bool = False


def _check_id(kind: str, value: str) -> None:
    if not isinstance(value, str) or not ID_PATTERN.match(value):
        raise SpecError(f"{kind} id {value!r} must match {ID_PATTERN.pattern}")


def validate(spec: object) -> None:
    """Raise :class:`SpecError` when ``spec`` is not a well-formed spec."""
    match spec:
        case PluginInfo():
            _check_id("plugin", spec.name)
            if not spec.title or not spec.version:
                raise SpecError(f"plugin {spec.name!r}: title and version are required")
            from packaging.specifiers import InvalidSpecifier, SpecifierSet

            try:
                SpecifierSet(spec.host_api)
            except InvalidSpecifier as exc:
                raise SpecError(
                    f"plugin {spec.name!r}: host_api {spec.host_api!r} is not a version range"
                ) from exc
        case LedgerSpec():
            _check_id("ledger", spec.id)
            if not isinstance(spec.title, str) or not spec.title.strip():
                raise SpecError(f"ledger {spec.id!r}: a title is required")
            if not spec.columns:
                raise SpecError(f"ledger {spec.id!r} has no columns")
            names = [c.name for c in spec.columns]
            for col in spec.columns:
                _check_id(f"ledger {spec.id!r} column", col.name)
                if col.dtype not in ("str", "int", "float", "date", "bool"):
                    raise SpecError(f"ledger {spec.id!r} column {col.name!r}: unknown dtype {col.dtype!r}")
                if col.pattern is not None:
                    try:
                        re.compile(col.pattern)
                    except re.error as exc:
                        raise SpecError(
                            f"ledger {spec.id!r} column {col.name!r}: bad pattern: {exc}"
                        ) from exc
            if len(set(names)) != len(names):
                raise SpecError(f"ledger {spec.id!r} has duplicate column names")
            labels = [c.label for c in spec.columns]
            if len(set(labels)) != len(labels):
                raise SpecError(f"ledger {spec.id!r} has duplicate column labels")
            if not spec.key or any(k not in names for k in spec.key):
                raise SpecError(f"ledger {spec.id!r}: key {spec.key!r} must name its columns")
            if spec.department_column is not None and spec.department_column not in names:
                raise SpecError(
                    f"ledger {spec.id!r}: department_column {spec.department_column!r} is not a column"
                )
        case PageSpec():
            if not isinstance(spec.url_path, str) or not URL_PATH_PATTERN.match(spec.url_path):
                raise SpecError(f"page url_path {spec.url_path!r} must match {URL_PATH_PATTERN.pattern}")
            if not isinstance(spec.title, str) or not spec.title.strip() or not callable(spec.render):
                raise SpecError(f"page {spec.url_path!r}: a title and a callable render are required")
            if not isinstance(spec.permission, Perm):
                raise SpecError(f"page {spec.url_path!r}: permission must be a huizhi.specs.Perm")
        case TileSpec():
            _check_id("tile", spec.id)
            if not isinstance(spec.title, str) or not spec.title.strip():
                raise SpecError(f"tile {spec.id!r}: a title is required (what the cockpit card says)")
            if not isinstance(spec.ledgers, tuple) or not all(isinstance(x, str) for x in spec.ledgers):
                raise SpecError(f"tile {spec.id!r}: ledgers must be a tuple of ledger ids")
            if not isinstance(spec.theme, Theme):
                raise SpecError(f"tile {spec.id!r}: theme must be a huizhi.specs.Theme")
            if not callable(spec.query):
                raise SpecError(f"tile {spec.id!r}: query must be callable")
            if spec.render is not None and not callable(spec.render):
                raise SpecError(f"tile {spec.id!r}: render must be callable")
            if not isinstance(spec.permission, Perm):
                raise SpecError(f"tile {spec.id!r}: permission must be a huizhi.specs.Perm")
            if spec.target is not None and spec.target.scope not in ("district", "each"):
                raise SpecError(f"tile {spec.id!r}: target scope must be 'district' or 'each', not {spec.target.scope!r}")
        case ConnectorSpec():
            _check_id("connector", spec.id)
            if not callable(spec.factory):
                raise SpecError(f"connector {spec.id!r}: factory must be callable")
            if not isinstance(spec.permission, Perm):
                raise SpecError(f"connector {spec.id!r}: permission must be a huizhi.specs.Perm")
            # a bare string would be read as a tuple of letters: "jxj" -> ("j", "x", "j")
            if not isinstance(spec.departments, tuple) or not all(isinstance(d, str) for d in spec.departments):
                raise SpecError(f"connector {spec.id!r}: departments must be a tuple of department ids")
            # the ids themselves are checked against the deployment's departments at load
        case DemoPerson():
            if not isinstance(spec.sub, str) or not DEMO_SUB_PATTERN.match(spec.sub):
                raise SpecError(f"demo person sub {spec.sub!r} must match {DEMO_SUB_PATTERN.pattern}")
            if not isinstance(spec.name, str) or not spec.name.strip():
                raise SpecError(f"demo person {spec.sub!r}: a name is required")
            if spec.role not in ("staff", "ledger_admin"):
                raise SpecError(f"demo person {spec.sub!r}: role must be 'staff' or 'ledger_admin', not {spec.role!r}")
        case DemoRows():
            _check_id("demo rows ledger", spec.ledger)
            if not isinstance(spec.rows, tuple) or not all(isinstance(r, dict) for r in spec.rows):
                raise SpecError(f"demo rows of {spec.ledger!r}: rows must be a tuple of dicts (column name -> value)")
        case SyncSpec():
            _check_id("sync", spec.id)
            _check_id(f"sync {spec.id!r} ledger", spec.ledger_id)
            _check_id(f"sync {spec.id!r} connector", spec.connector_id)
            if (spec.every is None) == (spec.cron is None):
                raise SpecError(f"sync {spec.id!r}: give exactly one of every (seconds) or cron")
            if spec.every is not None and (isinstance(spec.every, bool) or not isinstance(spec.every, int | float)
                                           or spec.every < 60):
                raise SpecError(f"sync {spec.id!r}: every must be a number of seconds >= 60, got {spec.every!r}")
            if spec.cron is not None and (not isinstance(spec.cron, str) or len(spec.cron.split()) != 5):
                raise SpecError(f"sync {spec.id!r}: cron must have five fields (minute hour day month weekday)")
            if spec.mode not in ("replace", "upsert", "delete"):
                raise SpecError(f"sync {spec.id!r}: mode must be 'replace', 'upsert' or 'delete', not {spec.mode!r}")
            if isinstance(spec.query, str) and not spec.query:
                raise SpecError(f"sync {spec.id!r}: query is empty")
            if not isinstance(spec.params, Mapping):
                raise SpecError(f"sync {spec.id!r}: params must be a mapping")
        case _:
            raise SpecError(f"expected a huizhi spec, got {type(spec).__name__}")
