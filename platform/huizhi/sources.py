"""Cached reads from connectors: what a page shows when a department's system is slow or down.

``ctx.source(connector_id, query, params)`` (through :meth:`huizhi.host.Host.source`) asks the
connection's ``fetch(query, params)`` for data, at most every ``max_age`` seconds per query and
parameters, and waits at most ``timeout`` seconds for it. When the source fails (an error, a
timeout) the last good data stays available, marked stale with the time the source went down;
for ``retry_interval`` seconds after a failure the source is not asked again, so a page over a
dead source renders at once instead of waiting out the timeout on every rerun.

The cache lives in the host's process (one per host, emptied by ``Host.dispose()``): a restarted
portal asks the source again.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any

from huizhi.clock import utcnow

__all__ = ["SourceResult", "TableFile"]

log = logging.getLogger(__name__)

DEFAULT_MAX_AGE = 300.0  # seconds a result is served from the cache
DEFAULT_TIMEOUT = 30.0  # seconds a fetch may take
DEFAULT_RETRY_INTERVAL = 30.0  # seconds a failed source is left alone
# [connectors.<id>] keys the host reads and does not pass to the factory; ``timeout`` it reads and
# passes on (each connection applies it to its own requests or statements too)
HOST_KEYS = frozenset({"departments", "max_age", "retry_interval"})


@dataclass(frozen=True)
class TableFile:
    """An Excel (.xlsx), CSV (UTF-8 or GB18030) or Parquet file a connection hands over as it is.

    A connection's ``fetch`` returns one instead of parsing the file itself: the host reads it
    with the sandboxed upload parser (``ctx.source`` gives the table as a DataFrame, the first
    non-empty row as header), and a sync uploads it to the ledger exactly like a person's upload
    (Parquet, which the upload parser does not read, is read with pyarrow within the same limits).
    ``sheet`` picks a worksheet (default: the first visible one)."""

    name: str
    content: bytes = field(repr=False)
    sheet: str | None = None


@dataclass(frozen=True)
class SourceResult:
    """What ``ctx.source(...)`` returns: the data and how fresh it is.

    ``data`` is what the connection's ``fetch`` returned (a pandas DataFrame for the built-in
    connectors), or None when the source has never answered. ``fetched_at`` is when that data
    was fetched (naive UTC, like every time the host stores; None: never). ``stale`` is True when
    the latest attempt failed, so ``data`` (if any) is older than asked for; ``error_since`` is
    when the source started failing (None: it answered last time) and ``error`` says why, in
    English for the log. Show the Chinese notice with :func:`huizhi.kit.source_notice`, or use
    :func:`huizhi.kit.source_data`, which fetches and shows it in one step.
    """

    connector_id: str
    data: Any = None
    fetched_at: dt.datetime | None = None
    stale: bool = False
    error_since: dt.datetime | None = None
    error: str | None = None

    @property
    def available(self) -> bool:
        """True when there is data to show (fresh or stale)."""
        return self.data is not None

    @property
    def down(self) -> bool:
        """True when the source failed on the latest attempt."""
        return self.error_since is not None


@dataclass
class _Entry:
    data: Any = None
    fetched_at: dt.datetime | None = None
    error: str | None = None
    error_since: dt.datetime | None = None
    failed_at: dt.datetime | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass(frozen=True)
class Freshness:
    """The cache settings of one connector, from ``[connectors.<id>]`` (seconds)."""

    max_age: float = DEFAULT_MAX_AGE
    timeout: float = DEFAULT_TIMEOUT
    retry_interval: float = DEFAULT_RETRY_INTERVAL

    @classmethod
    def from_config(cls, connector_id: str, config: Mapping[str, Any]) -> Freshness:
        values = {}
        for key, default in (("max_age", DEFAULT_MAX_AGE), ("timeout", DEFAULT_TIMEOUT),
                             ("retry_interval", DEFAULT_RETRY_INTERVAL)):  # fmt: skip
            raw = config.get(key, default)
            if isinstance(raw, bool) or not isinstance(raw, int | float) or raw < 0 or (key == "timeout" and raw == 0):
                raise ValueError(f"[connectors.{connector_id}] {key} must be a number of seconds (> 0), got {raw!r}")
            values[key] = float(raw)
        return cls(**values)


def cache_key(connector_id: str, connection: Any, query: Any, params: Mapping[str, Any]) -> str:
    """One query with its parameters, as a string (the connection may say how: ``cache_key``)."""
    describe = getattr(connection, "cache_key", None)
    text = describe(query) if callable(describe) else repr(query)
    return json.dumps([connector_id, text, sorted((k, repr(v)) for k, v in params.items())], ensure_ascii=False)


class SourceCache:
    """Results of connector queries, kept per query and parameters, with timeouts. One per host."""

    def __init__(self, clock: Callable[[], dt.datetime] = utcnow, workers: int = 4):
        self._clock = clock
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()
        # A fetch runs in a worker so that the caller can stop waiting; a stuck fetch keeps its
        # worker until the source's own timeout ends it (statement_timeout, HTTP timeout).
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="huizhi-source")

    def _entry(self, key: str) -> _Entry:
        with self._lock:
            return self._entries.setdefault(key, _Entry())

    def get(
        self,
        connector_id: str,
        key: str,
        fetch: Callable[[], Any],
        freshness: Freshness,
        *,
        max_age: float | None = None,
    ) -> SourceResult:
        """The cached result for ``key`` when younger than ``max_age``, else a new fetch; on a
        failed fetch the last good data, marked stale."""
        entry = self._entry(key)
        age_limit = freshness.max_age if max_age is None else max_age
        with entry.lock:  # one fetch per key at a time; the others wait and share its result
            now = self._clock()
            fresh = entry.fetched_at is not None and (now - entry.fetched_at).total_seconds() < age_limit
            if fresh and entry.error_since is None:
                return self._result(connector_id, entry)
            if entry.failed_at is not None and (now - entry.failed_at).total_seconds() < freshness.retry_interval:
                return self._result(connector_id, entry)
            try:
                data = self._pool.submit(fetch).result(timeout=freshness.timeout)
            except FutureTimeout:
                self._failed(entry, f"timed out after {freshness.timeout:g} s")
                log.warning("connector %s: %s", connector_id, entry.error)
            except Exception as exc:  # any failure of a department's system is shown, not raised
                self._failed(entry, f"{type(exc).__name__}: {exc}")
                log.warning("connector %s failed: %s", connector_id, entry.error)
            else:
                entry.data, entry.fetched_at = data, self._clock()
                entry.error = entry.error_since = entry.failed_at = None
            return self._result(connector_id, entry)

    def _failed(self, entry: _Entry, error: str) -> None:
        now = self._clock()
        entry.error, entry.failed_at = error, now
        entry.error_since = entry.error_since or now

    @staticmethod
    def _result(connector_id: str, entry: _Entry) -> SourceResult:
        return SourceResult(
            connector_id=connector_id, data=entry.data, fetched_at=entry.fetched_at,
            stale=entry.error_since is not None, error_since=entry.error_since, error=entry.error,
        )  # fmt: skip

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def close(self) -> None:
        self.clear()
        self._pool.shutdown(wait=False, cancel_futures=True)


def run_with_timeout(fetch: Callable[[], Any], timeout: float, what: str) -> Any:
    """``fetch()`` in a thread, raising :class:`TimeoutError` after ``timeout`` seconds (syncs)."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = fetch()
        except BaseException as exc:  # handed to the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=target, name=f"huizhi-{what}", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise TimeoutError(f"{what}: no answer within {timeout:g} s")
    if "error" in box:
        raise box["error"]
    return box.get("value")
