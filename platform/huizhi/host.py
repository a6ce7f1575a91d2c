"""The host: settings + plugins + store, built by :func:`create_host`. No module-level state.

Streamlit keeps one Host per process with ``st.cache_resource`` (see :mod:`huizhi.app`); tests
build as many as they like, each on its own database.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from huizhi.access import AccessDenied, Identity, check_access_config, system_identity
from huizhi.audit import AuditLog
from huizhi.cockpit.runner import CockpitRunner
from huizhi.config import Settings, connector_config, load_settings
from huizhi.context import PageContext, TileContext
from huizhi.db import check_connection, check_schema, create_db_engine, libpq_conninfo, upgrade
from huizhi.declarative import DeclaredPlugin, Problem
from huizhi.district import Departments
from huizhi.events import EventBus, LedgerChanged, PgEventChannel, notify
from huizhi.ledger_store import LedgerStore
from huizhi.ledgers import LedgerService
from huizhi.models import PluginState, utcnow
from huizhi.plugins import Registry, load_registry
from huizhi.sources import HOST_KEYS, Freshness, SourceCache, SourceResult, TableFile, cache_key
from huizhi.specs import Perm, Theme
from huizhi.submissions import SubmissionTracker
from huizhi.syncs import SyncService
from huizhi.tasks import TaskQueue

log = logging.getLogger(__name__)


@dataclass
class Host:
    settings: Settings
    engine: Engine
    registry: Registry
    store: LedgerStore
    audit: AuditLog
    events: EventBus
    ledgers: LedgerService
    # LISTEN/NOTIFY delivery of other processes' events (PostgreSQL only)
    channel: PgEventChannel | None = field(default=None, repr=False)
    _connections: dict[str, Any] = field(default_factory=dict, repr=False)
    _connections_lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)
    # the cockpit's caches and threads: made with the host, stopped by dispose()
    cockpit: CockpitRunner = field(init=False, repr=False, compare=False)

    # which departments have submitted this period; forgets on every LedgerChanged
    submissions: SubmissionTracker = field(init=False, repr=False, compare=False)
    # connector results with their freshness (ctx.source); emptied by dispose()
    sources: SourceCache = field(init=False, repr=False, compare=False)
    # scheduled syncs from connectors into ledgers: run(sync_id), schedules()
    syncs: SyncService = field(init=False, repr=False, compare=False)

    # background work (huizhi.tasks): procrastinate on PostgreSQL, the host's threads on DuckDB
    tasks: TaskQueue = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.cockpit = CockpitRunner(self)
        self.submissions = SubmissionTracker(self)
        self.sources = SourceCache()
        self.syncs = SyncService(self)
        self.tasks = TaskQueue(self, self.settings.tasks)

    def connector(self, connector_id: str, *, plugin: str, identity: Identity) -> Any:
        """The connection for ``connector_id``, for ``plugin`` acting for ``identity``.

        The one grant check (see :class:`huizhi.specs.ConnectorSpec`): the plugin must be the
        declaring one or belong to a granted department, and the identity must hold the
        connector's permission for a granted department. A refusal is audited and raised as
        :class:`huizhi.access.AccessDenied`. The connection is built once from
        ``[connectors.<id>]`` (less the host's own keys ``departments``, ``max_age`` and
        ``retry_interval``; each ``<key>_env`` replaced by ``<key>`` from that environment
        variable) and kept until :meth:`dispose`.
        """
        spec, config = self._connector_config(connector_id, plugin)
        owner = self.registry.connectors[connector_id][1]
        configured = config.get("departments")
        if configured is not None:
            departments = _configured_departments(connector_id, configured, self.settings.departments)
        else:
            owner_dept = self.registry.plugins[owner].department
            departments = spec.departments or ((owner_dept,) if owner_dept else ())
        caller = self.registry.plugins.get(plugin)
        refused: str | None = None
        perm, message = "", ""
        if plugin != owner and (caller is None or caller.department not in departments):
            refused, perm = "plugin", "connector"
            message = f"本页面所属的插件未获准使用数据连接“{spec.title}”。如需开通，请联系平台管理员。"
        elif not any(identity.allows(spec.permission, dept) for dept in departments):
            refused, perm = "identity", str(spec.permission)
            message = f"您没有使用数据连接“{spec.title}”的权限。如需开通，请联系本部门负责人或平台管理员。"
        if refused is not None:
            self.audit.record(
                identity, "access.denied", f"connector:{connector_id}", "denied",
                plugin=plugin, how="connector", refused=refused, granted=list(departments),
            )
            raise AccessDenied(perm, f"connector:{connector_id}", message, audited=True)
        # Streamlit runs each session's script in its own thread: build a connection only once.
        with self._connections_lock:
            if connector_id not in self._connections:
                factory_config = connector_config(
                    connector_id, {k: v for k, v in config.items() if k not in HOST_KEYS}, self.settings.connector_env
                )
                self._connections[connector_id] = spec.factory(factory_config)
            return self._connections[connector_id]

    def _connector_config(self, connector_id: str, plugin: str) -> tuple[Any, dict[str, Any]]:
        try:
            spec, _owner = self.registry.connectors[connector_id]
        except KeyError:
            declared = ", ".join(sorted(self.registry.connectors)) or "none"
            raise LookupError(
                f"plugin {plugin!r} asked for connector {connector_id!r}, which no enabled plugin "
                f"declares (declared: {declared})"
            ) from None
        return spec, dict(self.settings.connectors.get(connector_id, {}))

    def source(
        self,
        connector_id: str,
        query: Any,
        params: Mapping[str, Any] | None = None,
        *,
        plugin: str,
        identity: Identity,
        max_age: float | None = None,
    ) -> SourceResult:
        """``fetch(query, params)`` on the connection, through the grant check of
        :meth:`connector` and the host's cache (:mod:`huizhi.sources`): served from the cache
        while younger than ``max_age`` (default ``[connectors.<id>] max_age``), fetched within
        ``timeout``; a failing source gives the last good data marked stale. Raises
        :class:`AccessDenied` (audited) like :meth:`connector`; never raises for a failing source."""
        connection = self.connector(connector_id, plugin=plugin, identity=identity)
        fetch = getattr(connection, "fetch", None)
        if not callable(fetch):
            raise TypeError(f"connector {connector_id!r}: its connection has no fetch(query, params)")
        _spec, config = self._connector_config(connector_id, plugin)
        freshness = Freshness.from_config(connector_id, config)
        bound = dict(params or {})
        key = cache_key(connector_id, connection, query, bound)

        def read() -> Any:
            data = fetch(query, bound)
            if isinstance(data, TableFile):  # a file off a share: the upload parser, in its sandbox
                from huizhi.excel.tables import read_table_file

                return read_table_file(data)
            return data

        return self.sources.get(connector_id, key, read, freshness, max_age=max_age)

    def _close_connections(self) -> None:
        """Close every cached connection that has a ``close()``; one failure does not stop the rest."""
        with self._connections_lock:
            connections = list(self._connections.items())
            self._connections.clear()
        for connector_id, connection in connections:
            close = getattr(connection, "close", None)
            if not callable(close):
                continue
            try:
                close()
            except Exception:
                log.exception("could not close connector %s", connector_id)

    def system_identity(self, purpose: str) -> Identity:
        """A district-wide identity for the host's own work (seeding, CLI, warming the cockpit)."""
        return system_identity(purpose, self.settings.departments)

    def page_context(
        self,
        identity: Identity,
        url_path: str,
        params: dict[str, Any] | None = None,
        nav: dict[str, Any] | None = None,
    ) -> PageContext:
        spec, plugin = self.registry.pages[url_path]
        return PageContext(
            _host=self, identity=identity, plugin=plugin, page=spec, params=params or {}, nav=nav or {}
        )

    def tile_context(self, identity: Identity, tile_id: str, **kw: Any) -> TileContext:
        spec, plugin = self.registry.tiles[tile_id]
        return TileContext(_host=self, identity=identity, plugin=plugin, tile=spec, **kw)

    def visible_pages(self, identity: Identity) -> list:
        """Pages this identity may open, in menu order."""
        pages = [
            spec
            for spec, _ in self.registry.pages.values()
            if identity.allows(spec.permission, spec.department)
        ]
        return sorted(pages, key=lambda p: (p.order, p.title))

    def page_sections(self, identity: Identity) -> dict[str, list]:
        """The pages this identity may open, grouped into menu sections in menu order: 总览,
        then departments in the district's order, then shared sections, 台账中心, 平台管理."""
        sections: dict[str, list] = {}
        for spec in self.visible_pages(identity):
            sections.setdefault(spec.section or self.settings.departments.name(spec.department), []).append(spec)
        first, last = ["总览", *self.settings.departments.names()], ["台账中心", "平台管理"]

        def rank(name: str) -> tuple[int, int]:
            if name in first:
                return (0, first.index(name))
            return (2, last.index(name)) if name in last else (1, 0)

        return dict(sorted(sections.items(), key=lambda kv: rank(kv[0])))

    def visible_tiles(self, identity: Identity) -> list:
        tiles = [
            spec
            for spec, _ in self.registry.tiles.values()
            if identity.allows(spec.permission, spec.department)
        ]
        themes = list(Theme)
        return sorted(tiles, key=lambda t: (themes.index(t.theme), t.order, t.id))

    def set_plugin_enabled(self, identity: Identity, name: str, enabled: bool) -> None:
        """Switch a plugin on or off (takes effect when the host is rebuilt); audited."""
        if not identity.allows(Perm.PLATFORM_ADMIN):
            raise PermissionError("platform admin only")
        with Session(self.engine) as session:
            state = session.get(PluginState, name) or PluginState(name=name)
            state.enabled, state.changed_by, state.changed_at = enabled, identity.subject, utcnow()
            session.add(state)
            session.commit()
        self.audit.record(identity, "plugin.enable" if enabled else "plugin.disable", f"plugin:{name}")

    def install_declarative(self, identity: Identity, files: Mapping[str, bytes]) -> DeclaredPlugin:
        """Check a declarative plugin file (and the demo rows it names) and save it in the
        configured folder; it is loaded when the host is next built (a restart). Platform admins only.

        ``files`` maps file names to contents: exactly one ``.toml`` plus, optionally, the CSV its
        ``demo_rows`` names. Raises :class:`huizhi.declarative.DeclarationError` with every problem
        (and its line) when the file is wrong or claims a plugin name, ledger id, page url path or
        tile id another plugin already has; nothing is saved then. Audited (``plugin.install``).
        """
        import shutil
        import tempfile

        from huizhi.declarative import DeclarationError, load

        if not identity.allows(Perm.PLATFORM_ADMIN):
            raise PermissionError("platform admin only")
        folder = self.settings.declarative_dir
        if folder is None:
            raise LookupError("no folder for declarative plugins: set [plugins] declarative_dir in huizhi.toml")
        names = [n for n in files if n.endswith(".toml")]
        if len(names) != 1 or any(Path(n).name != n or n.startswith(".") for n in files):
            raise DeclarationError(names[0] if names else "plugin.toml", [Problem(
                None, "", "upload exactly one .toml file (plus the CSV of demo rows it names, if any)",
                "请上传一个 .toml 声明文件（如有演示数据，再加上它引用的 CSV 文件）")])  # fmt: skip
        with tempfile.TemporaryDirectory() as tmp:
            for name, data in files.items():
                (Path(tmp) / name).write_bytes(data)
            try:
                plugin = load(Path(tmp) / names[0], self.settings.departments)
                clashes = self._declared_clashes(plugin, folder / names[0])
                if clashes:
                    raise DeclarationError(names[0], clashes)
            except DeclarationError as exc:
                self.audit.record(identity, "plugin.install", f"file:{names[0]}", "rejected",
                                  problems=[p.english() for p in exc.problems][:20])  # fmt: skip
                raise DeclarationError(names[0], exc.problems) from None
            folder.mkdir(parents=True, exist_ok=True)
            for name in files:
                shutil.copyfile(Path(tmp) / name, folder / name)
        self.audit.record(identity, "plugin.install", f"plugin:{plugin.name}", file=names[0], folder=str(folder))
        return load(folder / names[0], self.settings.departments)

    def _declared_clashes(self, plugin: DeclaredPlugin, target: Path) -> list[Problem]:
        """Ids the new file claims that another plugin (not the file it replaces) already has."""

        def other(owner: str) -> bool:
            return self.registry.plugins[owner].declared != target

        claimed = [
            ("plugin name", plugin.name, plugin.name if plugin.name in self.registry.plugins else None),
            ("ledger", plugin.ledger.id, self.registry.ledgers.get(plugin.ledger.id, (None, None))[1]),
            *(("page url path", p.url_path, self.registry.pages.get(p.url_path, (None, None))[1]) for p in plugin.huizhi_pages()),
            *(("tile", t.id, self.registry.tiles.get(t.id, (None, None))[1]) for t in plugin.huizhi_tiles()),
        ]  # fmt: skip
        return [
            Problem(None, "", f"{kind} {value!r} is already declared by plugin {owner!r}",
                    f"{value} 已被插件“{owner}”使用：请换一个 id 或名称")  # fmt: skip
            for kind, value, owner in claimed
            if owner is not None and other(owner)
        ]

    def dispose(self) -> None:
        """Stop what the host started (event channel, task threads and queue connections,
        cockpit threads, joined) and close its connections. Idempotent."""
        if self.channel is not None:
            self.channel.close()
        self.tasks.close()
        self.events.close()
        self.cockpit.close()
        self.sources.close()
        self._close_connections()
        self.engine.dispose()

    def __enter__(self) -> Host:
        return self

    def __exit__(self, *exc: object) -> None:
        self.dispose()


def _configured_departments(connector_id: str, configured: Any, departments: Departments) -> tuple[str, ...]:
    """``departments`` from ``[connectors.<id>]``, checked: a typo must not grant or hide silently."""
    problems = check_connector_config({connector_id: {"departments": configured}}, departments)
    if problems:
        raise ValueError("; ".join(problems))
    return tuple(configured)


def check_connector_config(
    connectors: Mapping[str, Mapping[str, Any]],
    departments: Departments,
    connector_env: Mapping[str, str] | None = None,
) -> list[str]:
    """Problems in the ``[connectors.<id>]`` sections (``departments``, the freshness settings,
    and with ``connector_env`` the environment variables ``*_env`` keys name), in English for
    the log and CLI."""
    known = list(departments.ids())
    problems = []
    for connector_id, config in connectors.items():
        try:
            Freshness.from_config(connector_id, config)
        except ValueError as exc:
            problems.append(str(exc))
        if connector_env is not None:
            problems.extend(
                f"[connectors.{connector_id}] {key} names the environment variable {value}, which is not set"
                for key, value in config.items()
                if key.endswith("_env") and isinstance(value, str) and value not in connector_env
            )
        if "departments" not in config:
            continue
        depts = config["departments"]
        if not isinstance(depts, list | tuple) or not all(isinstance(d, str) for d in depts):
            problems.append(f"[connectors.{connector_id}] departments must be a list of department ids")
            continue
        problems.extend(
            f"[connectors.{connector_id}] departments: unknown department id {d!r} (known: {', '.join(known)})"
            for d in depts
            if d not in known
        )
    return problems


def _admin_disabled(engine: Engine) -> list[str]:
    with Session(engine) as session:
        return list(session.scalars(select(PluginState.name).where(PluginState.enabled.is_(False))))


def create_host(
    settings: Settings | None = None,
    *,
    extra_plugins: Iterable[tuple[str, object]] = (),
    use_entry_points: bool = True,
    migrate: bool | None = None,
    listen_events: bool = True,
) -> Host:
    """Build a host: connect, upgrade the host's tables, load plugins, create ledger tables.

    ``migrate`` (default: ``settings.migrate``, ``HUIZHI_MIGRATE``) upgrades the schema under the
    schema lock; without it the host refuses a database not at the newest revision
    (:class:`huizhi.db.SchemaOutdated`, naming both): replicas started after ``huizhi migrate``.

    The host owns threads once the cockpit runs: end it with ``host.dispose()``, or build it in
    ``with create_host(...) as host:``. ``listen_events=False`` (``huizhi worker``) opens no
    LISTEN connection: other processes' commits would only make it recompute a cockpit nobody views.

    Raises :class:`huizhi.db.StoreUnavailable` when the database cannot be reached and
    :class:`huizhi.plugins.PluginError` in strict mode when a plugin is broken.
    """
    settings = settings or load_settings()
    for problem in [
        *check_access_config(settings.access, settings.departments),
        *check_connector_config(settings.connectors, settings.departments, settings.connector_env),
    ]:
        log.error("access configuration: %s", problem)
    engine = create_db_engine(settings.database_url, **settings.pool_options)
    check_connection(engine)
    if settings.migrate if migrate is None else migrate:
        upgrade(engine)
    else:
        check_schema(engine)
    registry = load_registry(
        settings.load_plugins,
        strict=settings.strict,
        extra_plugins=extra_plugins,
        disabled_by_admin=_admin_disabled(engine),
        use_entry_points=use_entry_points,
        departments=settings.departments,
        declarative_dir=settings.declarative_dir,
    )
    store = LedgerStore(engine, {lid: spec for lid, (spec, _) in registry.ledgers.items()})
    store.ensure_tables()
    audit = AuditLog(engine)
    events = EventBus()
    on_postgres = engine.dialect.name == "postgresql"
    ledgers = LedgerService(
        store, audit, events, notify=(lambda conn, event: notify(conn, event, events.origin)) if on_postgres else None
    )
    host = Host(settings=settings, engine=engine, registry=registry, store=store, audit=audit, events=events, ledgers=ledgers)
    _subscribe_listeners(host)
    if on_postgres and listen_events:  # a worker need not hear other processes' commits
        host.channel = PgEventChannel(libpq_conninfo(engine), events)
        host.channel.start()
    return host


def _subscribe_listeners(host: Host) -> None:
    """The host's own listeners, then every plugin's ``huizhi_track_event``, each isolated."""

    def invalidate_cockpit(event: LedgerChanged) -> None:
        host.cockpit.invalidate([event.ledger_id])  # recomputes in the background

    def plugin_listener(function: Callable[..., object]) -> Callable[[LedgerChanged], None]:
        def listen(event: LedgerChanged) -> None:
            function(event=event)  # pluggy hook implementations take keywords

        return listen

    host.events.subscribe("cockpit", invalidate_cockpit)
    host.events.subscribe("submissions", host.submissions.on_event)
    for plugin, function in host.registry.event_listeners():
        host.events.subscribe(f"plugin {plugin}", plugin_listener(function))
