"""What a plugin's page or tile is handed: the identity, permission-scoped reads, and services.

Part of the plugin contract (rendered into docs/plugins.md). Contexts hold the host privately:
a plugin gets rows through :class:`LedgerReader`, whose every statement starts from the rows
the signed-in identity may read, and changes ledgers only through :class:`LedgerActions`
(the ledger service acting for that identity). Nothing here hands out the engine, the store or
the registry.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, BinaryIO

import sqlalchemy as sa
from sqlalchemy.sql import elements, functions, selectable

from huizhi.access import AccessDenied, Identity, RowScope
from huizhi.clock import beijing_today
from huizhi.sources import SourceResult
from huizhi.specs import LedgerSpec, PageSpec, Perm, TileSpec

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

    from huizhi.host import Host
    from huizhi.ledger_store import Diff
    from huizhi.ledgers import Preview, Upload
    from huizhi.models import LedgerVersion

__all__ = [
    "AccessDenied",
    "Filters",
    "LedgerActions",
    "LedgerReader",
    "PageContext",
    "ReaderError",
    "SourceResult",
    "TileContext",
]


# The cockpit filters a tile can honour; TileContext.filters_applied names those a tile applied.
FILTER_STREET, FILTER_DEPARTMENT, FILTER_PERIOD = "street", "department", "period"


@dataclass(frozen=True)
class Filters:
    """Cockpit-wide filters (street, department, period). Tiles apply those that fit their data."""

    streets: tuple[str, ...] = ()
    departments: tuple[str, ...] = ()  # department names, as stored in ledgers
    period: tuple[Any, Any] | None = None  # (start date, end date)

    @property
    def active(self) -> bool:
        return bool(self.streets or self.departments or self.period)


class ReaderError(TypeError):
    """A plugin handed :class:`LedgerReader` a statement it does not run (a developer error)."""


# SQL functions a ledger read may call: aggregates, arithmetic, dates and text. Anything else
# (pg_read_file, query_to_xml, read_csv, nextval, …) could reach outside the reader's rows.
READER_FUNCTIONS = frozenset(
    {
        "abs", "avg", "bool_and", "bool_or", "ceil", "ceiling", "char_length", "coalesce", "concat",
        "count", "date_part", "date_trunc", "every", "extract", "floor", "greatest", "least",
        "length", "lower", "max", "median", "min", "mod", "mode", "nullif", "percentile_cont",
        "percentile_disc", "quantile_cont", "quantile_disc", "round", "sign", "sqrt", "stddev",
        "stddev_pop", "stddev_samp", "string_agg", "substr", "substring", "sum", "trim",
        "trunc", "upper", "var_pop", "var_samp", "variance",
    }
)  # fmt: skip


class LedgerReader:
    """Rows of one ledger, current version, as far as the identity may see them.

    ``rows`` is a subquery of exactly those rows; build SELECTs on it with SQLAlchemy
    (``sa.select(reader.rows.c.street, sa.func.count()).group_by(...)``) and run them with
    :meth:`execute`, :meth:`scalar` or :meth:`frame`. Those run only SELECTs whose every FROM
    is ``rows`` (or a subquery or join built from it), with no raw SQL text and only the
    functions in :data:`READER_FUNCTIONS`; anything else raises :class:`ReaderError` naming
    the plugin. Convenience methods cover the common page needs. Handed out by ``ctx.ledger``.
    """

    def __init__(
        self, host: Host, spec: LedgerSpec, identity: Identity, plugin: str, *, version_id: int | None = None
    ):
        # version_id pins the read to one version (the cockpit pins every tile of a refresh)
        self._host = host
        self._plugin = plugin
        self.spec = spec
        self.identity = identity
        self.scope: RowScope = identity.row_scope(spec)
        self._select = host.store.scoped_select(spec.id, self.scope, version_id)
        self.rows = self._select.subquery(f"{spec.id}_rows")

    def __repr__(self) -> str:
        return f"<LedgerReader {self.spec.id} for {self.identity.subject} ({self._plugin})>"

    @property
    def sees_all_rows(self) -> bool:
        return self.scope.all_rows

    @property
    def version(self) -> int | None:
        """The number of the ledger's current version (None: nothing committed yet)."""
        head = self._host.store.head(self.spec.id)
        return head.number if head else None

    @property
    def updated_at(self) -> dt.datetime | None:
        """When the current version was committed (naive UTC; None: nothing committed yet)."""
        head = self._host.store.head(self.spec.id)
        return head.updated_at if head else None

    def c(self, name: str) -> sa.ColumnElement[Any]:
        return self.rows.c[name]

    def where(
        self,
        equals: Mapping[str, Any] | None = None,
        search: str | None = None,
        search_columns: Sequence[str] = (),
    ) -> list[sa.ColumnElement[bool]]:
        """Conditions for equality/IN filters and a free-text search over some columns."""
        conds: list[sa.ColumnElement[bool]] = []
        for col, value in (equals or {}).items():
            if value is None or value == [] or value == ():
                continue
            column = self.rows.c[col]
            conds.append(
                column.in_(list(value)) if isinstance(value, list | tuple | set) else column == value
            )
        if search:
            like = f"%{search.strip()}%"
            cols = search_columns or [c.name for c in self.spec.columns if c.dtype == "str"]
            conds.append(sa.or_(*(self.rows.c[c].ilike(like) for c in cols)))
        return conds

    def execute(self, stmt: sa.Select[Any]) -> list[sa.Row[Any]]:
        self._check(stmt)
        with self._host.engine.connect() as conn:
            return list(conn.execute(stmt))

    def scalar(self, stmt: sa.Select[Any]) -> Any:
        self._check(stmt)
        with self._host.engine.connect() as conn:
            return conn.execute(stmt).scalar()

    def frame(self, stmt: sa.Select[Any] | None = None) -> pd.DataFrame:
        import pandas as pd

        stmt = stmt if stmt is not None else sa.select(self.rows)
        self._check(stmt)
        with self._host.engine.connect() as conn:
            result = conn.execute(stmt)
            return pd.DataFrame(result.fetchall(), columns=list(result.keys()))

    def count(self, *conds: sa.ColumnElement[bool]) -> int:
        return int(self.scalar(sa.select(sa.func.count()).select_from(self.rows).where(*conds)) or 0)

    def page(
        self, *conds: sa.ColumnElement[bool], order_by: Sequence[str] = (), limit: int = 50, offset: int = 0
    ) -> pd.DataFrame:
        order = [self.rows.c[c] for c in (order_by or self.spec.key)]
        return self.frame(sa.select(self.rows).where(*conds).order_by(*order).limit(limit).offset(offset))

    def distinct(self, column: str) -> list[Any]:
        col = self.rows.c[column]
        return [r[0] for r in self.execute(sa.select(col).distinct().order_by(col)) if r[0] is not None]

    def _check(self, stmt: Any) -> None:
        """Refuse anything but a SELECT over ``self.rows`` (see the class docstring)."""
        if not isinstance(stmt, sa.Select | sa.CompoundSelect):
            raise ReaderError(
                f"plugin {self._plugin!r}: LedgerReader runs only SELECT statements built on reader.rows, "
                f"not {type(stmt).__name__}"
            )
        problems: list[str] = []
        seen: set[int] = set()
        stack: list[Any] = [stmt]
        while stack:
            element = stack.pop()
            if element is self.rows or id(element) in seen:
                continue
            seen.add(id(element))
            if isinstance(element, selectable.TableClause):  # also sa.Table and sa.table(...)
                problems.append(f"table {element.name!r}")
            elif isinstance(element, elements.TextClause | selectable.TextualSelect):
                problems.append("raw SQL text (sa.text)")
            elif isinstance(element, elements.ColumnClause) and element.is_literal and element.name != "*":
                problems.append(f"literal SQL {element.name!r}")
            elif isinstance(element, functions.FunctionElement):
                name = str(getattr(element, "name", type(element).__name__)).lower()
                if name not in READER_FUNCTIONS:
                    problems.append(f"function {name}()")
            stack.extend(element.get_children())
        if problems:
            raise ReaderError(
                f"plugin {self._plugin!r}: a ledger read of {self.spec.id!r} may only select from reader.rows; "
                f"this statement uses {', '.join(sorted(set(problems)))}"
            )


class LedgerActions:
    """The ledger service acting for the signed-in identity: ``ctx.ledgers``.

    Every change a plugin or page makes to a ledger goes through here, with the same checks,
    audit entries and events as the ledger centre: :meth:`upload` checks a file cell by cell and
    stages it, :meth:`commit` stores exactly the previewed rows, :meth:`rollback` restores an
    earlier version as a new one. Refusals raise :class:`AccessDenied` (audited).
    """

    def __init__(self, host: Host, identity: Identity):
        self._service = host.ledgers
        self._tasks = host.tasks
        self._identity = identity

    def head(self, ledger_id: str) -> Any:
        """The current version's pointer (``number``, ``updated_at``), or None."""
        return self._service.head(ledger_id)

    def versions(self, ledger_id: str) -> list[LedgerVersion]:
        """Every version, newest first."""
        return self._service.versions(self._identity, ledger_id)

    def changes(self, ledger_id: str, number: int) -> Diff:
        """What version ``number`` changed against the one before, within the identity's rows."""
        return self._service.changes(self._identity, ledger_id, number)

    def export(self, ledger_id: str) -> pa.Table:
        """The current rows the identity may read, as Arrow (audited as an export)."""
        return self._service.export(self._identity, ledger_id)

    def upload(
        self,
        ledger_id: str,
        source: bytes | str | BinaryIO,
        file_name: str,
        on_progress: Callable[[str, float], None] | None = None,
        *,
        mode: str = "replace",
    ) -> Upload:
        """Check a workbook or CSV; when valid, stage it and return its preview.

        ``mode``: ``"replace"`` (the file is the whole ledger, or all of the identity's
        department's rows), ``"upsert"`` (add and update rows by key, keep every other row) or
        ``"delete"`` (delete the rows whose keys the file lists; only the key columns are read).
        """
        return self._service.upload(self._identity, ledger_id, source, file_name, mode=mode, on_progress=on_progress)

    def in_background(self, size: int) -> bool:
        """Whether an upload of ``size`` bytes should be checked in the background
        (:meth:`start_upload`) rather than on the page (``[tasks] upload_bytes``)."""
        return self._tasks.uses_queue(size)

    def start_upload(self, ledger_id: str, data: bytes, file_name: str, *, mode: str = "replace") -> int:
        """Queue :meth:`upload` of ``data`` as background work (a worker on PostgreSQL, a thread
        of the host on the embedded store); returns the id to poll with :meth:`upload_progress`."""
        return self._tasks.upload(self._identity, ledger_id, data, file_name, mode=mode)

    def upload_progress(self, run_id: int) -> tuple[str, str, float]:
        """``(status, phase, fraction)`` of a background upload: status ``queued``, ``running``,
        ``retrying``, ``succeeded`` or ``failed``; phase as :meth:`upload`'s ``on_progress`` names it."""
        run = self._tasks.status(run_id)
        return run.status, run.phase, run.progress

    def finished_upload(self, run_id: int) -> Upload:
        """The background upload's outcome, exactly what :meth:`upload` returns (its preview is
        staged). Raises ``LookupError`` while it runs and ``huizhi.tasks.TaskFailed`` (with a
        Chinese ``user_message``) when every attempt failed."""
        return self._tasks.upload_result(run_id, self._identity)

    def commit(self, preview: Preview, *, confirm_removal: bool = False) -> LedgerVersion:
        """Store exactly the previewed rows as the next version."""
        return self._service.commit(self._identity, preview, confirm_removal=confirm_removal)

    def discard(self, preview: Preview) -> None:
        """Drop a preview that will not be committed."""
        self._service.discard(self._identity, preview)

    def rollback(self, ledger_id: str, to_number: int, *, expected_version: int | None) -> LedgerVersion:
        """Make version ``to_number`` current again, as a new version."""
        return self._service.rollback(self._identity, ledger_id, to_number, expected_version=expected_version)


@dataclass
class _BaseContext:
    _host: Host = field(repr=False)
    identity: Identity
    plugin: str
    # The one "today" (Beijing) a page or tile uses for values and judgements alike; tests pin it.
    today: dt.date = field(default_factory=beijing_today)

    def allows(self, perm: Perm, department: str | None = None) -> bool:
        return self.identity.allows(perm, department)

    def can(self, perm: Perm, ledger_id: str) -> bool:
        """May the identity read (``Perm.LEDGER_READ``), upload to or roll back this ledger."""
        return self.identity.can(perm, self._spec(ledger_id))

    def ledgers_readable(self) -> list[LedgerSpec]:
        """Every ledger the identity may read, in declaration order."""
        return [spec for spec in self._host.store.specs.values() if self.identity.can(Perm.LEDGER_READ, spec)]

    @property
    def ledgers(self) -> LedgerActions:
        """The ledger service acting for this identity (see :class:`LedgerActions`)."""
        return LedgerActions(self._host, self.identity)

    def ledger(self, ledger_id: str) -> LedgerReader:
        """Read a ledger's current rows within this identity's scope.

        Raises :class:`AccessDenied` (audited) when the identity may read no rows.
        """
        spec = self._spec(ledger_id)
        if not self.identity.can(Perm.LEDGER_READ, spec):
            raise self.deny(f"ledger:{ledger_id}", "ledger read")
        return LedgerReader(self._host, spec, self.identity, self.plugin)

    def deny(self, target: str, how: str, message: str | None = None) -> AccessDenied:
        """Record a refused request (``how``: e.g. "query parameter") and return the exception
        to raise: ``raise ctx.deny("department:gaj", "query parameter")``. The host shows its
        Chinese message in place of the page or tile."""
        self._host.audit.record(self.identity, "access.denied", target, "denied", plugin=self.plugin, how=how)
        return AccessDenied("request", target, message, audited=True)

    def connector(self, connector_id: str) -> Any:
        """The configured connection (files, SQL, REST …) for ``connector_id``.

        Granted per department (see :class:`huizhi.specs.ConnectorSpec`): raises
        :class:`huizhi.access.AccessDenied` (audited) when this plugin or the signed-in identity
        may not use it, and ``LookupError`` when no enabled plugin declares ``connector_id``.
        """
        return self._host.connector(connector_id, plugin=self.plugin, identity=self.identity)

    def source(
        self, connector_id: str, query: Any, params: Mapping[str, Any] | None = None, *, max_age: float | None = None
    ) -> SourceResult:
        """Data from a connector, cached, with how fresh it is: a :class:`SourceResult`.

        ``query`` and ``params`` are what the connection's ``fetch`` takes: a file name (and
        ``{"sheet": …}``) for ``files``, a ``sqlalchemy.text`` with ``:name`` placeholders (or a
        ``sqlalchemy.select``) and its values for ``sql``, a path and query parameters for
        ``rest``. The result is served from the host's cache while younger than ``max_age``
        seconds (default: ``max_age`` in ``[connectors.<id>]``, else 300), keyed by query and
        parameters; a fetch that fails or takes longer than ``timeout`` (default 30 s) gives the
        last good data with ``stale=True`` and ``error_since``. Never raises for a failing
        source; raises :class:`AccessDenied` (audited) like :meth:`connector`. Pages usually
        call :func:`huizhi.kit.source_data`, which also shows the Chinese notice.
        """
        return self._host.source(
            connector_id, query, params, plugin=self.plugin, identity=self.identity, max_age=max_age
        )

    def audit(self, action: str, target: str = "", outcome: str = "ok", **detail: Any) -> None:
        self._host.audit.record(self.identity, action, target, outcome, plugin=self.plugin, **detail)

    def _spec(self, ledger_id: str) -> LedgerSpec:
        spec = self._host.store.specs.get(ledger_id)
        if spec is None:
            raise LookupError(f"plugin {self.plugin!r}: no enabled plugin declares ledger {ledger_id!r}")
        return spec


@dataclass
class PageContext(_BaseContext):
    """Handed to ``PageSpec.render``. ``params`` are the page's query parameters (e.g. filters
    carried over from a cockpit drill-down)."""

    page: PageSpec | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    # url path -> st.Page, for the pages this identity may open (see :meth:`link`)
    nav: Mapping[str, Any] = field(default_factory=dict)

    def link(
        self, url_path: str, label: str | None = None, icon: str | None = None, **query_params: Any
    ) -> bool:
        """Draw a link to another portal page (with query parameters, e.g. drill-down filters).

        Returns False and draws nothing when the identity may not open that page.
        """
        import streamlit as st

        page = self.nav.get(url_path)
        if page is None:
            return False
        params = {
            k: ",".join(map(str, v)) if isinstance(v, list | tuple) else str(v)
            for k, v in query_params.items()
            if v
        }
        st.page_link(page, label=label, icon=icon, query_params=params or None)
        return True


@dataclass
class TileContext(_BaseContext):
    """Handed to ``TileSpec.query`` and ``TileSpec.render``."""

    tile: TileSpec | None = None
    filters: Filters = field(default_factory=Filters)
    # which of FILTER_STREET / _DEPARTMENT / _PERIOD the tile applied (the card says which it ignores)
    filters_applied: set[str] = field(default_factory=set)

    def filter_conditions(
        self,
        reader: LedgerReader,
        *,
        street: str | None = "street",
        department: str | None = "auto",
        date: str | None = None,
    ) -> list[sa.ColumnElement[bool]]:
        """WHERE conditions applying the cockpit filters to a read of ``reader``'s rows.

        ``street`` names the ledger's street column (default ``"street"``, used when the ledger
        has one; None: the tile has no street), ``department`` the department column
        (``"auto"``: the ledger's ``department_column``), ``date`` the date column the period
        filter applies to. Each filter the ledger has a column for is recorded in
        :attr:`filters_applied`, active or not, so the cockpit can show which filters a tile
        cannot honour.
        """
        names = {c.name for c in reader.spec.columns}

        def column(name: str | None) -> str | None:
            return name if name is not None and name in names else None

        street_col = column(street)
        dept_col = column(reader.spec.department_column if department == "auto" else department)
        date_col = column(date)
        conds: list[sa.ColumnElement[bool]] = []
        if street_col:
            self.filters_applied.add(FILTER_STREET)
            if self.filters.streets:
                conds.append(reader.c(street_col).in_(list(self.filters.streets)))
        if dept_col:
            self.filters_applied.add(FILTER_DEPARTMENT)
            if self.filters.departments:
                conds.append(reader.c(dept_col).in_(list(self.filters.departments)))
        if date_col:
            self.filters_applied.add(FILTER_PERIOD)
            if self.filters.period is not None:
                start, end = self.filters.period
                if start is not None:
                    conds.append(reader.c(date_col) >= start)
                if end is not None:
                    conds.append(reader.c(date_col) <= end)
        return conds
