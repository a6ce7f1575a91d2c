"""The ledger service: the only way a ledger changes. No Streamlit here.

The ledger page, ``huizhi ledger import``, the seed loader and the tests all go through it, so
each gets the same guarantees::

    upload = service.upload(identity, "sensing_devices", data, "设备.xlsx",   # check every cell
                            mode=Mode.UPSERT)                           # add and update by key
    if upload.preview:                                                  # staged, counts known
        version = service.commit(identity, upload.preview, confirm_removal=True)

* **how**: an upload :class:`Mode` replaces the whole ledger (``replace``), adds and updates
  rows by key keeping every other row (``upsert``), or deletes the rows whose keys it lists
  (``delete``); a department's upload to a district-wide ledger works within its own rows.
  The preview shows exactly what the mode will do; the version records the mode.

* **who**: every call takes the :class:`~huizhi.access.Identity` acting, checks its permission
  here (upload, rollback, read), records versions against its subject, and audits the outcome;
  a refused call is audited as a denial, never as ok.
* **what is confirmed is what is stored**: :meth:`upload` stages the rows as a version no head
  points at and diffs it against the current one in the database; :meth:`commit` moves the head
  to exactly those rows (refusing when someone else committed in between). One diff, in SQL,
  on both stores (:meth:`huizhi.ledger_store.LedgerStore.diff`).
* **who else learns of it**: after a commit or rollback the service publishes a
  :class:`~huizhi.events.LedgerChanged` on the host's event bus (and, on PostgreSQL, to other
  processes through NOTIFY in the same transaction).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO

from sqlalchemy import Connection

from huizhi.access import AccessDenied, Identity, RowScope
from huizhi.audit import AuditLog
from huizhi.db import StoreUnavailable, is_storage_failure
from huizhi.events import EventBus, LedgerChanged
from huizhi.excel.problems import Problem
from huizhi.excel.typed import RowsRejected, describe
from huizhi.ledger_store import (
    Diff,
    DiffCounts,
    DuplicateKeys,
    KeyConflict,
    LedgerStore,
    Mode,
    OutOfScope,
    Staged,
    StaleVersion,
    Unchanged,
)
from huizhi.models import LedgerHead, LedgerPreview, LedgerVersion
from huizhi.specs import LedgerSpec, Perm

if TYPE_CHECKING:
    import pyarrow as pa

    from huizhi.excel.pipeline import IngestResult

__all__ = [
    "PREVIEW_ROWS",
    "ConfirmationRequired",
    "DuplicateKeys",
    "KeyConflict",
    "LedgerService",
    "MODE_LABELS",
    "Mode",
    "NotYours",
    "OutOfScope",
    "Preview",
    "RowsRejected",
    "StaleVersion",
    "Unchanged",
    "Upload",
]

log = logging.getLogger(__name__)

PREVIEW_ROWS = 200  # rows of each kind a preview lists (counts are always complete)
REMOVAL_CONFIRM_SHARE = 0.5  # a commit that deletes more than this share of rows needs confirming

MODE_LABELS = {  # how the ledger page, the history and the CLI name each mode
    Mode.UPSERT: "新增和修改",
    Mode.REPLACE: "整表替换",
    Mode.DELETE: "删除所列行",
}


class ConfirmationRequired(RuntimeError):
    """The commit would delete most of the ledger's rows and was not confirmed."""

    def __init__(self, removed: int, share: float):
        super().__init__(f"commit would remove {removed} rows ({share:.0%}) and was not confirmed")
        self.user_message = (
            f"本次提交将删除当前版本中 {removed:,} 行（{share:.0%}），需要确认后才能提交。"
            "如果您只想补充或修改部分行，请选择“新增和修改”方式上传。"
        )


class NotYours(RuntimeError):
    """A preview may be committed only by whoever made it."""

    user_message = "这份预览不是您上传的，不能由您提交。请自己上传文件后再提交。"


@dataclass(frozen=True)
class Preview:
    """A checked upload staged for commit, with the change it would make.

    ``counts`` are exactly what :meth:`LedgerService.commit` stores (the staged rows are the
    rows that become current). ``id`` is None when nothing would change (``unchanged``).
    """

    ledger_id: str
    id: int | None
    base_version: int | None  # number of the version compared with (None: the first version)
    subject: str
    diff: Diff
    row_count: int
    current_rows: int  # rows of the compared version
    file_name: str | None = None
    file_sha256: str | None = None
    departments: tuple[str, ...] | None = None  # a department upload: the departments replaced
    mode: Mode = Mode.REPLACE
    unmatched: int = 0  # delete: listed keys the current version does not have (nothing deleted)
    unmatched_keys: tuple[tuple[Any, ...], ...] = ()  # the first of them
    warnings: tuple[Problem, ...] = ()  # typed rows (preview_rows): the problems that did not block

    @property
    def counts(self) -> DiffCounts:
        return self.diff.counts

    @property
    def unchanged(self) -> bool:
        return self.id is None

    @property
    def removal_share(self) -> float:
        return self.counts.removed / self.current_rows if self.current_rows else 0.0

    @property
    def needs_confirmation(self) -> bool:
        return self.removal_share > REMOVAL_CONFIRM_SHARE


@dataclass(frozen=True)
class Upload:
    """One uploaded file: the checked result, and its preview when it may be committed.

    ``refusal`` (Chinese) says why a valid file cannot be committed by this person (rows of
    other departments, keys another department already uses).

    ``quiet_warnings`` counts the warnings on rows this upload leaves as they are (identical to
    the current version): they stay in ``result.stats.warnings`` but are not listed one by one in
    ``result.problems`` (nor marked in the marked workbook), so a reminder about a row nobody
    touched is not repeated on every upload.
    """

    result: IngestResult
    preview: Preview | None = None
    refusal: str | None = None
    quiet_warnings: int = 0
    mode: Mode = Mode.REPLACE


class LedgerService:
    """Preview, commit, roll back and compare ledger versions on behalf of an identity."""

    def __init__(
        self,
        store: LedgerStore,
        audit: AuditLog,
        events: EventBus,
        notify: Callable[[Connection, LedgerChanged], None] | None = None,
    ):
        self._store = store
        self._audit = audit
        self._events = events
        self._notify = notify

    # -- decisions -------------------------------------------------------------------------------

    def spec(self, ledger_id: str) -> LedgerSpec:
        try:
            return self._store.specs[ledger_id]
        except KeyError:
            raise KeyError(f"no enabled plugin declares ledger {ledger_id!r}") from None

    def _require(self, identity: Identity, perm: Perm, spec: LedgerSpec, how: str) -> None:
        if identity.can(perm, spec):
            return
        self._audit.record(identity, "access.denied", f"ledger:{spec.id}", "denied", perm=str(perm), how=how)
        raise AccessDenied(perm, spec.title, _DENIED.get(perm, "").format(title=spec.title) or None, audited=True)

    # -- reading -------------------------------------------------------------------------------

    def head(self, ledger_id: str) -> LedgerHead | None:
        return self._store.head(ledger_id)

    def versions(self, identity: Identity, ledger_id: str) -> list[LedgerVersion]:
        spec = self.spec(ledger_id)
        self._require(identity, Perm.LEDGER_READ, spec, "version history")
        return self._store.versions(ledger_id)

    def changes(self, identity: Identity, ledger_id: str, number: int, *, detail_limit: int = PREVIEW_ROWS) -> Diff:
        """What version ``number`` changed against the one before it, within what ``identity``
        may read (every version keeps its rows, so this is exact for any version)."""
        spec = self.spec(ledger_id)
        self._require(identity, Perm.LEDGER_READ, spec, "version changes")
        version = self._store.version(ledger_id, number)
        previous = self._store.version(ledger_id, number - 1).id if number > 1 else None
        return self._store.diff(
            ledger_id, previous, version.id, scope=identity.row_scope(spec), detail_limit=detail_limit
        )

    def export(self, identity: Identity, ledger_id: str) -> pa.Table:
        """The current rows ``identity`` may read, as Arrow (audited as an export)."""
        from huizhi.ledger_store import fetch_arrow

        spec = self.spec(ledger_id)
        self._require(identity, Perm.LEDGER_READ, spec, "export")
        table = fetch_arrow(self._store.engine, self._store.scoped_select(ledger_id, identity.row_scope(spec)), spec)
        self._audit.record(identity, "ledger.export", f"ledger:{ledger_id}", rows=table.num_rows)
        return table

    # -- changing ------------------------------------------------------------------------------

    def upload(
        self,
        identity: Identity,
        ledger_id: str,
        source: bytes | str | BinaryIO,
        file_name: str,
        *,
        mode: Mode | str = Mode.REPLACE,
        on_progress: Callable[[str, float], None] | None = None,
    ) -> Upload:
        """Check a file cell by cell and, when it is valid, stage it as a preview of ``mode``.
        Audited once (``ledger.upload``: ok, rejected for bad cells or an unreadable file, denied
        for rows this person may not replace, change or delete).

        ``Mode.DELETE`` reads and checks only the key columns (they must be present and valid);
        the file's other columns, filled in, empty or absent, are ignored without a warning.

        ``on_progress(phase, fraction)`` sees the ingest phases (``sniff`` … ``validate``) and
        then, for a valid file, this service's ``stage`` (rows written as a staged version and
        compared with the current one: counts and the first rows of each kind) and ``diff``
        (the preview assembled), in that order; Chinese names in
        :data:`huizhi.excel.pipeline.PHASE_LABELS`.
        """
        from huizhi.excel.pipeline import ingest

        mode = Mode(mode)
        spec = self.spec(ledger_id)
        self._require(identity, Perm.LEDGER_UPLOAD, spec, "upload")
        whole_rows = True  # the file carries the ledger's columns, not only its keys
        with self._writes(f"upload into ledger {spec.id}"):  # the file's temporary copy is a write too
            if mode == Mode.DELETE:
                keys_read = ingest(source, file_name, _key_spec(spec), on_progress=on_progress)
                result = _only_key_columns(keys_read, spec)
                # the warnings it dropped named the ledger's other columns: the rows are whole rows
                whole_rows = result.problems_table.num_rows < keys_read.problems_table.num_rows
            else:
                result = ingest(source, file_name, spec, on_progress=on_progress)
        detail: dict[str, Any] = dict(
            file_name=file_name, sha256=result.file_sha256, mode=str(mode), rows=result.stats.rows,
            errors=result.stats.errors, warnings=result.stats.warnings,
        )  # fmt: skip
        if not result.ok:
            reason = result.rejection.message if result.rejection else None
            self._audit.record(identity, "ledger.upload", f"ledger:{ledger_id}", "rejected", reason=reason, **detail)
            return Upload(result, mode=mode)
        examples = _template_examples(spec, result, whole_rows, delete=mode == Mode.DELETE)
        if examples:
            self._audit.record(
                identity, "ledger.upload", f"ledger:{ledger_id}", "rejected", reason="template example rows", **detail
            )  # fmt: skip
            return Upload(result, refusal=examples, mode=mode)
        try:
            preview = self._stage(
                identity, spec, result.table, kind="upload", file_name=file_name,
                file_sha256=result.file_sha256, row_numbers=result.row_numbers, mode=mode,
                on_progress=on_progress,
            )  # fmt: skip
        except _Refused as refused:
            self._audit.record(
                identity, "ledger.upload", f"ledger:{ledger_id}", "denied", how="out-of-scope upload",
                reason=str(refused.cause), **detail,
            )  # fmt: skip
            return Upload(result, refusal=refused.user_message, mode=mode)
        result, quiet = self._quiet_unchanged_rows(spec, result, preview)
        self._audit.record(
            identity, "ledger.upload", f"ledger:{ledger_id}", "ok", preview=preview.id, added=preview.counts.added,
            changed=preview.counts.changed, removed=preview.counts.removed, **detail,
        )  # fmt: skip
        return Upload(result, preview, quiet_warnings=quiet, mode=mode)

    def preview_rows(
        self,
        identity: Identity,
        ledger_id: str,
        rows: pa.Table | Any,
        *,
        kind: str = "import",
        file_name: str | None = None,
        file_sha256: str | None = None,
        note: str = "",
        mode: Mode | str = Mode.REPLACE,
    ) -> Preview:
        """Stage already-typed rows (seeds, scheduled imports, row edits): the same cell checks,
        modes, scope checks and diff as an upload (``Mode.DELETE`` needs and checks only the key
        columns; other columns of the ledger are ignored).

        ``rows`` is an Arrow table, a pandas DataFrame or a list of dicts keyed by column name.
        Every cell is checked by the upload's own conversion and validation
        (:func:`huizhi.excel.typed.check_rows`): text trimmed, control characters refused, a
        NUL removed with a warning, values of another type read as an uploaded cell would be
        (``"12,5"`` in a number column is an error, not 125), then required, choices, min/max,
        patterns, unique keys and row rules. Raises :class:`RowsRejected` (``problems``: row =
        position in ``rows``, column = column name; audited as a rejected upload),
        :class:`OutOfScope` / :class:`KeyConflict` for refused rows. The preview's ``warnings``
        are the problems that did not block."""
        from huizhi.excel.typed import check_rows

        spec = self.spec(ledger_id)
        self._require(identity, Perm.LEDGER_UPLOAD, spec, kind)
        mode = Mode(mode)
        try:
            if mode == Mode.DELETE:  # only the keys are read, the ledger's other columns ignored
                checked = check_rows(_key_spec(spec), rows, ignore=[c.name for c in spec.columns])
            else:
                checked = check_rows(spec, rows)
        except RowsRejected as rejected:
            self._audit.record(
                identity, "ledger.upload", f"ledger:{ledger_id}", "rejected", how=kind, mode=str(mode),
                rows=rejected.rows, errors=len(rejected.errors), reason=str(rejected)[:2000],
            )  # fmt: skip
            raise
        if checked.warnings:
            log.warning(
                "ledger %s: %d warning(s) on the %s rows: %s", ledger_id, len(checked.warnings), kind,
                "; ".join(describe(p) for p in checked.warnings[:5]),
            )  # fmt: skip
        try:
            preview = self._stage(
                identity, spec, checked.table, kind=kind, file_name=file_name, file_sha256=file_sha256,
                note=note, mode=mode,
            )  # fmt: skip
            return dataclasses.replace(preview, warnings=checked.warnings)
        except _Refused as refused:
            self._audit.record(
                identity, "ledger.upload", f"ledger:{ledger_id}", "denied", how=f"out-of-scope {kind}",
                reason=str(refused.cause),
            )  # fmt: skip
            raise refused.cause from None

    def commit(self, identity: Identity, preview: Preview, *, confirm_removal: bool = False) -> LedgerVersion:
        """Make a preview's rows the ledger's current version.

        Raises :class:`Unchanged` (nothing to commit), :class:`NotYours`, :class:`AccessDenied`,
        :class:`ConfirmationRequired` (most rows would go and ``confirm_removal`` is False) and
        :class:`StaleVersion` (someone committed since the preview; the preview is dropped).
        """
        spec = self.spec(preview.ledger_id)
        target = f"ledger:{spec.id}"
        if preview.id is None:
            raise Unchanged(f"ledger {spec.id}: the preview has no changes")
        self._require(identity, Perm.LEDGER_UPLOAD, spec, "commit")
        if preview.subject != identity.subject:
            self._audit.record(identity, "access.denied", target, "denied", how="commit of another person's preview")
            raise NotYours(f"preview {preview.id} was made by {preview.subject}")
        staged = self._store.preview(spec.id, preview.id)
        if staged is None:
            raise StaleVersion(f"ledger {spec.id}: preview {preview.id} no longer exists")
        if staged.scope != _scope_json(identity.upload_scope(spec)):  # the grants changed since
            self._audit.record(identity, "access.denied", target, "denied", how="upload scope changed")
            raise AccessDenied(Perm.LEDGER_UPLOAD, spec.title, audited=True)
        if preview.needs_confirmation and not confirm_removal:
            raise ConfirmationRequired(preview.counts.removed, preview.removal_share)
        try:
            version = self._publish(identity, spec.id, staged)
        except StaleVersion:
            self._store.discard(spec.id, preview.id)
            self._audit.record(identity, "ledger.commit", target, "rejected", reason="stale preview", preview=preview.id)
            raise
        self._audit.record(
            identity, "ledger.commit", target, version=version.number, mode=version.mode, file_name=version.file_name,
            sha256=version.file_sha256, rows=version.row_count, added=version.added, changed=version.changed,
            removed=version.removed,
        )  # fmt: skip
        return version

    def discard(self, identity: Identity, preview: Preview) -> None:
        """Drop a preview nobody will commit (a new file replaced it)."""
        if preview.id is not None and preview.subject == identity.subject:
            self._store.discard(preview.ledger_id, preview.id)

    def rollback(
        self, identity: Identity, ledger_id: str, to_number: int, *, expected_version: int | None
    ) -> LedgerVersion:
        """Make version ``to_number``'s rows current again, as a new version (history is kept).

        ``expected_version`` is the current version's number the person saw; raises
        :class:`StaleVersion` when it moved, :class:`Unchanged` when ``to_number`` is current.
        """
        spec = self.spec(ledger_id)
        target = f"ledger:{ledger_id}"
        self._require(identity, Perm.LEDGER_ROLLBACK, spec, "rollback")
        head = self._store.head(ledger_id)
        if (head.number if head else None) != expected_version:
            self._audit.record(identity, "ledger.rollback", target, "rejected", reason="stale", to_version=to_number)
            raise StaleVersion(f"ledger {ledger_id}: head moved before the rollback")
        source = self._store.version(ledger_id, to_number)
        if head is not None and head.version_id == source.id:
            raise Unchanged(f"ledger {ledger_id}: version {to_number} is already current")
        with self._writes(f"rollback of ledger {ledger_id}"):
            staged = self._store.stage(
                ledger_id, None, subject=identity.subject, kind="rollback", copy_of=source.id,
                file_name=source.file_name, file_sha256=source.file_sha256, note=f"回滚到第{to_number}版",
            ).preview  # fmt: skip
        try:
            version = self._publish(identity, ledger_id, staged, restored_from=to_number)
        except StaleVersion:
            self._store.discard(ledger_id, staged.id)
            self._audit.record(identity, "ledger.rollback", target, "rejected", reason="stale", to_version=to_number)
            raise
        self._audit.record(
            identity, "ledger.rollback", target, to_version=to_number, new_version=version.number,
            added=version.added, changed=version.changed, removed=version.removed,
        )  # fmt: skip
        return version

    def import_rows(
        self,
        identity: Identity,
        ledger_id: str,
        rows: pa.Table | Any,
        *,
        kind: str = "import",
        note: str = "",
        file_name: str | None = None,
        file_sha256: str | None = None,
        mode: Mode | str = Mode.REPLACE,
    ) -> LedgerVersion | None:
        """Preview and commit typed rows in one step (seeds, scheduled imports, tests), checked
        as :meth:`preview_rows` checks them (raises :class:`RowsRejected`); removals count as
        confirmed. Returns None when nothing changed."""
        preview = self.preview_rows(
            identity, ledger_id, rows, kind=kind, note=note, file_name=file_name, file_sha256=file_sha256, mode=mode
        )
        if preview.unchanged:
            return None
        return self.commit(identity, preview, confirm_removal=True)

    # -- internals -----------------------------------------------------------------------------

    def _stage(
        self,
        identity: Identity,
        spec: LedgerSpec,
        rows: Any,
        *,
        kind: str,
        file_name: str | None = None,
        file_sha256: str | None = None,
        note: str = "",
        row_numbers: Any = None,
        mode: Mode = Mode.REPLACE,
        on_progress: Callable[[str, float], None] | None = None,
    ) -> Preview:
        def progress(phase: str, fraction: float) -> None:
            if on_progress is not None:
                on_progress(phase, fraction)

        progress("stage", 0.0)
        scope = identity.upload_scope(spec)
        head = self._store.head(spec.id)
        base = self._store.version(spec.id, head.number) if head else None
        departments = None if scope.all_rows else tuple(sorted(scope.department_names))
        empty = DiffCounts(0, 0, 0, base.row_count if base else 0)
        if (
            base is not None and file_sha256 and base.file_sha256 == file_sha256
            and (base.mode or Mode.REPLACE) == mode
        ):  # each mode applied twice changes nothing more
            progress("stage", 1.0)
            progress("diff", 1.0)
            return self._unchanged(identity, spec, base, empty, file_name, file_sha256, departments, mode)
        try:
            with self._writes(f"{kind} into ledger {spec.id}"):
                staged: Staged = self._store.stage(
                    spec.id, rows, subject=identity.subject, kind=kind, file_name=file_name,
                    file_sha256=file_sha256, note=note, replace_scope=scope, mode=mode,
                    detail_limit=PREVIEW_ROWS,
                )  # fmt: skip
        except OutOfScope as exc:
            raise _Refused(exc, _out_of_scope_message(spec, scope, rows, row_numbers) or exc.user_message) from exc
        except (KeyConflict, DuplicateKeys) as exc:
            raise _Refused(exc, exc.user_message) from exc
        record = staged.preview
        progress("stage", 1.0)
        progress("diff", 0.0)
        if (base is not None or mode == Mode.DELETE) and record.added == record.changed == record.removed == 0:
            self._store.discard(spec.id, record.id)
            progress("diff", 1.0)
            return self._unchanged(
                identity, spec, base, empty, file_name, file_sha256, departments, mode, staged.unmatched,
                staged.unmatched_keys,
            )  # fmt: skip
        # compared with the current version while staging (one join, in the same transaction)
        diff = staged.diff
        assert diff is not None
        progress("diff", 1.0)
        return Preview(
            ledger_id=spec.id, id=record.id, base_version=head.number if head else None, subject=identity.subject,
            diff=diff, row_count=record.row_count, current_rows=base.row_count if base else 0,
            file_name=file_name, file_sha256=file_sha256, departments=departments, mode=mode,
            unmatched=staged.unmatched, unmatched_keys=staged.unmatched_keys,
        )  # fmt: skip

    def _unchanged(
        self,
        identity: Identity,
        spec: LedgerSpec,
        base: LedgerVersion | None,
        counts: DiffCounts,
        file_name: str | None,
        file_sha256: str | None,
        departments: tuple[str, ...] | None,
        mode: Mode,
        unmatched: int = 0,
        unmatched_keys: tuple[tuple[Any, ...], ...] = (),
    ) -> Preview:
        from huizhi.ledger_store import _cells_table, _rows_table

        cols = [c.name for c in spec.columns]
        diff = Diff(counts, _rows_table(spec, cols, []), _rows_table(spec, cols, []), _cells_table(spec, []))
        rows = base.row_count if base is not None else 0
        return Preview(
            ledger_id=spec.id, id=None, base_version=base.number if base is not None else None,
            subject=identity.subject, diff=diff, row_count=rows, current_rows=rows, file_name=file_name,
            file_sha256=file_sha256, departments=departments, mode=mode, unmatched=unmatched,
            unmatched_keys=unmatched_keys,
        )  # fmt: skip

    def _quiet_unchanged_rows(self, spec: LedgerSpec, result: IngestResult, preview: Preview) -> tuple[IngestResult, int]:
        """Drop from the listed problems the warnings on rows this upload leaves exactly as they
        are (they stay counted); returns the result to show and how many were dropped."""
        import pyarrow as pa
        import pyarrow.compute as pc

        problems = result.problems_table
        if preview.mode == Mode.DELETE or preview.base_version is None or not problems.num_rows:
            return result, 0
        on_rows = pc.and_(pc.equal(problems.column("severity"), "warning"), pc.greater_equal(problems.column("_pos"), 0))
        positions = pc.unique(pc.filter(problems.column("_pos"), on_rows))
        if not len(positions):
            return result, 0
        if preview.unchanged:  # every row of the file is as the current version has it
            quiet_positions = positions
        else:
            # a staged preview (not unchanged) has its id, rows and the version it was compared with
            assert result.table is not None and preview.id is not None
            keys = result.table.select(list(spec.key)).take(positions)
            staged = self._store.preview(spec.id, preview.id)
            assert staged is not None and staged.base_version_id is not None
            key_rows = [tuple(k.values()) for k in keys.to_pylist()]
            same = self._store.unchanged_keys(spec.id, staged.base_version_id, preview.id, key_rows)
            flags = [k in same for k in key_rows]
            quiet_positions = pc.filter(positions, pa.array(flags, pa.bool_()))
        if not len(quiet_positions):
            return result, 0
        drop = pc.and_(on_rows, pc.is_in(problems.column("_pos"), value_set=quiet_positions))
        kept = problems.filter(pc.invert(drop))
        quiet = problems.num_rows - kept.num_rows
        stats = dataclasses.replace(result.stats, problems_listed=result.stats.problems_listed - quiet)
        return dataclasses.replace(result, problems_table=kept, stats=stats), quiet

    def _publish(
        self, identity: Identity, ledger_id: str, staged: LedgerPreview, restored_from: int | None = None
    ) -> LedgerVersion:
        def within(conn: Connection, version: LedgerVersion) -> None:
            if self._notify is not None:
                self._notify(conn, _event(version))

        with self._writes(f"commit of ledger {ledger_id}"):
            version = self._store.publish(
                ledger_id, staged.id, created_by=identity.subject, created_by_name=identity.name,
                restored_from=restored_from, within=within,
            )  # fmt: skip
        self._events.publish(_event(version))
        return version

    @contextlib.contextmanager
    def _writes(self, what: str) -> Iterator[None]:
        """A write the disk refuses (full, read-only) becomes :class:`StoreUnavailable` of kind
        ``storage``: the page says so in Chinese instead of blaming the plugin, and the store's
        transaction was rolled back, so the current version is what it was."""
        try:
            yield
        except StoreUnavailable:
            raise
        except Exception as exc:
            if not is_storage_failure(exc):
                raise
            down = StoreUnavailable(self._store.engine.url.render_as_string(hide_password=False), exc)
            log.error("%s not saved: %s", what, down)
            raise down from exc


def _template_examples(spec: LedgerSpec, result: IngestResult, whole_rows: bool, *, delete: bool) -> str | None:
    """Why a file is refused that still holds the downloaded template's example rows (Chinese,
    naming their Excel rows and keys), or None.

    Refused, not skipped: the examples carry realistic keys (a 城市码 like 110115-SP-00012345)
    that may be real rows of the ledger. Kept in an upload they would overwrite a real row with
    made-up values (新增和修改), or delete one (按主键删除); skipped quietly, a 整表替换 would
    still delete a real row with that key and the file would not be what the preview says.
    Refusing changes nothing and names the rows, so the admin deletes them and uploads again.
    A delete file of key columns only is not checked: without the other columns it cannot be
    the template's example rows, and listing that key is then the admin's explicit choice."""
    from huizhi.excel.template import example_positions

    if result.table is None or not whole_rows:
        return None
    positions = example_positions(spec, result.table)
    if not positions:
        return None
    excel_rows = result.row_numbers.to_pylist() if result.row_numbers is not None else None
    keys = result.table.select(list(spec.key)).take(positions).to_pylist()
    named = "、".join(
        f"第 {excel_rows[p] if excel_rows else p + 2} 行（{'/'.join(str(k[c]) for c in spec.key)}）"
        for p, k in zip(positions, keys, strict=True)
    )
    labels = "+".join(f"“{spec.column(k).label}”" for k in spec.key)
    escape = f"若确实要删除这些{labels}的行，请只保留{labels}列后重新上传。" if delete else ""
    return (
        f"表格中的{named}是下载模板时自带的示例行，不是真实数据，本次上传未提交。"
        f"示例的{labels}可能与台账中的真实行相同，提交会用示例内容改写或删除那些行。"
        f"请删除这些示例行（或用真实数据覆盖）后重新上传。{escape}"
    )


def _key_spec(spec: LedgerSpec) -> LedgerSpec:
    """What a delete reads: only the key columns, with their own checks (no row rules)."""
    return dataclasses.replace(
        spec, columns=tuple(spec.column(k) for k in spec.key), row_checks=(), department_column=None
    )


def _only_key_columns(result: IngestResult, spec: LedgerSpec) -> IngestResult:
    """A delete's file may keep the ledger's other columns (an export, the template, a two-level
    header): drop the problems that call them unknown (the key spec does not know them; the
    ledger does). Columns that are no column of the ledger are still named."""
    import pyarrow.compute as pc

    from huizhi.excel.header import lookup_table, normalise_header

    problems = result.problems_table
    if not problems.num_rows:
        return result
    known = lookup_table(spec)

    def of_ledger(header: str) -> bool:  # "位置/经度": a sub-header under a merged parent
        return normalise_header(header) in known or normalise_header(header.split("/", 1)[-1]) in known

    ledger_column = [
        kind == "unknown_column" and header is not None and of_ledger(header)
        for kind, header in zip(problems.column("kind").to_pylist(), problems.column("header").to_pylist(), strict=True)
    ]
    if not any(ledger_column):
        return result
    import pyarrow as pa

    drop = pa.array(ledger_column, pa.bool_())
    kept = problems.filter(pc.invert(drop))
    dropped = problems.num_rows - kept.num_rows
    dropped_errors = int(pc.sum(pc.equal(problems.filter(drop).column("severity"), "error")).as_py() or 0)
    stats = dataclasses.replace(
        result.stats, errors=result.stats.errors - dropped_errors,
        warnings=result.stats.warnings - (dropped - dropped_errors),
        problems_listed=result.stats.problems_listed - dropped,
    )  # fmt: skip
    return dataclasses.replace(result, problems_table=kept, stats=stats)


class _Refused(Exception):
    def __init__(self, cause: Exception, user_message: str):
        super().__init__(user_message)
        self.cause = cause
        self.user_message = user_message


_DENIED = {
    Perm.LEDGER_UPLOAD: "您没有上传或提交“{title}”的权限。如需开通，请联系本部门负责人或平台管理员。",
    Perm.LEDGER_ROLLBACK: "您没有回滚“{title}”的权限。回滚只能由牵头部门的台账管理员操作。",
    Perm.LEDGER_READ: "您没有查看“{title}”的权限。如需开通，请联系本部门负责人或平台管理员。",
}


def _event(version: LedgerVersion) -> LedgerChanged:
    return LedgerChanged(
        ledger_id=version.ledger_id, version=version.number, version_id=version.id, kind=version.kind,
        actor=version.created_by, added=version.added, changed=version.changed, removed=version.removed,
        row_count=version.row_count, occurred_at=version.created_at or dt.datetime.now(dt.UTC).replace(tzinfo=None),
    )  # fmt: skip


def _scope_json(scope: RowScope) -> str | None:
    return None if scope.all_rows else json.dumps(sorted(scope.department_names), ensure_ascii=False)


def _out_of_scope_message(spec: LedgerSpec, scope: RowScope, rows: Any, row_numbers: Any) -> str | None:
    """Which rows of a department upload belong to others, by Excel row number."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if spec.department_column is None or not isinstance(rows, pa.Table) or row_numbers is None:
        return None
    owners = rows.column(spec.department_column)
    foreign = pc.fill_null(pc.invert(pc.is_in(owners, value_set=pa.array(sorted(scope.department_names)))), True)
    count = pc.sum(foreign).as_py() or 0
    if not count:
        return None
    examples = "、".join(map(str, pc.filter(row_numbers, foreign).to_pylist()[:20]))
    return (
        f"表格中有 {count:,} 行不属于本单位（{spec.column(spec.department_column).label}"
        f"不是{'、'.join(sorted(scope.department_names))}），例如第 {examples} 行。"
        "本单位只能提交本单位的行，请删除这些行后重新上传。"
    )
