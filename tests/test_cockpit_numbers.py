"""The cockpit's numbers are right under every filter (issue 12, item 3).

Every tile of the installed plugins and the built-ins, on seeded demo data, under every
combination of one street, one department (by id and by name) and one period, for a leader and
for departments' staff: no tile errors, every value and detail is sane and carries its own unit,
a district-wide target is not used for a verdict on a filtered value, a partial current month is
marked and not judged, the submission rate is judged against its period's deadline, and a ledger
that lost most of its rows in one commit makes its tiles warn instead of turning green.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
import re

import huizhi_citymgmt.plugin as citymgmt_plugin
import huizhi_sensing.plugin as sensing_plugin
import pytest

import huizhi_pages.plugin as pages_plugin
from huizhi.access import Grant, Identity, Role
from huizhi.clock import beijing_today
from huizhi.cockpit import Status, compute_tiles, filters_from_params, normalize_filters
from huizhi.cockpit.runner import narrowed_by
from huizhi.config import load_settings
from huizhi.context import Filters
from huizhi.host import create_host
from huizhi.specs import Breakdown, Series, TopItems
from huizhi_seeds import load_demo

PLUGINS = [("builtin_pages", pages_plugin), ("sensing", sensing_plugin), ("citymgmt", citymgmt_plugin)]
JXJ, CGW = "区经济和信息化局", "区城市管理委"


def person(role: str, dept: str | None) -> Identity:
    return Identity(subject=f"{role}:{dept}", name="测试", grants=frozenset({Grant(Role(role), dept)}))


LEADER = person("leader", None)
VIEWERS = {"leader": LEADER, "jxj staff": person("staff", "jxj"), "cgw staff": person("staff", "cgw")}
TODAY = beijing_today()
STREETS = ((), ("兴丰街道",))
DEPARTMENTS = ((), ("jxj",), (JXJ,), ("cgw",))
PERIODS = (None, (dt.date(TODAY.year, 1, 1), dt.date(TODAY.year, 12, 31)))


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    from databases import create_pg_database, drop_pg_database, test_store

    tmp = tmp_path_factory.mktemp("numbers")
    url = create_pg_database() if test_store() == "postgres" else f"duckdb:///{tmp / 'numbers.duckdb'}"
    host = create_host(load_settings({}, database_url=url, data_dir=tmp), extra_plugins=PLUGINS,
                       use_entry_points=False)
    load_demo(host, scale=0.01)
    yield host
    host.dispose()
    if test_store() == "postgres":
        drop_pg_database(url)


def _sane_number(value: float, unit: str, where: str) -> None:
    assert isinstance(value, float | int) and math.isfinite(value), where
    if unit == "%":
        assert -1e-9 <= value <= 100 + 1e-9, f"{where}: {value} is not a percentage"
    else:
        assert value >= 0, f"{where}: {value}{unit} is negative"


def _check(result, where: str) -> None:
    assert result.ok and result.status not in (Status.ERROR, Status.DENIED), (where, result.error_detail)
    value = result.value
    if value.value is not None:
        _sane_number(value.value, result.tile.unit, where)
    detail = value.detail
    if isinstance(detail, Breakdown | Series):
        assert isinstance(detail.unit, str), f"{where}: the detail's unit was not resolved"
        pairs = detail.items if isinstance(detail, Breakdown) else detail.points
        for label, number in pairs:
            _sane_number(number, detail.unit, f"{where} {label}")
    elif detail is not None:
        assert isinstance(detail, TopItems), where


def test_every_tile_under_every_filter_combination(seeded):
    tiles = set(seeded.registry.tiles)
    assert {"ledger_submissions", "sensing_registered", "citymgmt_satisfaction", "citymgmt_menqian"} <= tiles
    for (name, who), streets, depts, period in itertools.product(VIEWERS.items(), STREETS, DEPARTMENTS, PERIODS):
        filters = Filters(streets=streets, departments=depts, period=period)
        results = compute_tiles(seeded, who, filters=filters, today=TODAY, use_cache=False)
        assert results, name
        for result in results:
            where = f"{result.tile.id} for {name} with {filters}"
            _check(result, where)
            target, a = result.tile.target, result.assessment
            narrowed = narrowed_by(normalize_filters(filters), result.filters_applied)
            if target is not None and target.scope == "district" and narrowed and result.value.value is not None:
                # a district-wide target is never the verdict on part of the district
                assert a.judged is Status.MONITOR and a.progress is None and "全区口径" in a.reason, where


def test_the_reported_crash_street_and_another_department(seeded):
    """``/cockpit?dept=区经济和信息化局&street=兴丰街道``: the city-management tiles have no case
    of that unit there and must say so, not fail with KeyError."""
    filters = filters_from_params({"dept": JXJ, "street": "兴丰街道"})
    results = {r.tile.id: r for r in compute_tiles(seeded, LEADER, filters=filters, today=TODAY, use_cache=False)}
    for tile_id in ("citymgmt_satisfaction", "citymgmt_menqian"):
        assert results[tile_id].ok, results[tile_id].error_detail
        assert results[tile_id].status is Status.NO_DATA


def test_departments_by_id_filter_like_names(seeded):
    by_id = filters_from_params({"dept": "jxj"})
    assert by_id.departments == (JXJ,)  # not silently dropped
    assert filters_from_params({"dept": "jxj,区城市管理委,nosuch"}).departments == tuple(sorted((JXJ, CGW)))
    assert normalize_filters(Filters(departments=("jxj",))) == normalize_filters(Filters(departments=(JXJ,)))
    everything = {r.tile.id: r.value.value for r in compute_tiles(seeded, LEADER, today=TODAY, use_cache=False)}
    for depts in (("jxj",), (JXJ,)):
        values = {r.tile.id: r.value.value for r in compute_tiles(
            seeded, LEADER, filters=Filters(departments=depts), today=TODAY, use_cache=False)}
        assert values["sensing_registered"] < everything["sensing_registered"]  # the filter applied
        if depts == ("jxj",):
            first = values
        else:
            assert values == first


# ----------------------------------------------------------------------------------------------
# Units follow the value


def test_a_breakdown_of_percentages_in_a_count_tile_is_shown_in_percent(seeded):
    from huizhi.cockpit.charts import detail_rows, mini_chart
    from huizhi.cockpit.export import detail_frame

    (registered,) = compute_tiles(seeded, LEADER, [seeded.registry.tiles["sensing_registered"][0]], today=TODAY)
    assert registered.tile.unit == "台" and registered.value.detail.unit == "%"
    rows = detail_rows(registered.value.detail)  # the "图表" dialog's table
    assert rows and all(shown.endswith("%") and "台" not in shown for _, shown in rows), rows
    assert "台" not in mini_chart(registered.value.detail)
    assert set(detail_frame([registered])["单位"]) == {"%"}


def test_a_detail_without_a_unit_takes_the_tiles_and_a_bad_unit_is_the_tiles_error(make_host):
    from plugin_fixtures import make_plugin

    from huizhi.specs import Theme, TileSpec, TileValue

    def tile(tile_id, detail):
        return TileSpec(id=tile_id, title=tile_id, department="jxj", theme=Theme.SENSING, unit="%",
                        query=lambda ctx: TileValue(50.0, detail=detail))

    tiles = [tile("inherits", Breakdown((("兴丰街道", 40.0),))), tile("own", Series(((1, 3.0),), unit="件")),
             tile("bad", Breakdown((("兴丰街道", 40.0),), unit=5))]
    host = make_host(extra_plugins=[("t", make_plugin("t", tiles=tiles))])
    results = {r.tile.id: r for r in compute_tiles(host, LEADER, today=TODAY)}
    assert results["inherits"].value.detail.unit == "%" and results["own"].value.detail.unit == "件"
    assert not results["bad"].ok and "明细" in results["bad"].error


# ----------------------------------------------------------------------------------------------
# Targets apply to the data they were set for


def test_a_street_is_not_judged_against_the_district_wide_target(seeded):
    street = Filters(streets=("榆垡镇",))
    results = {r.tile.id: r for r in compute_tiles(seeded, LEADER, filters=street, today=TODAY, use_cache=False)}
    registered = results["sensing_registered"]
    assert registered.value.value > 0
    assert registered.status is Status.MONITOR and registered.assessment.progress is None  # not 已逾期 · 完成 6 %
    assert "已按镇街筛选" in registered.assessment.reason and "全区口径" in registered.assessment.reason
    # a rate target holds for every street: still judged
    assert results["sensing_networked_ratio"].tile.target.scope == "each"
    assert results["sensing_networked_ratio"].status not in (Status.MONITOR,)
    # without a filter the district-wide target is the verdict
    (whole,) = compute_tiles(seeded, LEADER, [registered.tile], today=TODAY)
    assert whole.status is not Status.MONITOR and whole.assessment.progress is not None
    # a filter the tile cannot honour leaves its value district-wide, and judged
    (period,) = compute_tiles(seeded, LEADER, [registered.tile], Filters(period=PERIODS[1]), today=TODAY)
    assert period.status is whole.status


def test_target_scope_is_checked_at_load():
    from huizhi.specs import SpecError, Target, Theme, TileSpec, TileValue, validate

    bad = TileSpec(id="t", title="t", department="jxj", theme=Theme.SENSING, query=lambda ctx: TileValue(1.0),
                   target=Target(1, dt.date(2025, 1, 1), scope="street"))
    with pytest.raises(SpecError, match="scope"):
        validate(bad)


# ----------------------------------------------------------------------------------------------
# The month so far is partial: marked, shown apart, never the headline or the verdict


def test_the_month_so_far_is_marked_and_not_the_headline(seeded):
    import pandas as pd

    from huizhi.cockpit.charts import detail_rows, latest_complete, mini_chart

    results = {r.tile.id: r for r in compute_tiles(seeded, LEADER, today=TODAY, use_cache=False)}
    monthly = results["citymgmt_monthly_cases"].value
    assert monthly.detail.points[-1][0] == TODAY.replace(day=1) and monthly.detail.partial is True
    assert latest_complete(monthly.detail)[1] == monthly.value  # the headline is the last complete month
    mini = mini_chart(monthly.detail)
    assert re.search(r"最新 <b[^>]*>([^<]*)</b>", mini).group(1) == f"{int(monthly.value):,}件"
    assert "本月至今" in mini and "本月至今" in detail_rows(monthly.detail)[-1][0]
    assert all("本月至今" not in label for label, _ in detail_rows(monthly.detail)[:-1])

    # the rates cover the last 12 complete months: the month so far is left out
    rows = seeded.tile_context(LEADER, "citymgmt_on_time_rate").ledger("city_cases").frame()
    found = pd.to_datetime(rows["found_date"]).dt.date
    this_month = TODAY.replace(day=1)
    start = dt.date(this_month.year - 1, this_month.month, 1)
    window = rows[(found >= start) & (found < this_month) & (rows["status"] == "已结案")]
    on_time = results["citymgmt_on_time_rate"].value
    assert on_time.value == pytest.approx(100 * (window["closed_date"] <= window["deadline"]).mean())
    assert "不含" in results["citymgmt_on_time_rate"].tile.description and "完整月" in on_time.note


def test_a_monthly_series_is_partial_only_in_its_own_month():
    from huizhi.cockpit.runner import checked_value
    from huizhi.specs import Theme, TileSpec, TileValue

    spec = TileSpec(id="t", title="t", department="jxj", theme=Theme.SENSING, query=lambda ctx: None, unit="%")
    points = ((dt.date(2026, 11, 1), 90.0), (dt.date(2026, 12, 1), 100.0))

    def partial(series, today):
        return checked_value(spec, TileValue(1.0, detail=series), today).detail.partial

    assert partial(Series(points), dt.date(2026, 12, 1)) is True
    assert partial(Series(points), dt.date(2026, 12, 31)) is True
    assert partial(Series(points), dt.date(2027, 1, 1)) is False
    assert partial(Series(points, partial=False), dt.date(2026, 12, 1)) is False  # the plugin knows better
    assert partial(Series((("一月", 1.0), ("二月", 2.0))), dt.date(2026, 12, 1)) is False  # not dated: not guessed
    from huizhi.cockpit.charts import mini_chart

    html = mini_chart(checked_value(spec, TileValue(1.0, detail=Series(points)), dt.date(2026, 12, 1)).detail)
    assert "最新 <b" in html and "90%" in html.split("最新")[1][:60]  # not 最新 100 %


# ----------------------------------------------------------------------------------------------
# The submission rate is judged against its period's deadline; freshness is the real commit time


def _next_month(day: dt.date) -> dt.date:
    return dt.date(day.year + day.month // 12, day.month % 12 + 1, 1)


def test_the_submission_rate_on_the_first_day_of_a_period_is_not_a_failure(seeded):
    first_day = _next_month(TODAY)  # a new period: nobody has submitted yet, the deadline is weeks away
    (result,) = compute_tiles(seeded, LEADER, [seeded.registry.tiles["ledger_submissions"][0]], today=first_day)
    assert result.value.value == 0.0
    deadline = dt.date(first_day.year, first_day.month, 28)
    assert result.target is not None and result.target.deadline >= deadline
    days = (result.target.deadline - first_day).days
    assert result.status is Status.ON_TRACK and "未到截止" in result.assessment.reason
    assert f"还有 {days} 天" in result.assessment.reason and f"还有 {days} 天" in result.value.note
    assert result.as_of is not None  # 数据截至: the ledgers' latest commit, not —
    # on the deadline day itself, still not submitted: at risk; the card shows that period's target
    (last_day,) = compute_tiles(seeded, LEADER, [result.tile], today=result.target.deadline)
    assert last_day.status is Status.AT_RISK and last_day.target.deadline == result.target.deadline


def test_a_ledger_loaded_minutes_ago_is_not_called_out_of_date(seeded):
    from huizhi.submissions import submission_status

    (status,) = submission_status(seeded, TODAY)
    assert status.stale  # no department has uploaded (seed data is not a submission) ...
    assert not status.outdated and status.last_commit is not None  # ... but it was loaded just now
    assert status.last_commit.date() >= TODAY - dt.timedelta(days=1)
    (later,) = submission_status(seeded, _next_month(_next_month(TODAY)) + dt.timedelta(days=1))
    assert later.outdated  # two periods without any commit: may be out of date


def test_the_submissions_page_warns_only_when_the_ledger_is_really_old(seeded):
    from streamlit.testing.v1 import AppTest

    def script(database_url: str, data_dir: str, today: str) -> None:
        import datetime as dt

        import huizhi_citymgmt.plugin as citymgmt_plugin

        import huizhi_pages.plugin as pages_plugin
        from huizhi.access import Grant, Identity, Role
        from huizhi.config import load_settings
        from huizhi.context import PageContext
        from huizhi.host import create_host
        from huizhi_pages import submissions

        host = create_host(load_settings({}, database_url=database_url, data_dir=data_dir), migrate=False,
                           extra_plugins=[("builtin_pages", pages_plugin), ("citymgmt", citymgmt_plugin)],
                           use_entry_points=False)
        who = Identity("l", "领导", frozenset({Grant(Role("leader"), None)}))
        ctx = PageContext(_host=host, identity=who, plugin="builtin_pages", today=dt.date.fromisoformat(today))
        submissions.render(ctx)
        host.dispose()

    def run(today: dt.date) -> AppTest:
        kwargs = dict(database_url=seeded.settings.database_url, data_dir=str(seeded.settings.data_dir),
                      today=today.isoformat())
        at = AppTest.from_function(script, kwargs=kwargs, default_timeout=60).run()
        assert not at.exception, [e.value for e in at.exception]
        return at

    now = run(TODAY)
    assert not any("可能已经过时" in w.value for w in now.warning)
    assert any("截止" in c.value for c in now.caption)
    much_later = run(_next_month(_next_month(TODAY)) + dt.timedelta(days=1))
    assert any("可能已经过时" in w.value for w in much_later.warning)


# ----------------------------------------------------------------------------------------------
# A ledger that lost most of its rows in one commit: every tile reading it warns


def test_a_commit_that_removes_most_devices_makes_the_tiles_warn(make_host):
    from ledgerkit import commit_rows

    host = make_host(extra_plugins=[("sensing", sensing_plugin)])
    load_demo(host, scale=0.005)
    ctx = host.tile_context(LEADER, "sensing_inspection_overdue", today=TODAY)
    reader = ctx.ledger("sensing_devices")
    rows = reader.frame()[[c.name for c in reader.spec.columns]]
    tiles = [spec for spec, _ in host.registry.tiles.values()]
    before = {r.tile.id: r for r in compute_tiles(host, LEADER, tiles, today=TODAY)}
    assert not any(r.status is Status.DATA_DROP for r in before.values())

    # keep one device in service with a recent inspection: 0 % overdue, which alone would be 达标
    keep = rows[(rows["status"] == "在用")].head(1).assign(last_inspection=TODAY, inspection_cycle=365)
    commit_rows(host, "sensing_devices", keep)
    after = {r.tile.id: r for r in compute_tiles(host, LEADER, tiles, today=TODAY)}
    overdue = after["sensing_inspection_overdue"]
    assert overdue.value.value == 0.0 and overdue.assessment.judged is Status.MET
    assert overdue.status is Status.DATA_DROP  # not a green 达标
    assert "数据量骤减" in overdue.assessment.reason and "感知前端" in overdue.assessment.reason
    assert f"删除了 {len(rows) - 1:,} 行" in overdue.assessment.reason
    for tile_id, result in after.items():  # every tile reading that ledger
        assert result.status is Status.DATA_DROP, tile_id
    # the page's header counts it; the export lists it
    from huizhi.cockpit import status_counts
    from huizhi.cockpit.export import summary_frame

    assert status_counts(list(after.values()))[Status.DATA_DROP] == len(after)
    assert set(summary_frame(list(after.values()))["状态"]) == {"数据量骤减"}

    # the next commit restores the rows: no warning any more
    commit_rows(host, "sensing_devices", rows)
    restored = compute_tiles(host, LEADER, tiles, today=TODAY)
    assert not any(r.status is Status.DATA_DROP for r in restored)
