"""The cockpit's wall-screen mode (``/cockpit?wall=1``): tile choice, the district map, its labels,
the refresh parameter, and the page itself (AppTest). The browser test at 1920×1080 (no scroll,
refresh without reload, the screenshot) is tests/browser/test_cockpit_wall_e2e.py."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import math

import pytest
from streamlit.testing.v1 import AppTest
from test_cockpit_page import LEADER, _page_script, host  # noqa: F401  (the fixture is used by name)

from huizhi import district
from huizhi.cockpit import Assessment, Status, TileResult, save_pins
from huizhi.cockpit import wall as layout
from huizhi.specs import Breakdown, Series, Target, Theme, TileSpec, TileValue
from huizhi_pages import wall as wall_page


def _result(tile_id: str, *, target: bool = False, detail=None, unit: str = "件", status=Status.MONITOR) -> TileResult:
    spec = TileSpec(
        tile_id, f"指标{tile_id}", department="cgw", theme=Theme.GOVERNANCE, query=lambda ctx: None, unit=unit,
        target=Target(100, dt.date(2025, 12, 31)) if target else None,
    )
    return TileResult(spec, "p", TileValue(1.0, detail=detail), Assessment(status, "原因"))


STREET_COUNTS = Breakdown(tuple((s, float(10 * i + 5)) for i, s in enumerate(district.street_names())), by="镇街")


# ----------------------------------------------------------------------------------------------
# Parameters and tile choice


@pytest.mark.parametrize(("raw", "seconds"), [
    (None, 60), ("", 60), ("30", 30), ("1", 5), ("99999", 3600), ("0", 0), ("-3", 0), ("abc", 60), (["15"], 15),
])
def test_refresh_parameter_is_clamped(raw, seconds):
    params = {} if raw is None else {"refresh": raw}
    assert layout.refresh_seconds(params) == seconds


def test_wall_is_requested_by_the_url():
    assert wall_page.requested({"wall": "1"}) and wall_page.requested({"wall": "true"})
    assert not wall_page.requested({}) and not wall_page.requested({"wall": "0"})
    params = wall_page.wall_params(layout_filters(), 30)
    assert params["wall"] == "1" and params["refresh"] == "30" and params["street"] == "清源街道"


def layout_filters():
    from huizhi.context import Filters

    return Filters(streets=("清源街道",))


def test_pinned_tiles_in_pin_order_else_the_vital_signs():
    results = [
        _result("a"), _result("streets", detail=STREET_COUNTS), _result("b", target=True), _result("c"),
        _result("d", target=True), _result("rate", detail=Breakdown(STREET_COUNTS.items, by="镇街", unit="%"), unit="%"),
    ]
    # nothing pinned: the tiles judged against the plan first, then the rest; a count by street is on the map
    assert [r.tile.id for r in layout.wall_tiles(results, [])] == ["b", "d", "a", "c", "rate", "streets"]
    assert [r.tile.id for r in layout.wall_tiles(results, [], limit=4)] == ["b", "d", "a", "c"]
    # pinned: exactly those, in the person's order; pins of tiles they cannot see are skipped
    assert [r.tile.id for r in layout.wall_tiles(results, ["c", "gone", "a"])] == ["c", "a"]
    many = [_result(f"t{i}") for i in range(12)]
    assert len(layout.wall_tiles(many, [r.tile.id for r in many])) == layout.MAX_TILES


def test_street_measures_come_from_street_breakdowns():
    results = [
        _result("rate", detail=Breakdown(STREET_COUNTS.items, by="镇街", unit="%"), unit="%"),
        _result("streets", detail=STREET_COUNTS, unit="个镇街"),
        _result("by_dept", detail=Breakdown((("区公安分局", 3.0),), by="部门")),
        _result("trend", detail=Series(((dt.date(2025, 1, 1), 1.0),))),
    ]
    measures = layout.street_measures(results)
    assert [m.id for m in measures] == ["streets", "rate"]  # counts before rates
    assert measures[0].unit == "" and measures[1].unit == "%"
    assert measures[0].values["兴丰街道"] == 5.0 and len(measures[0].values) == 22


# ----------------------------------------------------------------------------------------------
# The map


def _boxes(fig):
    """Every label's box and every marker's circle in plot pixels, from the figure itself."""
    lay = fig.layout
    pw = lay.width - lay.margin.l - lay.margin.r
    ph = lay.height - lay.margin.t - lay.margin.b
    (x0, x1), (y0, y1) = lay.xaxis.range, lay.yaxis.range

    def px(lon, lat):
        return (lon - x0) / (x1 - x0) * pw, (y1 - lat) / (y1 - y0) * ph

    labels = {}
    for a in fig.layout.annotations:
        if a.xref != "x" or not a.showarrow:
            continue
        x, y = px(a.x, a.y)
        cx, cy = x + a.ax, y + a.ay
        name = a.text.split("<br>")[0].replace("<b>", "").replace("</b>", "").replace("<i>", "").replace("</i>", "")
        labels[name] = (cx - a.width / 2, cy - a.height / 2, cx + a.width / 2, cy + a.height / 2)
    markers = fig.data[1]
    circles = [(*px(lon, lat), size / 2) for lon, lat, size in zip(markers.x, markers.y, markers.marker.size,
                                                                   strict=True)]
    return labels, circles, (pw, ph)


def test_map_has_every_street_where_it_is_and_no_tile_server():
    measure = layout.StreetMeasure("streets", "感知前端", "台", dict(STREET_COUNTS.items))
    fig = layout.district_map(measure)
    assert {t.type for t in fig.data} == {"scatter"}  # plain axes: no mapbox/map/geo trace
    doc = json.loads(fig.to_json())
    assert not doc["layout"].get("mapbox") and not doc["layout"].get("map") and not doc["layout"].get("geo")
    assert "http" not in fig.to_json()  # nothing to fetch: the product runs air-gapped
    markers = fig.data[1]
    assert list(zip(markers.x, markers.y, strict=True)) == [(s.lon, s.lat) for s in district.STREETS]
    sizes = dict(zip(district.street_names(), markers.marker.size, strict=True))
    assert sizes["北臧村镇"] > sizes["兴丰街道"]  # the larger value, the larger marker (215 vs 5)
    labels, _, _ = _boxes(fig)
    assert set(district.street_names()) | {layout.AIRPORT[0]} == set(labels)
    texts = " ".join(a.text for a in fig.layout.annotations)
    assert "215台" in texts and "10 公里" in texts


@pytest.mark.parametrize("size", [layout.MAP_SIZE, (940, 836), (800, 700)])
def test_map_labels_do_not_overlap_labels_or_markers(size):
    measure = layout.StreetMeasure("streets", "感知前端", "台", {s: 12_345.0 + i for i, s in
                                                              enumerate(district.street_names())})
    labels, circles, (pw, ph) = _boxes(layout.district_map(measure, size=size))
    for (na, a), (nb, b) in itertools.combinations(labels.items(), 2):
        assert layout._overlap(a, b) == 0, f"labels {na} and {nb} overlap"
    for name, box in labels.items():
        assert box[0] >= 0 and box[2] <= pw and box[1] >= 0 and box[3] <= ph, f"label {name} leaves the map"
        for x, y, r in circles:
            assert not layout._circle_hits(box, x, y, r), f"label {name} covers a marker"


def test_map_without_values_still_draws_the_streets():
    fig = layout.district_map(layout.StreetMeasure("x", "空", "件", {"兴丰街道": 3.0}))
    labels, _, _ = _boxes(fig)
    assert len(labels) == 23
    assert "—" in " ".join(a.text for a in fig.layout.annotations)  # 21 streets without a value
    assert layout.district_map(None).data[1].marker.showscale is False


def test_place_labels_separates_a_tight_cluster():
    pts = [(f"p{i}", 200 + 6 * math.cos(i), 200 + 6 * math.sin(i), 8.0, 70.0, 44.0) for i in range(7)]
    labels = layout.place_labels(pts, 600, 600)
    for a, b in itertools.combinations(labels, 2):
        assert layout._overlap(a.box, b.box) == 0


# ----------------------------------------------------------------------------------------------
# The page (AppTest)


def _wall_html(at) -> str:
    return " ".join([m.value for m in at.markdown] + [h.value for h in at.html])


def test_wall_renders_every_chosen_tile_the_map_and_no_chrome(host, database_url):  # noqa: F811
    host.dispose()  # the page builds its own host on the same database
    at = AppTest.from_function(_page_script, args=(database_url, {"wall": "1"}), default_timeout=60).run()
    assert not at.exception, at.exception
    text = _wall_html(at)
    for tile_id in ("cases_total", "cases_trend", "cases_top", "cases_fail"):
        assert f'data-tile-id="{tile_id}"' in text
    assert text.count('class="hzw-tile"') == 4
    assert "30<small>件</small>" in text  # the value, large, with its unit
    assert "目标 1,000件 · 2030年12月31日前" in text
    assert "casesplug" in text  # the failing tile still names its plugin
    assert 'section[data-testid="stSidebar"]' in text and 'header[data-testid="stHeader"]' in text  # hidden
    assert "每 60 秒自动刷新" in text and "数据截至" in text and "（北京时间）" in text
    assert 'class="hzw-now"' in text  # the current time (kept ticking by the script)
    charts = at.get("plotly_chart")
    assert len(charts) == 1
    fig = json.loads(charts[0].proto.spec)
    names = {a["text"].split("<br>")[0].replace("<b>", "").replace("</b>", "") for a in fig["layout"]["annotations"]}
    assert set(district.street_names()) <= names
    assert not at.multiselect  # none of the cockpit's widgets: this is the wall
    assert "兴丰街道" in text or "兴丰街道" in names


def test_wall_shows_the_pinned_tiles_and_the_refresh_interval(host, database_url):  # noqa: F811
    save_pins(host, LEADER, ["cases_trend", "cases_total"])
    host.dispose()
    params = {"wall": "1", "refresh": "15", "street": "清源街道"}
    at = AppTest.from_function(_page_script, args=(database_url, params), default_timeout=60).run()
    assert not at.exception, at.exception
    text = _wall_html(at)
    assert text.count('class="hzw-tile"') == 2
    assert text.index('data-tile-id="cases_trend"') < text.index('data-tile-id="cases_total"')
    assert "我的置顶 2 项" in text
    assert "每 15 秒自动刷新" in text
    assert "10<small>件</small>" in text  # the street filter from the URL applies (a third of 30)
    assert "清源街道" in text


def test_cockpit_without_the_parameter_is_unchanged(host, database_url):  # noqa: F811
    host.dispose()
    at = AppTest.from_function(_page_script, args=(database_url, {}), default_timeout=60).run()
    assert not at.exception
    assert 'class="hzw-tile"' not in _wall_html(at) and at.multiselect(key="hz-streets") is not None


def test_every_status_has_a_wall_colour():
    from huizhi.cockpit import Status
    from huizhi.cockpit.wall import STATUS_COLORS

    assert set(STATUS_COLORS) == set(Status)  # a new status (e.g. 数据量骤减) must not break the wall
