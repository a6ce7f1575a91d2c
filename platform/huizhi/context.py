"""What a plugin's page or tile is handed: the identity and permission-scoped data access.

Plugins never see the engine. They read ledgers through :class:`LedgerReader`, whose every
statement starts from :meth:`huizhi.ledger_store.LedgerStore.scoped_select` for the signed-in
identity, so the permission decision is part of the SQL a plugin runs.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from huizhi.access import AccessDenied, Identity
from huizhi.clock import beijing_today
from huizhi.specs import LedgerSpec, PageSpec, Perm, TileSpec

if TYPE_CHECKING:
    import pandas as pd

    from huizhi.host import Host


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


class LedgerReader:
    """Rows of one ledger, current version, as far as the identity may see them.

    ``rows`` is a subquery of exactly those rows; build any SELECT on it with SQLAlchemy and run
    it with :meth:`execute` or :meth:`frame`. Convenience methods cover the common page needs.
    """

    def __init__(self, host: Host, spec: LedgerSpec, identity: Identity, version_id: int | None = None):
        self.host = host
        self.spec = spec
        self.identity = identity
        self.scope = identity.row_scope(spec)
        self.select = host.store.scoped_select(spec.id, self.scope, version_id)
        self.rows = self.select.subquery(f"{spec.id}_rows")

    @property
    def sees_all_rows(self) -> bool:
        return self.scope.all_rows

    @property
    def version(self) -> int | None:
        """The number of the ledger's current version (None: nothing committed yet)."""
        head = self.host.store.head(self.spec.id)
        return head.number if head else None

    @property
    def updated_at(self) -> dt.datetime | None:
        """When the current version was committed (naive UTC; None: nothing committed yet)."""
        head = self.host.store.head(self.spec.id)
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

    def execute(self, stmt: sa.Executable) -> list[sa.Row[Any]]:
        with self.host.engine.connect() as conn:
            return list(conn.execute(stmt))

    def scalar(self, stmt: sa.Executable) -> Any:
        with self.host.engine.connect() as conn:
            return conn.execute(stmt).scalar()

    def frame(self, stmt: sa.Select | None = None) -> pd.DataFrame:
        import pandas as pd

        stmt = stmt if stmt is not None else sa.select(self.rows)
        with self.host.engine.connect() as conn:
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


@dataclass
class _BaseContext:
    host: Host
    identity: Identity
    plugin: str
    # The one "today" (Beijing) a page or tile uses for values and judgements alike; tests pin it.
    today: dt.date = field(default_factory=beijing_today)

    def allows(self, perm: Perm, department: str | None = None) -> bool:
        return self.identity.allows(perm, department)

    def ledger(self, ledger_id: str) -> LedgerReader:
        """Read a ledger's current rows within this identity's scope.

        Raises :class:`huizhi.access.AccessDenied` (audited) when the identity may read no rows.
        """
        spec = self.host.registry.ledger(ledger_id)
        reader = LedgerReader(self.host, spec, self.identity)
        if not self.identity.allows(Perm.LEDGER_READ) or reader.scope.empty:
            self.host.audit.record(
                self.identity, "access.denied", f"ledger:{ledger_id}", "denied", plugin=self.plugin
            )
            raise AccessDenied(Perm.LEDGER_READ, spec.title)
        return reader

    def deny(self, target: str, how: str, message: str | None = None) -> AccessDenied:
        """Record a refused request (``how``: e.g. "query parameter") and return the exception
        to raise: ``raise ctx.deny("department:gaj", "query parameter")``. The host shows its
        Chinese message in place of the page or tile."""
        self.host.audit.record(
            self.identity, "access.denied", target, "denied", plugin=self.plugin, how=how
        )
        return AccessDenied("request", target, message)

    def connector(self, connector_id: str) -> Any:
        """A configured connection (files, SQL, REST …) declared by any plugin."""
        return self.host.connector(connector_id)

    def audit(self, action: str, target: str = "", outcome: str = "ok", **detail: Any) -> None:
        self.host.audit.record(self.identity, action, target, outcome, plugin=self.plugin, **detail)


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
