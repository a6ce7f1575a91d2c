"""Scheduled syncs: a connector's data made a new version of a ledger, like an upload.

``host.syncs.run(sync_id)`` runs one :class:`huizhi.specs.SyncSpec`: it fetches from the
connector as the system identity ``system:sync:<id>`` (through the same grant check as a page),
hands the rows to :meth:`huizhi.ledgers.LedgerService.upload` — a :class:`~huizhi.sources.TableFile`
(Excel or CSV off the files connector) as it is, a table (SQL, REST, Parquet) as a UTF-8 CSV — so every cell is checked against the
ledger's columns, the rows are staged and diffed, and then commits the preview. Any failure (the
source, a bad cell, rows of another department, most rows removed) leaves the ledger as it was,
drops the preview, and is audited as ``ledger.sync`` with outcome ``failed`` and the reason.

``host.syncs.schedules()`` is what a scheduler needs (the task queue, or cron through
``huizhi sync <id>``).
"""

from __future__ import annotations

import datetime as dt
import io
import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from huizhi.models import utcnow
from huizhi.sources import TableFile
from huizhi.specs import SyncSpec

if TYPE_CHECKING:
    from huizhi.host import Host

log = logging.getLogger(__name__)

DEFAULT_SYNC_TIMEOUT = 600.0  # seconds a sync's fetch may take (``[connectors.<id>] sync_timeout``)
PROBLEMS_IN_ERROR = 5  # cell problems named in the recorded error


@dataclass(frozen=True)
class Schedule:
    """When one sync runs: ``every`` seconds or ``cron`` (five fields, Beijing time)."""

    sync_id: str
    plugin: str
    ledger_id: str
    connector_id: str
    every: float | None
    cron: str | None
    title: str = ""


@dataclass(frozen=True)
class SyncResult:
    """What one run did. ``outcome``: ``committed`` (a new version), ``unchanged`` (the data
    equals the current version) or ``failed`` (``error`` says why; the ledger is untouched)."""

    sync_id: str
    outcome: Literal["committed", "unchanged", "failed"]
    started_at: dt.datetime
    finished_at: dt.datetime
    version: int | None = None
    rows: int = 0
    added: int = 0
    changed: int = 0
    removed: int = 0
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.outcome != "failed"


class SyncFailed(RuntimeError):
    """A sync step failed; the message (English) is what the audit log records."""


class SyncService:
    """Runs the syncs the enabled plugins declare. One per host (``host.syncs``)."""

    def __init__(self, host: Host):
        self._host = host
        self._running: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    def specs(self) -> dict[str, SyncSpec]:
        return {sync_id: spec for sync_id, (spec, _) in self._host.registry.syncs.items()}

    def schedules(self) -> list[Schedule]:
        """Every declared sync with its schedule, in id order."""
        return [
            Schedule(sync_id, plugin, spec.ledger_id, spec.connector_id, spec.every, spec.cron, spec.title)
            for sync_id, (spec, plugin) in sorted(self._host.registry.syncs.items())
        ]

    def last(self, sync_id: str) -> SyncResult | None:
        """The latest run of ``sync_id`` by any process (the CLI, the task queue, a portal), read
        back from the audit log (None: never run)."""
        import json

        subject = f"system:sync:{sync_id}"
        for event in self._host.audit.search(action="ledger.sync", actor=subject, limit=50):
            if event.actor != subject:  # search matches substrings: system:sync:a is in system:sync:ab
                continue
            detail = json.loads(event.detail or "{}")
            started = dt.datetime.fromisoformat(detail["started_at"]) if detail.get("started_at") else event.occurred_at
            if event.outcome != "ok":
                return SyncResult(sync_id, "failed", started, event.occurred_at, error=detail.get("error"))
            return SyncResult(
                sync_id, detail.get("result", "committed"), started, event.occurred_at, version=detail.get("version"),
                rows=detail.get("rows", 0), added=detail.get("added", 0), changed=detail.get("changed", 0),
                removed=detail.get("removed", 0),
            )  # fmt: skip
        return None

    def run(self, sync_id: str) -> SyncResult:
        """Run one sync now and return what it did. Never raises for a failing source or bad
        data (the result says ``failed``); raises ``LookupError`` for an unknown ``sync_id``.
        Two runs of one sync in this process do not overlap: the second waits."""
        try:
            spec, plugin = self._host.registry.syncs[sync_id]
        except KeyError:
            declared = ", ".join(sorted(self._host.registry.syncs)) or "none"
            raise LookupError(f"no enabled plugin declares sync {sync_id!r} (declared: {declared})") from None
        with self._lock:
            running = self._running.setdefault(sync_id, threading.Lock())
        with running:
            return self._run(spec, plugin)

    def _run(self, spec: SyncSpec, plugin: str) -> SyncResult:
        from huizhi.ledgers import ConfirmationRequired

        host = self._host
        identity = host.system_identity(f"sync:{spec.id}")
        started = utcnow()
        target = f"ledger:{spec.ledger_id}"
        detail: dict[str, Any] = dict(
            sync=spec.id, connector=spec.connector_id, plugin=plugin, mode=spec.mode, started_at=started.isoformat()
        )
        preview = None
        try:
            if spec.ledger_id not in host.registry.ledgers:
                raise SyncFailed(f"sync {spec.id}: no enabled plugin declares ledger {spec.ledger_id!r}")
            data, file_name = self._fetch(spec, plugin, identity)
            upload = host.ledgers.upload(identity, spec.ledger_id, data, file_name, mode=spec.mode)
            if not upload.result.ok:
                raise SyncFailed(f"sync {spec.id}: the data does not pass the ledger's checks: {_problems(upload.result)}")
            if upload.refusal:
                raise SyncFailed(f"sync {spec.id}: the ledger service refused the rows: {upload.refusal}")
            preview = upload.preview
            rows = upload.result.stats.rows
            if preview is None or preview.unchanged:
                result = SyncResult(spec.id, "unchanged", started, utcnow(), rows=rows)
            else:
                try:
                    version = host.ledgers.commit(identity, preview, confirm_removal=spec.allow_mass_removal)
                except ConfirmationRequired as exc:
                    raise SyncFailed(
                        f"sync {spec.id}: refused, the {exc} (set allow_mass_removal=True on the SyncSpec "
                        "if that is intended)"
                    ) from exc
                preview = None
                result = SyncResult(
                    spec.id, "committed", started, utcnow(), version=version.number, rows=version.row_count,
                    added=version.added, changed=version.changed, removed=version.removed,
                )  # fmt: skip
        except Exception as exc:  # the source, the data or the ledger service: record and carry on
            error = str(exc) if isinstance(exc, SyncFailed) else f"sync {spec.id}: {type(exc).__name__}: {exc}"
            if preview is not None and not preview.unchanged:
                host.ledgers.discard(identity, preview)
            log.warning("%s", error)
            host.audit.record(identity, "ledger.sync", target, "failed", error=error[:2000], **detail)
            return SyncResult(spec.id, "failed", started, utcnow(), error=error)
        host.audit.record(
            identity, "ledger.sync", target, "ok", result=result.outcome, version=result.version,
            rows=result.rows, added=result.added, changed=result.changed, removed=result.removed, **detail,
        )  # fmt: skip
        return result

    def _fetch(self, spec: SyncSpec, plugin: str, identity: Any) -> tuple[bytes, str]:
        """The data as the bytes of a file the upload parser reads, and that file's name."""
        from huizhi.sources import run_with_timeout

        host = self._host
        connection = host.connector(spec.connector_id, plugin=plugin, identity=identity)
        config: Mapping[str, Any] = host.settings.connectors.get(spec.connector_id, {})
        timeout = float(config.get("sync_timeout", DEFAULT_SYNC_TIMEOUT))
        fetch = getattr(connection, "fetch", None)
        if not callable(fetch):
            raise SyncFailed(f"sync {spec.id}: connector {spec.connector_id!r} has no fetch(query, params)")
        query, params = spec.query, dict(spec.params)
        data = run_with_timeout(lambda: fetch(query, params), timeout, f"sync {spec.id}")
        if isinstance(data, TableFile):
            if not data.name.lower().endswith(".parquet"):  # uploaded as it is, like a person's upload
                return data.content, data.name
            from huizhi.excel.tables import read_table_file

            data = read_table_file(data)
        return _csv_bytes(data), f"{spec.id}.csv"


def _csv_bytes(frame: Any) -> bytes:
    """A DataFrame as UTF-8 CSV for the upload parser; values are written as they are (no
    formula guard: nobody opens this file in Excel, and a guard would change the data). Every
    text is quoted: pandas leaves a lone CR (``\r=HYPERLINK(1)``) unquoted, and a CSV reader
    then ends the record there."""
    import csv

    import pandas as pd

    if not isinstance(frame, pd.DataFrame):
        frame = pd.DataFrame(frame)
    buf = io.StringIO()
    frame.to_csv(buf, index=False, date_format="%Y-%m-%d", quoting=csv.QUOTE_NONNUMERIC)
    return buf.getvalue().encode("utf-8")


def _problems(result: Any) -> str:
    if result.rejection is not None:
        return f"{result.rejection.kind}: {result.rejection.message}"
    named = [p.text() for p in result.errors[:PROBLEMS_IN_ERROR]]
    return f"{result.stats.errors} error(s); " + "; ".join(named)
