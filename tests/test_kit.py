"""The page kit's logic: paging, filters from query parameters, refusal of out-of-scope
departments (audited), number formatting in metrics, tables and bars."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from ledgerkit import commit_rows
from plugin_fixtures import ASSETS, make_plugin

from huizhi import district, kit
from huizhi.access import AccessDenied, Grant, Identity, Role

ROWS = (
    (
        kit.Pick("streets", "所属镇街", district.street_names(), ("street", "streets")),
        kit.Departments("owners", "权属单位", "owner", ("department", "dept")),
        kit.DateRange("period", "日期"),
    ),
    (
        kit.YesNo("networked", "是否联网", ("networked",)),
        kit.Flag("overdue", "只看逾期", ("overdue",)),
        kit.Search("q", placeholder="编码"),
    ),
)


def staff(dept: str) -> Identity:
    return Identity(f"staff:{dept}", "测试", frozenset({Grant(Role.STAFF, dept)}))


# -- paging -----------------------------------------------------------------------------------------


def test_paging_arithmetic():
    at = kit.paging(total=101, size=50, page=3)
    assert (at.pages, at.page, at.offset, at.size) == (3, 3, 100, 50)
    assert kit.paging(total=100, size=50, page=2).pages == 2
    assert kit.paging(total=0, size=25, page=1).pages == 1  # an empty table still has page 1
    assert kit.paging(total=101, size=50, page=9).page == 3  # past the end: the last page
    assert kit.paging(total=10, size=50, page=0).offset == 0
    assert kit.paging(total=10, size=0, page=1).size == 1


# -- filters from query parameters -----------------------------------------------------------------


def test_filter_defaults_read_every_kind_of_field():
    values = kit.filter_defaults(
        ROWS,
        {
            "street": "清源街道，不存在的镇",
            "dept": "gaj,nowhere",
            "period": "2024-01-01..2024-06-30",
            "networked": "否",
            "overdue": "1",
            "q": "  兴华 ",
        },
    )
    assert values == {
        "streets": ("清源街道",),
        "owners": ("区公安分局",),
        "start": dt.date(2024, 1, 1),
        "end": dt.date(2024, 6, 30),
        "networked": False,
        "overdue": True,
        "q": "兴华",
    }
    assert kit.filter_defaults(ROWS, {}) == {
        "streets": (), "owners": (), "start": None, "end": None, "networked": None, "overdue": False, "q": "",
    }  # fmt: skip
    assert kit.filter_defaults(ROWS, {"period": "nonsense..2024-13-01"})["start"] is None


def test_filter_params_round_trip_through_the_first_parameter_name():
    values = kit.filter_defaults(ROWS, {"streets": "瀛海镇", "department": "区水务局", "period": "..2025-03-31"})
    params = kit.filter_params(ROWS, values)
    assert params == {"street": "瀛海镇", "department": "区水务局", "period": "..2025-03-31"}
    assert kit.filter_defaults(ROWS, params) == values


def test_date_range_bounds_stay_inside_what_the_widget_allows():
    field = ROWS[0][2]
    today = dt.date(2026, 3, 15)
    assert field.bounds({"start": None, "end": None}, today) == (dt.date(2025, 3, 1), today)
    assert field.bounds({"start": dt.date(2001, 1, 1), "end": dt.date(2030, 1, 1)}, today) == (
        dt.date(2015, 1, 1),
        today,
    )
    assert field.bounds({"start": dt.date(2026, 3, 20), "end": dt.date(2026, 3, 1)}, today) == (
        dt.date(2026, 3, 1),
        dt.date(2026, 3, 1),
    )


# -- refusing what a parameter asks for but the person may not see ------------------------------------


@pytest.fixture
def host(make_host):
    return make_host(extra_plugins=[("assets", make_plugin("assets", ledgers=[ASSETS], pages=[]))])


def test_a_parameter_naming_another_department_is_refused_and_audited(host):
    from huizhi.context import PageContext

    ctx = PageContext(_host=host, identity=staff("gaj"), plugin="assets", params={"dept": "cgw"})
    reader = ctx.ledger(ASSETS.id)
    assert kit.refused_departments(reader, ROWS, ctx.params) == ("区城市管理委",)
    with pytest.raises(AccessDenied) as denied:
        kit.filters(ctx, reader, ROWS)
    assert "区城市管理委" in denied.value.user_message and "区公安分局" in denied.value.user_message
    events = host.audit.search(action="access.denied", text="department:区城市管理委")
    assert len(events) == 1 and events[0].actor == "staff:gaj" and "query parameter" in events[0].detail


def test_own_department_or_a_reader_of_every_row_is_not_refused(host):
    from huizhi.context import PageContext

    own = PageContext(_host=host, identity=staff("gaj"), plugin="assets", params={"dept": "区公安分局"})
    assert kit.refused_departments(own.ledger(ASSETS.id), ROWS, own.params) == ()
    steward = PageContext(_host=host, identity=staff("jxj"), plugin="assets", params={"dept": "cgw"})
    assert kit.refused_departments(steward.ledger(ASSETS.id), ROWS, steward.params) == ()
    # unknown names are not departments anyone could be refused: they are dropped
    odd = PageContext(_host=host, identity=staff("gaj"), plugin="assets", params={"dept": "nowhere"})
    assert kit.refused_departments(odd.ledger(ASSETS.id), ROWS, odd.params) == ()
    assert not host.audit.search(action="access.denied")


# -- numbers, tables and bars -------------------------------------------------------------------------


def test_metric_text_in_chinese_number_style():
    assert kit.Metric("设备数", 128456).text == "12.85万"
    assert kit.Metric("设备数", 5081).text == "5,081"
    assert kit.Metric("联网率", 0.912, "ratio").text == "91.2%"
    assert kit.Metric("联网率", None, "ratio").text == "—"
    assert kit.Metric("状态", "正常", "text").text == "正常"


def test_display_frame_uses_chinese_headers_and_readable_cells():
    frame = pd.DataFrame(
        {"code": ["A-1", "A-2"], "ok": [True, False], "day": [dt.date(2025, 1, 2), None], "count": [3, 4]}
    )
    shown = kit.display_frame(frame, kit.column_labels(ASSETS, ok="正常", day="日期"))
    assert list(shown.columns) == ["编码", "正常", "日期", "数量"]
    assert list(shown["正常"]) == ["是", "否"] and list(shown["日期"]) == ["2025-01-02", ""]
    assert pd.api.types.is_integer_dtype(shown["数量"])


def test_table_columns_are_wide_enough_for_their_headers_and_cells():
    shown = pd.DataFrame({"下次巡检截止": ["2025-01-02"], "城市码": ["110115-SP-0000123456789"], "数": [1]})
    config = kit._column_config(shown)
    assert config["下次巡检截止"]["width"] >= 8 * 12  # six wide characters
    assert config["城市码"]["width"] >= 8 * 23
    assert config["数"]["width"] < config["城市码"]["width"]


def test_bar_figure_is_horizontal_with_formatted_labels():
    fig = kit.bar_figure(["区公安分局", "区水务局", "区城市管理委"], [0.95, 0.9, float("nan")], percent=True)
    bar = fig.data[0]
    assert bar.orientation == "h" and list(bar.y) == ["区公安分局", "区水务局", "区城市管理委"]
    assert list(bar.text) == ["95%", "90%", "0%"]
    assert fig.layout.yaxis.autorange == "reversed"  # the first item on top
    high = kit.bar_figure(["a", "b"], [0.975, 0.94], percent=True).layout.xaxis.range
    assert high[0] == pytest.approx(0.89) and high[1] == 1.0  # zoomed in, never past 100%
    counts = kit.bar_figure(["a", "b"], [250_000, 12_000], limit=1)
    assert list(counts.data[0].y) == ["a"] and list(counts.data[0].text) == ["25万"]
    assert counts.layout.xaxis.ticktext[-1].endswith("万") and counts.data[0].x[0] == 25
    assert kit.bar_figure(["a"] * 20, [1] * 20).layout.height > kit.bar_figure(["a"], [1]).layout.height


# -- the scaffold's page is a kit page ----------------------------------------------------------------


def scaffold_page_script(database_url: str, data_dir: str, plugin_dir: str, params: dict) -> None:
    import importlib
    import sys

    from huizhi.access import Grant, Identity, Role
    from huizhi.config import load_settings
    from huizhi.host import create_host

    sys.path.insert(0, plugin_dir)
    plugin = importlib.import_module("huizhi_water.plugin")
    host = create_host(
        load_settings({}, database_url=database_url, data_dir=data_dir),
        extra_plugins=[("water", plugin)],
        use_entry_points=False,
        migrate=False,
    )
    identity = Identity("apptest", "测试", frozenset({Grant(Role.STAFF, "swj")}))
    spec, _ = host.registry.pages["water"]
    spec.render(host.page_context(identity, "water", params=params))
    host.dispose()


def test_a_scaffolded_plugin_page_uses_the_kit(make_host, tmp_path):
    import importlib
    import sys

    from streamlit.testing.v1 import AppTest

    from huizhi.scaffold import create_plugin

    root = create_plugin(tmp_path / "p", "water", "swj", "水务")
    source = (root / "huizhi_water" / "plugin.py").read_text(encoding="utf-8")
    assert "kit.open_ledger" in source and "kit.paged_table" in source and "ctx.host" not in source
    sys.path.insert(0, str(root))
    try:
        plugin = importlib.import_module("huizhi_water.plugin")
        host = make_host(extra_plugins=[("water", plugin)], strict=True)
        rows = pd.DataFrame(
            {
                "record_id": [f"REC-{i:04d}" for i in range(60)],
                "name": [f"事项{i}" for i in range(60)],
                "street": ["清源街道"] * 60,
                "amount": list(range(60)),
                "updated": [dt.date(2025, 1, 1)] * 60,
            }
        )
        commit_rows(host, "water_records", rows)
        kwargs = dict(
            database_url=host.settings.database_url,
            data_dir=str(host.settings.data_dir),
            plugin_dir=str(root),
            params={"q": "事项1"},
        )
        at = AppTest.from_function(scaffold_page_script, kwargs=kwargs, default_timeout=60).run()
        assert not at.exception, [e.value for e in at.exception]
        assert at.text_input[0].value == "事项1"
        assert next(m.value for m in at.metric if m.label == "记录数") == "11"  # 事项1, 事项10 … 事项19
        assert list(at.dataframe[0].value.columns) == ["编号", "名称", "所属镇街", "数量", "更新日期"]
    finally:
        sys.path.remove(str(root))
        for name in [m for m in sys.modules if m.startswith("huizhi_water")]:
            del sys.modules[name]


# -- dates in Chinese: no st.date_input (its calendar and range footer speak English) ----------------


def test_parse_day_reads_the_ways_people_write_a_day():
    for text in ("2026-01-31", "2026/1/31", "2026.01.31", "2026年1月31日", " 20260131 ", "２０２６-０１-３１"):
        assert kit.parse_day(text) == dt.date(2026, 1, 31), text
    for text in ("", "2026-02-30", "31/01/2026", "去年五月", "2026-1", "2026-01-31x"):
        assert kit.parse_day(text) is None, text


def test_quick_ranges_end_today_and_last_month_is_whole():
    ranges = kit.quick_ranges(dt.date(2026, 3, 15), 12)
    assert ranges["近7天"] == (dt.date(2026, 3, 9), dt.date(2026, 3, 15))
    assert ranges["近30天"] == (dt.date(2026, 2, 14), dt.date(2026, 3, 15))
    assert ranges["本月"] == (dt.date(2026, 3, 1), dt.date(2026, 3, 15))
    assert ranges["上月"] == (dt.date(2026, 2, 1), dt.date(2026, 2, 28))
    assert ranges["本年"] == (dt.date(2026, 1, 1), dt.date(2026, 3, 15))
    field = kit.DateRange("period", "日期")
    assert ranges["近12个月"] == field.bounds(field.empty(), dt.date(2026, 3, 15))  # the panel's starting window
    assert kit.quick_ranges(dt.date(2026, 1, 10), 12)["上月"] == (dt.date(2025, 12, 1), dt.date(2025, 12, 31))


def _date_range_script(params: dict, today_iso: str) -> None:
    import datetime as dt
    from types import SimpleNamespace

    import streamlit as st

    from huizhi import kit

    field = kit.DateRange("period", "发现日期")
    ctx = SimpleNamespace(today=dt.date.fromisoformat(today_iso))
    values = field.draw(st, field.default(params), "k", ctx, None)
    st.write(f"RESULT {values['start']}..{values['end']}")


def _result(at) -> str:
    return next(m.value for m in at.markdown if m.value.startswith("RESULT")).removeprefix("RESULT ")


def test_date_range_is_a_chinese_choice_and_keeps_a_links_days():
    from streamlit.testing.v1 import AppTest

    def run(params: dict) -> AppTest:
        at = AppTest.from_function(_date_range_script, args=(params, "2026-03-15"), default_timeout=30).run()
        assert not at.exception, [e.value for e in at.exception]
        assert not at.date_input  # the English calendar is gone
        return at

    at = run({})  # no parameter: the last twelve months, as a ready-made choice
    assert at.selectbox[0].label == "发现日期" and at.selectbox[0].value == "近12个月"
    assert _result(at) == "2025-03-01..2026-03-15" and not at.text_input
    at.selectbox[0].select("上月").run()
    assert _result(at) == "2026-02-01..2026-02-28"

    at = run({"period": "2026-02-14..2026-03-15"})  # a link's days that are a ready-made range
    assert at.selectbox[0].value == "近30天"

    at = run({"period": "2025-07-04..2026-01-20"})  # a cockpit drill-down's own days: 自定义, to the day
    assert at.selectbox[0].value == "自定义"
    assert [t.value for t in at.text_input] == ["2025-07-04", "2026-01-20"]
    assert _result(at) == "2025-07-04..2026-01-20"
    at.text_input[0].input("2025年8月1日").run()
    assert _result(at) == "2025-08-01..2026-01-20" and not at.error
    at.text_input[1].input("2026-02-30").run()  # no such day: a Chinese error, the day it started on kept
    assert _result(at) == "2025-08-01..2026-01-20"
    assert "无法识别" in at.error[0].value and "年-月-日" in at.error[0].value
    at.text_input[1].input("2027-01-01").run()  # the future: clipped to today, and said
    assert _result(at) == "2025-08-01..2026-03-15" and "不能晚于 2026-03-15" in at.error[0].value
    at.text_input[1].input("2025-01-01").run()  # the wrong way round: swapped, and said
    assert _result(at) == "2025-01-01..2025-08-01" and "晚于截止日期" in at.error[0].value
