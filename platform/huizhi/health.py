"""The portal process's one host, and what a load balancer asks of the process.

Streamlit runs every browser session's script in its own thread; they share one
:class:`ProcessHost`. ``huizhi run`` builds it when the process starts (``huizhi.server``'s
lifespan), not when the first person opens the portal, so ``/readyz`` tells the truth before
anyone has signed in. A build that fails (the database is down) is retried on the next request.

* **liveness** (``/livez``): the process answers. Always 200 while the server runs; restarting
  the process would not bring a database back.
* **readiness** (``/readyz``): the database answers, its tables are at the newest migration, and
  the host is built (plugins loaded). 200 with every check ``ok``, else 503 naming the one that
  failed. Reasons are short and in English, for operators; they name no host, port, path or
  account (``/readyz`` answers on the portal's own port, which anyone may reach): the log has
  the details.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine, inspect, text

from huizhi.config import Settings, load_settings
from huizhi.db import StoreUnavailable, check_connection
from huizhi.host import Host, create_host

log = logging.getLogger(__name__)


def head_revision() -> str | None:
    """The newest migration this installation ships."""
    from alembic.script import ScriptDirectory

    from huizhi.db import MIGRATIONS

    return ScriptDirectory(str(MIGRATIONS)).get_current_head()


def database_revision(engine: Engine) -> str | None:
    """The revision recorded in ``alembic_version`` (None before the first migration). Read
    directly: Alembic's own reader needs the DuckDB impl that only a migration run registers."""
    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return None
        return conn.execute(text("select version_num from alembic_version")).scalar()


def _start_background_work(host: Host) -> None:
    # Compute the cockpit in the background, so the first leader does not wait for it. Commits
    # reach the cockpit as events: this process's directly, other processes' through PostgreSQL
    # NOTIFY (host.channel). A DuckDB file admits one process, so it needs nothing more; only a
    # store with neither polls the ledger heads.
    host.cockpit.warm()
    # pandera's first validate imports its backends (~0.4 s or more of CPU): at start, not in the
    # first upload; a thread, so readiness does not wait for it
    threading.Thread(target=_warm_validation, name="huizhi-warm-validation", daemon=True).start()
    host.tasks.start()  # the embedded store's periodic jobs (reminders, exports); workers do it on PostgreSQL
    if host.channel is None and host.engine.dialect.name != "duckdb":
        host.cockpit.start_watching(2.0)


def _warm_validation() -> None:
    from huizhi.excel.validation import warm

    try:
        warm()
    except Exception:  # a warm-up only: the first upload then pays it
        log.warning("warming the ledger validation failed", exc_info=True)


class ProcessHost:
    """Builds the host once per process, on demand, and reports readiness.

    ``get()`` returns the host, building it first if needed (one build at a time; a failure is
    raised to the caller and remembered for ``readiness``, and the next call tries again).
    """

    def __init__(self, build: Callable[[], Host] | None = None, settings: Callable[[], Settings] = load_settings):
        self._settings = settings
        self._build = build or self._default_build
        self._lock = threading.Lock()
        self._host: Host | None = None
        self._error: BaseException | None = None
        self.started = time.time()

    def _default_build(self) -> Host:
        host = create_host(self._settings())
        _start_background_work(host)
        return host

    @property
    def host(self) -> Host | None:
        return self._host

    @property
    def error(self) -> BaseException | None:
        return self._error

    def get(self) -> Host:
        host = self._host
        if host is not None:
            return host
        with self._lock:
            if self._host is None:
                try:
                    self._host = self._build()
                except BaseException as exc:
                    self._error = exc
                    log.error("host not built: %s", exc)
                    raise
                self._error = None
                log.info("host built: %d plugins enabled", len(self._host.registry.enabled()))
            return self._host

    def try_build(self) -> Host | None:
        """``get()`` that returns None instead of raising (the error stays in :attr:`error`)."""
        try:
            return self.get()
        except Exception:
            return None

    def start(self) -> threading.Thread:
        """Build in a background thread, so the server answers liveness at once."""
        thread = threading.Thread(target=self.try_build, name="huizhi-host-build", daemon=True)
        thread.start()
        return thread

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        """``(ready, report)``; the report is JSON-ready: ``{"status", "checks": {name: {...}}}``."""
        checks: dict[str, dict[str, Any]] = {}
        host = self._host
        if host is None and not self._lock.locked():
            host = self.try_build()
        if host is None:
            error = self._error
            if error is None:  # another thread is building it right now
                checks["host"] = {"ok": False, "detail": "starting: the host is being built"}
            else:
                if isinstance(error, StoreUnavailable):
                    checks["database"] = {"ok": False, "kind": error.kind, "detail": _DATABASE[error.kind]}
                checks["host"] = {"ok": False, "detail": f"not built ({type(error).__name__}): see the portal log"}
        else:
            checks.update(engine_checks(host.engine))
            registry = host.registry
            checks["host"] = {
                "ok": True,
                "plugins_enabled": len(registry.enabled()),
                "plugins_disabled": sorted(p.name for p in registry.problems()),
            }
        ready = all(check["ok"] for check in checks.values())
        return ready, {"status": "ready" if ready else "not ready", "pid": os.getpid(), "checks": checks}

    def liveness(self) -> dict[str, Any]:
        return {"status": "alive", "pid": os.getpid(), "uptime_seconds": round(time.time() - self.started, 1)}

    def dispose(self) -> None:
        with self._lock:
            host, self._host = self._host, None
        if host is not None:
            host.dispose()


_DATABASE = {
    "missing": "the database does not exist",
    "locked": "the database file is held by another process",
    "login": "the database refused the portal's account",
    "unreachable": "the database does not answer",
    "storage": "the database's disk is full or read-only",
}


def engine_checks(engine: Engine) -> dict[str, dict[str, Any]]:
    """The database answers and its host tables are at the newest migration."""
    checks: dict[str, dict[str, Any]] = {}
    try:
        check_connection(engine)
    except StoreUnavailable as exc:
        log.error("readiness: %s", exc)
        checks["database"] = {"ok": False, "kind": exc.kind, "detail": _DATABASE[exc.kind]}
        return checks
    checks["database"] = {"ok": True, "backend": engine.dialect.name}
    try:
        current, head = database_revision(engine), head_revision()
    except Exception as exc:
        log.error("readiness: cannot read the migration revision: %s", exc)
        checks["migrations"] = {"ok": False, "detail": f"cannot read the revision ({type(exc).__name__})"}
    else:
        checks["migrations"] = {"ok": current == head, "current": current, "head": head}
        if current != head:
            checks["migrations"]["detail"] = f"database at {current}, this installation needs {head}: run `huizhi migrate`"
    return checks


_process: ProcessHost | None = None
_process_lock = threading.Lock()


def process_host() -> ProcessHost:
    """This process's :class:`ProcessHost` (made on first use; disposed at exit)."""
    global _process
    with _process_lock:
        if _process is None:
            _process = ProcessHost()
            # Stop the cockpit's threads before the interpreter goes: a daemon thread inside
            # DuckDB then aborts.
            atexit.register(_process.dispose)
        return _process
