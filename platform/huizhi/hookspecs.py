"""The plugin contract: every hook a huizhi plugin can implement.

This module is the plugin reference. Each docstring below is rendered into ``docs/plugins.md``
by ``huizhi docs`` (a test fails when a hook has no docstring or the rendered file is stale).

A plugin is an ordinary Python distribution that names a module in the ``huizhi`` entry-point
group of its ``pyproject.toml``::

    [project.entry-points.huizhi]
    sensing = "huizhi_sensing.plugin"

and implements hooks in that module with the ``hookimpl`` marker::

    from huizhi import hookimpl

    @hookimpl
    def huizhi_pages():
        return [PageSpec(...)]

Every hook returns typed specs from :mod:`huizhi.specs`, never dicts. The host calls each
plugin's hooks separately, so a hook that raises or returns an invalid spec disables only that
plugin, with the reason recorded (``huizhi plugins`` and the admin page show it). The host, not
the plugin, checks permissions before any page, tile query or ledger read runs: a plugin declares
what each needs (``permission=``) and reads data only through the context it is handed.
"""

from __future__ import annotations

import pluggy

from huizhi.events import Event
from huizhi.specs import (
    ConnectorSpec,
    DemoPerson,
    DemoRows,
    LedgerSpec,
    PageSpec,
    PluginInfo,
    SyncSpec,
    TileSpec,
)

hookspec = pluggy.HookspecMarker("huizhi")


@hookspec
def huizhi_plugin_info() -> PluginInfo:
    """Describe the plugin. **Required**: a plugin without it is disabled.

    Return a :class:`huizhi.specs.PluginInfo` with a unique ``name`` (ASCII id), a Chinese
    ``title``, the owning ``department`` id (see ``huizhi.district``; ``None`` for
    cross-department plugins), the plugin's ``version``, and ``host_api``, the range of host API
    versions it supports, e.g. ``">=1.0,<2"``. The host refuses a plugin whose range excludes
    ``huizhi.HOST_API_VERSION`` and says which versions would work.
    """


@hookspec
def huizhi_ledgers() -> list[LedgerSpec]:
    """Declare the department's ledgers (台账).

    Return a list of :class:`huizhi.specs.LedgerSpec`. Each has a unique ``id`` (it names the
    table ``ledger_<id>``), a Chinese ``title``, the owning ``department`` id, its ``columns``
    (:class:`huizhi.specs.ColumnSpec`: type, Chinese header, required, choices, range, pattern,
    example, aliases), the ``key`` columns that identify a row across versions, and optionally
    ``department_column`` for row-level access, cross-column ``row_checks`` and a reporting
    ``period``. The host creates the storage, the upload template, cell-by-cell validation
    (pandera), versioning and rollback from this declaration: no upload code is needed in the
    plugin.
    """


@hookspec
def huizhi_pages() -> list[PageSpec]:
    """Declare Streamlit pages for the portal.

    Return a list of :class:`huizhi.specs.PageSpec`. ``url_path`` must be unique across all
    plugins (a clash disables both plugins, naming each). ``department`` puts the page in that
    department's menu section; ``permission`` (default ``Perm.VIEW``) is checked by the host
    before the page is listed or rendered. ``render(ctx)`` receives a
    :class:`huizhi.context.PageContext`: ``ctx.identity`` is the signed-in person and
    ``ctx.ledger(id)`` reads ledger rows already filtered to what that person may see. An
    exception in ``render`` is shown as an error box naming the plugin; the rest of the portal
    keeps working.
    """


@hookspec
def huizhi_tiles() -> list[TileSpec]:
    """Declare tiles for the leadership cockpit (领导驾驶舱).

    Return a list of :class:`huizhi.specs.TileSpec`. ``query(ctx)`` returns a
    :class:`huizhi.specs.TileValue` computed through ``ctx.ledger(id)`` (permission-scoped);
    list the ledgers it reads in ``ledgers`` so cached values are dropped when they change.
    Give a :class:`huizhi.specs.Target` where the action plan sets one: the host derives the
    status (达标 / 正常推进 / 存在风险 / 已逾期 / 暂无数据) from it. ``drilldown`` is the url path of
    the department page a leader lands on from the tile.
    """


@hookspec
def huizhi_connectors() -> list[ConnectorSpec]:
    """Declare connectors: ways to reach data outside the host (files, SQL, REST APIs).

    Return a list of :class:`huizhi.specs.ConnectorSpec`. ``factory(config)`` receives the
    deployment's ``[connectors.<id>]`` table from ``huizhi.toml`` and returns a connection
    object. Secrets (passwords, client secrets) belong in that configuration (a ``<key>_env``
    key names an environment variable; Streamlit's secrets file may hold the same table), never
    in code. A connection with ``fetch(query, params)`` can be read through ``ctx.source`` —
    cached for ``max_age`` seconds, cut off after ``timeout``, the last good data kept while the
    source is down — and fed into a ledger by a :class:`huizhi.specs.SyncSpec`; ``fetch`` may
    return a :class:`huizhi.sources.TableFile` to have the host parse an Excel, CSV or Parquet
    file with the upload parser. See docs/connectors.md.
    """


@hookspec
def huizhi_syncs() -> list[SyncSpec]:
    """Declare scheduled syncs: a connector's data kept in a ledger (see docs/connectors.md).

    Return a list of :class:`huizhi.specs.SyncSpec`. Each names a ledger (any enabled plugin's)
    and a connector the plugin may use, what to fetch, when (``every`` seconds or ``cron``) and
    the upload mode. The host runs it as the system identity ``system:sync:<id>`` through the
    ledger service, so a connector-fed ledger is validated, versioned and diffed like an upload;
    a failing run changes nothing and is audited (``ledger.sync``, outcome ``failed``).
    """


@hookspec
def huizhi_demo_rows() -> list[DemoRows]:
    """Ship demo rows for the plugin's own ledgers (optional).

    Return a list of :class:`huizhi.specs.DemoRows`, at most one per ledger, each naming one of
    the ledgers this plugin declares. ``huizhi seed`` and ``huizhi demo`` commit them (kind
    ``seed``, through the ledger service, validated like an upload) into ledgers that have no
    version yet, so the demo shows the department's pages and tiles with data. ``huizhi
    check-plugin`` renders pages and computes tiles with them too. Give rows of more than one
    department on a ledger with ``department_column``, so row-level scoping can be seen. Rows
    are data, not people's data: use made-up names.
    """


@hookspec
def huizhi_demo_identities() -> list[DemoPerson]:
    """Offer made-up people of the plugin's department in the demo (optional).

    Return a list of :class:`huizhi.specs.DemoPerson`. ``huizhi demo`` adds them to its local
    sign-in provider and to the identity table it prints, and maps them in the demo's own role
    mapping (staff or ledger admin of their department), so a department's plugin can be tried
    as its own staff would see it. A ``sub`` the demo already has is skipped with a warning.
    Deployments never see demo people.
    """


@hookspec
def huizhi_track_event(event: Event) -> None:
    """Learn what happened: called once for every event the host publishes.

    ``event`` is a :class:`huizhi.events.LedgerChanged` after every commit, rollback, import and
    seed of any ledger (its ``ledger_id``, new ``version`` number, ``kind``, ``actor`` subject,
    row counts and ``occurred_at``); ``remote`` is True when another portal process made the
    change. Return nothing. Keep it quick (it runs after the commit, in the committing thread):
    drop a cache, queue work. An exception is logged naming the plugin and never undoes the
    commit. Check ``event.ledger_id`` (and ``isinstance``) before acting: more event types will
    come. The host's own listeners (cockpit invalidation, submission tracking) subscribe the
    same way.
    """
