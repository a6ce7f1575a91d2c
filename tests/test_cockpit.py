"""The cockpit engine: status rules, number formatting, tile runs (filters, cache, permissions,
isolation, one today, values checked at the boundary), the runner's lifecycle and pinned tiles."""

from __future__ import annotations

import datetime as dt
import threading

import pandas as pd
import pytest
import sqlalchemy as sa
from ledgerkit import commit_rows

from huizhi import cockpit, fmt, hookimpl
from huizhi.access import AccessDenied, Grant, Identity, Role
from huizhi.clock import BEIJING, utcnow
from huizhi.cockpit import Status, assess, compute_tiles, filters_from_params, filters_to_params
from huizhi.config import load_settings
from huizhi.context import Filters
from huizhi.fmt import format_number, format_percent, format_value
from huizhi.host import create_host
from huizhi.specs import Breakdown, ColumnSpec, LedgerSpec, PluginInfo, Target, Theme, TileSpec, TileValue

D = dt.date
JXJ, GAJ, CGW = "区经济和信息化局", "区公安分局", "区城市管理委"

# ----------------------------------------------------------------------------------------------
# Status rules (pure)

PLAN = Target(value=100, deadline=D(2025, 12, 31), baseline=0, start=D(2023, 1, 1), tolerance=0.05)
NO_BASELINE = Target(value=100, deadline=D(2025, 12, 31), warn_days=90)
LOWER = Target(value=5, deadline=D(2025, 12, 31), baseline=25, start=D(2023, 1, 1), higher_is_better=False)


def test_met_on_any_day_even_before_start():
    assert assess(100, PLAN, today=D(2022, 1, 1)).status is Status.MET
    assert assess(120, PLAN, today=D(2026, 6, 1)).status is Status.MET


def test_on_track_when_at_or_above_the_line():
    today = D(2024, 7, 1)  # about half-way from 2023-01-01 to 2025-12-31
    a = assess(50, PLAN, today=today)
    assert a.status is Status.ON_TRACK
    assert a.expected == pytest.approx(100 * (today - PLAN.start).days / (PLAN.deadline - PLAN.start).days)
    assert a.progress == pytest.approx(0.5)


def test_within_tolerance_is_on_track_beyond_is_at_risk():
    today = D(2024, 7, 1)
    expected = cockpit.expected_value(PLAN, today)
    assert assess(expected - 4.9, PLAN, today=today).status is Status.ON_TRACK
    at_risk = assess(expected - 6, PLAN, today=today)
    assert at_risk.status is Status.AT_RISK
    assert "落后计划进度" in at_risk.reason


def test_overdue_from_the_day_after_the_deadline():
    assert assess(99, PLAN, today=D(2026, 1, 1)).status is Status.OVERDUE
    assert "已过截止日期 1 天" in assess(99, PLAN, today=D(2026, 1, 1)).reason


def test_deadline_today_is_not_yet_overdue():
    on_line = assess(96, PLAN, today=PLAN.deadline)  # line expects 100 today; 4 behind is in tolerance
    assert on_line.status is Status.ON_TRACK
    assert on_line.days_left == 0
    assert assess(90, PLAN, today=PLAN.deadline).status is Status.AT_RISK
    assert assess(90, NO_BASELINE, today=NO_BASELINE.deadline).status is Status.AT_RISK


def test_no_baseline_judged_only_near_and_after_the_deadline():
    assert assess(1, NO_BASELINE, today=D(2025, 1, 1)).status is Status.ON_TRACK  # can't judge: on track
    assert assess(1, NO_BASELINE, today=D(2025, 10, 2)).status is Status.AT_RISK  # last 90 days
    assert assess(1, NO_BASELINE, today=D(2026, 1, 1)).status is Status.OVERDUE
    assert assess(100, NO_BASELINE, today=D(2026, 1, 1)).status is Status.MET
    assert assess(1, NO_BASELINE, today=D(2025, 1, 1)).expected is None


def test_lower_is_better():
    today = D(2024, 7, 1)  # half-way: the line expects 15
    assert assess(4, LOWER, today=today).status is Status.MET
    assert assess(15, LOWER, today=today).status is Status.ON_TRACK
    assert assess(20, LOWER, today=today).status is Status.AT_RISK
    assert assess(6, LOWER, today=D(2026, 1, 1)).status is Status.OVERDUE
    assert assess(15, LOWER, today=today).progress == pytest.approx(0.5)


def test_no_data_and_no_target():
    assert assess(None, PLAN, today=D(2024, 1, 1)).status is Status.NO_DATA
    assert assess(float("nan"), PLAN, today=D(2024, 1, 1)).status is Status.NO_DATA
    assert assess(None, None).status is Status.NO_DATA
    assert assess(42, None).status is Status.MONITOR


def test_stale_overrides_the_badge_but_keeps_the_judgement():
    now = dt.datetime(2024, 7, 1, 12, 0)
    old = now - dt.timedelta(days=3)
    a = assess(99, PLAN, today=D(2026, 1, 1), as_of=old, freshness=dt.timedelta(days=1), now=now)
    assert a.status is Status.STALE and a.judged is Status.OVERDUE
    assert "按现有数据：已逾期" in a.reason
    fresh = assess(99, PLAN, today=D(2026, 1, 1), as_of=now - dt.timedelta(hours=2), freshness=dt.timedelta(days=1), now=now)
    assert fresh.status is Status.OVERDUE
    # timezone-aware as_of is compared in UTC
    aware = dt.datetime(2024, 7, 1, 19, 0, tzinfo=BEIJING)  # = 11:00 UTC
    assert not cockpit.is_stale(aware, dt.timedelta(hours=2), now)
    assert cockpit.is_stale(aware, dt.timedelta(minutes=30), now)
    # no freshness or no as_of: never stale
    assert assess(1, None, as_of=old, now=now).status is Status.MONITOR


def test_deadline_equal_to_start_and_flat_target():
    flash = Target(value=10, deadline=D(2024, 1, 1), baseline=0, start=D(2024, 1, 1))
    assert cockpit.elapsed_fraction(flash, D(2023, 12, 31)) == 0.0
    assert assess(5, flash, today=D(2024, 1, 1)).status is Status.AT_RISK
    flat = Target(value=10, deadline=D(2025, 1, 1), baseline=10, start=D(2023, 1, 1))
    assert assess(10, flat, today=D(2024, 1, 1)).status is Status.MET
    assert assess(9, flat, today=D(2024, 1, 1)).status is Status.AT_RISK


def test_chinese_number_formatting():
    assert format_number(128_456) == "12.85万"
    assert format_number(30_000) == "3万"
    assert format_number(1_810_000) == "181万"
    assert format_number(320_000_000) == "3.2亿"
    assert format_number(5081) == "5,081"
    assert format_number(12.345) == "12.35"
    assert format_number(-25_000) == "-2.5万"
    assert format_number(None) == "—"
    assert format_percent(91.234) == "91.2%"
    assert format_percent(0.9, fraction=True) == "90%"
    assert format_value(80, "%") == "80%"
    assert format_value(130_000, "台") == "13万台"
    assert format_value(24_484_900, "万元") == "2448.49亿元" and format_value(5_000, "万元") == "5,000万元"
    assert fmt.scale_for([1, 2_000_000]) == (1e4, "万")


def test_filters_round_trip_through_query_params():
    f = Filters(streets=("清源街道", "兴丰街道"), departments=(GAJ,), period=(D(2025, 1, 1), D(2025, 12, 31)))
    params = filters_to_params(cockpit.normalize_filters(f))
    assert params == {"street": "兴丰街道,清源街道", "dept": GAJ, "period": "2025-01-01..2025-12-31"}
    assert filters_from_params(params) == cockpit.normalize_filters(f)
    assert filters_from_params({"period": "garbage..x", "street": ""}) == Filters()


# ----------------------------------------------------------------------------------------------
# A small plugin: an events ledger kept by 区经济和信息化局 with rows of several departments

EVENTS = LedgerSpec(
    id="events",
    title="事件台账",
    department="jxj",
    department_column="department",
    key=("event_id",),
    columns=(
        ColumnSpec("event_id", "事件编号", "int"),
        ColumnSpec("street", "镇街"),
        ColumnSpec("department", "处置部门"),
        ColumnSpec("occurred_on", "发生日期", "date"),
        ColumnSpec("status", "状态"),
    ),
)
NOTES = LedgerSpec(  # no department column: only its owner (gaj) and leaders may read it
    id="notes", title="内部记录", department="gaj", key=("n",), columns=(ColumnSpec("n", "编号", "int"),)
)

CALLS: dict[str, int] = {}
_calls_lock = threading.Lock()


def _count(ctx) -> None:
    with _calls_lock:
        CALLS[ctx.tile.id] = CALLS.get(ctx.tile.id, 0) + 1


def q_total(ctx):
    _count(ctx)
    reader = ctx.ledger("events")
    conds = ctx.filter_conditions(reader, date="occurred_on")
    rows = reader.execute(sa.select(reader.c("department"), sa.func.count()).where(*conds).group_by(reader.c("department")))
    return TileValue(float(sum(n for _, n in rows)), detail=Breakdown(tuple((d, float(n)) for d, n in rows), by="部门"))


def q_by_street(ctx):
    _count(ctx)
    reader = ctx.ledger("events")
    conds = ctx.filter_conditions(reader, date="occurred_on")
    street = reader.c("street")
    rows = reader.execute(sa.select(street, sa.func.count()).where(*conds).group_by(street).order_by(sa.func.count().desc()))
    return TileValue(float(sum(n for _, n in rows)) if rows else None,
                     detail=Breakdown(tuple((k, float(n)) for k, n in rows), by="镇街"))


def q_boom(ctx):
    raise RuntimeError("kaputt")


def q_notes(ctx):
    return TileValue(float(ctx.ledger("notes").count()))


def q_undeclared(ctx):
    _count(ctx)
    return TileValue(float(ctx.ledger("events").count()))


class EventsPlugin:
    @hookimpl
    def huizhi_plugin_info(self):
        return PluginInfo(name="testplug", title="测试插件", department="jxj", version="1", host_api=">=1.0")

    @hookimpl
    def huizhi_ledgers(self):
        return [EVENTS, NOTES]

    @hookimpl
    def huizhi_tiles(self):
        shared = dict(department=None, theme=Theme.GOVERNANCE, ledgers=("events",))
        return [
            TileSpec("total", "事件总数", query=q_total, unit="件", **shared,
                     target=Target(value=10, deadline=D(2030, 1, 1))),
            TileSpec("by_street", "事件（按镇街）", query=q_by_street, unit="件", **shared),
            TileSpec("boom", "会出错的指标", query=q_boom, **shared),
            TileSpec("undeclared", "未声明台账的指标", department=None, theme=Theme.GOVERNANCE, query=q_undeclared),
            TileSpec("jxj_only", "本部门指标", department="jxj", theme=Theme.SENSING, query=q_by_street,
                     ledgers=("events",)),
            TileSpec("notes", "内部记录数", department=None, theme=Theme.GOVERNMENT, query=q_notes, ledgers=("notes",)),
        ]


ROWS = [
    (1, "兴丰街道", JXJ, D(2025, 1, 5), "已结案"),
    (2, "兴丰街道", GAJ, D(2025, 2, 5), "处置中"),
    (3, "清源街道", GAJ, D(2025, 3, 5), "已结案"),
    (4, "清源街道", CGW, D(2024, 3, 5), "已结案"),
    (5, "瀛海镇", CGW, D(2024, 6, 5), "处置中"),
]


def _frame(rows):
    return pd.DataFrame(rows, columns=["event_id", "street", "department", "occurred_on", "status"])


LEADER = Identity("t|leader", "区领导", frozenset({Grant(Role.LEADER)}))
GAJ_STAFF = Identity("t|gaj", "公安干警", frozenset({Grant(Role.STAFF, "gaj")}))
CGW_STAFF = Identity("t|cgw", "城管干部", frozenset({Grant(Role.STAFF, "cgw")}))
ADMIN = Identity("t|admin", "平台管理员", frozenset({Grant(Role.PLATFORM_ADMIN)}))


@pytest.fixture
def host(make_host):
    CALLS.clear()
    h = make_host(extra_plugins=[("testplug", EventsPlugin())])
    commit_rows(h, "events", _frame(ROWS))
    commit_rows(h, "notes", pd.DataFrame({"n": [1, 2, 3]}))
    # the commits' events queued background recomputes; the queue is one thread, so this waits for them
    h.cockpit.warm(tiles=[]).result(timeout=60)
    h.cockpit.reset()  # each test starts from a cold cache
    CALLS.clear()
    return h


def _by_id(results):
    return {r.tile.id: r for r in results}


def test_leader_sees_every_row_and_tile_errors_are_isolated(host, caplog):
    results = _by_id(compute_tiles(host, LEADER))
    assert set(results) == {"total", "by_street", "boom", "undeclared", "jxj_only", "notes"}
    assert results["total"].value.value == 5
    assert results["total"].status is Status.ON_TRACK  # no baseline, deadline far away
    assert results["by_street"].value.value == 5
    boom = results["boom"]
    assert boom.status is Status.ERROR and "testplug" in boom.error and "kaputt" in boom.error_detail
    assert "tile boom of plugin testplug failed" in caplog.text
    assert results["notes"].value.value == 3


def test_permission_filtering_of_shared_tiles(host):
    gaj = _by_id(compute_tiles(host, GAJ_STAFF))
    assert "jxj_only" not in gaj  # another department's tile is never run
    assert gaj["total"].value.value == 2  # only 区公安分局's rows through the shared tile
    assert dict(gaj["total"].value.detail.items) == {GAJ: 2.0}
    assert gaj["by_street"].value.value == 2
    assert {k for k, _ in gaj["by_street"].value.detail.items} == {"兴丰街道", "清源街道"}
    assert gaj["notes"].value.value == 3  # gaj owns the notes ledger

    cgw = _by_id(compute_tiles(host, CGW_STAFF))
    assert cgw["total"].value.value == 2 and dict(cgw["total"].value.detail.items) == {CGW: 2.0}
    assert cgw["by_street"].value.value == 2
    assert cgw["notes"].status is Status.DENIED  # no department column: not readable by cgw
    # the cache keeps scopes apart: the leader still sees everything after staff filled it
    assert _by_id(compute_tiles(host, LEADER))["by_street"].value.value == 5
    assert compute_tiles(host, ADMIN) == []  # no cockpit permission: nothing runs


def test_filters_reach_every_tile_that_can_apply_them(host):
    f = Filters(streets=("清源街道",), period=(D(2025, 1, 1), D(2025, 12, 31)))
    results = _by_id(compute_tiles(host, LEADER, filters=f))
    assert results["total"].value.value == 1  # event 3 only
    assert results["by_street"].value.value == 1
    assert results["total"].filters_applied == {"street", "department", "period"}
    assert results["notes"].filters_applied == frozenset()  # the notes tile has no street or date
    by_dept = _by_id(compute_tiles(host, LEADER, filters=Filters(departments=(CGW,))))
    assert by_dept["total"].value.value == 2 and by_dept["by_street"].value.value == 2


def test_cache_hits_until_an_input_ledger_commits(host):
    host.events.close()  # the cache key alone keeps results right when no commit event arrives
    compute_tiles(host, LEADER)
    assert CALLS == {"total": 1, "by_street": 1, "undeclared": 1, "jxj_only": 1}
    again = _by_id(compute_tiles(host, LEADER))
    assert again["total"].cached and again["by_street"].cached
    assert CALLS["total"] == 1 and CALLS["by_street"] == 1
    assert CALLS["undeclared"] == 2  # reads a ledger it does not declare: never cached
    assert not again["boom"].cached  # errors are not cached
    # a commit to an unrelated ledger changes nothing
    commit_rows(host, "notes", pd.DataFrame({"n": [1, 2, 3, 4]}))
    assert _by_id(compute_tiles(host, LEADER))["total"].cached
    # a commit to the input ledger is visible on the next refresh
    commit_rows(host, "events", _frame([*ROWS, (6, "瀛海镇", JXJ, D(2025, 5, 1), "已结案")]))
    fresh = _by_id(compute_tiles(host, LEADER))
    assert not fresh["total"].cached and fresh["total"].value.value == 6
    assert fresh["by_street"].value.value == 6
    assert CALLS["total"] == 2
    # filters are part of the key
    compute_tiles(host, LEADER, filters=Filters(streets=("瀛海镇",)))
    assert CALLS["total"] == 3


def test_invalidate_drops_and_recomputes_the_tiles_of_a_ledger(host):
    compute_tiles(host, LEADER)
    assert CALLS["by_street"] == 1
    commit_rows(host, "events", _frame(ROWS[:3]))  # its LedgerChanged event calls invalidate(["events"])
    host.cockpit.warm(tiles=[]).result(timeout=30)  # the background queue is one thread: wait for it
    assert CALLS["by_street"] == 2 and CALLS["undeclared"] == 1  # undeclared reads are never recomputed
    after = _by_id(compute_tiles(host, LEADER))
    assert after["by_street"].cached and after["by_street"].value.value == 3
    assert CALLS["by_street"] == 2
    recomputed = host.cockpit.invalidate(["events"]).result(timeout=30)
    assert {r.tile.id for r in recomputed} == {"total", "by_street", "boom", "jxj_only"}  # the tiles reading events
    assert CALLS["by_street"] == 3
    assert host.cockpit.results.drop_ledgers(["events"]) > 0 and host.cockpit.results.drop_ledgers(["events"]) == 0


def test_filter_conditions_are_part_of_the_tile_context(host):
    ctx = host.tile_context(LEADER, "total", filters=Filters(period=(D(2025, 1, 1), D(2025, 12, 31))))
    reader = ctx.ledger("events")
    assert reader.count(*ctx.filter_conditions(reader, date="occurred_on")) == 3
    assert ctx.filters_applied == {"street", "department", "period"}
    other = host.tile_context(LEADER, "total", filters=Filters(streets=("瀛海镇",)))
    assert reader.count(*other.filter_conditions(reader, street="street", department=None)) == 1
    assert other.filters_applied == {"street"}


def test_a_failing_tile_does_not_slow_or_break_the_rest(host):
    results = compute_tiles(host, LEADER, tiles=[host.registry.tiles["boom"][0], host.registry.tiles["total"][0]])
    assert [r.tile.id for r in results] == ["boom", "total"]
    assert results[1].ok and results[1].value.value == 5


def test_tile_returning_the_wrong_type_is_an_error(host):
    bad = TileSpec("bad", "错误类型", department=None, theme=Theme.ECONOMY, query=lambda ctx: 42)
    [r] = compute_tiles(host, LEADER, tiles=[bad])
    assert r.status is Status.ERROR and "TileValue" in r.error_detail


def test_stale_tile_uses_the_ledger_commit_time(host):
    tile = TileSpec("fresh", "新鲜度", department=None, theme=Theme.ECONOMY, ledgers=("notes",),
                    query=lambda ctx: TileValue(1.0), freshness=dt.timedelta(hours=1))
    [r] = compute_tiles(host, LEADER, tiles=[tile])
    assert r.as_of == host.store.head("notes").updated_at and r.status is Status.MONITOR
    [later] = compute_tiles(host, LEADER, tiles=[tile], now=utcnow() + dt.timedelta(hours=2))
    assert later.status is Status.STALE


def test_pins_are_kept_per_person(host):
    assert cockpit.load_pins(host, LEADER) == []
    cockpit.save_pins(host, LEADER, ["total", "nope", "by_street", "total"])
    assert cockpit.load_pins(host, LEADER) == ["total", "by_street"]
    assert cockpit.move_pin(host, LEADER, "by_street", -1) == ["by_street", "total"]
    assert cockpit.toggle_pin(host, LEADER, "total") == ["by_street"]
    assert cockpit.load_pins(host, GAJ_STAFF) == []
    assert host.audit.search(action="cockpit.pins", limit=10)


def test_a_refresh_reads_the_versions_its_cache_key_names(host):
    heads = host.store.heads()
    commit_rows(host, "events", _frame(ROWS[:2]))
    ctx = cockpit.CockpitTileContext(_host=host, identity=LEADER, plugin="testplug", heads=heads)
    assert ctx.ledger("events").count() == 5  # the version current when the refresh started
    assert cockpit.CockpitTileContext(_host=host, identity=LEADER, plugin="testplug").ledger("events").count() == 2
    with pytest.raises(AccessDenied):
        cockpit.CockpitTileContext(_host=host, identity=CGW_STAFF, plugin="testplug", heads=heads).ledger("notes")


def test_warm_up_prepares_the_first_leader_view(host):
    host.cockpit.reset()
    results = host.cockpit.warm().result(timeout=60)
    assert any(r.tile.id == "by_street" for r in results) and CALLS["by_street"] == 1
    first = _by_id(compute_tiles(host, LEADER))
    assert first["total"].cached and first["by_street"].cached  # same row scope as the system identity
    assert CALLS["by_street"] == 1


# ----------------------------------------------------------------------------------------------
# One today: the day a tile's value is computed for is the day it is judged on


def q_days_to_deadline(ctx):
    _count(ctx)
    return TileValue(float((D(2026, 12, 31) - ctx.today).days))


DAYS_TILE = TileSpec("days", "距截止天数", department=None, theme=Theme.ECONOMY, query=q_days_to_deadline,
                     target=Target(value=-1, deadline=D(2026, 12, 31), higher_is_better=False))


def test_the_tile_and_its_judgement_use_the_same_pinned_today(host):
    [before] = compute_tiles(host, LEADER, tiles=[DAYS_TILE], today=D(2026, 12, 31))
    assert before.value.value == 0 and before.status is Status.AT_RISK  # the deadline day: not yet overdue
    [after] = compute_tiles(host, LEADER, tiles=[DAYS_TILE], today=D(2027, 1, 1))
    assert after.value.value == -1 and after.status is Status.MET  # computed and judged on 2027-01-01
    assert not after.cached and CALLS["days"] == 2  # another day is another cache entry
    [again] = compute_tiles(host, LEADER, tiles=[DAYS_TILE], today=D(2027, 1, 1))
    assert again.cached and again.value.value == -1


# ----------------------------------------------------------------------------------------------
# Values are checked at the boundary: normalised, or the tile's own error naming the plugin


def q_aware(ctx):
    return TileValue(7, as_of=dt.datetime(2026, 3, 1, 8, 30, tzinfo=BEIJING))


def q_naive(ctx):
    return TileValue(1.5, as_of=dt.datetime(2026, 3, 1, 1, 0))


def q_text(ctx):
    return TileValue("12")


def q_date_as_of(ctx):
    return TileValue(1.0, as_of=D(2026, 3, 1))


def q_odd_detail(ctx):
    return TileValue(1.0, detail={"兴丰街道": 3})


def draw(ctx, value):
    return None


class OddPlugin:
    @hookimpl
    def huizhi_plugin_info(self):
        return PluginInfo(name="oddplug", title="数据格式不规范的插件", department="jxj", version="1", host_api=">=1.0")

    @hookimpl
    def huizhi_tiles(self):
        common = dict(department=None, theme=Theme.ECONOMY)
        return [
            TileSpec("aware", "带时区的时间", query=q_aware, freshness=dt.timedelta(days=1), **common),
            TileSpec("naive", "UTC 时间", query=q_naive, **common),
            TileSpec("text", "文字数值", query=q_text, **common),
            TileSpec("date_as_of", "日期作时间", query=q_date_as_of, **common),
            TileSpec("odd_detail", "无法绘制的明细", query=q_odd_detail, **common),
            TileSpec("own_detail", "自绘明细", query=q_odd_detail, render=draw, **common),
        ]


@pytest.fixture
def odd_host(make_host):
    return make_host(extra_plugins=[("oddplug", OddPlugin())])


def test_a_timezone_aware_as_of_is_normalised_to_naive_utc(odd_host):
    results = _by_id(compute_tiles(odd_host, LEADER, now=dt.datetime(2026, 3, 1, 12, 0)))
    aware = results["aware"]
    assert aware.ok and aware.as_of == dt.datetime(2026, 3, 1, 0, 30) and aware.as_of.tzinfo is None
    assert aware.value.as_of == aware.as_of and aware.value.value == 7.0 and isinstance(aware.value.value, float)
    assert aware.status is Status.MONITOR  # judged for staleness against a naive UTC now: no TypeError
    # the page and the exports compare every as_of with the others
    assert max(r.as_of for r in results.values() if r.as_of is not None) == dt.datetime(2026, 3, 1, 1, 0)
    [stale] = compute_tiles(odd_host, LEADER, tiles=[odd_host.registry.tiles["aware"][0]],
                            now=dt.datetime(2026, 3, 2, 12, 0))
    assert stale.status is Status.STALE


def test_a_value_of_the_wrong_type_is_that_tiles_error_naming_the_plugin(odd_host, caplog):
    results = _by_id(compute_tiles(odd_host, LEADER))
    text = results["text"]
    assert text.status is Status.ERROR and "oddplug" in text.error and "数值不是数字" in text.error
    assert "value is str '12'" in text.error_detail
    assert "tile text of plugin oddplug returned an invalid value: value is str" in caplog.text
    assert results["date_as_of"].status is Status.ERROR and "as_of is date" in results["date_as_of"].error_detail
    assert results["odd_detail"].status is Status.ERROR and "明细无法绘制" in results["odd_detail"].error
    assert results["own_detail"].ok  # a tile with its own render may return any detail
    assert results["aware"].ok and results["naive"].ok  # the others are unaffected
    assert not compute_tiles(odd_host, LEADER, tiles=[odd_host.registry.tiles["text"][0]])[0].cached


# ----------------------------------------------------------------------------------------------
# The runner's lifecycle: owned by the host, stopped by dispose()


def test_a_host_leaves_no_thread_behind(database_url, tmp_path):
    settings = load_settings({}, database_url=database_url, data_dir=tmp_path)
    before = set(threading.enumerate())
    for i in range(100):
        with create_host(settings, extra_plugins=[("testplug", EventsPlugin())], use_entry_points=False,
                         migrate=i == 0) as h:
            if i == 0:
                commit_rows(h, "events", _frame(ROWS))
            if i % 10 == 0:
                h.cockpit.start_watching(0.01)
                h.cockpit.warm()
                results = _by_id(compute_tiles(h, LEADER))
                assert results["total"].value.value == 5
                assert {t.name for t in threading.enumerate()} >= {"cockpit-commit-watcher"}
    assert h.cockpit.closed
    with pytest.raises(cockpit.RunnerClosed):
        compute_tiles(h, LEADER)
    h.dispose()  # idempotent
    assert set(threading.enumerate()) == before
