"""The host's own tables (SQLAlchemy 2 typed ORM). Created and upgraded by Alembic (migrations/).

Ledger *rows* live in one table per ledger (``ledger_<id>``), built from each plugin's
LedgerSpec by :mod:`huizhi.ledger_store`; these tables hold what the host itself keeps.
Ids come from sequences because DuckDB has no SERIAL/IDENTITY columns; PostgreSQL uses the same.
Timestamps are naive UTC: DuckDB and PostgreSQL then agree without timezone libraries.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, Boolean, DateTime, Float, Integer, LargeBinary, Sequence, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from huizhi.clock import utcnow  # noqa: F401 (the ORM defaults below; also imported from here)


class Base(DeclarativeBase):
    pass


ledger_version_seq = Sequence("ledger_versions_id_seq")
audit_seq = Sequence("audit_log_id_seq")
task_run_seq = Sequence("task_runs_id_seq")


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


class TaskRun(Base):
    """One piece of background work (:mod:`huizhi.tasks`): what it is, how far it got, how it ended.

    The same record on both stores. On PostgreSQL a procrastinate job (``job_id``) carries it to
    a worker and retries it; on the embedded DuckDB default a thread of the host runs it. The
    uploaded file waits in ``payload`` until the work succeeds (so a retry on another worker has
    it); ``result`` is the outcome the page shows (an upload's staged preview), pickled.
    """

    __tablename__ = "task_runs"

    id: Mapped[int] = mapped_column(
        BigInteger, task_run_seq, server_default=task_run_seq.next_value(), primary_key=True
    )
    task: Mapped[str] = mapped_column(String(100), index=True)  # e.g. "ledger-upload", "periodic:reminders"
    label: Mapped[str] = mapped_column(String(300), default="")  # what it is, in Chinese, for admins
    status: Mapped[str] = mapped_column(String(20), default="queued")  # queued|running|retrying|succeeded|failed
    job_id: Mapped[int | None] = mapped_column(BigInteger)  # procrastinate's job (PostgreSQL)
    subject: Mapped[str] = mapped_column(String(200), default="")  # on whose behalf
    args: Mapped[str] = mapped_column(Text, default="{}")  # JSON
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=1)
    phase: Mapped[str] = mapped_column(String(40), default="")
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    error: Mapped[str] = mapped_column(Text, default="")  # the last failure, English (details in the log)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, index=True)
    started_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    worker: Mapped[str] = mapped_column(String(200), default="")  # host:pid of the last attempt
    payload: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)
    result: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)
