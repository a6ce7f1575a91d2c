"""The tile runner: every tile an identity may see, run concurrently and isolated, results cached.

One :class:`CockpitRunner` belongs to one :class:`~huizhi.host.Host` (``host.cockpit``, made with
the host and stopped by ``Host.dispose()``): it owns the result cache, the worker threads and the
optional commit watcher. Nothing here is module-global, so tests build as many hosts as they like.

* :meth:`CockpitRunner.compute` runs tiles: dropped before running when the identity lacks the
  tile's permission, else on the worker pool, each isolated (an exception, a timeout or a value
  of the wrong type becomes that tile's error result naming the plugin).
* Results are cached per (tile, filters, the identity's row scope on the tile's ledgers, the
  head version of each of those ledgers, today): a commit moves a head, so the next refresh
  recomputes exactly the tiles that read it, whoever committed (this or another process).
* :meth:`CockpitRunner.invalidate` is what a commit or rollback calls: it drops the entries of
  those ledgers and recomputes their tiles in the background, so the first leader view after a
  commit is served from the cache. :meth:`CockpitRunner.start_watching` polls the heads and does
  the same for commits this process is not told about (no notification channel).
"""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import datetime as dt
import decimal
import logging
import numbers
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from huizhi.access import AccessDenied, Identity, RowScope
from huizhi.clock import beijing_today
from huizhi.cockpit.filters import FILTER_LABELS, normalize_filters
from huizhi.cockpit.status import (
    Assessment,
    DataDrop,
    Status,
    as_utc_naive,
    assess,
    data_drop,
    with_data_drop,
)
from huizhi.context import FILTER_DEPARTMENT, FILTER_PERIOD, FILTER_STREET, Filters, LedgerReader, TileContext
from huizhi.logs import log_context
from huizhi.specs import Breakdown, Perm, Series, Target, TileSpec, TileValue, TopItems

if TYPE_CHECKING:
    from huizhi.host import Host

log = logging.getLogger(__name__)

#: the ``detail`` types the cockpit draws itself; anything else needs the tile's own ``render``
DRAWN_DETAILS = (Series, Breakdown, TopItems)


@dataclass
class CockpitTileContext(TileContext):
    """The :class:`~huizhi.context.TileContext` the runner hands to tiles. Same API, plus it
    records which ledgers a tile really read."""

    heads: Mapping[str, Any] | None = None
    ledgers_read: set[str] = field(default_factory=set)

    def ledger(self, ledger_id: str) -> LedgerReader:
        """As :meth:`TileContext.ledger`, but pinned to the head version the runner read when
        this run started: every tile of one refresh sees the same versions (the ones its cache
        key names), and the version is a literal in the SQL, so DuckDB skips the row groups of
        older versions instead of scanning every version of a large ledger."""
        head = (self.heads or {}).get(ledger_id)
        if head is None:
            reader = super().ledger(ledger_id)
        else:
            spec = self._spec(ledger_id)
            if not self.identity.can(Perm.LEDGER_READ, spec):
                raise self.deny(f"ledger:{ledger_id}", "ledger read")
            reader = LedgerReader(self._host, spec, self.identity, self.plugin, version_id=head.version_id)
        self.ledgers_read.add(ledger_id)
        return reader


@dataclass(frozen=True)
class TileResult:
    """One tile as the cockpit shows it."""

    tile: TileSpec
    plugin: str
    value: TileValue | None
    assessment: Assessment
    as_of: dt.datetime | None = None  # naive UTC
    error: str | None = None  # Chinese, names the plugin; None when the tile worked
    error_detail: str = ""  # exception type and message, for developers
    cached: bool = False
    seconds: float = 0.0
    filters_applied: frozenset[str] = frozenset()

    @property
    def status(self) -> Status:
        return self.assessment.status

    @property
    def target(self) -> Target | None:
        """The target this value is measured against: the value's own (``TileValue.target``,
        e.g. this period's deadline), else the tile's."""
        if self.value is not None and self.value.target is not None:
            return self.value.target
        return self.tile.target

    @property
    def ok(self) -> bool:
        return self.error is None


def status_counts(results: Sequence[TileResult]) -> dict[Status, int]:
    """How many tiles are in each status, in :class:`Status` order (zeros included)."""
    counts = dict.fromkeys(Status, 0)
    for r in results:
        counts[r.status] += 1
    return counts


class InvalidTileValue(TypeError):
    """A tile's query returned something the cockpit cannot show. ``what`` is the part that was
    wrong (``result``, ``value``, ``as_of``, ``detail``, ``note``, ``target``); the message is English."""

    _CHINESE = {
        "result": "返回值不是 TileValue",
        "value": "数值不是数字",
        "as_of": "数据时间不是日期时间",
        "detail": "明细无法绘制（既非趋势、分项或表格，指标也没有自己的绘制函数）",
        "note": "说明不是文字",
        "target": "目标不是 Target",
    }

    def __init__(self, what: str, message: str):
        super().__init__(message)
        self.what = what

    @property
    def user_message(self) -> str:
        return self._CHINESE[self.what]


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def is_partial_month(series: Series, today: dt.date) -> bool:
    """True when ``series`` is monthly (every point a date on the 1st of a month) and its last
    point is the month of ``today``: the month so far."""
    if not series.points:
        return False
    xs = [x for x, _ in series.points]
    if not all(isinstance(x, dt.date) and not isinstance(x, dt.datetime) and x.day == 1 for x in xs):
        return False
    return (xs[-1].year, xs[-1].month) == (today.year, today.month)


def checked_value(tile: TileSpec, value: Any, today: dt.date | None = None) -> TileValue:
    """``value`` as the cockpit needs it: the number as a float, ``as_of`` in naive UTC (any time
    zone accepted), a detail's unit resolved (None: the tile's), a series' partial last point
    marked (``Series.partial`` None: decided on ``today``). Raises :class:`InvalidTileValue` for
    anything else, naming what is wrong."""
    if not isinstance(value, TileValue):
        raise InvalidTileValue("result", f"query returned {type(value).__name__}, expected TileValue")
    number = value.value
    if number is not None:
        if isinstance(number, bool) or not isinstance(number, numbers.Real | decimal.Decimal):
            raise InvalidTileValue(
                "value", f"value is {type(number).__name__} {_short(number)}, expected a number or None"
            )
        number = float(number)
    as_of = value.as_of
    if as_of is not None:
        if not isinstance(as_of, dt.datetime):
            raise InvalidTileValue(
                "as_of", f"as_of is {type(as_of).__name__} {_short(as_of)}, expected a datetime or None"
            )
        as_of = as_utc_naive(as_of)
    if value.detail is not None and tile.render is None and not isinstance(value.detail, DRAWN_DETAILS):
        raise InvalidTileValue(
            "detail",
            f"detail is {type(value.detail).__name__}: without a render() the cockpit draws only "
            "Series, Breakdown or TopItems",
        )
    if not isinstance(value.note, str):
        raise InvalidTileValue("note", f"note is {type(value.note).__name__}, expected str")
    if value.target is not None and not isinstance(value.target, Target):
        raise InvalidTileValue("target", f"target is {type(value.target).__name__}, expected huizhi.specs.Target")
    detail = value.detail
    if isinstance(detail, Series | Breakdown):
        # units follow the values: a detail without its own unit has the tile's, from here on
        if detail.unit is None:
            detail = dataclasses.replace(detail, unit=tile.unit)
        elif not isinstance(detail.unit, str):
            raise InvalidTileValue(
                "detail", f"detail unit is {type(detail.unit).__name__} {_short(detail.unit)}, expected str or None"
            )
    if isinstance(detail, Series) and detail.partial is None:
        detail = dataclasses.replace(detail, partial=is_partial_month(detail, today or beijing_today()))
    return dataclasses.replace(value, value=number, as_of=as_of, detail=detail)


@dataclass
class _CachedValue:
    value: TileValue
    as_of: dt.datetime | None
    filters_applied: frozenset[str]
    stored_at: float
    seconds: float


class ResultCache:
    """Tile values by (tile id, filters, row scopes, head versions, day); bounded LRU.

    Entries for tiles without declared ledgers expire after ``ttl`` seconds (their freshness,
    if shorter), since no commit can tell when they change.
    """

    def __init__(self, max_entries: int = 2048, ttl: float = 60.0):
        self.max_entries = max_entries
        self.ttl = ttl
        self._entries: OrderedDict[tuple, _CachedValue] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: tuple, ttl: float | None) -> _CachedValue | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and ttl is not None and time.monotonic() - entry.stored_at > ttl:
                del self._entries[key]
                entry = None
            if entry is None:
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return entry

    def put(self, key: tuple, entry: _CachedValue) -> None:
        with self._lock:
            self._entries[key] = entry
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def drop_ledgers(self, ledger_ids: Iterable[str]) -> int:
        """Drop every entry computed from any of ``ledger_ids``; returns how many."""
        ids = set(ledger_ids)
        with self._lock:
            # key[3] is the tile's ((ledger id, head version), ...)
            stale = [k for k in self._entries if any(lid in ids for lid, _ in k[3])]
            for k in stale:
                del self._entries[k]
        return len(stale)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


class RunnerClosed(RuntimeError):
    """The host was disposed: its cockpit runs no more tiles."""


class CockpitRunner:
    """The cockpit of one host: result cache, tile worker pool, background recomputes, watcher.

    ``workers`` tile threads (DuckDB and psycopg release the GIL while a query runs) and one
    background thread for warm-ups and recomputes after commits (it waits on tile runs, so it
    cannot be one of the tile threads). Threads start on first use; :meth:`close` stops and
    joins them all (``Host.dispose()`` calls it).
    """

    def __init__(self, host: Host, *, workers: int = 4, cache: bool = True):
        self._host = host
        self.workers = workers
        self.cache_enabled = cache
        self.results = ResultCache()
        self._memo: OrderedDict[Any, Any] = OrderedDict()
        self._drops: OrderedDict[int, DataDrop | None] = OrderedDict()  # by version id (immutable)
        self._lock = threading.Lock()
        self._pool: cf.ThreadPoolExecutor | None = None
        self._background: cf.ThreadPoolExecutor | None = None
        self._watcher: threading.Thread | None = None
        self._stop_watching = threading.Event()
        self._closed = False

    # -- threads -----------------------------------------------------------------------------

    def _executor(self, background: bool = False) -> cf.ThreadPoolExecutor:
        with self._lock:
            if self._closed:
                raise RunnerClosed("the host's cockpit runner is closed (Host.dispose() was called)")
            if background:
                if self._background is None:
                    self._background = cf.ThreadPoolExecutor(1, thread_name_prefix="cockpit-background")
                return self._background
            if self._pool is None:
                self._pool = cf.ThreadPoolExecutor(self.workers, thread_name_prefix="cockpit-tile")
            return self._pool

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Stop the watcher, let running work finish, join every thread, drop the caches.
        Idempotent. A tile that never returns would block here: its query is not interruptible."""
        with self._lock:
            self._closed = True
            watcher, self._watcher = self._watcher, None
            background, self._background = self._background, None
            pool, self._pool = self._pool, None
        self._stop_watching.set()
        if watcher is not None and watcher is not threading.current_thread():
            watcher.join()
        # background work waits on the tile pool: stop it first, then the pool
        for executor in (background, pool):
            if executor is not None:
                executor.shutdown(wait=True, cancel_futures=True)
        self.clear()

    def reset(self, *, workers: int | None = None, cache: bool | None = None) -> None:
        """Drop the caches and the tile pool (rebuilt on next use, with ``workers`` threads if
        given); ``cache=False`` runs every tile on every refresh (the benchmark's cold runs)."""
        with self._lock:
            pool, self._pool = self._pool, None
            if workers is not None:
                self.workers = workers
            if cache is not None:
                self.cache_enabled = cache
        if pool is not None:
            pool.shutdown(wait=True)
        self.clear()

    def clear(self) -> None:
        self.results.clear()
        with self._lock:
            self._memo.clear()

    def remember(self, key: Any, build: Callable[[], Any], max_entries: int = 512) -> Any:
        """A value built once per ``key`` (the page's charts for one cached tile value)."""
        with self._lock:
            if key in self._memo:
                self._memo.move_to_end(key)
                return self._memo[key]
        value = build()
        with self._lock:
            self._memo[key] = value
            while len(self._memo) > max_entries:
                self._memo.popitem(last=False)
        return value

    # -- running tiles -----------------------------------------------------------------------

    def compute(
        self,
        identity: Identity,
        tiles: Iterable[TileSpec] | None = None,
        filters: Filters | None = None,
        *,
        today: dt.date | None = None,
        now: dt.datetime | None = None,
        timeout: float = 60.0,
        use_cache: bool = True,
    ) -> list[TileResult]:
        """Run ``tiles`` (default: every tile the identity may see) for ``identity``.

        ``today`` (default: today in Beijing) is the one day of the run: every tile's
        ``ctx.today`` and the judgement of its value. A tile whose permission the identity lacks
        is dropped without running; the others run concurrently, each isolated. Results are in
        the order of ``tiles``.
        """
        host = self._host
        filters = normalize_filters(filters)
        today = today or beijing_today()
        chosen: list[tuple[TileSpec, str]] = []
        for tile in tiles if tiles is not None else host.visible_tiles(identity):
            if not identity.allows(tile.permission, tile.department):
                continue  # never run what the identity may not see
            registered = host.registry.tiles.get(tile.id)
            chosen.append((tile, registered[1] if registered else "unknown"))
        heads = host.store.heads()
        drops = self.data_drops(heads)
        results: list[TileResult | None] = [None] * len(chosen)
        pending: dict[cf.Future, tuple[int, tuple | None, float]] = {}
        caching = use_cache and self.cache_enabled
        for i, (tile, plugin) in enumerate(chosen):
            key = None
            if caching:
                key = (tile.id, filters, _scope_key(host, identity, tile), _heads_key(heads, tile), today)
                hit = self.results.get(key, self._ttl(tile))
                if hit is not None:
                    results[i] = _finish(
                        tile, plugin, hit.value, hit.as_of, hit.filters_applied, filters, today, now,
                        cached=True, seconds=0.0, drops=drops,
                    )
                    continue
            future = self._executor().submit(_run_one, host, identity, tile, plugin, filters, heads, today)
            pending[future] = (i, key, time.perf_counter())

        deadline = time.monotonic() + timeout
        for future, (i, key, started) in pending.items():
            tile, plugin = chosen[i]
            try:
                value, applied, read, seconds = future.result(timeout=max(0.0, deadline - time.monotonic()))
            except cf.TimeoutError:
                _tile_log(logging.ERROR, tile, plugin, "tile %s of plugin %s timed out after %.0f s", tile.id, plugin,
                          timeout)
                results[i] = _error_result(
                    tile, plugin, TimeoutError(f"timed out after {timeout:.0f} s"), time.perf_counter() - started
                )
                continue
            except AccessDenied as exc:
                if not exc.audited:  # raised by the tile itself: recorded here, once
                    self._host.audit.record(identity, "access.denied", exc.target, "denied", plugin=plugin,
                                            how="raised by tile", tile=tile.id)
                results[i] = _error_result(tile, plugin, exc, time.perf_counter() - started)
                continue
            except InvalidTileValue as exc:
                _tile_log(logging.ERROR, tile, plugin, "tile %s of plugin %s returned an invalid value: %s", tile.id,
                          plugin, exc)
                results[i] = _error_result(tile, plugin, exc, time.perf_counter() - started)
                continue
            except Exception as exc:  # a plugin can fail in any way: contain it, name it, log it
                _tile_log(logging.ERROR, tile, plugin, "tile %s of plugin %s failed", tile.id, plugin, exc_info=exc)
                results[i] = _error_result(tile, plugin, exc, time.perf_counter() - started)
                continue
            as_of = value.as_of or _sources_as_of(heads, tile)
            undeclared = read - set(tile.ledgers)
            if undeclared:
                log.warning(
                    "tile %s of plugin %s reads ledgers %s it does not declare in TileSpec.ledgers: not cached",
                    tile.id,
                    plugin,
                    sorted(undeclared),
                )
            elif key is not None:
                self.results.put(key, _CachedValue(value, as_of, applied, time.monotonic(), seconds))
            results[i] = _finish(
                tile, plugin, value, as_of, applied, filters, today, now, cached=False, seconds=seconds, drops=drops
            )
        return [r for r in results if r is not None]

    def data_drops(self, heads: Mapping[str, Any]) -> dict[str, DataDrop]:
        """The ledgers whose head version removed most of the rows before it (see
        :func:`~huizhi.cockpit.status.data_drop`), from the versions' recorded counts. Versions
        never change, so each is read once."""
        from huizhi.models import LedgerVersion

        wanted = {head.version_id: lid for lid, head in heads.items()}
        with self._lock:
            missing = [vid for vid in wanted if vid not in self._drops]
        if missing:
            import sqlalchemy as sa

            with sa.orm.Session(self._host.engine) as session:
                found = {v.id: v for v in session.scalars(sa.select(LedgerVersion).where(LedgerVersion.id.in_(missing)))}
            with self._lock:
                for vid in missing:
                    v = found.get(vid)
                    lid = wanted[vid]
                    registered = self._host.registry.ledgers.get(lid)
                    title = registered[0].title if registered else lid
                    self._drops[vid] = (
                        data_drop(lid, title, v.number, v.row_count or 0, v.added or 0, v.removed or 0)
                        if v is not None else None
                    )
                while len(self._drops) > 4096:
                    self._drops.popitem(last=False)
        with self._lock:
            return {lid: d for vid, lid in wanted.items() if (d := self._drops.get(vid)) is not None}

    def _ttl(self, tile: TileSpec) -> float | None:
        if tile.ledgers:
            return None  # the head versions in the key say when it changes
        ttl = self.results.ttl
        return min(ttl, tile.freshness.total_seconds()) if tile.freshness is not None else ttl

    def warm(
        self, identity: Identity | None = None, *, tiles: Iterable[TileSpec] | None = None
    ) -> cf.Future[list[TileResult]]:
        """Compute ``tiles`` (default: all) once in the background, as ``identity`` (default: the
        host's district-wide system identity, whose row scope every leader shares), so the first
        leader view is served from the cache. Returns the Future of the results."""
        who = identity or self._host.system_identity("cockpit-warm")
        chosen = list(tiles) if tiles is not None else None

        def run() -> list[TileResult]:
            try:
                return self.compute(who, chosen)
            except RunnerClosed:
                return []  # the host went away meanwhile: nothing left to warm
            except Exception:
                log.warning("cockpit warm-up failed", exc_info=True)
                raise

        return self._executor(background=True).submit(run)

    def invalidate(self, ledger_ids: Iterable[str]) -> cf.Future[list[TileResult]]:
        """A commit or rollback changed ``ledger_ids``: drop their cached results and recompute,
        in the background, every tile that reads one of them (see :meth:`warm`). Returns the
        Future of that recompute (already done when no tile reads those ledgers)."""
        ids = set(ledger_ids)
        dropped = self.results.drop_ledgers(ids)
        affected = [
            spec for spec, _ in self._host.registry.tiles.values() if ids.intersection(spec.ledgers)
        ]
        log.debug("cockpit: %s changed, %d results dropped, %d tiles to recompute", sorted(ids), dropped, len(affected))
        if not affected or self._closed:
            done: cf.Future[list[TileResult]] = cf.Future()
            done.set_result([])
            return done
        return self.warm(tiles=affected)

    # -- the commit watcher ------------------------------------------------------------------

    def start_watching(self, interval: float = 2.0) -> None:
        """Look at the ledger heads every ``interval`` seconds and :meth:`invalidate` those that
        moved (commits by this or any other process on the same database). For deployments with
        no commit notification; idempotent; stopped by :meth:`stop_watching` or :meth:`close`."""
        with self._lock:
            if self._closed:
                raise RunnerClosed("the host's cockpit runner is closed (Host.dispose() was called)")
            if self._watcher is not None:
                return
            self._stop_watching.clear()
            self._watcher = threading.Thread(
                target=self._watch, args=(interval, self._stop_watching), name="cockpit-commit-watcher", daemon=True
            )
            self._watcher.start()

    def stop_watching(self) -> None:
        with self._lock:
            watcher, self._watcher = self._watcher, None
        self._stop_watching.set()
        if watcher is not None and watcher is not threading.current_thread():
            watcher.join()

    @property
    def watching(self) -> bool:
        return self._watcher is not None

    def _watch(self, interval: float, stop: threading.Event) -> None:
        seen: dict[str, int] | None = None
        failures = 0
        while not stop.wait(interval * (1 if failures < 3 else 30)):
            try:
                heads = {lid: head.version_id for lid, head in self._host.store.heads().items()}
                if seen is not None:
                    moved = {lid for lid, version in heads.items() if seen.get(lid) != version}
                    moved |= set(seen) - set(heads)
                    if moved:
                        self.invalidate(moved)
                seen = heads
                failures = 0
            except RunnerClosed:
                return
            except Exception:  # the database may be briefly unavailable: try again, less often
                failures += 1
                if failures in (1, 3):
                    log.warning("cockpit commit watcher: could not read the heads (%d)", failures, exc_info=True)


def _scope_key(host: Host, identity: Identity, tile: TileSpec) -> tuple:
    key = []
    for ledger_id in tile.ledgers:
        try:
            spec = host.registry.ledger(ledger_id)
        except KeyError:
            key.append((ledger_id, RowScope()))  # an undeclared ledger: no rows, a key all the same
            continue
        key.append((ledger_id, identity.row_scope(spec)))
    return tuple(key)


def _heads_key(heads: Mapping[str, Any], tile: TileSpec) -> tuple:
    return tuple((lid, heads[lid].version_id if lid in heads else None) for lid in tile.ledgers)


def _sources_as_of(heads: Mapping[str, Any], tile: TileSpec) -> dt.datetime | None:
    stamps = [heads[lid].updated_at for lid in tile.ledgers if lid in heads]
    return max(stamps) if stamps else None


def _finish(
    tile: TileSpec,
    plugin: str,
    value: TileValue,
    as_of: dt.datetime | None,
    applied: frozenset[str],
    filters: Filters,
    today: dt.date,
    now: dt.datetime | None,
    *,
    cached: bool,
    seconds: float,
    drops: Mapping[str, DataDrop] | None = None,
) -> TileResult:
    target = value.target if value.target is not None else tile.target
    assessment = assess(
        value.value, target, today=today, as_of=as_of, freshness=tile.freshness, now=now, unit=tile.unit,
        narrowed=narrowed_by(filters, applied),
    )
    # a value from a ledger that just lost most of its rows warns instead of turning green
    assessment = with_data_drop(assessment, [drops[lid] for lid in tile.ledgers if drops and lid in drops])
    return TileResult(
        tile, plugin, value, assessment, as_of, cached=cached, seconds=seconds, filters_applied=applied
    )


def narrowed_by(filters: Filters, applied: frozenset[str] | set[str]) -> str:
    """The active filters a tile applied, in Chinese ("镇街、部门"): its value covers part of the
    district or of the time, so a district-wide target does not apply to it."""
    active = (
        (FILTER_STREET, bool(filters.streets)),
        (FILTER_DEPARTMENT, bool(filters.departments)),
        (FILTER_PERIOD, filters.period is not None),
    )
    return "、".join(FILTER_LABELS[f] for f, on in active if on and f in applied)


def _error_result(tile: TileSpec, plugin: str, exc: BaseException, seconds: float) -> TileResult:
    if isinstance(exc, AccessDenied):
        return TileResult(
            tile,
            plugin,
            None,
            Assessment(Status.DENIED, reason=exc.user_message),
            error=exc.user_message,
            error_detail=str(exc),
            seconds=seconds,
        )
    if isinstance(exc, InvalidTileValue):
        message = f"指标“{tile.title}”返回的数据有误（插件：{plugin}）：{exc.user_message}。其他指标不受影响。"
    else:
        message = f"指标“{tile.title}”计算出错（插件：{plugin}），已记录日志，其他指标不受影响。"
    return TileResult(
        tile,
        plugin,
        None,
        Assessment(Status.ERROR, reason=message),
        error=message,
        error_detail=f"{type(exc).__name__}: {exc}",
        seconds=seconds,
    )


def _tile_log(level: int, tile: TileSpec, plugin: str, message: str, *args: Any, **kwargs: Any) -> None:
    """Log about a tile from the collecting thread, with the tile's context (JSON logs)."""
    with log_context(plugin=plugin, tile=tile.id):
        log.log(level, message, *args, **kwargs)


def _run_one(
    host: Host,
    identity: Identity,
    tile: TileSpec,
    plugin: str,
    filters: Filters,
    heads: Mapping[str, Any],
    today: dt.date,
) -> tuple[TileValue, frozenset[str], set[str], float]:
    started = time.perf_counter()
    ctx = CockpitTileContext(
        _host=host, identity=identity, plugin=plugin, tile=tile, filters=filters, heads=heads, today=today
    )
    # a worker thread of the cockpit's pool: the context is set here, for this tile only
    with log_context(user=identity.subject, plugin=plugin, tile=tile.id):
        value = checked_value(tile, tile.query(ctx), today)
    return value, frozenset(ctx.filters_applied), set(ctx.ledgers_read), time.perf_counter() - started
