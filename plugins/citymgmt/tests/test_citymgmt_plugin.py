"""The city-management plugin (城市管理案件闭环): declarations, scoping by 承办单位, the closed-loop
measures, its tiles (with the cockpit's period filter) and its pages in AppTest."""

from __future__ import annotations

import datetime as dt
import tomllib
from pathlib import Path

import huizhi_citymgmt.plugin as citymgmt_plugin
import huizhi_sensing.plugin as sensing_plugin
import pandas as pd
import pytest
from huizhi_citymgmt import queries
from huizhi_citymgmt.queries import CaseFilter
from huizhi_citymgmt.schema import CASES_LEDGER, LEDGER_ID
from streamlit.testing.v1 import AppTest

from huizhi.access import Grant, Identity, Role, system_identity
from huizhi.clock import beijing_today
from huizhi.cockpit import compute_tiles
from huizhi.config import load_settings
from huizhi.context import Filters
from huizhi.host import create_host
from huizhi.specs import Breakdown, Series, Theme
from huizhi.testing import create_database, drop_database, render_page
from huizhi_seeds import load_demo

SYSTEM = system_identity("test")

ROOT = Path(__file__).resolve().parents[3]  # the huizhi repository
PLUGINS = [("citymgmt", citymgmt_plugin)]
PAGES = ("citymgmt-cases", "citymgmt-loop", "citymgmt-my-cases")
TILES = (
    "citymgmt_on_time_rate",
    "citymgmt_open_cases",
    "citymgmt_monthly_cases",
    "citymgmt_satisfaction",
    "citymgmt_menqian",
)


def person(*grants: tuple[str, str | None]) -> Identity:
    return Identity(
        subject="|".join(f"{r}:{d}" for r, d in grants),
        name="测试",
        grants=frozenset(Grant(Role(r), d) for r, d in grants),
    )


CGW = person(("staff", "cgw"))
SWJ = person(("staff", "swj"))
LEADER = person(("leader", None))


def _seeded_host(tmp_path_factory, as_of: dt.date | None = None):
    tmp = tmp_path_factory.mktemp("citymgmt")
    url = create_database(tmp)
    host = create_host(
        load_settings({}, database_url=url, data_dir=tmp), extra_plugins=PLUGINS, use_entry_points=False
    )
    with pytest.MonkeyPatch.context() as patch:
        if as_of is not None:  # seeded on that day: the ledger's rule refuses dates after "today"
            patch.setattr("huizhi.clock.beijing_today", lambda: as_of)
        load_demo(host, scale=0.03, as_of=as_of)
    yield host
    host.dispose()
    drop_database(url)


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    """One host with the case ledger seeded at 3% scale (about 2,400 cases)."""
    yield from _seeded_host(tmp_path_factory)


# A pinned day: the 1st of a month (no case found yet this month) and after 2026.
PINNED = dt.date(2027, 3, 1)


@pytest.fixture(scope="module")
def seeded_2027(tmp_path_factory):
    """Cases seeded up to the day before :data:`PINNED`, so some are found in 2027."""
    yield from _seeded_host(tmp_path_factory, as_of=PINNED - dt.timedelta(days=1))


def all_rows(host) -> pd.DataFrame:
    return host.page_context(SYSTEM, "citymgmt-cases").ledger(LEDGER_ID).frame()


def test_plugin_loads_next_to_the_sensing_plugin_in_strict_mode(huizhi_host):
    host = huizhi_host(plugins=[("sensing", sensing_plugin), *PLUGINS], strict=True)
    assert all(host.registry.plugins[n].status == "enabled" for n in ("sensing", "citymgmt"))
    assert host.registry.plugins["citymgmt"].info.department == "cgw"
    assert set(host.registry.ledgers) == {"sensing_devices", LEDGER_ID}
    assert set(PAGES) <= set(host.registry.pages)
    for tile_id in TILES:
        tile = host.registry.tiles[tile_id][0]
        assert tile.theme is Theme.GOVERNANCE and tile.department == "cgw" and tile.drilldown in PAGES
    assert host.registry.tiles["citymgmt_on_time_rate"][0].target.value == 95.0
    meta = tomllib.loads((ROOT / "plugins/citymgmt/pyproject.toml").read_text(encoding="utf-8"))
    assert meta["project"]["name"] == "huizhi-citymgmt"
    assert meta["project"]["entry-points"]["huizhi"] == {"citymgmt": "huizhi_citymgmt.plugin"}


def test_ledger_rules_catch_broken_loops():
    assert CASES_LEDGER.department_column == "dispatch_unit" and CASES_LEDGER.key == ("case_id",)
    base = dict(
        case_id="AJ202401-000001", category="门前三包", description=None, street="清源街道", source="网格员",
        found_date=pd.Timestamp("2024-01-02"), dispatch_unit="区城市管理委", dispatch_date=pd.Timestamp("2024-01-02"),
        deadline=pd.Timestamp("2024-01-07"), closed_date=pd.Timestamp("2024-01-05"), status="已结案", satisfaction="满意",
    )  # fmt: skip
    rows = [
        base,
        {**base, "dispatch_date": pd.Timestamp("2024-01-01")},  # dispatched before it was found
        {**base, "closed_date": None},  # closed without a date
        {**base, "status": "处置中", "satisfaction": None},  # open with a closing date
        {
            **base,
            "status": "处置中",
            "closed_date": None,
            "dispatch_unit": None,
            "satisfaction": None,
        },  # to nobody
        {**base, "status": "已反馈", "closed_date": None},  # rated before closure (soft)
    ]
    frame = pd.DataFrame(rows).astype(
        {"status": "string", "dispatch_unit": "string", "satisfaction": "string"}
    )
    results = {rc.name: list(pd.Series(rc.check(frame)).astype(bool)) for rc in CASES_LEDGER.row_checks}
    assert results["dispatch_after_found"] == [True, False, True, True, True, True]
    assert results["closed_iff_status"] == [True, True, False, False, True, True]
    assert results["dispatched_complete"] == [True, True, True, True, False, True]
    assert results["satisfaction_only_closed"] == [True, True, True, True, True, False]
    assert [rc.name for rc in CASES_LEDGER.row_checks if rc.soft] == ["satisfaction_only_closed"]


def test_query_parameters_become_filters():
    flt = CaseFilter.from_params(
        {"street": "榆垡镇", "dept": "swj", "period": "2024-01-01..2024-06-30", "category": "门前三包"}
    )
    assert flt.streets == ("榆垡镇",) and flt.units == ("区水务局",) and flt.categories == ("门前三包",)
    assert (flt.start, flt.end) == (dt.date(2024, 1, 1), dt.date(2024, 6, 30))
    assert CaseFilter.from_params({"period": "nonsense..2024-13-01"}).start is None


def test_handling_departments_read_only_their_cases(seeded):
    rows = all_rows(seeded)
    swj = seeded.page_context(SWJ, "citymgmt-my-cases").ledger(LEDGER_ID)
    assert swj.count() == int((rows["dispatch_unit"] == "区水务局").sum()) > 0
    assert swj.distinct("dispatch_unit") == ["区水务局"]
    cgw = seeded.page_context(CGW, "citymgmt-cases").ledger(LEDGER_ID)
    assert cgw.sees_all_rows and cgw.count() == len(rows)  # the steward also sees undispatched cases


def test_closed_loop_measures_agree_with_the_rows(seeded):
    rows = all_rows(seeded)
    reader = seeded.page_context(LEADER, "citymgmt-loop").ledger(LEDGER_ID)
    s = queries.summary(reader)
    closed = rows[rows["status"] == "已结案"]
    assert s.total == len(rows) and s.closed == len(closed)
    assert s.on_time == int((closed["closed_date"] <= closed["deadline"]).sum())
    assert s.open == len(rows) - len(closed)
    assert s.rated == int(rows["satisfaction"].notna().sum())
    assert 0 < s.avg_days < 15
    by_unit = queries.breakdown(reader, "dispatch_unit")
    assert by_unit["total"].sum() == len(rows)
    months = queries.monthly(reader, months=None)
    assert months["total"].sum() == len(rows) and months["month"].min() == dt.date(2023, 1, 1)
    conds = queries.conditions(reader, CaseFilter(start=dt.date(2024, 1, 1), end=dt.date(2024, 12, 31)))
    found = pd.to_datetime(rows["found_date"])
    assert reader.count(*conds) == int(found.dt.year.eq(2024).sum())
    page = queries.rows_page(reader, conds, limit=30, offset=0)
    assert len(page) == 30 and set(page["assessment"]) <= {"按期办结", "超期办结"}


def run_tile(host, tile_id, filters: Filters | None = None, today: dt.date | None = None):
    spec = host.registry.tiles[tile_id][0]
    pinned = {"today": today} if today is not None else {}
    return spec.query(host.tile_context(LEADER, tile_id, filters=filters or Filters(), **pinned))


def test_tiles_return_sensible_values_and_honour_filters(seeded):
    rows = all_rows(seeded)
    on_time = run_tile(seeded, "citymgmt_on_time_rate")
    assert 80 < on_time.value <= 100 and isinstance(on_time.detail, Series) and on_time.detail.target == 95.0
    open_cases = run_tile(seeded, "citymgmt_open_cases")
    assert open_cases.value == int((rows["status"] != "已结案").sum())
    assert isinstance(open_cases.detail, Breakdown)
    monthly = run_tile(seeded, "citymgmt_monthly_cases")
    assert monthly.value > 0 and len(monthly.detail.points) == 24  # the last 24 months, this one included
    assert 80 < run_tile(seeded, "citymgmt_satisfaction").value <= 100
    assert 0 < run_tile(seeded, "citymgmt_menqian").value <= 100
    # the period filter applies to 发现日期; without it rates cover the last twelve months
    year = Filters(period=(dt.date(2024, 1, 1), dt.date(2024, 12, 31)))
    closed = rows[(rows["status"] == "已结案") & pd.to_datetime(rows["found_date"]).dt.year.eq(2024)]
    expected = 100 * (closed["closed_date"] <= closed["deadline"]).mean()
    assert run_tile(seeded, "citymgmt_on_time_rate", year).value == pytest.approx(expected)
    assert [p[0].year for p in run_tile(seeded, "citymgmt_monthly_cases", year).detail.points] == [2024] * 12
    street = Filters(streets=("清源街道",))
    open_street = int(((rows["status"] != "已结案") & (rows["street"] == "清源街道")).sum())
    assert run_tile(seeded, "citymgmt_open_cases", street).value == open_street


def test_tiles_in_the_cockpit_engine(seeded):
    results = {r.tile.id: r for r in compute_tiles(seeded, LEADER, use_cache=False)}
    for tile_id in TILES:
        assert results[tile_id].ok, results[tile_id].error_detail
        assert {"street", "department", "period"} <= set(results[tile_id].filters_applied)


def test_tiles_on_an_empty_ledger_report_no_data(huizhi_host):
    host = huizhi_host(plugins=PLUGINS)
    for tile_id in TILES:
        assert run_tile(host, tile_id).value is None


def run_page(host, url_path, grants, params=None) -> AppTest:
    at = render_page(host, url_path, person(*grants), params or {}, enforce=False)
    assert not at.exception, [e.value for e in at.exception]
    return at


@pytest.mark.parametrize("url_path", PAGES)
def test_pages_render(seeded, url_path):
    at = run_page(seeded, url_path, [("staff", "cgw")], params={"period": "2023-01-01..2026-12-31"})
    assert not at.error and not at.warning
    assert any(m.label == "按期办结率" for m in at.metric)


def _check_drill_down(host):
    rows = all_rows(host)
    params = {"street": "清源街道", "dept": "cgw", "period": "2023-01-01..2026-12-31"}
    at = run_page(host, "citymgmt-cases", [("leader", None)], params=params)
    found = pd.to_datetime(rows["found_date"]).dt.date
    chosen = (rows["street"] == "清源街道") & (rows["dispatch_unit"] == "区城市管理委")
    # the page clips the period to its today (a case cannot be found in the future)
    in_period = found.between(dt.date(2023, 1, 1), min(dt.date(2026, 12, 31), beijing_today()))
    expected = int((chosen & in_period).sum())
    assert next(m.value for m in at.metric if m.label == "案件数") == f"{expected:,}"
    frame = at.dataframe[0].value
    assert set(frame["所属镇街"]) == {"清源街道"} and "考核" in frame.columns
    return rows[chosen & ~in_period]


def test_drill_down_with_street_and_handling_department(seeded):
    _check_drill_down(seeded)


def test_drill_down_counts_only_the_period_also_after_2026(seeded_2027):
    outside = _check_drill_down(seeded_2027)
    assert len(outside) > 0  # cases found after the period (in 2027): not counted


def test_monthly_trend_on_the_first_of_a_month(seeded_2027):
    rows = all_rows(seeded_2027)
    found = pd.to_datetime(rows["found_date"])
    assert not (found >= pd.Timestamp(PINNED)).any()  # no case found yet in March 2027
    monthly = run_tile(seeded_2027, "citymgmt_monthly_cases", today=PINNED)
    points = monthly.detail.points
    assert len(points) == 24 and points[0][0] == dt.date(2025, 4, 1)
    assert points[-1] == (dt.date(2027, 3, 1), 0.0)  # this month: no case yet, counted as zero
    february = int(((found.dt.year == 2027) & (found.dt.month == 2)).sum())
    assert monthly.value == february and monthly.note.startswith("2027年02月")  # the last complete month
    on_time = run_tile(seeded_2027, "citymgmt_on_time_rate", today=PINNED)
    assert len(on_time.detail.points) == 11  # 12 months shown, March 2027 has no closed case to rate
    # the cockpit runs the tiles on the same pinned day and judges them on it
    results = {r.tile.id: r for r in compute_tiles(seeded_2027, LEADER, today=PINNED, use_cache=False)}
    assert all(results[t].ok for t in TILES), {t: results[t].error_detail for t in TILES}
    assert results["citymgmt_monthly_cases"].value.value == february
    assert results["citymgmt_on_time_rate"].assessment.days_left == (dt.date(2025, 12, 31) - PINNED).days


def test_shared_page_for_a_handling_department(seeded):
    at = run_page(
        seeded, "citymgmt-my-cases", [("staff", "swj")], params={"period": "2023-01-01..2026-12-31"}
    )
    assert set(at.dataframe[0].value["承办单位"]) == {"区水务局"}
    assert any("区水务局" in c.value for c in at.caption)


def test_filters_survive_a_link_between_pages():
    flt = CaseFilter(
        streets=("清源街道",), units=("区水务局",), categories=("排水防汛",), start=dt.date(2025, 6, 1),
        end=dt.date(2025, 8, 31), overdue_only=True, search="积水",
    )  # fmt: skip
    assert CaseFilter.from_params(queries.to_params(flt)) == flt


# -- 本单位承办案件 shows the cases dispatched to the person's own unit (issue 12) ------------------


JXJ = person(("staff", "jxj"))


def test_own_cases_page_for_the_steward_lists_its_own_units_cases(seeded):
    rows = all_rows(seeded)
    params = {"period": "2023-01-01..2026-12-31"}
    at = run_page(seeded, "citymgmt-my-cases", [("staff", "cgw")], params=params)
    frame = at.dataframe[0].value
    assert set(frame["承办单位"]) == {"区城市管理委"}
    found = pd.to_datetime(rows["found_date"]).dt.date
    in_period = found.between(dt.date(2023, 1, 1), min(dt.date(2026, 12, 31), beijing_today()))
    own = int(((rows["dispatch_unit"] == "区城市管理委") & in_period).sum())
    assert next(m.value for m in at.metric if m.label == "案件数") == f"{own:,}"


def test_own_cases_page_tells_a_leader_there_is_no_unit(seeded):
    at = run_page(seeded, "citymgmt-my-cases", [("leader", None)])
    assert not at.dataframe and not at.metric
    assert "不属于任何单位" in at.info[0].value and "城市管理案件" in at.info[0].value


def test_no_cases_without_filters_is_not_blamed_on_the_filters(seeded):
    """A unit no case was dispatched to, with no filter set: the page says so, and does not ask
    the person to relax filters they never set."""
    rows = all_rows(seeded)
    assert not (rows["dispatch_unit"] == "区经济和信息化局").any()
    at = run_page(seeded, "citymgmt-my-cases", [("staff", "jxj")])
    assert at.info, [m.value for m in at.metric]
    message = at.info[0].value
    assert "没有派往 区经济和信息化局 承办的案件" in message and "放宽筛选" not in message
    # with a filter the person set, the filter is the reason
    at = run_page(seeded, "citymgmt-my-cases", [("staff", "cgw")], params={"q": "没有这样的案件zzz"})
    assert "没有符合筛选条件的案件" in at.info[0].value


def test_trend_rate_line_stays_inside_its_axis(seeded):
    from huizhi_citymgmt.pages import _trend_figure

    reader = seeded.page_context(SYSTEM, "citymgmt-cases").ledger(LEDGER_ID)
    trend = queries.monthly(reader, [], months=24, today=beijing_today())
    fig = _trend_figure(trend)
    low, high = fig.layout.yaxis2.range
    rates = [r for r in trend["on_time_ratio"] if r == r and r is not None]
    assert low < min(rates) and high > max(rates) + 0.01
