"""The host: settings + plugins + store, built by :func:`create_host`. No module-level state.

Streamlit keeps one Host per process with ``st.cache_resource`` (see :mod:`huizhi.app`); tests
build as many as they like, each on its own database.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from huizhi.access import Identity, check_access_config, system_identity
from huizhi.audit import AuditLog
from huizhi.config import Settings, load_settings
from huizhi.context import PageContext, TileContext
from huizhi.db import check_connection, create_db_engine, upgrade
from huizhi.ledger_store import LedgerStore
from huizhi.models import PluginState, utcnow
from huizhi.plugins import Registry, load_registry
from huizhi.specs import Perm

log = logging.getLogger(__name__)


@dataclass
class Host:
    settings: Settings
    engine: Engine
    registry: Registry
    store: LedgerStore
    audit: AuditLog
    _connections: dict[str, Any] = field(default_factory=dict, repr=False)
    # the cockpit's caches and worker threads (huizhi.cockpit.cockpit_state), created on first use
    _huizhi_cockpit_state: Any = field(default=None, repr=False, compare=False)

    def connector(self, connector_id: str) -> Any:
        """The connection for ``connector_id``, built once from ``[connectors.<id>]`` settings."""
        if connector_id not in self._connections:
            spec, _ = self.registry.connectors[connector_id]
            config = dict(self.settings.connectors.get(connector_id, {}))
            self._connections[connector_id] = spec.factory(config)
        return self._connections[connector_id]

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
            host=self, identity=identity, plugin=plugin, page=spec, params=params or {}, nav=nav or {}
        )

    def tile_context(self, identity: Identity, tile_id: str, **kw: Any) -> TileContext:
        spec, plugin = self.registry.tiles[tile_id]
        return TileContext(host=self, identity=identity, plugin=plugin, tile=spec, **kw)

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
        return sorted(tiles, key=lambda t: (list(type(t.theme)).index(t.theme), t.order, t.id))

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

    def dispose(self) -> None:
        self.engine.dispose()


def _admin_disabled(engine: Engine) -> list[str]:
    with Session(engine) as session:
        return list(session.scalars(select(PluginState.name).where(PluginState.enabled.is_(False))))


def create_host(
    settings: Settings | None = None,
    *,
    extra_plugins: Iterable[tuple[str, object]] = (),
    use_entry_points: bool = True,
    migrate: bool = True,
) -> Host:
    """Build a host: connect, upgrade the host's tables, load plugins, create ledger tables.

    Raises :class:`huizhi.db.StoreUnavailable` when the database cannot be reached and
    :class:`huizhi.plugins.PluginError` in strict mode when a plugin is broken.
    """
    settings = settings or load_settings()
    for problem in check_access_config(settings.access, settings.departments):
        log.error("access configuration: %s", problem)
    engine = create_db_engine(settings.database_url)
    check_connection(engine)
    if migrate:
        upgrade(engine)
    registry = load_registry(
        settings.load_plugins,
        strict=settings.strict,
        extra_plugins=extra_plugins,
        disabled_by_admin=_admin_disabled(engine),
        use_entry_points=use_entry_points,
        departments=settings.departments,
    )
    store = LedgerStore(engine, {lid: spec for lid, (spec, _) in registry.ledgers.items()})
    store.ensure_tables()
    return Host(settings=settings, engine=engine, registry=registry, store=store, audit=AuditLog(engine))
