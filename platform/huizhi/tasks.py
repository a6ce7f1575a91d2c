"""Background work: large uploads, submission reminders, cockpit exports, periodic jobs.

``host.tasks`` (a :class:`TaskQueue`, made by :func:`huizhi.host.create_host`, stopped by
``Host.dispose``) is the one way into it::

    run_id = host.tasks.upload(identity, "sensing_devices", data, "设备.xlsx", mode="upsert")
    host.tasks.status(run_id)            # RunView: status, phase, progress, error
    host.tasks.upload_result(run_id, identity)   # the Upload (staged preview) once succeeded
    host.tasks.periodic("sync-rain", "*/15 * * * *", lambda: host.syncs.run("rain"))

Every piece of work is a row of ``task_runs`` (:class:`huizhi.models.TaskRun`), on both stores:
what it is, its status, attempts, progress and last error; the uploaded file waits in it
(``payload``) so any worker can pick it up, and the outcome (``result``) is read back from it by
whichever portal process asked.

Where the work runs:

* **PostgreSQL**: on procrastinate's queue in the same database. The portal only defers jobs;
  ``huizhi worker`` processes run them. Why procrastinate: PostgreSQL is already the one shared
  store, so there is no broker to run, back up or secure; workers wake on LISTEN/NOTIFY; a
  periodic job is deferred once per period however many workers run (its deferral is unique in
  the database), so reminders and syncs run exactly once across replicas; failed jobs are retried
  with a limit and exponential backoff; workers send heartbeats, and a job left ``doing`` by a
  worker that died (SIGKILL, OOM, a lost machine) is found and retried (:meth:`_retry_stalled`).
* **DuckDB** (the embedded default, one process): the same handlers on the host's own threads,
  retried the same way, and periodic jobs on a small in-process scheduler that the portal starts
  (:meth:`TaskQueue.start`). The demo needs no worker.

Nothing here is Streamlit; the page polls :meth:`TaskQueue.status`.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import dataclasses
import datetime as dt
import io
import json
import logging
import os
import pickle
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, undefer

from huizhi.access import Grant, Identity, Role
from huizhi.config import TaskSettings
from huizhi.models import TaskRun, utcnow
from huizhi.specs import LedgerSpec

if TYPE_CHECKING:
    from huizhi.host import Host
    from huizhi.ledgers import Upload

log = logging.getLogger(__name__)

UPLOAD, EXPORT, REMINDERS, CLEANUP = "ledger-upload", "cockpit-export", "submission-reminders", "task-cleanup"
SYNCS, SYNC = "connector-syncs", "connector-sync"  # the minute's dispatcher; one sync's run
KEEP_FILES, KEEP_RUNS = dt.timedelta(days=2), dt.timedelta(days=30)  # uploaded files and outcomes; the records
QUEUED, RUNNING, RETRYING, SUCCEEDED, FAILED = "queued", "running", "retrying", "succeeded", "failed"
STATUS_LABELS = {QUEUED: "排队中", RUNNING: "运行中", RETRYING: "等待重试", SUCCEEDED: "已完成", FAILED: "失败"}
PERIODIC_PREFIX = "periodic:"
REMINDER_DAYS = 5  # remind departments this many days before a period's deadline (and after it)


@dataclass(frozen=True)
class RunView:
    """What a page or admin sees of one task run (no payload, no result)."""

    id: int
    task: str
    label: str
    status: str
    attempts: int
    max_attempts: int
    phase: str
    progress: float
    error: str
    subject: str
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    worker: str

    @property
    def done(self) -> bool:
        return self.status in (SUCCEEDED, FAILED)

    @property
    def status_label(self) -> str:
        return STATUS_LABELS.get(self.status, self.status)


@dataclass(frozen=True)
class Periodic:
    name: str
    cron: str
    fn: Callable[..., object]
    label: str
    with_timestamp: bool = False  # fn(timestamp): the Unix time of the period it runs for (None: now)


class TaskFailed(RuntimeError):
    """A run ended failed; ``user_message`` is Chinese (the details are in the log)."""

    def __init__(self, run: RunView):
        super().__init__(f"task {run.task} #{run.id} failed after {run.attempts} attempt(s): {run.error}")
        self.run = run
        self.user_message = (
            f"后台处理失败（已尝试 {run.attempts} 次），文件未提交，当前版本未受影响。"
            "请稍后重新上传；如仍失败，请联系平台管理员（可在“平台管理 · 后台任务”中查看）。"
        )


_VIEW_COLUMNS = [getattr(TaskRun, f.name) for f in dataclasses.fields(RunView)]


class TaskQueue:
    """The host's background work (see the module docstring). One per host."""

    def __init__(self, host: Host, settings: TaskSettings | None = None):
        self._host = host
        self.settings = settings or TaskSettings()
        self._periodic: dict[str, Periodic] = {}
        self._handlers: dict[str, Callable[[TaskRun], bytes | None]] = {
            UPLOAD: self._run_upload,
            EXPORT: self._run_export,
        }
        self._worker_name = f"{socket.gethostname()}:{os.getpid()}"
        self.on_postgres = host.engine.dialect.name == "postgresql"
        self._backend: _Procrastinate | _Threads = _Procrastinate(self) if self.on_postgres else _Threads(self)
        self.periodic(REMINDERS, self.settings.reminder_cron, self.send_reminders, label="填报提醒")
        self.periodic(EXPORT, self.settings.export_cron, self._scheduled_export, label="驾驶舱快照导出")
        self.periodic(CLEANUP, "15 19 * * *", self.clean_up, label="清理后台任务记录")  # 03:15 Beijing
        # Syncs declare their schedules in Beijing time (and plugins come and go): one job each
        # minute, once across workers, runs the syncs due in that minute (procrastinate's
        # "dynamic scheduling" recipe).
        self._add_periodic(Periodic(SYNCS, "* * * * *", self.run_due_syncs, "定时同步", with_timestamp=True))
        self._handlers[SYNC] = self._run_sync

    # -- enqueueing ------------------------------------------------------------------------------

    def uses_queue(self, size: int) -> bool:
        """Whether an upload of ``size`` bytes goes to the queue (else the page checks it itself)."""
        return size >= self.settings.upload_bytes

    def upload(self, identity: Identity, ledger_id: str, data: bytes, file_name: str, *, mode: str = "replace") -> int:
        """Check and stage an upload in the background, as :meth:`huizhi.ledgers.LedgerService.upload`
        would on the page (the same permission check, audit, preview); returns the run's id."""
        from huizhi.ledgers import Mode

        spec = self._host.ledgers.spec(ledger_id)
        args = {"ledger_id": ledger_id, "file_name": file_name, "mode": str(Mode(mode)),
                "identity": identity_to_json(identity)}  # fmt: skip
        return self._enqueue(UPLOAD, f"校验上传：{spec.title}（{file_name}）", identity.subject, args, payload=data)

    def export_cockpit(self, identity: Identity | None = None) -> int:
        """Export the cockpit (Excel workbook and HTML snapshot) in the background."""
        who = identity or self._host.system_identity("cockpit-export")
        return self._enqueue(EXPORT, "驾驶舱快照导出", who.subject, {"identity": identity_to_json(who)})

    def periodic(self, name: str, cron: str, fn: Callable[[], object], *, label: str = "") -> None:
        """Run ``fn()`` on the ``cron`` schedule (5 fields, UTC; a 6th for seconds), once per
        period across every worker. Register every job in every process before the worker starts
        (``create_host`` is the place): workers learn schedules from their own host."""
        import croniter

        if not croniter.croniter.is_valid(cron):
            raise ValueError(f"periodic job {name!r}: {cron!r} is not a cron expression")
        if name in self._periodic:
            raise ValueError(f"periodic job {name!r} is registered twice")
        self._add_periodic(Periodic(name, cron, fn, label or name))

    def _add_periodic(self, job: Periodic) -> None:
        self._periodic[job.name] = job
        self._backend.add_periodic(job)

    @property
    def periodic_jobs(self) -> dict[str, Periodic]:
        return dict(self._periodic)

    def _record(self, task: str, label: str, subject: str, args: dict[str, Any], payload: bytes | None = None,
                max_attempts: int | None = None) -> int:
        with Session(self._host.engine) as session:
            run = TaskRun(task=task, label=label, subject=subject, args=json.dumps(args, ensure_ascii=False),
                          status=QUEUED, attempts=0, max_attempts=max_attempts or self.settings.retries + 1, phase="",
                          progress=0.0, error="", worker="", payload=payload, created_at=utcnow())  # fmt: skip
            session.add(run)
            session.commit()
            return run.id

    def _enqueue(self, task: str, label: str, subject: str, args: dict[str, Any], payload: bytes | None = None) -> int:
        run_id = self._record(task, label, subject, args, payload)
        try:
            self._backend.submit(run_id)
        except Exception as exc:
            log.exception("could not queue task %s #%d", task, run_id)
            self._finish(run_id, FAILED, error=f"could not be queued: {type(exc).__name__}: {exc}")
            raise
        return run_id

    # -- reading ---------------------------------------------------------------------------------

    def status(self, run_id: int) -> RunView:
        with Session(self._host.engine) as session:
            row = session.execute(select(*_VIEW_COLUMNS).where(TaskRun.id == run_id)).one_or_none()
        if row is None:
            raise KeyError(f"no task run {run_id}")
        return RunView(*row)

    def recent(self, limit: int = 20, statuses: tuple[str, ...] | None = None) -> list[RunView]:
        """The newest runs first (only ``statuses``, when given), for the admin page and doctor."""
        query = select(*_VIEW_COLUMNS).order_by(TaskRun.id.desc()).limit(limit)
        if statuses:
            query = query.where(TaskRun.status.in_(statuses))
        with Session(self._host.engine) as session:
            return [RunView(*row) for row in session.execute(query)]

    def live_workers(self) -> int | None:
        """Workers whose heartbeat is younger than ``stalled_after`` (PostgreSQL), None on the
        embedded store (the portal process itself runs the work)."""
        if not self.on_postgres:
            return None
        from sqlalchemy import text

        with self._host.engine.connect() as conn:
            return int(conn.execute(text(
                "SELECT count(*) FROM procrastinate_workers WHERE last_heartbeat > now() - make_interval(secs => :s)"
            ), {"s": self.settings.stalled_after}).scalar_one())  # fmt: skip

    def result(self, run_id: int) -> bytes | None:
        with Session(self._host.engine) as session:
            return session.scalar(select(TaskRun.result).where(TaskRun.id == run_id))

    def upload_result(self, run_id: int, identity: Identity) -> Upload:
        """The finished upload (what ``LedgerService.upload`` returns), for whoever queued it.

        Raises :class:`TaskFailed` when the run failed for good, ``LookupError`` while it runs.
        """
        run = self.status(run_id)
        if run.task != UPLOAD or run.subject != identity.subject:
            raise PermissionError(f"task run {run_id} is not {identity.subject}'s upload")
        if run.status == FAILED:
            raise TaskFailed(run)
        data = self.result(run_id) if run.status == SUCCEEDED else None
        if data is None:
            raise LookupError(f"task run {run_id} is {run.status}")
        return load_upload(data, self._host.store.specs)

    # -- running ---------------------------------------------------------------------------------

    def start(self) -> None:
        """The portal process's part (it calls this once). DuckDB: start the in-process
        scheduler and take up the runs an earlier process left unfinished (a DuckDB file has one
        process, so nobody else will). PostgreSQL: nothing; workers schedule and retry."""
        if isinstance(self._backend, _Threads):
            with Session(self._host.engine) as session:
                left = list(session.scalars(select(TaskRun.id).where(TaskRun.status.in_((QUEUED, RUNNING, RETRYING)))
                                            .order_by(TaskRun.id)))  # fmt: skip
            for run_id in left:
                log.warning("task run #%d was left unfinished by an earlier portal process; running it again", run_id)
                self._backend.submit(run_id)
            self._backend.start_schedule()

    def run_now(self, name: str) -> int:
        """Queue periodic job ``name`` once now, outside its schedule (an admin's "run now", a
        sync after its source came back); returns the run's id."""
        job = self._periodic[name]
        return self._enqueue(PERIODIC_PREFIX + name, job.label, "system:periodic", {"timestamp": None})

    def run_worker(self, *, name: str | None = None, until_idle: bool = False) -> None:
        """Run jobs until SIGTERM/SIGINT (``huizhi worker``): a running job is finished first.
        ``until_idle``: return once the queue is empty instead (tests, one-off catch-up runs)."""
        if not isinstance(self._backend, _Procrastinate):
            raise RuntimeError(
                "the embedded DuckDB store runs background work inside the portal process; "
                "a worker is only for PostgreSQL (set HUIZHI_DATABASE_URL to a postgresql+psycopg:// URL)"
            )
        if name:
            self._worker_name = f"{name} ({self._worker_name})"
        self._backend.run_worker(self._worker_name, until_idle=until_idle)

    def execute(self, run_id: int, *, last_attempt: Callable[[BaseException], bool]) -> None:
        """One attempt at run ``run_id``: marks it running, runs its handler, records the outcome.
        Re-raises a failure (after recording it) so the queue can retry it."""
        with Session(self._host.engine, expire_on_commit=False) as session:
            run = session.execute(select(TaskRun).options(undefer(TaskRun.payload)).where(TaskRun.id == run_id)).scalar_one()
            if run.status in (SUCCEEDED, FAILED):
                log.warning("task %s #%d is already %s; not running it again", run.task, run_id, run.status)
                return
            if run.status == RUNNING:  # the last attempt's worker died without a word
                run.error = f"attempt {run.attempts} was interrupted (its worker {run.worker} stopped)"
                log.warning("task %s #%d: %s; retrying", run.task, run_id, run.error)
            run.status, run.attempts, run.worker = RUNNING, run.attempts + 1, self._worker_name
            run.started_at, run.finished_at, run.phase, run.progress = utcnow(), None, "", 0.0
            session.commit()
            session.expunge(run)
        started = time.perf_counter()
        try:
            handler = self._handlers.get(run.task) or self._periodic_handler(run.task)
            result = handler(run)
        except BaseException as exc:
            final = last_attempt(exc) or run.attempts >= run.max_attempts
            log.error("task %s #%d failed (attempt %d of %d%s): %s: %s", run.task, run_id, run.attempts,
                      run.max_attempts, ", giving up" if final else ", will retry", type(exc).__name__, exc,
                      exc_info=True)  # fmt: skip
            self._finish(run_id, FAILED if final else RETRYING, error=f"{type(exc).__name__}: {exc}")
            raise
        self._finish(run_id, SUCCEEDED, result=result)
        log.info("task %s #%d succeeded in %.1f s (attempt %d)", run.task, run_id, time.perf_counter() - started,
                 run.attempts)

    def run_periodic(
        self, name: str, *, last_attempt: Callable[[BaseException], bool], run_id: int | None = None,
        job_id: int | None = None, timestamp: int | None = None,
    ) -> int:
        """A periodic job's turn: recorded as a run (``periodic:<name>``; a retry of the same
        queue job continues its run), then executed."""
        if run_id is None and job_id is not None:
            run_id = self._run_id_for_job(job_id)
        if run_id is None:
            job = self._periodic[name]
            with Session(self._host.engine) as session:
                run = TaskRun(task=PERIODIC_PREFIX + name, label=job.label, subject="system:periodic",
                              args=json.dumps({"timestamp": timestamp}),
                              status=QUEUED, attempts=0, max_attempts=self.settings.retries + 1, phase="",
                              progress=0.0, error="", worker="", created_at=utcnow(), job_id=job_id)  # fmt: skip
                session.add(run)
                session.commit()
                run_id = run.id
        self.execute(run_id, last_attempt=last_attempt)
        return run_id

    def _run_id_for_job(self, job_id: int, run_id: Any = None) -> int | None:
        with Session(self._host.engine) as session:
            if isinstance(run_id, int):
                return session.scalar(select(TaskRun.id).where(TaskRun.id == run_id))
            return session.scalar(select(TaskRun.id).where(TaskRun.job_id == job_id).order_by(TaskRun.id.desc()))

    def _periodic_handler(self, task: str) -> Callable[[TaskRun], bytes | None]:
        name = task.removeprefix(PERIODIC_PREFIX)
        if not task.startswith(PERIODIC_PREFIX) or name not in self._periodic:
            raise LookupError(f"no handler for task {task!r} in this process (is its plugin or sync registered?)")
        job = self._periodic[name]

        def handle(run: TaskRun) -> bytes | None:
            out = job.fn(json.loads(run.args).get("timestamp")) if job.with_timestamp else job.fn()
            return out if isinstance(out, bytes) else None

        return handle

    def _finish(self, run_id: int, status: str, *, error: str | None = None, result: bytes | None = None) -> None:
        values: dict[str, Any] = {"status": status, "finished_at": utcnow()}
        if error is not None:
            values["error"] = error[:4000]
        if status == SUCCEEDED:
            values |= {"result": result, "payload": None, "progress": 1.0}  # the file is no longer needed
        with Session(self._host.engine) as session:
            session.execute(update(TaskRun).where(TaskRun.id == run_id).values(**values))
            session.commit()

    def _progress(self, run_id: int) -> Callable[[str, float], None]:
        """An ``on_progress`` that writes the phase and fraction, at most 4 times a second."""
        last_at, last_phase = [0.0], [""]

        def report(phase: str, fraction: float) -> None:
            now = time.monotonic()
            if phase == last_phase[0] and now - last_at[0] < 0.25 and fraction < 1.0:
                return
            last_at[0], last_phase[0] = now, phase
            with Session(self._host.engine) as session:
                session.execute(update(TaskRun).where(TaskRun.id == run_id).values(phase=phase, progress=fraction))
                session.commit()

        return report

    # -- the product's tasks ---------------------------------------------------------------------

    def _run_upload(self, run: TaskRun) -> bytes:
        args = json.loads(run.args)
        identity = identity_from_json(args["identity"], self._host)
        if run.payload is None:
            raise RuntimeError(f"task run {run.id}: the uploaded file is missing")
        upload = self._host.ledgers.upload(
            identity, args["ledger_id"], bytes(run.payload), args["file_name"], mode=args["mode"],
            on_progress=self._progress(run.id),
        )  # fmt: skip
        return dump_upload(upload)

    def _run_export(self, run: TaskRun) -> bytes:
        return self.write_cockpit_export(identity_from_json(json.loads(run.args)["identity"], self._host))

    def _scheduled_export(self) -> bytes:
        return self.write_cockpit_export(self._host.system_identity("cockpit-export"))

    def write_cockpit_export(self, identity: Identity) -> bytes:
        """The cockpit's numbers (xlsx, returned and written) and its HTML snapshot, written to
        ``<data_dir>/exports/`` with the time in the name; audited as a cockpit export."""
        from huizhi.cockpit import export as cockpit_export
        from huizhi.context import Filters

        results = self._host.cockpit.compute(identity, use_cache=False)
        now = utcnow()
        workbook = cockpit_export.excel_bytes(results, Filters(), exported_by=identity.name, now=now)
        page, _height = cockpit_export.snapshot_html(results, Filters(), now=now, exported_by=identity.name)
        folder = self._host.settings.data_dir / "exports"
        folder.mkdir(parents=True, exist_ok=True)
        stem = f"cockpit-{now:%Y%m%d-%H%M%S}"
        (folder / f"{stem}.xlsx").write_bytes(workbook)
        (folder / f"{stem}.html").write_text(page, encoding="utf-8")
        self._host.audit.record(identity, "cockpit.export", "cockpit", format="xlsx+html", tiles=len(results),
                                file=f"exports/{stem}.xlsx", how="background")  # fmt: skip
        return workbook

    def send_reminders(self, today: dt.date | None = None) -> bytes:
        """Remind the departments that still owe this period's submission when its deadline is
        at most :data:`REMINDER_DAYS` days away: one ``submission.reminder`` audit entry per
        ledger (the record a notification channel reads). Returns the reminders as JSON."""
        from huizhi.clock import beijing_today
        from huizhi.submissions import submission_status

        day = today or beijing_today()
        who = self._host.system_identity("reminders")
        sent = []
        for sub in submission_status(self._host, day):
            days_left = (sub.deadline - day).days
            if not sub.missing or days_left > REMINDER_DAYS:
                continue
            entry: dict[str, Any] = {"ledger": sub.ledger_id, "title": sub.title, "period": sub.period.label,
                     "deadline": sub.deadline.isoformat(), "missing": list(sub.missing), "days_left": days_left}  # fmt: skip
            self._host.audit.record(who, "submission.reminder", f"ledger:{sub.ledger_id}", **entry)
            sent.append(entry)
        log.info("submission reminders for %s: %d ledgers", day, len(sent))
        return json.dumps(sent, ensure_ascii=False).encode()

    def clean_up(self, now: dt.datetime | None = None) -> bytes:
        """Drop files and outcomes of runs finished :data:`KEEP_FILES` ago (a page picks an
        outcome up within minutes) and the records of runs finished :data:`KEEP_RUNS` ago."""
        from sqlalchemy import delete

        now = now or utcnow()
        with Session(self._host.engine) as session:
            emptied = session.execute(
                update(TaskRun).where(TaskRun.finished_at < now - KEEP_FILES, TaskRun.status.in_((SUCCEEDED, FAILED)))
                .where((TaskRun.payload.is_not(None)) | (TaskRun.result.is_not(None)))
                .values(payload=None, result=None)
            ).rowcount  # type: ignore[attr-defined]
            dropped = session.execute(
                delete(TaskRun).where(TaskRun.finished_at < now - KEEP_RUNS, TaskRun.status.in_((SUCCEEDED, FAILED)))
            ).rowcount  # type: ignore[attr-defined]
            session.commit()
        log.info("task runs: %d files/outcomes emptied, %d old records dropped", emptied, dropped)
        return json.dumps({"emptied": emptied, "dropped": dropped}).encode()

    def run_due_syncs(self, timestamp: int | None = None) -> bytes:
        """Run every declared sync due in the minute of ``timestamp`` (default now), one after
        the other, each as its own run (``connector-sync``: a failure is recorded on it, shown
        on the admin page, and does not stop the others; the next due time tries again)."""
        import croniter

        from huizhi.clock import BEIJING

        at = dt.datetime.fromtimestamp(timestamp if timestamp is not None else time.time(), BEIJING)
        at = at.replace(second=0, microsecond=0)
        minute = int(at.timestamp() // 60)
        due = [
            s for s in self._host.syncs.schedules()
            if (s.cron and croniter.croniter.match(s.cron, at.replace(tzinfo=None)))
            or (s.every and minute % max(int(s.every // 60), 1) == 0)
        ]  # fmt: skip
        ran = []
        for schedule in due:
            run_id = self._record(SYNC, f"定时同步：{schedule.title or schedule.sync_id}",
                                  f"system:sync:{schedule.sync_id}", {"sync_id": schedule.sync_id}, max_attempts=1)  # fmt: skip
            with contextlib.suppress(Exception):  # recorded on its run and logged; the other syncs still run
                self.execute(run_id, last_attempt=lambda exc: True)
            ran.append({"sync": schedule.sync_id, "run": run_id, "status": self.status(run_id).status})
        return json.dumps({"at": at.isoformat(), "syncs": ran}, ensure_ascii=False).encode()

    def _run_sync(self, run: TaskRun) -> bytes:
        result = self._host.syncs.run(json.loads(run.args)["sync_id"])
        if not result.ok:
            raise RuntimeError(f"sync {result.sync_id} failed: {result.error}")
        return json.dumps({"outcome": result.outcome, "version": result.version, "rows": result.rows}).encode()

    # -- lifecycle -------------------------------------------------------------------------------

    def close(self) -> None:
        """Stop threads and close connections (idempotent); a running in-process job finishes first."""
        self._backend.close()


# ----------------------------------------------------------------------------------------------
# What goes through the database: the identity a run acts for, and an upload's outcome


def identity_to_json(identity: Identity) -> dict[str, Any]:
    return {"subject": identity.subject, "name": identity.name, "email": identity.email,
            "grants": sorted([str(g.role), g.department] for g in identity.grants)}  # fmt: skip


def identity_from_json(data: dict[str, Any], host: Host) -> Identity:
    """The identity a run was queued by, as it was then (its grants were checked when it was
    queued, and are checked again by the service the run calls)."""
    grants = frozenset(Grant(Role(role), department) for role, department in data["grants"])
    return Identity(subject=data["subject"], name=data["name"], grants=grants, email=data.get("email", ""),
                    directory=host.settings.departments)


class _SpecPickler(pickle.Pickler):
    # A ledger's spec holds plugin code (checks, factories): saved by id, found again on load.
    def persistent_id(self, obj: Any) -> Any:
        return ("ledger", obj.id) if isinstance(obj, LedgerSpec) else None


class _SpecUnpickler(pickle.Unpickler):
    def __init__(self, data: bytes, specs: dict[str, LedgerSpec]):
        super().__init__(io.BytesIO(data))
        self._specs = specs

    def persistent_load(self, pid: Any) -> Any:
        kind, ledger_id = pid
        if kind != "ledger" or ledger_id not in self._specs:
            raise pickle.UnpicklingError(f"ledger {ledger_id!r} is not declared by an enabled plugin here")
        return self._specs[ledger_id]


def dump_upload(upload: Upload) -> bytes:
    """An upload's outcome for ``task_runs.result``. Pickle, because it is our own object graph
    (Arrow tables, the staged preview) written and read only by huizhi processes through the
    database they share; whoever can write that table can change any ledger anyway."""
    # the pandas copy of the rows is a cache the page rebuilds on demand: not worth storing
    upload = dataclasses.replace(upload, result=dataclasses.replace(upload.result, _frame=None))
    buffer = io.BytesIO()
    _SpecPickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(upload)
    return buffer.getvalue()


def load_upload(data: bytes, specs: dict[str, LedgerSpec]) -> Upload:
    return _SpecUnpickler(data, specs).load()


# ----------------------------------------------------------------------------------------------
# Backends


class _Threads:
    """The embedded store's queue: the host's own threads, retries with the same backoff, and
    a scheduler thread for periodic jobs (started by :meth:`TaskQueue.start`)."""

    def __init__(self, queue: TaskQueue):
        self._queue = queue
        self._pool = cf.ThreadPoolExecutor(max_workers=max(queue.settings.concurrency, 1),
                                           thread_name_prefix="huizhi-task")  # fmt: skip
        self._stop = threading.Event()
        self._scheduler: threading.Thread | None = None
        self._lock = threading.Lock()

    def add_periodic(self, job: Periodic) -> None:
        pass  # read by the scheduler on each turn

    def submit(self, run_id: int) -> None:
        self._pool.submit(self._attempts, lambda final: self._queue.execute(run_id, last_attempt=final))

    def _attempts(self, attempt: Callable[[Callable[[BaseException], bool]], object]) -> None:
        settings = self._queue.settings
        for n in range(settings.retries + 1):

            def final(exc: BaseException, n: int = n) -> bool:
                return n >= settings.retries or self._stop.is_set()

            try:
                attempt(final)
                return
            except Exception as exc:  # recorded on the run by execute(); this notes the thread's view
                log.debug("in-process task attempt %d failed: %s", n + 1, exc)
                if n >= settings.retries or self._stop.wait(settings.retry_wait ** (n + 1)):
                    return

    def start_schedule(self) -> None:
        with self._lock:
            if self._scheduler is None and not self._stop.is_set():
                self._scheduler = threading.Thread(target=self._schedule, name="huizhi-task-schedule", daemon=True)
                self._scheduler.start()

    def _schedule(self) -> None:
        import croniter

        now = time.time()
        due = {name: croniter.croniter(job.cron, now).get_next(float) for name, job in self._queue.periodic_jobs.items()}
        while not self._stop.is_set():
            for name in self._queue.periodic_jobs.keys() - due.keys():  # registered since
                due[name] = croniter.croniter(self._queue.periodic_jobs[name].cron, time.time()).get_next(float)
            if not due:
                self._stop.wait(1.0)
                continue
            name, at = min(due.items(), key=lambda kv: kv[1])
            if self._stop.wait(max(at - time.time(), 0.0)):
                return
            due[name] = croniter.croniter(self._queue.periodic_jobs[name].cron, at).get_next(float)
            try:
                self._pool.submit(self._attempts_periodic, name, at)
            except RuntimeError:  # shut down meanwhile
                return

    def _attempts_periodic(self, name: str, at: float) -> None:
        run_id: list[int] = []

        def attempt(final: Callable[[BaseException], bool]) -> None:
            run_id[:] = [self._queue.run_periodic(name, last_attempt=final, run_id=run_id[0] if run_id else None,
                                                  timestamp=int(at))]

        self._attempts(attempt)

    def close(self) -> None:
        self._stop.set()
        self._pool.shutdown(wait=True, cancel_futures=True)
        if self._scheduler is not None:
            self._scheduler.join(timeout=5)


class _Procrastinate:
    """PostgreSQL: procrastinate's queue in the host's database (tables from migration 0006)."""

    QUEUE = "huizhi"

    def __init__(self, queue: TaskQueue):
        import procrastinate

        from huizhi.db import libpq_conninfo

        self._queue = queue
        settings = queue.settings
        self.strategy = procrastinate.RetryStrategy(max_attempts=settings.retries,
                                                    exponential_wait=settings.retry_wait)  # type: ignore[arg-type]
        conninfo = libpq_conninfo(queue._host.engine)
        self.app = procrastinate.App(
            connector=procrastinate.PsycopgConnector(conninfo=conninfo, min_size=1, max_size=4),
            periodic_defaults={"max_delay": 600},
        )
        self._opened = False
        self._lock = threading.Lock()
        strategy = self.strategy

        @self.app.task(name="huizhi.run", queue=self.QUEUE, pass_context=True, retry=strategy)
        def run(context: procrastinate.JobContext, run_id: int) -> None:
            job = context.job
            queue.execute(run_id, last_attempt=lambda exc: strategy.get_retry_decision(exception=exc, job=job) is None)

        self._run_task = run

        @self.app.periodic(cron=self._stalled_cron(settings.stalled_after), periodic_id="stalled")
        @self.app.task(name="huizhi.retry_stalled", queue=self.QUEUE, queueing_lock="huizhi.retry_stalled",
                       pass_context=True)
        async def retry_stalled(context: procrastinate.JobContext, timestamp: int) -> None:
            await self._retry_stalled()

    @staticmethod
    def _stalled_cron(seconds: float) -> str:
        # every minute, or (a short timeout, as in tests) every half of it, in cron's seconds field
        if seconds >= 60:
            return "* * * * *"
        return f"* * * * * */{max(int(seconds // 2), 1)}"

    def add_periodic(self, job: Periodic) -> None:
        queue, strategy = self._queue, self.strategy

        def periodic(context: Any, timestamp: int) -> None:
            queue.run_periodic(
                job.name, job_id=context.job.id, timestamp=timestamp,
                last_attempt=lambda exc: strategy.get_retry_decision(exception=exc, job=context.job) is None,
            )  # fmt: skip

        task = self.app.task(name=f"huizhi.periodic.{job.name}", queue=self.QUEUE, pass_context=True, retry=strategy,
                             queueing_lock=f"huizhi.periodic.{job.name}")(periodic)  # fmt: skip
        self.app.periodic(cron=job.cron, periodic_id=job.name)(task)

    def _open(self) -> None:
        with self._lock:
            if not self._opened:
                self.app.open()
                self._opened = True

    def submit(self, run_id: int) -> None:
        self._open()
        job_id = self._run_task.configure().defer(run_id=run_id)
        with Session(self._queue._host.engine) as session:
            session.execute(update(TaskRun).where(TaskRun.id == run_id).values(job_id=job_id))
            session.commit()

    async def _retry_stalled(self) -> None:
        """Jobs left ``doing`` by a worker whose heartbeat stopped go back to the queue, unless
        their run has used every attempt (then it is failed, with the reason)."""
        from procrastinate.jobs import Status

        manager = self.app.job_manager
        seconds = self._queue.settings.stalled_after
        for job in await manager.get_stalled_jobs(seconds_since_heartbeat=seconds):
            assert job.id is not None
            run_id = self._queue._run_id_for_job(job.id, job.task_kwargs.get("run_id"))
            run = self._queue.status(run_id) if run_id is not None else None
            if run is not None and run.attempts >= run.max_attempts:
                log.error("job %s (task run #%d) stalled on its last attempt: failing it", job.id, run.id)
                self._queue._finish(run.id, FAILED, error=f"attempt {run.attempts} was interrupted (worker lost); "
                                                          "no attempts left")
                await manager.finish_job_by_id_async(job.id, status=Status.FAILED, delete_job=False)
                continue
            log.warning("job %s (%s) stalled: its worker sent no heartbeat for %g s; retrying it",
                        job.id, job.task_name, seconds)
            await manager.retry_job(job)

    def run_worker(self, name: str, *, until_idle: bool = False) -> None:
        import asyncio
        import concurrent.futures
        import functools

        settings = self._queue.settings
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            in_loop = False
        else:
            in_loop = True
        run = functools.partial(
            self.app.run_worker,
            name=name, queues=[self.QUEUE], concurrency=max(settings.concurrency, 1),
            update_heartbeat_interval=settings.heartbeat, stalled_worker_timeout=settings.stalled_after,
            install_signal_handlers=not until_idle and not in_loop, wait=not until_idle, delete_jobs="successful",
        )  # fmt: skip
        try:
            if not in_loop:
                run()
                return
            # The caller's thread already runs an event loop (Playwright's sync API, a notebook), where
            # procrastinate's synchronous run_worker (asyncio.run) refuses to start: give it a thread.
            with concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="huizhi-worker") as pool:
                pool.submit(run).result()
        finally:
            # procrastinate's run_worker closes the app it ran in, the connection submit() opened
            # included: the next submit from this process opens it again (it raised AppNotOpen)
            with self._lock:
                self._opened = False

    def close(self) -> None:
        with self._lock:
            if self._opened:
                self.app.close()
                self._opened = False
