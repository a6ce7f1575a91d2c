"""Tile status: how a tile's value is judged against its target from the action plan on one day.

Pure functions, no state: the runner, the page, the exports and the tests use the same rules
(documented in docs/cockpit.md).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from dataclasses import dataclass
from enum import StrEnum

from huizhi.clock import beijing_today, utcnow
from huizhi.fmt import format_duration, format_value
from huizhi.specs import Target


class Status(StrEnum):
    """What a tile's badge says. The order of the members is the order of the header counts."""

    OVERDUE = "已逾期"
    AT_RISK = "存在风险"
    ON_TRACK = "正常推进"
    MET = "达标"
    STALE = "数据过期"
    DATA_DROP = "数据量骤减"  # the latest commit of a ledger the tile reads removed most of its rows
    NO_DATA = "暂无数据"
    MONITOR = "监测"  # a value without a target from the plan: shown, not judged
    ERROR = "计算出错"
    DENIED = "无权查看"



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


def as_utc_naive(value: dt.datetime) -> dt.datetime:
    """``value`` as naive UTC (naive datetimes already are: the store keeps UTC)."""
    if value.tzinfo is None:
        return value
    return value.astimezone(dt.UTC).replace(tzinfo=None)


def is_stale(
    as_of: dt.datetime | None, freshness: dt.timedelta | None, now: dt.datetime | None = None
) -> bool:
    """True when ``as_of`` is older than ``freshness`` (naive datetimes are UTC)."""
    if freshness is None or as_of is None:
        return False
    now = as_utc_naive(now) if now is not None else utcnow()
    return now - as_utc_naive(as_of) > freshness


#: a commit that removes more than this share of a ledger's rows makes its tiles warn (数据量骤减)
DATA_DROP_SHARE = 0.5


@dataclass(frozen=True)
class DataDrop:
    """The head version of a ledger removed most of the rows of the version before it."""

    ledger_id: str
    title: str
    number: int  # the version that removed them
    removed: int
    before: int  # rows in the version before

    @property
    def share(self) -> float:
        return self.removed / self.before if self.before else 0.0


def data_drop(ledger_id: str, title: str, number: int, row_count: int, added: int, removed: int) -> DataDrop | None:
    """A :class:`DataDrop` when a version with these counts removed more than
    :data:`DATA_DROP_SHARE` of the rows before it, else None."""
    before = row_count - added + removed
    if before <= 0 or removed <= DATA_DROP_SHARE * before:
        return None
    return DataDrop(ledger_id, title, number, removed, before)


def with_data_drop(assessment: Assessment, drops: list[DataDrop]) -> Assessment:
    """``assessment`` under a 数据量骤减 warning: the badge warns, ``judged`` keeps the judgement
    (a value computed from a ledger that just lost most of its rows is not shown as green)."""
    if not drops or assessment.status in (Status.ERROR, Status.DENIED):
        return assessment
    parts = "；".join(
        f"{d.title}第{d.number}版删除了 {d.removed:,} 行（上一版 {d.before:,} 行的 {d.share * 100:.0f}%）"
        for d in drops
    )
    judged = assessment.judged or assessment.status
    return dataclasses.replace(
        assessment,
        status=Status.DATA_DROP,
        judged=judged,
        reason=f"数据量骤减：{parts}，请核实该次提交是否完整（按现有数据：{judged}）。",
    )


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
    narrowed: str = "",
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
       ``judged`` keeps the judgement of rule 2;
    4. (the runner, :func:`with_data_drop`) the latest commit of a ledger the tile reads removed
       more than half of its rows → the badge is 数据量骤减, ``judged`` keeps the judgement.

    ``narrowed`` names the filters the value was narrowed by ("镇街、部门"): a target of scope
    ``"district"`` does not apply to such a value, which is then 监测 with a note saying why.
    """
    today = today or beijing_today()
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return Assessment(Status.NO_DATA, reason="暂无数据：数据源尚未提供该指标的值。")

    if target is not None and narrowed and target.scope == "district":
        judged, expected, progress, elapsed, days_left = Status.MONITOR, None, None, None, None
        reason = (
            f"已按{narrowed}筛选：目标 {format_value(target.value, unit)} 为全区口径，"
            "不适用于筛选后的数值，不作达标判断。"
        )
    else:
        judged, expected, progress, elapsed, days_left, reason = _judge(float(value), target, today, unit)
    if is_stale(as_of, freshness, now):
        age = (as_utc_naive(now) if now else utcnow()) - as_utc_naive(as_of)  # type: ignore[arg-type]
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
        return Status.AT_RISK, expected, progress, elapsed, days_left, f"未到截止：距截止仅剩 {days_left} 天，尚未达标。"
    return Status.ON_TRACK, expected, progress, elapsed, days_left, f"未到截止：距截止还有 {days_left} 天。"


