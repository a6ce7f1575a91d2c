"""The host's own tables (SQLAlchemy 2 typed ORM). Created and upgraded by Alembic (migrations/).

Ledger *rows* live in one table per ledger (``ledger_<id>``), built from each plugin's
LedgerSpec by :mod:`huizhi.ledger_store`; these tables hold what the host itself keeps.
Ids come from sequences because DuckDB has no SERIAL/IDENTITY columns; PostgreSQL uses the same.
Timestamps are naive UTC: DuckDB and PostgreSQL then agree without timezone libraries.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, Boolean, DateTime, Integer, Sequence, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from huizhi.clock import utcnow  # noqa: F401 (the ORM defaults below; also imported from here)


class Base(DeclarativeBase):
    pass


ledger_version_seq = Sequence("ledger_versions_id_seq")
audit_seq = Sequence("audit_log_id_seq")


class LedgerVersion(Base):
    """One committed state of a ledger. Never updated or deleted: rollback adds a version."""

    __tablename__ = "ledger_versions"

    id: Mapped[int] = mapped_column(
        BigInteger, ledger_version_seq, server_default=ledger_version_seq.next_value(), primary_key=True
    )
    ledger_id: Mapped[str] = mapped_column(String(64), index=True)
    number: Mapped[int] = mapped_column(Integer)  # 1, 2, 3 … per ledger, as people say "第3版"
    created_by: Mapped[str] = mapped_column(String(200))  # the subject of whoever made it
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    file_name: Mapped[str | None] = mapped_column(String(500))
    file_sha256: Mapped[str | None] = mapped_column(String(64))
    row_count: Mapped[int] = mapped_column(BigInteger, default=0)
    added: Mapped[int] = mapped_column(BigInteger, default=0)
    changed: Mapped[int] = mapped_column(BigInteger, default=0)
    removed: Mapped[int] = mapped_column(BigInteger, default=0)
    kind: Mapped[str] = mapped_column(String(20), default="upload")  # upload | seed | rollback
    restored_from: Mapped[int | None] = mapped_column(Integer)  # version number a rollback restored
    # JSON list of the department names a department upload replaced; None: the whole ledger
    scope: Mapped[str | None] = mapped_column(Text)
    note: Mapped[str] = mapped_column(Text, default="")
    created_by_name: Mapped[str | None] = mapped_column(String(200))  # display name at the time
    # how the upload changed the ledger: replace | upsert | delete (huizhi.ledgers.Mode, migration 0005)
    mode: Mapped[str | None] = mapped_column(String(20), default="replace", server_default="replace")

    @property
    def author(self) -> str:
        return self.created_by_name or self.created_by


class LedgerHead(Base):
    """Which version of a ledger is current. Moved with a compare-and-set on ``version_id``."""

    __tablename__ = "ledger_heads"

    ledger_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    version_id: Mapped[int] = mapped_column(BigInteger)
    number: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class AuditEvent(Base):
    """Who did what, when, with what outcome. The application only ever inserts."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(
        BigInteger, audit_seq, server_default=audit_seq.next_value(), primary_key=True
    )
    occurred_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(200))  # subject (issuer-qualified) or "system"
    actor_name: Mapped[str] = mapped_column(String(200), default="")
    action: Mapped[str] = mapped_column(String(64), index=True)
    target: Mapped[str] = mapped_column(String(300), default="")
    outcome: Mapped[str] = mapped_column(String(20), default="ok")  # ok | denied | rejected | error
    detail: Mapped[str] = mapped_column(Text, default="")  # JSON


class PluginState(Base):
    """Admin switches for plugins, kept across restarts."""

    __tablename__ = "plugin_state"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    changed_by: Mapped[str] = mapped_column(String(200), default="")
    changed_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class LedgerPreview(Base):
    """An upload staged for commit: its rows are in the ledger's table under ``id`` (a version id
    that no head points at yet), so the counts an admin confirms are the counts commit stores.

    Committing turns it into a :class:`LedgerVersion` with the same id; discarding (or expiry)
    deletes its rows. ``base_version_id`` is the head it was compared with: a commit after the
    head moved is refused as stale.
    """

    __tablename__ = "ledger_previews"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)  # the staged version id
    ledger_id: Mapped[str] = mapped_column(String(64), index=True)
    base_version_id: Mapped[int | None] = mapped_column(BigInteger)
    subject: Mapped[str] = mapped_column(String(200))  # who previewed; only they may commit it
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    kind: Mapped[str] = mapped_column(String(20), default="upload")
    file_name: Mapped[str | None] = mapped_column(String(500))
    file_sha256: Mapped[str | None] = mapped_column(String(64))
    row_count: Mapped[int] = mapped_column(BigInteger, default=0)
    added: Mapped[int] = mapped_column(BigInteger, default=0)
    changed: Mapped[int] = mapped_column(BigInteger, default=0)
    removed: Mapped[int] = mapped_column(BigInteger, default=0)
    unchanged: Mapped[int] = mapped_column(BigInteger, default=0)
    scope: Mapped[str | None] = mapped_column(Text)  # JSON department names (department upload)
    note: Mapped[str] = mapped_column(Text, default="")
    mode: Mapped[str | None] = mapped_column(String(20), default="replace", server_default="replace")
