"""The cockpit engine (领导驾驶舱): tile status, concurrent cached tile runs, shared rollups.

Pure Python, no Streamlit: the page (``huizhi_pages.cockpit``), the benchmark and the tests all
drive it the same way.

* :func:`assess` judges a tile's value against its :class:`~huizhi.specs.Target` on a given
  day: 达标 / 正常推进 / 存在风险 / 已逾期 / 暂无数据 / 数据过期 (see docs/cockpit.md for the rules).
* :func:`compute_tiles` runs the tiles an identity may see, concurrently, each isolated (an
  exception becomes an error result naming the plugin), with results cached per
  (tile, filters, the identity's row scope on the tile's ledgers, the ledgers' head versions):
  a commit moves a head, so the next refresh recomputes exactly the tiles that read it.
* :func:`rollup` gives tiles a *shared scan*: one GROUP BY over a large ledger, built once per
  ledger version and filter combination, read by many tiles through the same permission scope
  (the ledger's department column is always a rollup dimension, so scoping the rollup is
  exactly scoping the rows).
* :func:`format_number` and friends: Chinese number formatting (万, 亿, %).

The engine's state (result cache, rollup cache, worker threads) belongs to one
:class:`~huizhi.host.Host`: :func:`cockpit_state` creates it on first use and stores it on the
host object, :func:`reset_cockpit` drops it. Nothing is module-global.
"""

from __future__ import annotations

import atexit
import concurrent.futures as cf
import datetime as dt
import hashlib
import logging
import math
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Literal

import sqlalchemy as sa

from huizhi.access import AccessDenied, Identity, RowScope
from huizhi.clock import BEIJING, beijing_today, utcnow  # noqa: F401 (re-exported)
from huizhi.context import Filters, LedgerReader, TileContext
from huizhi.fmt import (  # noqa: F401 (re-exported until the cockpit package split)
    format_as_of,
    format_date,
    format_duration,
    format_number,
    format_percent,
    format_value,
    ratio,
    scale_for,
)
from huizhi.specs import Breakdown, Perm, Series, Target, Theme, TileSpec, TileValue, TopItems

if TYPE_CHECKING:
    import pandas as pd

    from huizhi.host import Host

log = logging.getLogger(__name__)

# BEIJING, beijing_today and utcnow stay importable from here (plugins written against the cockpit use them)


# ==============================================================================================
# Status


class Status(StrEnum):
    """What a tile's badge says. The order of the members is the order of the header counts."""

    OVERDUE = "已逾期"
    AT_RISK = "存在风险"
    ON_TRACK = "正常推进"
    MET = "达标"
    STALE = "数据过期"
    NO_DATA = "暂无数据"
    MONITOR = "监测"  # a value without a target from the plan: shown, not judged
    ERROR = "计算出错"
    DENIED = "无权查看"


#: Streamlit badge colours and hex colours (charts, exports) per status: one palette everywhere.
STATUS_STYLE: dict[Status, tuple[str, str]] = {
    Status.MET: ("green", "#1E8E3E"),
    Status.ON_TRACK: ("blue", "#1A73E8"),
    Status.AT_RISK: ("orange", "#E37400"),
    Status.OVERDUE: ("red", "#D93025"),
    Status.STALE: ("violet", "#8E44AD"),
    Status.NO_DATA: ("gray", "#80868B"),
    Status.MONITOR: ("gray", "#5F6B7A"),
    Status.ERROR: ("red", "#B3261E"),
    Status.DENIED: ("gray", "#9AA0A6"),
}

STATUS_ICON: dict[Status, str] = {
    Status.MET: ":material/check_circle:",
    Status.ON_TRACK: ":material/trending_up:",
    Status.AT_RISK: ":material/warning:",
    Status.OVERDUE: ":material/error:",
    Status.STALE: ":material/schedule:",
    Status.NO_DATA: ":material/help:",
    Status.MONITOR: ":material/monitoring:",
    Status.ERROR: ":material/bug_report:",
    Status.DENIED: ":material/lock:",
}

#: One colour per theme (chapter of the plan), used for section headers and theme charts.
THEME_COLORS: dict[Theme, str] = {
    Theme.SENSING: "#1F6FB2",
    Theme.GOVERNMENT: "#7B4FB0",
    Theme.PUBLIC_SERVICE: "#178A6E",
    Theme.GOVERNANCE: "#C2571A",
    Theme.ECONOMY: "#B08A12",
}

THEME_ICONS: dict[Theme, str] = {
    Theme.SENSING: ":material/sensors:",
    Theme.GOVERNMENT: ":material/account_balance:",
    Theme.PUBLIC_SERVICE: ":material/diversity_3:",
    Theme.GOVERNANCE: ":material/location_city:",
    Theme.ECONOMY: ":material/trending_up:",
}

#: Categorical colours for breakdown charts (streets, departments, categories).
SERIES_COLORS = ("#1F6FB2", "#E37400", "#178A6E", "#7B4FB0", "#C2571A", "#5F6B7A", "#B08A12", "#D93025")


def status_color(status: Status) -> str:
    return STATUS_STYLE[status][1]


@dataclass(frozen=True)
class Assessment:
    """A tile's value judged on one day.

    ``status`` is the badge. ``judged`` is the target judgement itself (differs from ``status``
    only when the data is stale or missing). ``expected`` is the value the plan's line asks for
    today (None without a baseline); ``progress`` is the share of the way from baseline (or 0)
    to target; ``elapsed`` the share of the time from start to deadline. ``reason`` says why,
    in Chinese.
    """

    status: Status
    judged: Status | None = None
    expected: float | None = None
    progress: float | None = None
    elapsed: float | None = None
    days_left: int | None = None
    reason: str = ""


def _as_utc_naive(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None:
        return value
    return value.astimezone(dt.UTC).replace(tzinfo=None)


def is_stale(
    as_of: dt.datetime | None, freshness: dt.timedelta | None, now: dt.datetime | None = None
) -> bool:
    """True when ``as_of`` is older than ``freshness`` (naive datetimes are UTC)."""
    if freshness is None or as_of is None:
        return False
    now = _as_utc_naive(now) if now is not None else utcnow()
    return now - _as_utc_naive(as_of) > freshness


def elapsed_fraction(target: Target, today: dt.date) -> float:
    """Share of the time from ``target.start`` to ``target.deadline`` that has passed (0..1)."""
    span = (target.deadline - target.start).days
    if span <= 0:
        return 1.0 if today >= target.deadline else 0.0
    return min(1.0, max(0.0, (today - target.start).days / span))


def expected_value(target: Target, today: dt.date) -> float | None:
    """The value the plan's straight line from baseline (at start) to target (at deadline) asks
    for on ``today``; None when the target has no baseline."""
    if target.baseline is None:
        return None
    return target.baseline + (target.value - target.baseline) * elapsed_fraction(target, today)


def is_met(value: float, target: Target) -> bool:
    return value >= target.value if target.higher_is_better else value <= target.value


def progress_fraction(value: float, target: Target) -> float | None:
    """How far ``value`` has come from the baseline towards the target (1.0 = target reached).

    Without a baseline, progress is measured from 0 for higher-is-better targets (None for
    lower-is-better ones, where "from 0" means nothing).
    """
    if target.baseline is not None:
        span = target.value - target.baseline
        if span == 0:
            return 1.0 if is_met(value, target) else None
        return (value - target.baseline) / span
    if target.higher_is_better and target.value:
        return value / target.value
    return None


def assess(
    value: float | None,
    target: Target | None,
    *,
    today: dt.date | None = None,
    as_of: dt.datetime | None = None,
    freshness: dt.timedelta | None = None,
    now: dt.datetime | None = None,
    unit: str = "",
) -> Assessment:
    """Judge ``value`` against ``target`` on ``today`` (default: today in Beijing).

    Rules, in order:

    1. no value → 暂无数据;
    2. otherwise the target judgement: reached (``>=`` target, or ``<=`` when lower is better)
       → 达标 on any day; past the deadline (from the day after it) → 已逾期; before the deadline,
       with a baseline: 正常推进 while progress from baseline towards target is at most
       ``tolerance`` behind the share of time elapsed since ``start``, else 存在风险; without a
       baseline: 存在风险 in the last ``warn_days`` before the deadline, else 正常推进;
       no target → 监测;
    3. data older than ``freshness`` (``as_of`` vs ``now``) → the badge is 数据过期, and
       ``judged`` keeps the judgement of rule 2.
    """
    today = today or beijing_today()
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return Assessment(Status.NO_DATA, reason="暂无数据：数据源尚未提供该指标的值。")

    judged, expected, progress, elapsed, days_left, reason = _judge(float(value), target, today, unit)
    if is_stale(as_of, freshness, now):
        age = (_as_utc_naive(now) if now else utcnow()) - _as_utc_naive(as_of)  # type: ignore[arg-type]
        return Assessment(
            Status.STALE,
            judged,
            expected,
            progress,
            elapsed,
            days_left,
            f"数据已 {format_duration(age)} 未更新，超过要求的 {format_duration(freshness)}"  # type: ignore[arg-type]
            f"（按现有数据：{judged}）。",
        )
    return Assessment(judged, judged, expected, progress, elapsed, days_left, reason)


def _judge(
    value: float, target: Target | None, today: dt.date, unit: str
) -> tuple[Status, float | None, float | None, float | None, int | None, str]:
    if target is None:
        return Status.MONITOR, None, None, None, None, "监测指标：行动计划未设定目标值。"
    expected = expected_value(target, today)
    progress = progress_fraction(value, target)
    elapsed = elapsed_fraction(target, today)
    days_left = (target.deadline - today).days
    if is_met(value, target):
        return Status.MET, expected, progress, elapsed, days_left, "已达到目标。"
    if today > target.deadline:
        return Status.OVERDUE, expected, progress, elapsed, days_left, f"已过截止日期 {-days_left} 天，尚未达标。"
    if target.baseline is not None and today >= target.start:
        behind = elapsed - progress if progress is not None else None
        line = f"按计划今日应达 {format_value(expected, unit)}"
        if behind is not None and behind <= target.tolerance:
            return Status.ON_TRACK, expected, progress, elapsed, days_left, f"{line}，进度符合计划；还有 {days_left} 天。"
        lag = f"，落后计划进度 {behind * 100:.0f} 个百分点" if behind is not None else "，尚未达标"
        return Status.AT_RISK, expected, progress, elapsed, days_left, f"{line}{lag}；还有 {days_left} 天。"
    if days_left <= target.warn_days:
        return Status.AT_RISK, expected, progress, elapsed, days_left, f"距截止仅剩 {days_left} 天，尚未达标。"
    return Status.ON_TRACK, expected, progress, elapsed, days_left, f"距截止还有 {days_left} 天。"


# ==============================================================================================
# Filters: what the global cockpit filters mean for a tile, and how they travel in URLs

FILTER_STREET, FILTER_DEPARTMENT, FILTER_PERIOD = "street", "department", "period"
FILTER_LABELS = {FILTER_STREET: "镇街", FILTER_DEPARTMENT: "部门", FILTER_PERIOD: "时间"}


def normalize_filters(filters: Filters | None) -> Filters:
    """Sorted, de-duplicated filters, so equal selections share one cache entry."""
    if filters is None:
        return Filters()
    period = None
    if filters.period is not None:
        start, end = filters.period
        period = (_to_date(start), _to_date(end))
    return Filters(
        streets=tuple(sorted(set(filters.streets))),
        departments=tuple(sorted(set(filters.departments))),
        period=period,
    )


def _to_date(value: Any) -> dt.date | None:
    if value is None or isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    if isinstance(value, dt.datetime):
        return value.date()
    return dt.date.fromisoformat(str(value))


def filters_to_params(filters: Filters) -> dict[str, str]:
    """Query parameters for a drill-down link: ``street``, ``dept``, ``period`` (start..end)."""
    params: dict[str, str] = {}
    if filters.streets:
        params["street"] = ",".join(filters.streets)
    if filters.departments:
        params["dept"] = ",".join(filters.departments)
    if filters.period is not None:
        start, end = filters.period
        params["period"] = f"{start.isoformat() if start else ''}..{end.isoformat() if end else ''}"
    return params


def filters_from_params(params: Mapping[str, Any]) -> Filters:
    """The inverse of :func:`filters_to_params`; department pages call it on ``ctx.params``.

    Unparseable values are ignored (a hand-edited URL must not break a page).
    """

    def listed(key: str) -> tuple[str, ...]:
        raw = params.get(key) or ""
        if isinstance(raw, list | tuple):
            raw = ",".join(map(str, raw))
        return tuple(sorted({part.strip() for part in str(raw).split(",") if part.strip()}))[:50]

    period = None
    raw_period = str(params.get("period") or "")
    if ".." in raw_period:
        a, b = raw_period.split("..", 1)
        try:
            period = (dt.date.fromisoformat(a) if a else None, dt.date.fromisoformat(b) if b else None)
        except ValueError:
            period = None
        if period == (None, None):
            period = None
    return Filters(streets=listed("street"), departments=listed("dept"), period=period)


def _column_or_none(reader_spec: Any, name: str | None) -> str | None:
    if name is None:
        return None
    names = {c.name for c in reader_spec.columns}
    return name if name in names else None


def filter_conditions(
    ctx: TileContext,
    reader: LedgerReader,
    *,
    street: str | None = "street",
    department: str | None = "auto",
    date: str | None = None,
) -> list[sa.ColumnElement[bool]]:
    """WHERE conditions applying the cockpit filters to a ledger read (raw rows).

    ``street`` names the ledger's street column (default ``"street"`` when the ledger has one;
    None: the tile has no street), ``department`` the department column (``"auto"``: the
    ledger's ``department_column``), ``date`` the date column the period filter applies to.
    The filters applied are recorded, so the cockpit can show which ones a tile honours.
    """
    filters = ctx.filters
    conds: list[sa.ColumnElement[bool]] = []
    street_col = _column_or_none(reader.spec, street)
    dept_col = _column_or_none(
        reader.spec, reader.spec.department_column if department == "auto" else department
    )
    date_col = _column_or_none(reader.spec, date)
    if street_col:
        _record_applied(ctx, FILTER_STREET)
        if filters.streets:
            conds.append(reader.c(street_col).in_(list(filters.streets)))
    if dept_col:
        _record_applied(ctx, FILTER_DEPARTMENT)
        if filters.departments:
            conds.append(reader.c(dept_col).in_(list(filters.departments)))
    if date_col:
        _record_applied(ctx, FILTER_PERIOD)
        if filters.period is not None:
            start, end = filters.period
            if start is not None:
                conds.append(reader.c(date_col) >= start)
            if end is not None:
                conds.append(reader.c(date_col) <= end)
    return conds


# ==============================================================================================
# Rollups: one shared scan of a large ledger serves many tiles


@dataclass(frozen=True)
class Measure:
    """One additive measure of a rollup: ``count`` of rows or ``sum``/``min``/``max`` of a
    column, optionally only over rows where some columns equal some values
    (``where={"status": "已结案"}``). Additive measures re-aggregate exactly at any coarser level.
    """

    name: str
    agg: Literal["count", "sum", "min", "max"] = "count"
    column: str | None = None
    where: tuple[tuple[str, Any], ...] | Mapping[str, Any] = ()

    def __post_init__(self) -> None:
        if isinstance(self.where, Mapping):
            object.__setattr__(self, "where", tuple(sorted(self.where.items())))
        if self.agg != "count" and self.column is None:
            raise ValueError(f"measure {self.name!r}: {self.agg} needs a column")


Grain = Literal["day", "month", "quarter", "year"]


@dataclass(frozen=True)
class RollupSpec:
    """A GROUP BY over one ledger that several tiles share.

    ``dimensions`` are the columns kept; the ledger's ``department_column`` is always added (so
    permission scoping stays exact). ``date`` + ``grain`` add a ``period`` column (the first day
    of each day/month/quarter/year) and make the cockpit's period filter apply. ``street`` and
    ``department`` name the columns the street and department filters apply to ("auto": a
    column named ``street`` if the ledger has one / the ledger's ``department_column``).
    """

    ledger: str
    dimensions: tuple[str, ...] = ()
    measures: tuple[Measure, ...] = (Measure("n"),)
    date: str | None = None
    grain: Grain | None = None
    street: str | None = "auto"
    department: str | None = "auto"

    @property
    def key(self) -> str:
        return hashlib.sha1(repr(self).encode()).hexdigest()[:12]


@dataclass
class _RollupEntry:
    lock: threading.Lock = field(default_factory=threading.Lock)
    frame: Any = None  # pandas.DataFrame once built
    seconds: float = 0.0


def _rollup_columns(host: Host, spec: RollupSpec) -> tuple[list[str], str | None, str | None, str | None]:
    ledger = host.registry.ledger(spec.ledger)
    names = {c.name for c in ledger.columns}
    dims = list(dict.fromkeys(spec.dimensions))
    for d in dims:
        if d not in names:
            raise KeyError(f"rollup on {spec.ledger!r}: no column {d!r}")
    if ledger.department_column and ledger.department_column not in dims:
        dims.append(ledger.department_column)
    street = ("street" if "street" in names else None) if spec.street == "auto" else spec.street
    dept = ledger.department_column if spec.department == "auto" else spec.department
    for col in (street, dept, spec.date):
        if col is not None and col not in names:
            raise KeyError(f"rollup on {spec.ledger!r}: no column {col!r}")
    return dims, street, dept, spec.date


def _applied_rollup_filters(
    spec_cols: tuple[str | None, str | None, str | None], filters: Filters
) -> Filters:
    """Only the parts of the filters this rollup applies: the rest do not split its cache."""
    street, dept, date = spec_cols
    return Filters(
        streets=filters.streets if street else (),
        departments=filters.departments if dept else (),
        period=filters.period if date else None,
    )


def _build_rollup(host: Host, spec: RollupSpec, version_id: int, filters: Filters) -> pd.DataFrame:
    import pandas as pd

    dims, street, dept, date = _rollup_columns(host, spec)
    rows = host.store.scoped_select(spec.ledger, RowScope(all_rows=True), version_id).subquery("r")
    cols: list[Any] = [rows.c[d] for d in dims]
    group: list[Any] = list(cols)
    if date and spec.grain:
        period = sa.cast(sa.func.date_trunc(spec.grain, rows.c[date]), sa.Date).label("period")
        cols.append(period)
        group.append(period)
    for m in spec.measures:
        cond = sa.and_(*(rows.c[c] == v for c, v in m.where)) if m.where else None
        if m.agg == "count":
            expr: Any = sa.func.count()
        else:
            expr = getattr(sa.func, m.agg)(rows.c[m.column])
        if cond is not None:
            expr = expr.filter(cond)
        cols.append(expr.label(m.name))
    where: list[Any] = []
    if street and filters.streets:
        where.append(rows.c[street].in_(list(filters.streets)))
    if dept and filters.departments:
        where.append(rows.c[dept].in_(list(filters.departments)))
    if date and filters.period is not None:
        start, end = filters.period
        if start is not None:
            where.append(rows.c[date] >= start)
        if end is not None:
            where.append(rows.c[date] <= end)
    stmt = sa.select(*cols).where(*where)
    if group:
        stmt = stmt.group_by(*group)
    frame = _fetch_frame(host, stmt)
    if "period" in frame.columns:
        frame["period"] = pd.to_datetime(frame["period"])
    for m in spec.measures:
        if m.agg == "count":
            frame[m.name] = frame[m.name].fillna(0).astype("int64")
    return frame


def _fetch_frame(host: Host, stmt: sa.Select) -> pd.DataFrame:
    """Run ``stmt`` into a DataFrame. On DuckDB the result comes back as columns (no Python row
    objects: 10× faster for the tens of thousands of rows a rollup has)."""
    import pandas as pd

    with host.engine.connect() as conn:
        if host.engine.dialect.name == "duckdb":
            sql = str(stmt.compile(dialect=host.engine.dialect, compile_kwargs={"literal_binds": True}))
            return conn.connection.dbapi_connection.execute(sql).df()
        result = conn.execute(stmt)
        columns = list(result.keys())
        return pd.DataFrame.from_records([tuple(row) for row in result], columns=columns)


def rollup(ctx: TileContext, spec: RollupSpec) -> pd.DataFrame:
    """The rollup's rows for this tile: the ledger's current version, the cockpit filters
    applied (street / department / period, where the rollup has those columns), and only the
    rows the identity may read. Built once per (rollup, ledger version, filters) and shared by
    every tile and every viewer; treat the frame as read-only (pandas copy-on-write protects
    the shared copy anyway).

    Raises :class:`huizhi.access.AccessDenied` when the identity may read no rows of the ledger.
    """
    host = ctx._host
    ledger = host.registry.ledger(spec.ledger)
    scope = ctx.identity.row_scope(ledger)
    if scope.empty or (not scope.all_rows and ledger.department_column is None):
        host.audit.record(ctx.identity, "access.denied", f"ledger:{spec.ledger}", "denied", plugin=ctx.plugin)
        raise AccessDenied("ledger.read", ledger.title)
    _record_read(ctx, spec.ledger)
    dims, street, dept, date = _rollup_columns(host, spec)
    if street:
        _record_applied(ctx, FILTER_STREET)
    if dept:
        _record_applied(ctx, FILTER_DEPARTMENT)
    if date:
        _record_applied(ctx, FILTER_PERIOD)
    state = cockpit_state(host)
    heads = getattr(ctx, "heads", None)
    head = (heads if heads is not None else host.store.heads()).get(spec.ledger)
    if head is None:
        import pandas as pd

        columns = dims + (["period"] if date and spec.grain else []) + [m.name for m in spec.measures]
        return pd.DataFrame(columns=columns)
    applied = _applied_rollup_filters((street, dept, date), normalize_filters(ctx.filters))
    frame = state.rollups.get(host, spec, head.version_id, applied)
    if not scope.all_rows:
        frame = frame[frame[ledger.department_column].isin(sorted(scope.department_names))]
    return frame


class RollupCache:
    """Rollup frames by (spec, version, filters); one build per key even under concurrency;
    bounded (least recently used first out).

    Builds run one at a time (``build_slots``): each is a full scan that DuckDB already spreads
    over every core, and on a 2-core machine four concurrent scans took 2.5× longer than the same
    scans in turn. The cache remembers which (spec, filters) pairs were asked for, so
    :meth:`refresh` can rebuild them for a ledger's new version right after a commit.
    ``shared=False`` turns sharing off (every call builds its own frame): the benchmark's
    "one scan per tile" baseline.
    """

    def __init__(self, max_entries: int = 96, shared: bool = True, build_slots: int = 1, remember: int = 32):
        self.max_entries = max_entries
        self.shared = shared
        self._entries: OrderedDict[tuple, _RollupEntry] = OrderedDict()
        self._seen: OrderedDict[tuple[RollupSpec, Filters], None] = OrderedDict()
        self._remember = remember
        self._lock = threading.Lock()
        self._slots = threading.Semaphore(build_slots)
        self.builds = 0
        self.build_seconds = 0.0

    def get(self, host: Host, spec: RollupSpec, version_id: int, filters: Filters) -> pd.DataFrame:
        if not self.shared:
            return self._build(host, spec, version_id, filters, _RollupEntry())
        key = (spec, version_id, filters)
        with self._lock:
            self._seen[(spec, filters)] = None
            self._seen.move_to_end((spec, filters))
            while len(self._seen) > self._remember:
                self._seen.popitem(last=False)
            entry = self._entries.get(key)
            if entry is None:
                entry = self._entries[key] = _RollupEntry()
                # an older version of the same rollup will not be asked for again
                for old in [k for k in self._entries if k[0] == spec and k[1] != version_id]:
                    del self._entries[old]
                while len(self._entries) > self.max_entries:
                    self._entries.popitem(last=False)
            else:
                self._entries.move_to_end(key)
        with entry.lock:
            if entry.frame is None:
                self._build(host, spec, version_id, filters, entry)
            return entry.frame

    def known_pairs(self) -> list[tuple[RollupSpec, Filters]]:
        with self._lock:
            return list(self._seen)

    def known(self, ledger_id: str) -> list[tuple[RollupSpec, Filters]]:
        """(spec, filters) pairs asked for on this ledger, unfiltered ones first."""
        with self._lock:
            pairs = [p for p in self._seen if p[0].ledger == ledger_id]
        return sorted(pairs, key=lambda p: p[1].active)

    def refresh(self, host: Host, ledger_id: str, version_id: int) -> int:
        """Build every known rollup of ``ledger_id`` for ``version_id`` (no-op for those already
        built). Returns how many were built."""
        before = self.builds
        for spec, filters in self.known(ledger_id):
            try:
                self.get(host, spec, version_id, filters)
            except Exception:  # a broken spec must not stop the others; the tile will report it
                log.exception("refreshing rollup %s on %s failed", spec.key, ledger_id)
        return self.builds - before

    def _build(self, host: Host, spec: RollupSpec, version_id: int, filters: Filters, entry: _RollupEntry):
        with self._slots:
            started = time.perf_counter()
            entry.frame = _build_rollup(host, spec, version_id, filters)
            entry.seconds = time.perf_counter() - started
        with self._lock:
            self.builds += 1
            self.build_seconds += entry.seconds
        log.debug(
            "rollup %s v%s built in %.3f s (%d rows)",
            spec.ledger,
            version_id,
            entry.seconds,
            len(entry.frame),
        )
        return entry.frame

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


def refresh_after_commit(host: Host, ledger_ids: Iterable[str] | None = None) -> dict[str, int]:
    """Maintain the shared rollups of ledgers that committed: rebuild, for each ledger's current
    head, every rollup the cockpit has used on it. Call it after a commit or rollback (the upload
    page, the seed loader) — or let :func:`watch_commits` do it — so that the first cockpit view
    after a commit only runs the tiles, not the scans. Returns {ledger id: rollups built}."""
    state = cockpit_state(host)
    heads = host.store.heads()
    built: dict[str, int] = {}
    for ledger_id in ledger_ids if ledger_ids is not None else list(heads):
        head = heads.get(ledger_id)
        if head is not None:
            built[ledger_id] = state.rollups.refresh(host, ledger_id, head.version_id)
    return built


def watch_commits(host: Host, interval: float = 2.0) -> None:
    """Start (once per host) a daemon thread that looks at the ledger heads every ``interval``
    seconds and maintains the rollups of any ledger whose head moved — including commits made by
    another process on the same database. Idempotent; stops when the host's cockpit state is
    reset or the host is collected."""
    state = cockpit_state(host)
    with state._lock:
        if state._watcher is not None:
            return
        host_ref = weakref.ref(host)
        stop = state._stop

        def loop() -> None:
            failures = 0
            while not stop.wait(interval * (1 if failures < 3 else 30)):
                live = host_ref()
                if live is None:
                    return
                try:
                    # a no-op for every rollup already built on its ledger's current head
                    refresh_after_commit(live, {spec.ledger for spec, _ in cockpit_state(live).rollups.known_pairs()})
                    failures = 0
                except Exception:  # the database may be briefly unavailable: try again, less often
                    failures += 1
                    if failures in (1, 3):
                        log.warning("cockpit commit watcher: could not refresh (%d)", failures, exc_info=True)
                del live

        state._watcher = threading.Thread(target=loop, name="cockpit-commit-watcher", daemon=True)
        state._watcher.start()
        # stop it before the interpreter tears down (a daemon thread inside DuckDB at that moment aborts)
        atexit.register(_close_state, weakref.ref(state))


def _close_state(ref: weakref.ReferenceType) -> None:
    state = ref()
    if state is not None:
        state.close(join=True)


# ==============================================================================================
# Running tiles


@dataclass
class CockpitTileContext(TileContext):
    """The :class:`~huizhi.context.TileContext` the cockpit hands to tiles. Same API, plus it
    records which ledgers a tile really read and which filters it applied."""

    heads: Mapping[str, Any] | None = None
    ledgers_read: set[str] = field(default_factory=set)
    filters_applied: set[str] = field(default_factory=set)

    def ledger(self, ledger_id: str) -> LedgerReader:
        """As :meth:`TileContext.ledger`, but pinned to the head version the cockpit read when
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


def _record_read(ctx: TileContext, ledger_id: str) -> None:
    if isinstance(ctx, CockpitTileContext):
        ctx.ledgers_read.add(ledger_id)


def _record_applied(ctx: TileContext, name: str) -> None:
    if isinstance(ctx, CockpitTileContext):
        ctx.filters_applied.add(name)


@dataclass(frozen=True)
class TileResult:
    """One tile as the cockpit shows it."""

    tile: TileSpec
    plugin: str
    value: TileValue | None
    assessment: Assessment
    as_of: dt.datetime | None = None
    error: str | None = None  # Chinese, names the plugin; None when the tile worked
    error_detail: str = ""  # exception type and message, for developers
    cached: bool = False
    seconds: float = 0.0
    filters_applied: frozenset[str] = frozenset()

    @property
    def status(self) -> Status:
        return self.assessment.status

    @property
    def ok(self) -> bool:
        return self.error is None


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

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


class CockpitState:
    """Everything the cockpit keeps for one host: caches and worker threads."""

    def __init__(
        self, workers: int = 4, shared_rollups: bool = True, cache: bool = True, build_slots: int = 1
    ):
        self.results = ResultCache()
        self.rollups = RollupCache(shared=shared_rollups, build_slots=build_slots)
        self.workers = workers
        self.cache_enabled = cache
        self.memo: OrderedDict[Any, Any] = OrderedDict()  # page-side memo (e.g. built figures), bounded
        self._executor: cf.ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._watcher: threading.Thread | None = None
        self._stop = threading.Event()

    @property
    def executor(self) -> cf.ThreadPoolExecutor:
        with self._lock:
            if self._executor is None:
                self._executor = cf.ThreadPoolExecutor(
                    max_workers=self.workers, thread_name_prefix="cockpit-tile"
                )
            return self._executor

    def remember(self, key: Any, build: Callable[[], Any], max_entries: int = 512) -> Any:
        """A value built once per ``key`` (e.g. a chart for one cached tile value)."""
        with self._lock:
            if key in self.memo:
                self.memo.move_to_end(key)
                return self.memo[key]
        value = build()
        with self._lock:
            self.memo[key] = value
            while len(self.memo) > max_entries:
                self.memo.popitem(last=False)
        return value

    def clear(self) -> None:
        self.results.clear()
        self.rollups.clear()
        with self._lock:
            self.memo.clear()

    def close(self, join: bool = False) -> None:
        self._stop.set()
        with self._lock:
            if self._executor is not None:
                self._executor.shutdown(wait=False, cancel_futures=True)
                self._executor = None
            watcher = self._watcher
        if join and watcher is not None and watcher is not threading.current_thread():
            watcher.join(timeout=10)


_STATE_ATTR = "_huizhi_cockpit_state"
_state_lock = threading.Lock()


def cockpit_state(host: Host) -> CockpitState:
    """The host's cockpit state, created on first use and kept on the host object itself (so
    it lives and dies with the host; tests build as many hosts as they like)."""
    state = getattr(host, _STATE_ATTR, None)
    if state is None:
        with _state_lock:
            state = getattr(host, _STATE_ATTR, None)
            if state is None:
                state = CockpitState()
                setattr(host, _STATE_ATTR, state)
                weakref.finalize(host, state.close)
    return state


def reset_cockpit(host: Host, **options: Any) -> CockpitState:
    """Drop the host's cockpit caches and threads; ``options`` configure the new state
    (``workers``, ``shared_rollups``, ``cache``, ``build_slots``)."""
    with _state_lock:
        old = getattr(host, _STATE_ATTR, None)
        setattr(host, _STATE_ATTR, None)
        if old is not None:
            old.close()
        state = CockpitState(**options)
        host.__dict__[_STATE_ATTR] = state
        weakref.finalize(host, state.close)
    return state


def _scope_key(host: Host, identity: Identity, tile: TileSpec) -> tuple:
    key = []
    for ledger_id in tile.ledgers:
        try:
            spec = host.registry.ledger(ledger_id)
        except KeyError:
            key.append((ledger_id, None))
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
    today: dt.date,
    now: dt.datetime | None,
    *,
    cached: bool,
    seconds: float,
) -> TileResult:
    assessment = assess(
        value.value, tile.target, today=today, as_of=as_of, freshness=tile.freshness, now=now, unit=tile.unit
    )
    return TileResult(
        tile, plugin, value, assessment, as_of, cached=cached, seconds=seconds, filters_applied=applied
    )


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


def _run_one(
    host: Host,
    identity: Identity,
    tile: TileSpec,
    plugin: str,
    filters: Filters,
    heads: Mapping[str, Any],
) -> tuple[TileValue, frozenset[str], set[str], float]:
    started = time.perf_counter()
    ctx = CockpitTileContext(
        _host=host, identity=identity, plugin=plugin, tile=tile, filters=filters, heads=heads
    )
    value = tile.query(ctx)
    if not isinstance(value, TileValue):
        raise TypeError(f"query of tile {tile.id!r} returned {type(value).__name__}, expected TileValue")
    return value, frozenset(ctx.filters_applied), set(ctx.ledgers_read), time.perf_counter() - started


def compute_tiles(
    host: Host,
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

    A tile whose permission the identity lacks is dropped without running. The others run
    concurrently on the host's worker threads, each isolated: an exception becomes an error
    result naming the plugin (and is logged); a tile that reads a ledger the identity may not
    read becomes a "无权查看" result. Values come from the cache when the tile, the filters,
    the identity's row scope on the tile's ledgers and the ledgers' head versions are all
    unchanged. Results are in the order of ``tiles``.
    """
    filters = normalize_filters(filters)
    today = today or beijing_today()
    state = cockpit_state(host)
    registry_tiles = host.registry.tiles
    chosen: list[tuple[TileSpec, str]] = []
    for tile in tiles if tiles is not None else host.visible_tiles(identity):
        if not identity.allows(tile.permission, tile.department):
            continue  # never run what the identity may not see
        registered = registry_tiles.get(tile.id)
        plugin = registered[1] if registered else "unknown"
        chosen.append((tile, plugin))
    heads = host.store.heads()
    results: list[TileResult | None] = [None] * len(chosen)
    pending: dict[cf.Future, tuple[int, tuple | None, float]] = {}
    caching = use_cache and state.cache_enabled
    for i, (tile, plugin) in enumerate(chosen):
        key = None
        if caching:
            key = (tile.id, filters, _scope_key(host, identity, tile), _heads_key(heads, tile), today)
            ttl = None
            if not tile.ledgers:
                ttl = state.results.ttl
                if tile.freshness is not None:
                    ttl = min(ttl, tile.freshness.total_seconds())
            hit = state.results.get(key, ttl)
            if hit is not None:
                results[i] = _finish(
                    tile,
                    plugin,
                    hit.value,
                    hit.as_of,
                    hit.filters_applied,
                    today,
                    now,
                    cached=True,
                    seconds=0.0,
                )
                continue
        started = time.perf_counter()
        future = state.executor.submit(_run_one, host, identity, tile, plugin, filters, heads)
        pending[future] = (i, key, started)

    deadline = time.monotonic() + timeout
    for future, (i, key, started) in pending.items():
        tile, plugin = chosen[i]
        try:
            value, applied, read, seconds = future.result(timeout=max(0.0, deadline - time.monotonic()))
        except cf.TimeoutError:
            log.error("tile %s of plugin %s timed out after %.0f s", tile.id, plugin, timeout)
            results[i] = _error_result(
                tile, plugin, TimeoutError(f"timed out after {timeout:.0f} s"), time.perf_counter() - started
            )
            continue
        except AccessDenied as exc:
            results[i] = _error_result(tile, plugin, exc, time.perf_counter() - started)
            continue
        except Exception as exc:  # a plugin can fail in any way: contain it, name it, log it
            log.error("tile %s of plugin %s failed", tile.id, plugin, exc_info=exc)
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
            state.results.put(key, _CachedValue(value, as_of, applied, time.monotonic(), seconds))
        results[i] = _finish(tile, plugin, value, as_of, applied, today, now, cached=False, seconds=seconds)
    return [r for r in results if r is not None]


def warm(
    host: Host, identity: Identity | None = None, *, background: bool = True
) -> cf.Future | list[TileResult]:
    """Compute every tile once (default identity: the host's own district-wide system identity), so
    the shared rollups exist and are known to :func:`refresh_after_commit` before the first
    leader opens the cockpit, and start :func:`watch_commits`. Call it once when the portal
    process builds its host. In the background by default (returns a Future)."""
    who = identity or host.system_identity("cockpit-warm")
    watch_commits(host)
    if not background:
        return compute_tiles(host, who)
    runner = threading.Thread  # not the tile pool: compute_tiles submits to it and waits
    future: cf.Future = cf.Future()

    def run() -> None:
        try:
            future.set_result(compute_tiles(host, who))
        except Exception as exc:
            log.warning("cockpit warm-up failed", exc_info=True)
            future.set_exception(exc)

    runner(target=run, name="cockpit-warm", daemon=True).start()
    return future


def status_counts(results: Sequence[TileResult]) -> dict[Status, int]:
    """How many tiles are in each status, in :class:`Status` order (zeros included)."""
    counts = dict.fromkeys(Status, 0)
    for r in results:
        counts[r.status] += 1
    return counts


# ==============================================================================================
# Pinned tiles: a leader's personal layout, kept in the database


def load_pins(host: Host, identity: Identity) -> list[str]:
    """The tile ids ``identity`` pinned, in their chosen order."""
    from sqlalchemy.orm import Session

    from huizhi.cockpit_models import CockpitPin

    stmt = (
        sa.select(CockpitPin.tile_id)
        .where(CockpitPin.subject == identity.subject)
        .order_by(CockpitPin.position, CockpitPin.tile_id)
    )
    with Session(host.engine) as session:
        return list(session.scalars(stmt))


def save_pins(host: Host, identity: Identity, tile_ids: Sequence[str]) -> list[str]:
    """Replace ``identity``'s pins with ``tile_ids`` (in that order); unknown ids are dropped.
    Audited as ``cockpit.pins``. Returns the pins stored."""
    from sqlalchemy.orm import Session

    from huizhi.cockpit_models import CockpitPin

    known = host.registry.tiles
    clean = [t for t in dict.fromkeys(tile_ids) if t in known]
    with Session(host.engine) as session, session.begin():
        session.execute(sa.delete(CockpitPin).where(CockpitPin.subject == identity.subject))
        now = utcnow()
        for position, tile_id in enumerate(clean):
            session.add(
                CockpitPin(subject=identity.subject, tile_id=tile_id, position=position, pinned_at=now)
            )
    host.audit.record(identity, "cockpit.pins", "cockpit", pins=clean)
    return clean


def toggle_pin(host: Host, identity: Identity, tile_id: str) -> list[str]:
    pins = load_pins(host, identity)
    return save_pins(
        host, identity, [p for p in pins if p != tile_id] if tile_id in pins else [*pins, tile_id]
    )


def move_pin(host: Host, identity: Identity, tile_id: str, offset: int) -> list[str]:
    """Move a pinned tile ``offset`` places (negative: earlier)."""
    pins = load_pins(host, identity)
    if tile_id not in pins:
        return pins
    i = pins.index(tile_id)
    j = min(len(pins) - 1, max(0, i + offset))
    pins.insert(j, pins.pop(i))
    return save_pins(host, identity, pins)


# ==============================================================================================
# Small helpers for tile authors


def value_from_frame(frame: pd.DataFrame, column: str, *, as_of: dt.datetime | None = None) -> TileValue:
    """Sum of one measure of a rollup frame as a tile value (None when the frame is empty)."""
    if frame.empty:
        return TileValue(None, as_of=as_of)
    return TileValue(float(frame[column].sum()), as_of=as_of)


def breakdown(
    frame: pd.DataFrame,
    by: str,
    column: str,
    *,
    label: str = "",
    unit: str = "",
    descending: bool = True,
    limit: int = 12,
    transform: Callable[[Any], Any] | None = None,
) -> Breakdown:
    """A :class:`Breakdown` of ``column`` summed by ``by`` (``transform`` may turn the grouped
    frame into a Series of values, e.g. a ratio of two measures)."""
    grouped = frame.groupby(by, observed=True)
    series = transform(grouped) if transform is not None else grouped[column].sum()
    series = series.sort_values(ascending=not descending)
    return Breakdown(
        tuple((str(k), float(v)) for k, v in series.items()), by=label or by, unit=unit, limit=limit
    )


def trend(
    frame: pd.DataFrame,
    column: str,
    *,
    by: str = "period",
    name: str = "",
    unit: str = "",
    kind: Literal["line", "bar"] = "line",
    target: float | None = None,
    transform: Callable[[Any], Any] | None = None,
) -> Series:
    """A :class:`Series` of ``column`` summed per ``by`` (default the rollup's ``period``)."""
    grouped = frame.groupby(by, observed=True)
    series = transform(grouped) if transform is not None else grouped[column].sum()
    series = series.sort_index()
    points = tuple((k.date() if hasattr(k, "date") else k, float(v)) for k, v in series.items())
    return Series(points, name=name, unit=unit, kind=kind, target=target)


__all__ = [
    "Assessment",
    "Breakdown",
    "CockpitState",
    "CockpitTileContext",
    "Measure",
    "ResultCache",
    "RollupCache",
    "RollupSpec",
    "STATUS_STYLE",
    "SERIES_COLORS",
    "Series",
    "Status",
    "THEME_COLORS",
    "TileResult",
    "TopItems",
    "assess",
    "beijing_today",
    "breakdown",
    "cockpit_state",
    "compute_tiles",
    "elapsed_fraction",
    "expected_value",
    "filter_conditions",
    "filters_from_params",
    "filters_to_params",
    "format_as_of",
    "format_date",
    "format_duration",
    "format_number",
    "format_percent",
    "format_value",
    "is_met",
    "is_stale",
    "load_pins",
    "move_pin",
    "normalize_filters",
    "progress_fraction",
    "ratio",
    "refresh_after_commit",
    "reset_cockpit",
    "rollup",
    "save_pins",
    "scale_for",
    "status_counts",
    "toggle_pin",
    "trend",
    "value_from_frame",
    "warm",
    "watch_commits",
]
