"""The sensing plugin (感知前端管理台账) on a real host: its declarations, row-level scoping,
the SQL behind its pages, its cockpit tiles and its pages rendered in Streamlit's AppTest."""

from __future__ import annotations

import datetime as dt
import tomllib
from pathlib import Path

import huizhi_sensing.plugin as sensing_plugin
import pandas as pd
import pytest
from huizhi_sensing import queries
from huizhi_sensing.queries import DeviceFilter
from huizhi_sensing.schema import LEDGER_ID, SENSING_LEDGER
from streamlit.testing.v1 import AppTest

from huizhi import district
from huizhi.access import AccessDenied, Grant, Identity, Role, system_identity
from huizhi.cockpit import Status, compute_tiles
from huizhi.config import load_settings
from huizhi.context import Filters
from huizhi.host import create_host
from huizhi.specs import Breakdown, Perm, Theme
from huizhi.testing import create_database, drop_database, render_page
from huizhi_seeds import load_demo

SYSTEM = system_identity("test")

ROOT = Path(__file__).resolve().parents[3]  # the huizhi repository
PLUGINS = [("sensing", sensing_plugin)]
PAGES = ("sensing-ledger", "sensing-map", "sensing-inspections", "sensing-my-devices")
TILES = (
    "sensing_registered",
    "sensing_networked_ratio",
    "sensing_inspection_overdue",
    "sensing_by_street",
    "sensing_by_type",
)


def person(*grants: tuple[str, str | None]) -> Identity:
    return Identity(
        subject="|".join(f"{r}:{d}" for r, d in grants),
        name="测试",
        grants=frozenset(Grant(Role(r), d) for r, d in grants),
    )


JXJ = person(("staff", "jxj"))
GAJ = person(("staff", "gaj"))
CGW = person(("staff", "cgw"))
LEADER = person(("leader", None))
ADMIN = person(("platform_admin", None))


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    """One host with the sensing ledger seeded at 2% scale (about 3,000 devices), shared by the
    read-only tests of this module; on the store the suite runs against."""
    tmp = tmp_path_factory.mktemp("sensing")
    url = create_database(tmp)
    host = create_host(
        load_settings({}, database_url=url, data_dir=tmp), extra_plugins=PLUGINS, use_entry_points=False
    )
    load_demo(host, scale=0.02)
    yield host
    host.dispose()
    drop_database(url)


def all_rows(host) -> pd.DataFrame:
    return host.page_context(SYSTEM, "sensing-ledger").ledger(LEDGER_ID).frame()


# -- declarations ---------------------------------------------------------------------------------


def test_plugin_loads_cleanly_in_strict_mode(huizhi_host):
    host = huizhi_host(plugins=PLUGINS, strict=True)
    record = host.registry.plugins["sensing"]
    assert record.status == "enabled", record.reason
    assert (record.info.name, record.info.department, record.info.host_api) == ("sensing", "jxj", ">=1.0,<2")
    assert set(host.registry.ledgers) == {LEDGER_ID}
    assert set(PAGES) <= set(host.registry.pages)
    assert set(TILES) == {t for t in host.registry.tiles if t.startswith("sensing")}
    for tile_id in TILES:
        tile = host.registry.tiles[tile_id][0]
        assert tile.theme is Theme.SENSING and tile.department == "jxj" and tile.ledgers == (LEDGER_ID,)
        assert tile.drilldown in PAGES
    registered = host.registry.tiles["sensing_registered"][0]
    assert registered.target.value == 160_000 and registered.target.deadline == dt.date(2023, 12, 31)


def test_distribution_registers_the_entry_point():
    meta = tomllib.loads((ROOT / "plugins/sensing/pyproject.toml").read_text(encoding="utf-8"))
    assert meta["project"]["name"] == "huizhi-sensing"
    assert meta["project"]["entry-points"]["huizhi"] == {"sensing": "huizhi_sensing.plugin"}
    assert any(dep.startswith("huizhi") for dep in meta["project"]["dependencies"])


def test_ledger_declaration():
    spec = SENSING_LEDGER
    assert spec.key == ("device_id",) and spec.department_column == "owner_dept" and spec.department == "jxj"
    device_id = spec.column("device_id")
    assert "\\d" not in device_id.pattern and "[0-9]" in device_id.pattern
    assert {"设备编号", "设备编码"} <= set(device_id.aliases) and device_id.label == "城市码"
    assert spec.column("owner_dept").choices == district.department_names()
    assert spec.column("street").choices == district.street_names()
    assert (spec.column("lon").min, spec.column("lon").max) == district.LON_RANGE
    assert (spec.column("lat").min, spec.column("lat").max) == district.LAT_RANGE
    assert {
        "视频监控",
        "智慧灯杆",
        "消防栓监测",
        "易涝点监测",
        "空气质量监测",
        "热泵监测",
        "水质监测",
        "井盖监测",
        "烟感",
    } <= set(spec.column("device_type").choices)
    assert all(c.label and c.description and c.example for c in spec.columns)


def test_row_checks_flag_bad_rows():
    good = dict(
        device_id="110115-SP-00000001", device_name="x", device_type="视频监控", owner_dept="区公安分局",
        street="清源街道", location=None, lon=116.3, lat=39.7, install_date=pd.Timestamp("2020-01-01"),
        networked=True, status="在用", last_inspection=pd.Timestamp("2026-01-01"), inspection_cycle=90, project=None,
    )  # fmt: skip
    rows = [
        good,
        {
            **good,
            "device_id": "110115-SP-00000002",
            "last_inspection": pd.Timestamp("2019-01-01"),
        },  # before install
        {**good, "device_id": "110115-RB-00000003"},  # 热泵 code on a camera
        {**good, "device_id": "110115-SP-00000004", "status": "停用"},  # stopped but networked (soft)
        {
            **good,
            "device_id": "110115-SP-00000005",
            "install_date": pd.Timestamp("2999-01-01"),
            "last_inspection": None,
        },
        {
            **good,
            "device_id": "110115-SP-00000006",
            "last_inspection": None,
        },  # in use, never inspected (soft)
    ]
    frame = pd.DataFrame(rows)
    frame = frame.astype(
        {"networked": "boolean", "device_id": "string", "device_type": "string", "status": "string"}
    )
    results = {rc.name: list(pd.Series(rc.check(frame)).astype(bool)) for rc in SENSING_LEDGER.row_checks}
    soft = {rc.name for rc in SENSING_LEDGER.row_checks if rc.soft}
    assert results["inspection_not_before_install"] == [True, False, True, True, True, True]
    assert results["code_matches_type"] == [True, True, False, True, True, True]
    assert results["dates_not_in_future"] == [True, True, True, True, False, True]
    assert results["stopped_but_networked"] == [True, True, True, False, True, True]
    assert results["in_use_never_inspected"] == [True, True, True, True, False, False]
    assert soft == {"stopped_but_networked", "in_use_never_inspected"}


def test_query_parameters_become_filters():
    flt = DeviceFilter.from_params(
        {
            "street": "清源街道,不存在的镇",
            "dept": "gaj",
            "type": ["视频监控"],
            "networked": "否",
            "overdue": "1",
            "q": " 兴华 ",
        }
    )
    assert flt.streets == ("清源街道",) and flt.departments == ("区公安分局",) and flt.types == ("视频监控",)
    assert flt.networked is False and flt.overdue_only and flt.search == "兴华"
    assert DeviceFilter.from_params(flt.to_params()) == flt
    assert DeviceFilter.from_params(
        {"department": "区水务局", "period": "2024-01-01..2024-12-31"}
    ).departments == ("区水务局",)
    assert DeviceFilter.from_params({}) == DeviceFilter()


# -- row-level access -----------------------------------------------------------------------------


def test_each_department_reads_only_its_own_devices(seeded):
    rows = all_rows(seeded)
    counts = rows["owner_dept"].value_counts()
    gaj = seeded.page_context(GAJ, "sensing-my-devices").ledger(LEDGER_ID)
    assert not gaj.sees_all_rows
    assert gaj.count() == counts["区公安分局"] > 0
    assert gaj.distinct("owner_dept") == ["区公安分局"]
    assert set(gaj.frame()["owner_dept"]) == {"区公安分局"}
    # a crafted filter for another department's rows finds nothing
    crafted = queries.conditions(gaj, DeviceFilter(departments=("区城市管理委",)))
    assert gaj.count(*crafted) == 0
    assert queries.summary(gaj).total == counts["区公安分局"]
    cgw = seeded.page_context(CGW, "sensing-my-devices").ledger(LEDGER_ID)
    assert cgw.count() == counts["区城市管理委"]
    for steward in (JXJ, LEADER):  # the ledger's owning department and leaders read every row
        reader = seeded.page_context(steward, "sensing-ledger").ledger(LEDGER_ID)
        assert reader.sees_all_rows and reader.count() == len(rows)


def test_platform_admin_reads_no_device_rows(seeded):
    with pytest.raises(AccessDenied):
        seeded.page_context(ADMIN, "sensing-ledger").ledger(LEDGER_ID)


def test_shared_page_is_open_to_every_department_and_department_pages_are_not(seeded):
    paths = {p.url_path for p in seeded.visible_pages(GAJ)}
    assert "sensing-my-devices" in paths and "sensing-ledger" not in paths
    assert set(PAGES) <= {p.url_path for p in seeded.visible_pages(JXJ)}
    assert seeded.registry.pages["sensing-my-devices"][0].permission is Perm.LEDGER_READ
    assert "sensing-my-devices" not in {p.url_path for p in seeded.visible_pages(ADMIN)}


# -- the SQL behind the pages ------------------------------------------------------------------------


def test_summary_and_breakdowns_agree_with_the_rows(seeded):
    rows = all_rows(seeded)
    reader = seeded.page_context(JXJ, "sensing-ledger").ledger(LEDGER_ID)
    today = dt.date.today()
    s = queries.summary(reader, today=today)
    in_service = rows[rows["status"].isin(["在用", "故障"])]
    last = pd.to_datetime(in_service["last_inspection"].fillna(in_service["install_date"]))
    overdue = int(
        (last + pd.to_timedelta(in_service["inspection_cycle"], unit="D") < pd.Timestamp(today)).sum()
    )
    assert (s.total, s.inspected, s.overdue) == (len(rows), len(in_service), overdue)
    assert s.networked == int(in_service["networked"].sum())
    assert s.cameras == int((rows["device_type"] == "视频监控").sum())
    by_street = queries.breakdown(reader, "street")
    assert by_street["total"].sum() == len(rows)
    assert by_street.set_index("street")["total"].to_dict() == rows["street"].value_counts().to_dict()
    conds = queries.conditions(reader, DeviceFilter(streets=("清源街道",), networked=True))
    assert reader.count(*conds) == int(((rows["street"] == "清源街道") & rows["networked"]).sum())


def test_paging_walks_the_ledger_without_overlap(seeded):
    reader = seeded.page_context(JXJ, "sensing-ledger").ledger(LEDGER_ID)
    conds = queries.conditions(reader, DeviceFilter(types=("视频监控",)))
    total = reader.count(*conds)
    first = queries.rows_page(reader, conds, limit=50, offset=0)
    second = queries.rows_page(reader, conds, limit=50, offset=50)
    assert len(first) == 50 and not set(first["device_id"]) & set(second["device_id"])
    assert list(first["device_id"]) == sorted(first["device_id"])
    last = queries.rows_page(reader, conds, limit=50, offset=(total // 50) * 50)
    assert len(last) == total % 50 or len(last) == 50
    overdue = queries.rows_page(
        reader,
        queries.conditions(reader, DeviceFilter(overdue_only=True)),
        limit=20,
        offset=0,
        order="overdue",
    )
    days = list(overdue["days_overdue"])
    assert all(d > 0 for d in days) and days == sorted(days, reverse=True)


def test_map_shows_points_or_aggregates_cells(seeded):
    reader = seeded.page_context(JXJ, "sensing-map").ledger(LEDGER_ID)
    total = reader.count()
    points = queries.map_data(reader, [], total, limit=total)
    assert not points.aggregated and len(points.frame) == total
    cells = queries.map_data(reader, [], total, limit=200)
    assert cells.aggregated and 0 < len(cells.frame) <= 200 and cells.frame["devices"].sum() == total
    lon, lat = cells.frame["lon"], cells.frame["lat"]
    assert lon.between(*district.LON_RANGE).all() and lat.between(*district.LAT_RANGE).all()


# -- cockpit tiles --------------------------------------------------------------------------------


def run_tile(host, tile_id, identity=LEADER, filters: Filters | None = None, today: dt.date | None = None):
    spec = host.registry.tiles[tile_id][0]
    pinned = {"today": today} if today is not None else {}
    return spec.query(host.tile_context(identity, tile_id, filters=filters or Filters(), **pinned))


def test_overdue_inspections_are_counted_on_the_tiles_today(seeded):
    long_ago = run_tile(seeded, "sensing_inspection_overdue", today=dt.date(2000, 1, 1))
    assert long_ago.value == 0  # nothing was due yet on that day
    assert run_tile(seeded, "sensing_inspection_overdue").value > 0


def test_tiles_return_sensible_values(seeded):
    rows = all_rows(seeded)
    registered = run_tile(seeded, "sensing_registered")
    assert registered.value == len(rows) and registered.as_of is not None
    assert isinstance(registered.detail, Breakdown) and [k for k, _ in registered.detail.items] == [
        "视频监控",
        "物联感知设备",
    ]
    networked = run_tile(seeded, "sensing_networked_ratio")
    overdue = run_tile(seeded, "sensing_inspection_overdue")
    assert 50 < networked.value < 100 and 0 < overdue.value < 40
    assert all(0 <= v <= 100 for _, v in networked.detail.items)
    assert run_tile(seeded, "sensing_by_type").value == rows["device_type"].nunique() == 18
    by_street = run_tile(seeded, "sensing_by_street")
    assert by_street.value == rows["street"].nunique()
    assert sum(v for _, v in by_street.detail.items) == len(rows)


def test_tiles_honour_cockpit_filters(seeded):
    rows = all_rows(seeded)
    street = Filters(streets=("清源街道", "兴丰街道"))
    value = run_tile(seeded, "sensing_registered", filters=street).value
    assert value == int(rows["street"].isin(street.streets).sum())
    assert "目标为全区口径" in run_tile(seeded, "sensing_registered", filters=street).note
    dept = Filters(departments=("区公安分局",))
    assert run_tile(seeded, "sensing_registered", filters=dept).value == int(
        (rows["owner_dept"] == "区公安分局").sum()
    )
    assert run_tile(seeded, "sensing_by_street", filters=street).value == 2


def test_tiles_in_the_cockpit_engine(seeded):
    results = {r.tile.id: r for r in compute_tiles(seeded, LEADER, use_cache=False)}
    assert set(TILES) <= set(results)
    for tile_id in TILES:
        result = results[tile_id]
        assert result.ok, result.error_detail
        assert result.value.value is not None
        assert {"street", "department"} <= set(result.filters_applied)
    # the 2023 census is far from complete in a 2% sample: the deadline has passed
    assert results["sensing_registered"].status is Status.OVERDUE
    assert results["sensing_by_type"].status is Status.MONITOR


def test_tiles_on_an_empty_ledger_report_no_data(huizhi_host):
    host = huizhi_host(plugins=PLUGINS)
    for tile_id in TILES:
        value = run_tile(host, tile_id)
        assert value.value is None and "尚无数据" in value.note


# -- pages in Streamlit -----------------------------------------------------------------------------


def run_page(host, url_path, grants, params=None) -> AppTest:
    at = render_page(host, url_path, person(*grants), params or {}, enforce=False)
    assert not at.exception, [e.value for e in at.exception]
    return at


def metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


@pytest.mark.parametrize("url_path", PAGES)
def test_pages_render_for_the_steward(seeded, url_path):
    at = run_page(seeded, url_path, [("staff", "jxj")])
    assert not at.error and not at.warning
    assert at.title[0].value
    assert metric(at, "巡检逾期")


def test_ledger_page_filters_pages_and_drills_down(seeded):
    rows = all_rows(seeded)
    at = run_page(seeded, "sensing-ledger", [("staff", "jxj")], params={"street": "清源街道", "dept": "gaj"})
    expected = int(((rows["street"] == "清源街道") & (rows["owner_dept"] == "区公安分局")).sum())
    assert metric(at, "设备数") == f"{expected:,}"
    assert at.multiselect[0].value == ["清源街道"]
    frame = at.dataframe[0].value
    assert set(frame["所属镇街"]) == {"清源街道"} and "城市码" in frame.columns
    # a person narrows by type, then moves to the next page of a larger selection
    at.multiselect[0].set_value([]).run()
    at.multiselect[2].set_value([]).run()
    assert metric(at, "设备数") == f"{len(rows):,}"
    at.number_input[0].set_value(2).run()
    assert not at.exception and len(at.dataframe[0].value) == 50


def test_shared_page_shows_only_the_departments_rows(seeded):
    rows = all_rows(seeded)
    at = run_page(seeded, "sensing-my-devices", [("staff", "gaj")])
    assert metric(at, "设备数") == f"{int((rows['owner_dept'] == '区公安分局').sum()):,}"
    assert any("区公安分局" in c.value for c in at.caption)
    assert set(at.dataframe[0].value["权属单位"]) == {"区公安分局"}


def test_a_link_to_another_departments_devices_is_refused_not_ignored(seeded):
    """区城市管理委 staff opening the shared page with ?department=区公安分局 get a Chinese refusal
    (audited), not their own rows under a filter that quietly did nothing."""
    ctx = seeded.page_context(CGW, "sensing-my-devices", params={"department": "区公安分局"})
    with pytest.raises(AccessDenied) as denied:
        ctx.page.render(ctx)
    assert "区公安分局" in denied.value.user_message and "区城市管理委" in denied.value.user_message
    events = seeded.audit.search(action="access.denied", actor=CGW.subject, text="department:区公安分局")
    assert len(events) == 1 and "query parameter" in events[0].detail
    # their own department in the link is fine
    at = run_page(seeded, "sensing-my-devices", [("staff", "cgw")], params={"department": "cgw"})
    assert not at.warning and set(at.dataframe[0].value["权属单位"]) == {"区城市管理委"}


def test_pages_explain_missing_permission_and_empty_ledger(seeded, huizhi_host):
    at = run_page(seeded, "sensing-ledger", [("platform_admin", None)])
    assert at.warning and "权限" in at.warning[0].value
    empty = huizhi_host(plugins=PLUGINS)
    at = run_page(empty, "sensing-map", [("staff", "jxj")])
    assert at.info and "尚无数据" in at.info[0].value


def test_upload_with_other_headers_reports_bad_cells_in_chinese():
    """A department's own sheet (old headers, one broken row) is matched by aliases and each bad
    cell is named by row and column."""
    import io

    excel = pytest.importorskip("huizhi.excel")
    csv = (
        "设备编号,名称,类型,权属部门,镇街,安装位置,经度坐标,纬度坐标,建设日期,联网状态,状态,上次巡检日期,巡检周期,项目名称\n"
        "110115-SP-00000001,兴华大街视频监控1号,视频监控,区公安分局,兴丰街道,兴华大街,116.335,39.738,2020-05-01,是,在用,2026-09-01,90,雪亮工程\n"
        "110115-RB-00000002,金星路视频监控2号,视频监控,区公安分局,清源街道,金星路,117.5,39.728,2021-05-01,是,在用,2020-01-01,90,雪亮工程\n"
    ).encode()
    result = excel.ingest(io.BytesIO(csv), "公安分局感知前端.csv", SENSING_LEDGER)
    assert not result.ok and result.rejection is None
    problems = result.problems_display()
    bad = set(zip(problems["行号"], problems["列名"], strict=True))
    # problems are named by the uploader's own headers
    assert (3, "经度坐标") in bad  # outside Daxing
    assert (3, "设备编号") in bad and (3, "类型") in bad  # RB code on a camera
    assert (3, "上次巡检日期") in bad and (3, "建设日期") in bad  # inspected before installation
    assert not {c for r, c in bad if r == 2}  # the good row has no problem


# -- 本单位感知前端 shows the person's own unit's devices (issue 12) -------------------------------


def test_own_devices_page_shows_the_stewards_own_unit_not_the_whole_ledger(seeded):
    """区经济和信息化局 reads every row of its ledger, but 本单位感知前端 lists only the devices
    区经济和信息化局 itself owns (the main ledger page shows the rest)."""
    rows = all_rows(seeded)
    own = int((rows["owner_dept"] == "区经济和信息化局").sum())
    assert own < len(rows)
    at = run_page(seeded, "sensing-my-devices", [("staff", "jxj")])
    assert metric(at, "设备数") == f"{own:,}"
    assert any("本页面只列出 区经济和信息化局" in c.value for c in at.caption)
    if own:
        assert set(at.dataframe[0].value["权属单位"]) == {"区经济和信息化局"}
    main = run_page(seeded, "sensing-ledger", [("staff", "jxj")])
    assert metric(main, "设备数") == f"{len(rows):,}"


def test_own_devices_page_tells_a_leader_there_is_no_unit_and_points_to_the_ledger(seeded):
    at = run_page(seeded, "sensing-my-devices", [("leader", None)])
    assert not at.dataframe and not at.metric
    assert at.info and "不属于任何单位" in at.info[0].value and "感知前端台账" in at.info[0].value


def test_empty_states_say_the_true_reason(seeded, huizhi_host):
    # a unit with no devices of its own, no filter set: not "relax the filters"
    owners = set(all_rows(seeded)["owner_dept"])
    without = next(d for d in district.DEPARTMENTS if d.name not in owners)
    at = run_page(seeded, "sensing-my-devices", [("staff", without.id)])
    assert at.info and f"{without.name} 尚未在台账中登记" in at.info[0].value
    assert "放宽" not in at.info[0].value
    # filters that match nothing: that is the reason given
    at = run_page(seeded, "sensing-ledger", [("staff", "jxj")], params={"q": "没有这样的设备zzz"})
    assert at.info and "没有符合筛选条件的设备" in at.info[0].value
    gaj = run_page(seeded, "sensing-my-devices", [("staff", "gaj")], params={"q": "没有这样的设备zzz"})
    assert "没有符合筛选条件" in gaj.info[0].value


def test_street_labels_on_the_map_do_not_overlap():
    from huizhi_sensing.pages import _label_box, _overlap, street_labels

    streets = district.STREETS
    positions = street_labels(streets, {s.name: i for i, s in enumerate(streets)})
    boxes = [_label_box(s.lon, s.lat, s.name, p) for s, p in zip(streets, positions, strict=True) if p]
    assert len(boxes) >= len(streets) - 4  # most streets keep their name on the map
    for i, a in enumerate(boxes):
        assert not any(_overlap(a, b) for b in boxes[i + 1 :])
    # the close cluster around 黄村 no longer gets five labels stacked on top of each other
    assert len({p for s, p in zip(streets, positions, strict=True) if s.name in {"兴丰街道", "清源街道", "黄村镇"}}) > 1


def test_overdue_list_leads_with_last_inspection_and_cycle(seeded):
    at = run_page(seeded, "sensing-inspections", [("staff", "jxj")])
    columns = list(at.dataframe[-1].value.columns)
    assert columns[:6] == ["城市码", "设备名称", "巡检逾期", "末次巡检日期", "巡检周期（天）", "下次巡检截止"], columns
