"""Ledger rows, versions and permission-scoped reads.

Each ledger has one table ``ledger_<id>``: the spec's columns plus ``_version_id``. A version is a
full snapshot (its rows carry its id); ``ledger_heads`` points at the current one. So:

* a commit inserts the new rows and moves the head with a compare-and-set in one transaction:
  a failed, interrupted or concurrent commit leaves the current version untouched;
* rollback copies an earlier version's rows into a *new* version: history is never rewritten;
* reads select the head's rows, filtered by the reader's :class:`huizhi.access.RowScope`.

Bulk loads bypass row-by-row INSERTs (37 s per 100k rows through duckdb-engine): an Arrow table
registered on the DuckDB connection, ``COPY FROM STDIN`` on PostgreSQL.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy import Connection, Engine, func, select
from sqlalchemy.exc import DBAPIError, IntegrityError

from huizhi.access import RowScope
from huizhi.db import lock_schema
from huizhi.models import LedgerHead, LedgerPreview, LedgerVersion, ledger_version_seq, utcnow
from huizhi.specs import ColumnSpec, LedgerSpec

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

log = logging.getLogger(__name__)

VERSION_COLUMN = "_version_id"

_SQL_TYPES: dict[str, Any] = {
    "str": sa.Text,
    "int": sa.BigInteger,
    "float": sa.Double,
    "date": sa.Date,
    "bool": sa.Boolean,
}


class StaleVersion(RuntimeError):
    """The ledger changed since the caller looked at it (another admin committed first)."""

    user_message = "台账在您预览之后已被他人更新，本次提交未生效。请重新上传或刷新预览后再提交。"


class Unchanged(RuntimeError):
    """The upload is identical to the current version; no version was created."""

    user_message = "上传内容与当前版本完全相同，未创建新版本。"


class Mode(StrEnum):
    """How an upload changes its ledger (recorded in ``ledger_versions.mode``).

    * ``replace``: the file is the whole ledger (a department's upload: all of its rows); rows
      not in the file are deleted.
    * ``upsert``: rows whose key exists are replaced, new keys are added, every other row is kept.
    * ``delete``: the rows whose keys the file lists are deleted; only the key columns are read.

    For a department's upload to a district-wide ledger each mode works within that department's
    rows; keys of another department's rows are refused (:class:`KeyConflict`).
    """

    REPLACE = "replace"
    UPSERT = "upsert"
    DELETE = "delete"


class KeyConflict(ValueError):
    """A department's upload uses keys that another department's rows already have."""

    _MESSAGES = {
        "use": "以下编号已被其他单位的台账行使用，本次提交未生效：{shown}。请核对编号后重新上传。",
        "upsert": "以下编号属于其他单位的台账行，本单位不能修改，本次提交未生效：{shown}。请核对编号，或联系该单位修改。",
        "delete": "以下编号属于其他单位的台账行，本单位不能删除，本次提交未生效：{shown}。请核对编号，或联系该单位删除。",
    }

    def __init__(self, keys: list[tuple], action: str = "use"):
        super().__init__(f"keys of other departments' rows ({action}): {keys}")
        self.keys = keys
        shown = "、".join("/".join(map(str, k)) for k in keys)
        self.user_message = self._MESSAGES[action].format(shown=shown)


class DuplicateKeys(ValueError):
    """Rows given to the store repeat a key (a validated upload never does; typed rows might)."""

    def __init__(self, keys: list[tuple[Any, ...]]):
        super().__init__(f"rows repeat keys: {keys}")
        shown = "、".join("/".join(map(str, k)) for k in keys)
        self.user_message = f"以下编号在数据中出现了不止一次，本次提交未生效：{shown}。每个编号只能有一行。"


class OutOfScope(ValueError):
    """A department's upload contains rows of other departments."""

    def __init__(self, names: list[str]):
        super().__init__(f"rows of other departments in a department upload: {names}")
        self.user_message = (
            f"上传的表格中有其他单位的行（{'、'.join(names)}）。本单位只能提交本单位的行，请删除这些行后重新上传。"
        )


@dataclass(frozen=True)
class Staged:
    """What :meth:`LedgerStore.stage` wrote: the preview record, and for a delete the listed keys
    the current version does not have (nothing to delete for them)."""

    preview: LedgerPreview
    unmatched: int = 0
    unmatched_keys: tuple[tuple, ...] = ()
    diff: Diff | None = None  # against the version it was staged on: counts and the first rows of each kind

    @property
    def id(self) -> int:
        return self.preview.id


@dataclass(frozen=True)
class DiffCounts:
    added: int
    changed: int
    removed: int
    unchanged: int


@dataclass(frozen=True)
class Diff:
    """What changed between two versions: counts, and the first rows of each kind."""

    counts: DiffCounts
    added_rows: pa.Table
    removed_rows: pa.Table
    changed_cells: pa.Table  # key columns…, column, old, new

    @property
    def added(self) -> int:
        return self.counts.added

    @property
    def changed(self) -> int:
        return self.counts.changed

    @property
    def removed(self) -> int:
        return self.counts.removed

    @property
    def unchanged(self) -> int:
        return self.counts.unchanged


def ledger_table(spec: LedgerSpec, metadata: sa.MetaData | None = None) -> sa.Table:
    metadata = metadata if metadata is not None else sa.MetaData()
    return sa.Table(
        spec.table_name,
        metadata,
        sa.Column(VERSION_COLUMN, sa.BigInteger, nullable=False),
        *(sa.Column(col.name, _SQL_TYPES[col.dtype]()) for col in spec.columns),
    )


def _sql_column(col: ColumnSpec, dialect: sa.Dialect) -> str:
    return f"{dialect.identifier_preparer.quote(col.name)} {_SQL_TYPES[col.dtype]().compile(dialect=dialect)}"


class LedgerStore:
    """Storage for every ledger the registry declares. One per host; cheap to build."""

    def __init__(self, engine: Engine, specs: Mapping[str, LedgerSpec]):
        self.engine = engine
        self.specs = dict(specs)
        self.metadata = sa.MetaData()
        self.tables = {lid: ledger_table(spec, self.metadata) for lid, spec in self.specs.items()}

    @property
    def backend(self) -> str:
        return self.engine.dialect.name

    # -- schema ---------------------------------------------------------------------------------

    def ensure_tables(self) -> None:
        """Create missing ledger tables; add columns a newer plugin version declares.

        Columns a plugin dropped are kept (history stays readable); types are not changed in
        place: a plugin that changes a column's type must use a new column name.
        """
        # Under the schema lock (PostgreSQL): hosts starting together create each table once.
        # duckdb-engine's inspector cannot list columns (it queries pg_catalog), so ask the table.
        with self.engine.begin() as conn:
            lock_schema(conn)
            existing = set(sa.inspect(conn).get_table_names())
            for ledger_id, table in self.tables.items():
                if table.name not in existing:
                    table.create(conn)
                    if self.backend == "postgresql":
                        sa.Index(f"ix_{table.name}_version", table.c[VERSION_COLUMN]).create(conn)
                    continue
                have = set(conn.execute(sa.text(f"SELECT * FROM {table.name} LIMIT 0")).keys())
                for col in self.specs[ledger_id].columns:
                    if col.name not in have:
                        log.info("ledger %s: adding column %s", ledger_id, col.name)
                        conn.execute(
                            sa.text(
                                f"ALTER TABLE {table.name} ADD COLUMN {_sql_column(col, self.engine.dialect)}"
                            )
                        )

    # -- reading --------------------------------------------------------------------------------

    def head(self, ledger_id: str, conn: Connection | None = None) -> LedgerHead | None:
        stmt = select(LedgerHead).where(LedgerHead.ledger_id == ledger_id)
        # Bound to ``conn``, the read joins the caller's transaction (it sees its own writes).
        with sa.orm.Session(bind=conn if conn is not None else self.engine) as session:
            return session.scalars(stmt).first()

    def heads(self) -> dict[str, LedgerHead]:
        with sa.orm.Session(self.engine) as session:
            return {h.ledger_id: h for h in session.scalars(select(LedgerHead))}

    def versions(self, ledger_id: str) -> list[LedgerVersion]:
        stmt = (
            select(LedgerVersion)
            .where(LedgerVersion.ledger_id == ledger_id)
            .order_by(LedgerVersion.number.desc())
        )
        with sa.orm.Session(self.engine) as session:
            return list(session.scalars(stmt))

    def version(self, ledger_id: str, number: int) -> LedgerVersion:
        stmt = select(LedgerVersion).where(
            LedgerVersion.ledger_id == ledger_id, LedgerVersion.number == number
        )
        with sa.orm.Session(self.engine) as session:
            found = session.scalars(stmt).first()
        if found is None:
            raise KeyError(f"ledger {ledger_id!r} has no version {number}")
        return found

    def scoped_select(self, ledger_id: str, scope: RowScope, version_id: int | None = None) -> sa.Select:
        """SELECT of the ledger's rows in ``version_id`` (default: current) within ``scope``.

        This is where permission becomes SQL: every read the host hands to a plugin is built on
        this statement, so a plugin cannot reach rows outside its reader's scope.
        """
        spec = self.specs[ledger_id]
        table = self.tables[ledger_id]
        cols = [table.c[c.name] for c in spec.columns]
        if version_id is None:
            head_id = select(LedgerHead.version_id).where(LedgerHead.ledger_id == ledger_id).scalar_subquery()
            stmt = select(*cols).where(table.c[VERSION_COLUMN] == head_id)
        else:
            stmt = select(*cols).where(table.c[VERSION_COLUMN] == version_id)
        if scope.all_rows:
            return stmt
        if scope.empty or spec.department_column is None:
            return stmt.where(sa.false())
        return stmt.where(table.c[spec.department_column].in_(sorted(scope.department_names)))

    # -- writing --------------------------------------------------------------------------------
    #
    # Only the ledger service (huizhi.ledgers) calls these: it checks who may do what, audits it
    # and publishes the event. A change is two steps, so what a person confirms is what is stored:
    # ``stage`` writes the rows under a new version id no head points at and computes the diff;
    # ``publish`` moves the head to it (compare-and-set) and records the version.

    def stage(
        self,
        ledger_id: str,
        data: pa.Table | pd.DataFrame | None,
        *,
        subject: str,
        kind: str,
        file_name: str | None = None,
        file_sha256: str | None = None,
        note: str = "",
        replace_scope: RowScope | None = None,
        copy_of: int | None = None,
        mode: Mode = Mode.REPLACE,
        detail_limit: int = 200,
    ) -> Staged:
        """Write ``data`` (or, with ``copy_of``, that version's rows) as a staged version, and
        compare it with the current one (``Staged.diff``: the counts stored with the preview and
        the first ``detail_limit`` rows of each kind, from one join in the same transaction).

        ``mode`` says what the staged version is (all in SQL, in one transaction):

        * ``replace``: ``data``; with ``replace_scope`` (departments, not all rows: a department's
          own upload to a district-wide ledger, 分级分权) plus every other department's rows
          carried over from the current version;
        * ``upsert``: ``data`` plus the current rows whose keys ``data`` does not have;
        * ``delete``: the current rows whose keys ``data`` does not list (``data`` needs only the
          key columns).

        Raises :class:`OutOfScope` (rows of other departments in ``data``) and
        :class:`KeyConflict` (keys of other departments' rows); nothing is left behind when it
        raises.
        """
        spec = self.specs[ledger_id]
        table = self.tables[ledger_id]
        cols = [c.name for c in spec.columns]
        mode = Mode(mode)
        # a department's own rows of a district-wide ledger; None: the whole ledger
        partial = replace_scope if replace_scope is not None and not replace_scope.all_rows else None
        if data is None:
            arrow = None
        elif mode == Mode.DELETE:
            arrow = _keys_arrow(data, spec)
        else:
            arrow = _to_arrow(data, spec)
        if partial is not None and arrow is not None and mode != Mode.DELETE:
            _check_rows_in_scope(spec, arrow, partial)
        self._discard_abandoned(ledger_id)
        unmatched: int = 0
        unmatched_keys: tuple[tuple[Any, ...], ...] = ()
        try:
            with self.engine.begin() as conn:
                self._hash_joins(conn)
                head = self.head(ledger_id, conn)
                base_id = head.version_id if head else None
                new_id = int(conn.execute(select(ledger_version_seq.next_value())).scalar_one())
                # the staged version is exactly ``arrow`` (nothing copied or carried over in SQL):
                # its keys are checked in Arrow, before anything is written, not by a GROUP BY
                # over the inserted rows
                as_given = arrow is not None and copy_of is None and mode == Mode.REPLACE and (
                    partial is None or base_id is None
                )
                # (float keys stay with SQL: its equality of -0.0 and 0.0 is not Arrow's hashing)
                keys_in_arrow = as_given and all(spec.column(k).dtype != "float" for k in spec.key)
                if keys_in_arrow and arrow is not None:
                    repeated = _repeated_keys(arrow, spec.key)
                    if repeated:
                        raise DuplicateKeys(repeated)
                if copy_of is not None:
                    source = select(sa.literal(new_id).label(VERSION_COLUMN), *(table.c[c] for c in cols)).where(
                        table.c[VERSION_COLUMN] == copy_of
                    )
                    conn.execute(sa.insert(table).from_select([VERSION_COLUMN, *cols], source))
                elif mode == Mode.DELETE:
                    listed = -new_id  # the listed keys, for this transaction only
                    if arrow is not None:
                        self._bulk_insert(conn, ledger_id, arrow, listed)
                    if base_id is not None:
                        if partial is not None:
                            self._refuse_foreign_keys(conn, ledger_id, base_id, listed, partial, "delete")
                        self._carry_over_unlisted(conn, ledger_id, base_id, new_id, listed)
                    unmatched, unmatched_keys = self._unmatched(conn, ledger_id, base_id, listed)
                    conn.execute(sa.delete(table).where(table.c[VERSION_COLUMN] == listed))
                elif arrow is not None:
                    self._bulk_insert(conn, ledger_id, arrow, new_id)
                if base_id is not None and copy_of is None and mode == Mode.UPSERT:
                    if partial is not None:
                        self._refuse_foreign_keys(conn, ledger_id, base_id, new_id, partial, "upsert")
                    self._carry_over_unlisted(conn, ledger_id, base_id, new_id, new_id)
                elif partial is not None and base_id is not None and mode == Mode.REPLACE:
                    self._carry_over(conn, ledger_id, base_id, new_id, partial)
                if not keys_in_arrow:
                    self._check_unique_keys(
                        conn, ledger_id, new_id,
                        carried_over=partial is not None and base_id is not None and mode == Mode.REPLACE,
                    )  # fmt: skip
                row_count = arrow.num_rows if as_given and arrow is not None else self._count(conn, ledger_id, new_id)
                diff = self._compare(conn, ledger_id, base_id, new_id, None, detail_limit, row_count)
                counts = diff.counts
                preview = LedgerPreview(
                    id=new_id,
                    ledger_id=ledger_id,
                    base_version_id=base_id,
                    subject=subject,
                    created_at=utcnow(),
                    kind=kind,
                    mode=str(mode),
                    file_name=file_name,
                    file_sha256=file_sha256,
                    # the rows just inserted, unless some were copied or carried over in SQL
                    row_count=row_count,
                    added=counts.added,
                    changed=counts.changed,
                    removed=counts.removed,
                    unchanged=counts.unchanged,
                    scope=json.dumps(sorted(partial.department_names), ensure_ascii=False)
                    if partial is not None else None,
                    note=note,
                )
                conn.execute(sa.insert(LedgerPreview).values(**_fields(preview)))
                return Staged(preview, unmatched, unmatched_keys, diff)
        except (IntegrityError, DBAPIError) as exc:
            if _is_conflict(exc):
                raise StaleVersion(f"ledger {ledger_id}: concurrent change while staging") from exc
            raise

    def preview(self, ledger_id: str, preview_id: int) -> LedgerPreview | None:
        with sa.orm.Session(self.engine) as session:
            found = session.get(LedgerPreview, preview_id)
        return found if found is not None and found.ledger_id == ledger_id else None

    def publish(
        self,
        ledger_id: str,
        preview_id: int,
        *,
        created_by: str,
        created_by_name: str | None = None,
        restored_from: int | None = None,
        within: Callable[[Connection, LedgerVersion], None] | None = None,
    ) -> LedgerVersion:
        """Make a staged version current, atomically; raises :class:`StaleVersion` when the head
        moved since it was staged (the staged rows stay until discarded). ``within`` runs in the
        same transaction after the version is recorded (e.g. a PostgreSQL NOTIFY)."""
        try:
            with self.engine.begin() as conn:
                with sa.orm.Session(bind=conn) as session:  # joins this transaction
                    staged = session.scalars(
                        select(LedgerPreview).where(LedgerPreview.id == preview_id, LedgerPreview.ledger_id == ledger_id)
                    ).first()
                if staged is None:
                    raise StaleVersion(f"ledger {ledger_id}: staged version {preview_id} is gone")
                head = self.head(ledger_id, conn)
                current_id = head.version_id if head else None
                if current_id != staged.base_version_id:
                    raise StaleVersion(
                        f"ledger {ledger_id}: head is {current_id}, the preview was made against {staged.base_version_id}"
                    )
                number = (head.number if head else 0) + 1
                now = utcnow()
                version = LedgerVersion(
                    id=staged.id,
                    ledger_id=ledger_id,
                    number=number,
                    created_by=created_by,
                    created_by_name=created_by_name,
                    created_at=now,
                    file_name=staged.file_name,
                    file_sha256=staged.file_sha256,
                    row_count=staged.row_count,
                    added=staged.added,
                    changed=staged.changed,
                    removed=staged.removed,
                    kind=staged.kind,
                    mode=staged.mode or str(Mode.REPLACE),
                    restored_from=restored_from,
                    note=staged.note,
                    scope=staged.scope,
                )
                conn.execute(sa.insert(LedgerVersion).values(**_fields(version)))
                conn.execute(sa.delete(LedgerPreview).where(LedgerPreview.id == staged.id))
                if head is None:
                    conn.execute(
                        sa.insert(LedgerHead).values(
                            ledger_id=ledger_id, version_id=staged.id, number=number, updated_at=now
                        )
                    )
                else:
                    moved = conn.execute(
                        sa.update(LedgerHead)
                        .where(LedgerHead.ledger_id == ledger_id, LedgerHead.version_id == head.version_id)
                        .values(version_id=staged.id, number=number, updated_at=now)
                    )
                    if moved.rowcount != 1:
                        raise StaleVersion(f"ledger {ledger_id}: head moved while committing")
                if within is not None:
                    within(conn, version)
                return version
        except (IntegrityError, DBAPIError) as exc:
            if _is_conflict(exc):  # two commits raced for the same head
                raise StaleVersion(f"ledger {ledger_id}: concurrent commit ({exc.__class__.__name__})") from exc
            raise

    def discard(self, ledger_id: str, preview_id: int) -> None:
        """Delete a staged version's rows (never a committed version's)."""
        table = self.tables[ledger_id]
        with self.engine.begin() as conn:
            gone = conn.execute(
                sa.delete(LedgerPreview).where(LedgerPreview.id == preview_id, LedgerPreview.ledger_id == ledger_id)
            )
            if gone.rowcount:
                conn.execute(sa.delete(table).where(table.c[VERSION_COLUMN] == preview_id))

    def _discard_abandoned(self, ledger_id: str, max_age: dt.timedelta = dt.timedelta(hours=12)) -> None:
        """Drop staged versions that can never be committed (the head moved past them) or that
        nobody committed for ``max_age``: a closed browser tab leaves its preview behind."""
        head = self.head(ledger_id)
        current_id = head.version_id if head else None
        with sa.orm.Session(self.engine) as session:
            stale = list(
                session.scalars(
                    select(LedgerPreview.id).where(
                        LedgerPreview.ledger_id == ledger_id,
                        sa.or_(
                            LedgerPreview.created_at < utcnow() - max_age,
                            LedgerPreview.base_version_id.is_distinct_from(current_id),
                        ),
                    )
                )
            )
        for preview_id in stale:
            self.discard(ledger_id, preview_id)

    # -- comparing ------------------------------------------------------------------------------

    def diff(
        self,
        ledger_id: str,
        old_id: int | None,
        new_id: int,
        *,
        scope: RowScope | None = None,
        detail_limit: int = 200,
    ) -> Diff:
        """Added / changed (old → new per cell) / removed / unchanged rows between two versions,
        by key, within ``scope`` (default: all rows). The one diff implementation: previews
        (through :meth:`stage`), commits and the history view all use it, in the database."""
        with self.engine.connect() as conn:
            self._hash_joins(conn)
            return self._compare(conn, ledger_id, old_id, new_id, scope, detail_limit)

    def unchanged_keys(self, ledger_id: str, old_id: int, new_id: int, keys: Sequence[tuple]) -> set[tuple]:
        """Those of ``keys`` whose row is identical in versions ``old_id`` and ``new_id``."""
        spec = self.specs[ledger_id]
        cols = [c.name for c in spec.columns]
        values = [c for c in cols if c not in spec.key]
        new = self._version_rows(ledger_id, new_id, None, "new")
        old = self._version_rows(ledger_id, old_id, None, "old")
        on = sa.and_(*(new.c[k] == old.c[k] for k in spec.key))
        same = sa.and_(*(new.c[v].is_not_distinct_from(old.c[v]) for v in values)) if values else sa.true()
        key_cols = [new.c[k] for k in spec.key]
        found: set[tuple] = set()
        with self.engine.connect() as conn:
            for start in range(0, len(keys), 1000):
                chunk = list(keys[start : start + 1000])
                listed = key_cols[0].in_([k[0] for k in chunk]) if len(key_cols) == 1 else sa.tuple_(*key_cols).in_(chunk)
                rows = conn.execute(select(*key_cols).select_from(new.join(old, on)).where(same, listed))
                found.update(tuple(r) for r in rows)
        return found

    def _hash_joins(self, conn: Connection) -> None:
        """Compare whole versions with hash joins on PostgreSQL. Right after a bulk insert the
        planner's row estimates for ``_version_id = <new>`` are near zero (no ANALYZE yet), and it
        picks a nested loop over two 150k-row versions: minutes instead of a fraction of a second."""
        if self.backend == "postgresql":
            conn.execute(sa.text("SET LOCAL enable_nestloop = off"))
            # the hash of one version (100k rows × 20 columns: ~35 MB) fits in memory; with the
            # default 4 MB it went to disk in 4 batches (EXPLAIN ANALYZE), for this transaction only
            conn.execute(sa.text("SET LOCAL work_mem = '128MB'"))

    def _version_rows(self, ledger_id: str, version_id: int, scope: RowScope | None, name: str) -> sa.Subquery:
        return self.scoped_select(ledger_id, scope or RowScope(all_rows=True), version_id).subquery(name)

    def _count(self, conn: Connection, ledger_id: str, version_id: int) -> int:
        table = self.tables[ledger_id]
        stmt = select(func.count()).select_from(table).where(table.c[VERSION_COLUMN] == version_id)
        return int(conn.execute(stmt).scalar_one())

    def _carry_over(self, conn: Connection, ledger_id: str, from_id: int, to_id: int, scope: RowScope) -> None:
        """Copy the rows outside ``scope`` from version ``from_id`` into ``to_id``."""
        spec = self.specs[ledger_id]
        table = self.tables[ledger_id]
        cols = [c.name for c in spec.columns]
        assert spec.department_column is not None  # only district-wide ledgers take department uploads
        dept = table.c[spec.department_column]
        source = select(sa.literal(to_id).label(VERSION_COLUMN), *(table.c[c] for c in cols)).where(
            table.c[VERSION_COLUMN] == from_id,
            sa.or_(dept.is_(None), dept.not_in(sorted(scope.department_names))),
        )
        conn.execute(sa.insert(table).from_select([VERSION_COLUMN, *cols], source))

    def _carry_over_unlisted(self, conn: Connection, ledger_id: str, from_id: int, to_id: int, listed_id: int) -> None:
        """Copy the rows of version ``from_id`` whose keys the rows under ``listed_id`` do not have
        into ``to_id`` (upsert: ``listed_id`` is ``to_id`` itself; delete: the listed keys)."""
        spec = self.specs[ledger_id]
        table = self.tables[ledger_id]
        cols = [c.name for c in spec.columns]
        old, listed = table.alias("old"), table.alias("listed")
        present = (
            select(sa.literal(1)).select_from(listed)
            .where(listed.c[VERSION_COLUMN] == listed_id, *(listed.c[k] == old.c[k] for k in spec.key))
            .exists()
        )  # fmt: skip
        source = select(sa.literal(to_id).label(VERSION_COLUMN), *(old.c[c] for c in cols)).where(
            old.c[VERSION_COLUMN] == from_id, ~present
        )
        conn.execute(sa.insert(table).from_select([VERSION_COLUMN, *cols], source))

    def _refuse_foreign_keys(
        self, conn: Connection, ledger_id: str, base_id: int, listed_id: int, scope: RowScope, action: str
    ) -> None:
        """Raise :class:`KeyConflict` when rows under ``listed_id`` name keys that version
        ``base_id`` holds for a department outside ``scope``."""
        spec = self.specs[ledger_id]
        table = self.tables[ledger_id]
        old, listed = table.alias("old"), table.alias("listed")
        assert spec.department_column is not None  # only district-wide ledgers take department uploads
        dept = old.c[spec.department_column]
        on = sa.and_(*(listed.c[k] == old.c[k] for k in spec.key))
        foreign = conn.execute(
            select(*(listed.c[k] for k in spec.key)).select_from(listed.join(old, on))
            .where(
                listed.c[VERSION_COLUMN] == listed_id, old.c[VERSION_COLUMN] == base_id,
                sa.or_(dept.is_(None), dept.not_in(sorted(scope.department_names))),
            )
            .order_by(*(listed.c[k] for k in spec.key)).limit(5)
        ).fetchall()  # fmt: skip
        if foreign:
            raise KeyConflict([tuple(f) for f in foreign], action)

    def _unmatched(
        self, conn: Connection, ledger_id: str, base_id: int | None, listed_id: int, limit: int = 20
    ) -> tuple[int, tuple[tuple, ...]]:
        """Listed keys (rows under ``listed_id``) that version ``base_id`` does not have."""
        spec = self.specs[ledger_id]
        table = self.tables[ledger_id]
        old, listed = table.alias("old"), table.alias("listed")
        where = [listed.c[VERSION_COLUMN] == listed_id]
        if base_id is not None:
            present = (
                select(sa.literal(1)).select_from(old)
                .where(old.c[VERSION_COLUMN] == base_id, *(old.c[k] == listed.c[k] for k in spec.key))
                .exists()
            )  # fmt: skip
            where.append(~present)
        count = int(conn.execute(select(func.count()).select_from(listed).where(*where)).scalar_one())
        keys = conn.execute(
            select(*(listed.c[k] for k in spec.key)).where(*where).order_by(*(listed.c[k] for k in spec.key)).limit(limit)
        ).fetchall() if count else []
        return count, tuple(tuple(k) for k in keys)

    def _check_unique_keys(self, conn: Connection, ledger_id: str, version_id: int, *, carried_over: bool) -> None:
        """Every key once in a version. With rows carried over from other departments a repeat is
        a key another department already uses (:class:`KeyConflict`), else :class:`DuplicateKeys`."""
        spec = self.specs[ledger_id]
        table = self.tables[ledger_id]
        keys = [table.c[k] for k in spec.key]
        dupes = conn.execute(
            select(*keys).where(table.c[VERSION_COLUMN] == version_id).group_by(*keys)
            .having(func.count() > 1).limit(5)
        ).fetchall()
        if dupes:
            repeated = [tuple(d) for d in dupes]
            raise KeyConflict(repeated) if carried_over else DuplicateKeys(repeated)

    def _compare(
        self,
        conn: Connection,
        ledger_id: str,
        old_id: int | None,
        new_id: int,
        scope: RowScope | None,
        detail_limit: int,
        new_rows: int | None = None,
    ) -> Diff:
        """The diff of two versions from one full outer join by key: the rows that differ are
        ranked by kind and key, counted per kind by a window over them, and the first
        ``detail_limit`` of each kind read; unchanged = rows of ``new_id`` − added − changed
        (``new_rows``: that count when the caller knows it). One pass over both versions, where
        counts and detail rows were two joins (on PostgreSQL each a hash join over 2 × the
        ledger's rows)."""
        spec = self.specs[ledger_id]
        cols = [c.name for c in spec.columns]
        values = [c for c in cols if c not in spec.key]
        if new_rows is None or scope is not None:
            new_rows = int(
                conn.execute(select(func.count()).select_from(self._version_rows(ledger_id, new_id, scope, "n"))).scalar_one()
            )
        if old_id is None:
            new = self._version_rows(ledger_id, new_id, scope, "new")
            first = conn.execute(select(*(new.c[c] for c in cols)).limit(detail_limit)).fetchall() if detail_limit else []
            counts = DiffCounts(added=new_rows, changed=0, removed=0, unchanged=0)
            return Diff(counts, _rows_table(spec, cols, first), _rows_table(spec, cols, []), _cells_table(spec, []))
        new, old, on = self._sides(ledger_id, old_id, new_id, scope)
        in_new, in_old = new.c[_PRESENT].is_not(None), old.c[_PRESENT].is_not(None)
        differs = sa.or_(*(new.c[v].is_distinct_from(old.c[v]) for v in values)) if values else sa.false()
        kind = sa.case((~in_old, 0), (~in_new, 1), else_=2)  # added, removed, changed
        ranked = (
            select(
                kind.label("_kind"),
                *(new.c[c].label(f"_n{i}") for i, c in enumerate(cols)),
                *(old.c[c].label(f"_o{i}") for i, c in enumerate(cols)),
                func.row_number()
                .over(partition_by=kind, order_by=[func.coalesce(new.c[k], old.c[k]) for k in spec.key])
                .label("_rank"),
                func.count().over(partition_by=kind).label("_count"),
            )
            .select_from(new.outerjoin(old, on, full=True))
            .where(sa.or_(~in_old, ~in_new, differs))
            .subquery("ranked")
        )
        # the first row of each kind comes back even with ``detail_limit`` 0: it carries the count
        found = conn.execute(
            select(ranked)
            .where(ranked.c["_rank"] <= max(detail_limit, 1))
            .order_by(ranked.c["_kind"], ranked.c["_rank"])
        ).fetchall()
        per_kind = {int(r[0]): int(r[-1]) for r in found}
        added, removed, changed = per_kind.get(0, 0), per_kind.get(1, 0), per_kind.get(2, 0)
        counts = DiffCounts(added=added, changed=changed, removed=removed, unchanged=new_rows - added - changed)
        found = [r for r in found if r[-2] <= detail_limit]
        nc = len(cols)
        first_added = [tuple(r[1 : 1 + nc]) for r in found if r[0] == 0]
        first_removed = [tuple(r[1 + nc : 1 + 2 * nc]) for r in found if r[0] == 1]
        cells: list[tuple[Any, ...]] = []
        key_at = [cols.index(k) for k in spec.key]
        value_at = [(cols.index(v), v) for v in values]
        for r in found:
            if r[0] != 2 or len(cells) >= detail_limit:
                continue
            after, before = r[1 : 1 + nc], r[1 + nc : 1 + 2 * nc]
            key = tuple(after[i] for i in key_at)
            for i, name in value_at:
                if before[i] != after[i]:
                    cells.append((*key, name, _as_text(before[i]), _as_text(after[i])))
                    if len(cells) >= detail_limit:
                        break
        return Diff(
            counts, _rows_table(spec, cols, first_added), _rows_table(spec, cols, first_removed), _cells_table(spec, cells)
        )

    def _sides(
        self, ledger_id: str, old_id: int, new_id: int, scope: RowScope | None
    ) -> tuple[sa.Subquery, sa.Subquery, sa.ColumnElement[bool]]:
        """The two versions' rows with a ``_present`` marker column each, and the join on the key."""
        spec = self.specs[ledger_id]
        marker = sa.literal(1).label(_PRESENT)
        everyone = scope or RowScope(all_rows=True)
        new = self.scoped_select(ledger_id, everyone, new_id).add_columns(marker).subquery("new")
        old = self.scoped_select(ledger_id, everyone, old_id).add_columns(marker).subquery("old")
        return new, old, sa.and_(*(new.c[k] == old.c[k] for k in spec.key))

    def _bulk_insert(self, conn: Connection, ledger_id: str, arrow: pa.Table, version_id: int) -> None:
        table = self.tables[ledger_id]
        cols = [c.name for c in self.specs[ledger_id].columns]
        quote = self.engine.dialect.identifier_preparer.quote
        col_sql = ", ".join(quote(c) for c in cols)
        # the driver's own connection (duckdb / psycopg): the bulk paths are driver APIs
        raw: Any = conn.connection.dbapi_connection
        if self.backend == "duckdb":
            view = f"_huizhi_incoming_{version_id}".replace("-", "m")  # a delete's listed keys: negative id
            raw.register(view, arrow)
            try:
                raw.execute(
                    f"INSERT INTO {quote(table.name)} ({quote(VERSION_COLUMN)}, {col_sql}) "
                    f"SELECT {version_id}, {col_sql} FROM {view}"
                )
            except BaseException:
                # a failed insert (a full disk) aborts the transaction, which then refuses the
                # unregister as well: that second error must not hide the first
                with contextlib.suppress(Exception):
                    raw.unregister(view)
                raise
            raw.unregister(view)
        elif self.backend == "postgresql":
            import pyarrow as pa
            import pyarrow.csv as pacsv

            # straight into the ledger table, the version id as the first CSV column, in batches:
            # no temporary table to copy from and never the whole CSV in memory at once
            rows = arrow.select(cols)
            rows = rows.add_column(0, VERSION_COLUMN, pa.repeat(pa.scalar(version_id, pa.int64()), rows.num_rows))
            options = pacsv.WriteOptions(include_header=False, quoting_style="all_valid")
            with raw.cursor() as cur, cur.copy(
                f"COPY {quote(table.name)} ({quote(VERSION_COLUMN)}, {col_sql}) FROM STDIN WITH (FORMAT csv)"
            ) as copy:
                for batch in rows.to_batches(max_chunksize=_COPY_BATCH_ROWS):
                    buf = io.BytesIO()
                    pacsv.write_csv(batch, buf, options)
                    copy.write(buf.getbuffer())
        else:  # any other SQLAlchemy backend: correct, not fast
            rows = [{VERSION_COLUMN: version_id, **row} for row in arrow.select(cols).to_pylist()]
            if rows:
                conn.execute(sa.insert(table), rows)


_COPY_BATCH_ROWS = 50_000  # rows per CSV chunk sent to PostgreSQL's COPY
_PRESENT = "_huizhi_present"  # marker column of each side of a full outer join between versions


def _repeated_keys(arrow: pa.Table, key: Sequence[str], limit: int = 5) -> list[tuple[Any, ...]]:
    """Keys that more than one row of ``arrow`` has (at most ``limit``), as the SQL ``GROUP BY``
    of :meth:`LedgerStore._check_unique_keys` finds them: NULL keys form one group."""
    import pyarrow.compute as pc

    if arrow.num_rows < 2 or not key:
        return []
    if len(key) == 1 and pc.count_distinct(arrow.column(key[0]), mode="all").as_py() == arrow.num_rows:
        return []  # the common case: one pass, no groups built
    groups = arrow.select(list(key)).group_by(list(key), use_threads=False).aggregate([([], "count_all")])
    if groups.num_rows == arrow.num_rows:
        return []
    repeated = groups.filter(pc.greater(groups.column("count_all"), 1)).slice(0, limit)
    return [tuple(row[k] for k in key) for row in repeated.select(list(key)).to_pylist()]


def _check_rows_in_scope(spec: LedgerSpec, arrow: pa.Table, scope: RowScope) -> None:
    import pyarrow.compute as pc

    if spec.department_column is None:
        raise OutOfScope(["（该台账不分单位，只能由牵头部门整表提交）"])
    values = arrow.column(spec.department_column)
    outside = pc.unique(pc.filter(values, pc.invert(pc.is_in(values, value_set=_string_array(scope.department_names)))))
    names = sorted(str(v) for v in outside.to_pylist() if v is not None)
    if names or values.null_count:
        raise OutOfScope(names or ["（权属单位为空）"])


def _string_array(values: frozenset[str]):
    import pyarrow as pa

    return pa.array(sorted(values), pa.string())


def _to_arrow(data: Any, spec: LedgerSpec) -> pa.Table:
    """Arrow table with exactly the spec's columns, in order, typed as the spec says."""
    import pyarrow as pa

    types = {
        "str": pa.string(),
        "int": pa.int64(),
        "float": pa.float64(),
        "date": pa.date32(),
        "bool": pa.bool_(),
    }
    if not isinstance(data, pa.Table):
        data = pa.Table.from_pandas(data, preserve_index=False)
    missing = [c.name for c in spec.columns if c.name not in data.column_names]
    if missing:
        raise ValueError(f"ledger {spec.id}: data lacks columns {missing}")
    schema = pa.schema([pa.field(c.name, types[c.dtype]) for c in spec.columns])
    return data.select([c.name for c in spec.columns]).cast(schema)


def _keys_arrow(data: Any, spec: LedgerSpec) -> pa.Table:
    """The key columns of ``data`` (typed as the spec says) and every other column empty: what a
    delete lists. Other columns ``data`` may have are ignored."""
    import pyarrow as pa

    if not isinstance(data, pa.Table):
        data = pa.Table.from_pandas(data, preserve_index=False)
    missing = [k for k in spec.key if k not in data.column_names]
    if missing:
        raise ValueError(f"ledger {spec.id}: data lacks key columns {missing}")
    keys = data.select(list(spec.key))
    filled = {c.name: keys.column(c.name) if c.name in spec.key else pa.nulls(keys.num_rows) for c in spec.columns}
    return _to_arrow(pa.table(filled), spec)


def _is_conflict(exc: Exception) -> bool:
    text = str(exc).lower()
    return isinstance(exc, IntegrityError) or "conflict" in text or "could not serialize" in text


def fetch_arrow(engine: Engine, stmt: sa.Select, spec: LedgerSpec | None = None) -> pa.Table:
    """Run ``stmt`` and return an Arrow table (typed as ``spec``'s columns when given)."""
    import pyarrow as pa

    with engine.connect() as conn:
        result = conn.execute(stmt)
        keys = list(result.keys())
        rows = result.fetchall()
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in keys]
    table = pa.table({k: pa.array(list(c)) for k, c in zip(keys, columns, strict=True)})
    return _to_arrow(table, spec) if spec is not None else table


def _fields(row: Any) -> dict[str, Any]:
    """Column values of an ORM object, for a Core INSERT in the caller's transaction."""
    return {c.key: getattr(row, c.key) for c in sa.inspect(type(row)).columns}


def _as_text(value: Any) -> str | None:
    """A cell as the diff shows it: 是/否 for booleans, ISO dates, plain numbers."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value)) if abs(value) < 1e15 else str(value)
    return str(value)


def _rows_table(spec: LedgerSpec, cols: list[str], rows: Sequence[Any]) -> pa.Table:
    return _to_arrow(
        _plain_table(cols, [tuple(r) for r in rows]), spec
    )


def _plain_table(cols: list[str], rows: list[tuple[Any, ...]]) -> pa.Table:
    import pyarrow as pa

    columns = list(zip(*rows, strict=True)) if rows else [() for _ in cols]
    return pa.table({c: pa.array(list(v)) for c, v in zip(cols, columns, strict=True)})


def _cells_table(spec: LedgerSpec, cells: list[tuple[Any, ...]]) -> pa.Table:
    """Changed cells as a long table: key columns…, column, old, new (old and new as text)."""
    import pyarrow as pa

    names = [*spec.key, "column", "old", "new"]
    columns = list(zip(*cells, strict=True)) if cells else [() for _ in names]
    key_types = {c.name: c.dtype for c in spec.columns}
    arrow_types = {"str": pa.string(), "int": pa.int64(), "float": pa.float64(), "date": pa.date32(), "bool": pa.bool_()}
    fields = [pa.field(k, arrow_types[key_types[k]]) for k in spec.key] + [
        pa.field("column", pa.string()), pa.field("old", pa.string()), pa.field("new", pa.string())
    ]
    return pa.table([pa.array(list(v), f.type) for v, f in zip(columns, fields, strict=True)], schema=pa.schema(fields))
