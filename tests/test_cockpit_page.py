"""The cockpit page (AppTest), its exports, and recomputing tiles after commits."""

from __future__ import annotations

import datetime as dt
import io
import threading
import time

import pandas as pd
import pytest
import sqlalchemy as sa
from ledgerkit import commit_rows
from streamlit.testing.v1 import AppTest

from huizhi import cockpit, hookimpl
from huizhi.access import Grant, Identity, Role
from huizhi.cockpit import Status, compute_tiles
from huizhi.cockpit import export as cockpit_export
from huizhi.context import Filters
from huizhi.specs import (
    Breakdown,
    ColumnSpec,
    LedgerSpec,
    PageSpec,
    PluginInfo,
    Series,
    Target,
    Theme,
    TileSpec,
    TileValue,
    TopItems,
)

LEADER = Identity("t|leader", "区领导", frozenset({Grant(Role.LEADER)}))

CASES = LedgerSpec(
    id="cases", title="案件台账", department="cgw", department_column="department", key=("case_id",),
    columns=(
        ColumnSpec("case_id", "编号", "int"),
        ColumnSpec("street", "镇街"),
        ColumnSpec("department", "部门"),
        ColumnSpec("opened", "日期", "date"),
        ColumnSpec("title", "标题"),
    ),
)


def _cases(n: int) -> pd.DataFrame:
    streets = ["兴丰街道", "清源街道", "瀛海镇"]
    return pd.DataFrame({
        "case_id": range(n),
        "street": [streets[i % 3] for i in range(n)],
        "department": ["区城市管理委" if i % 2 else "区公安分局" for i in range(n)],
        "opened": [dt.date(2025, 1 + i % 12, 1) for i in range(n)],
        "title": ["=HYPERLINK(\"http://evil\")" if i == 0 else f"案件{i}" for i in range(n)],
    })


def _counts_by(ctx, column):
    reader = ctx.ledger("cases")
    conds = ctx.filter_conditions(reader, date="opened")
    key = reader.c(column)
    return [(k, float(n)) for k, n in reader.execute(sa.select(key, sa.func.count()).where(*conds).group_by(key).order_by(key))]


def q_count(ctx):
    items = _counts_by(ctx, "street")
    return TileValue(sum(n for _, n in items), detail=Breakdown(tuple(items), by="镇街"))


def q_trend(ctx):
    points = _counts_by(ctx, "opened")
    return TileValue(sum(n for _, n in points), detail=Series(tuple(points), unit="件"))


def q_top(ctx):
    reader = ctx.ledger("cases")
    rows = reader.page(limit=3)
    return TileValue(float(len(rows)), detail=TopItems(("编号", "标题"), tuple(zip(rows.case_id, rows.title, strict=True))))


def q_fail(ctx):
    raise ZeroDivisionError("division by zero in plugin code")


class CasesPlugin:
    @hookimpl
    def huizhi_plugin_info(self):
        return PluginInfo(name="casesplug", title="案件插件", department="cgw", version="1", host_api=">=1.0")

    @hookimpl
    def huizhi_ledgers(self):
        return [CASES]

    @hookimpl
    def huizhi_pages(self):
        # the page the 案件总量 tile drills down to (a drill-down to a missing page disables a plugin)
        return [PageSpec("案件列表", "cases", lambda ctx: None, department="cgw")]

    @hookimpl
    def huizhi_tiles(self):
        common = dict(department="cgw", ledgers=("cases",))
        return [
            TileSpec("cases_total", "案件总量", theme=Theme.GOVERNANCE, query=q_count, unit="件", drilldown="cases",
                     target=Target(1000, dt.date(2030, 12, 31), baseline=0, start=dt.date(2025, 1, 1)), **common),
            TileSpec("cases_trend", "案件趋势", theme=Theme.GOVERNANCE, query=q_trend, unit="件", **common),
            TileSpec("cases_top", "最新案件", theme=Theme.PUBLIC_SERVICE, query=q_top, unit="件", **common),
            TileSpec("cases_fail", "故障指标", theme=Theme.ECONOMY, query=q_fail, **common),
        ]


@pytest.fixture
def host(make_host):
    h = make_host(extra_plugins=[("casesplug", CasesPlugin())])
    commit_rows(h, "cases", _cases(30))
    yield h
    import gc

    import streamlit as st

    st.cache_resource.clear()  # disposes the hosts the page scripts built (their threads stop)
    gc.collect()


def _page_script(database_url: str, params: dict) -> None:
    import streamlit as st
    from test_cockpit_page import CasesPlugin

    from huizhi.access import Grant, Identity, Role
    from huizhi.config import load_settings
    from huizhi.context import PageContext
    from huizhi.host import create_host
    from huizhi_pages import cockpit as page

    @st.cache_resource(on_release=lambda h: h.dispose())
    def host(url: str):  # one per test database
        return create_host(load_settings({}, database_url=url), extra_plugins=[("casesplug", CasesPlugin())],
                           use_entry_points=False)

    leader = Identity("t|leader", "区领导", frozenset({Grant(Role.LEADER)}))
    page.render(PageContext(_host=host(database_url), identity=leader, plugin="builtin_pages", params=params))


def test_cockpit_page_renders_tiles_errors_and_filters(host, database_url):
    host.dispose()  # the page builds its own host on the same database
    at = AppTest.from_function(_page_script, args=(database_url, {"street": "清源街道"}), default_timeout=60).run()
    assert not at.exception, at.exception
    html = " ".join(m.value for m in at.markdown)
    for title in ("案件总量", "案件趋势", "最新案件", "故障指标"):
        assert title in html
    assert "10件" in html  # 30 cases, a third of them in 清源街道 (the filter came from the URL)
    assert [e.value for e in at.error if "casesplug" in e.value], "the failing tile names its plugin"
    assert at.multiselect(key="hz-streets").value == ["清源街道"]
    # changing the street filter recomputes every tile
    at.multiselect(key="hz-streets").set_value(["瀛海镇", "兴丰街道"]).run()
    assert "20件" in " ".join(m.value for m in at.markdown)


def test_pin_button_keeps_the_tile_on_top(host, database_url):
    host.dispose()
    at = AppTest.from_function(_page_script, args=(database_url, {}), default_timeout=60).run()
    at.button(key="hz-pin-cases_trend").click().run()
    assert not at.exception
    assert "我的置顶（1）" in " ".join(m.value for m in at.markdown)
    assert at.button(key="hz-pin-p-cases_trend").label == "取消置顶"


def test_excel_export_neutralises_formula_text(host):
    from openpyxl import load_workbook

    results = compute_tiles(host, LEADER)
    data = cockpit_export.excel_bytes(results, Filters(streets=("兴丰街道",)), exported_by="=cmd|' /C calc'!A0")
    wb = load_workbook(io.BytesIO(data))
    assert {"驾驶舱指标", "分项与趋势", "导出说明"} <= set(wb.sheetnames)
    top = next(ws for ws in wb.worksheets if ws.title.startswith("最新案件"))
    cells = [c for row in top.iter_rows() for c in row]
    evil = [c for c in cells if str(c.value).startswith("=HYPERLINK")]
    assert evil and all(c.data_type == "s" for c in evil)  # text, not a formula
    about = wb["导出说明"]
    assert any(c.value == "=cmd|' /C calc'!A0" and c.data_type == "s" for row in about.iter_rows() for c in row)
    summary = wb["驾驶舱指标"]
    headers = [c.value for c in summary[1]]
    assert {"指标", "数值", "目标值", "截止日期", "状态", "数据截至(北京时间)"} <= set(headers)


def test_snapshot_html_escapes_and_lays_out_every_tile(host):
    results = compute_tiles(host, LEADER)
    doc, height = cockpit_export.snapshot_html(results, Filters(), exported_by="<script>alert(1)</script>")
    assert "<script>alert(1)</script>" not in doc and "&lt;script&gt;" in doc
    for r in results:
        assert cockpit_export._e(r.tile.title) in doc
    assert doc.count("Plotly.newPlot(") == 2  # the breakdown and the trend
    assert height > 400


@pytest.mark.skipif(cockpit_export.chromium_path() is None, reason="needs chromium")
def test_snapshot_png_and_pdf(host):
    results = compute_tiles(host, LEADER)
    doc, height = cockpit_export.snapshot_html(results, Filters())
    assert cockpit_export.snapshot(doc, height, "png").startswith(b"\x89PNG")
    assert cockpit_export.snapshot(doc, height, "pdf").startswith(b"%PDF")


def test_tiles_are_recomputed_after_a_commit(host):
    compute_tiles(host, LEADER)
    commit_rows(host, "cases", _cases(33))
    recomputed = host.cockpit.invalidate(["cases"]).result(timeout=30)
    assert {r.tile.id for r in recomputed} == {"cases_total", "cases_trend", "cases_top", "cases_fail"}
    results = {r.tile.id: r for r in compute_tiles(host, LEADER)}
    assert results["cases_total"].value.value == 33 and results["cases_total"].cached  # served by the recompute
    assert not results["cases_fail"].cached  # errors are never cached
    # a commit to a ledger no tile reads recomputes nothing
    assert host.cockpit.invalidate(["no_such_ledger"]).result(timeout=5) == []


def test_commit_watcher_recomputes_in_the_background(host):
    compute_tiles(host, LEADER)
    host.cockpit.start_watching(interval=0.05)
    host.cockpit.start_watching(interval=0.05)  # idempotent
    watchers = [t for t in threading.enumerate() if t.name == "cockpit-commit-watcher"]
    assert len(watchers) == 1
    time.sleep(0.2)  # the watcher has seen the heads once
    host.events.close()  # as for a commit made where no event reaches this host
    commit_rows(host, "cases", _cases(36))  # runner not told
    deadline = time.monotonic() + 10
    total = None
    while time.monotonic() < deadline:
        total = {r.tile.id: r for r in compute_tiles(host, LEADER, tiles=[host.registry.tiles["cases_total"][0]])}
        if total["cases_total"].cached and total["cases_total"].value.value == 36:
            break
        time.sleep(0.05)
    assert total["cases_total"].cached and total["cases_total"].value.value == 36
    host.cockpit.stop_watching()
    assert not watchers[0].is_alive() and not host.cockpit.watching


def test_default_charts_for_standard_details():
    from huizhi.cockpit.charts import figure_for

    assert figure_for(Breakdown((("兴丰街道", 120_000.0), ("清源街道", 3.0)))) is not None
    fig = figure_for(Series(((dt.date(2025, 1, 1), 1.0), (dt.date(2025, 2, 1), 2.0)), unit="%", target=3.0))
    assert fig is not None and fig.layout.yaxis.ticksuffix == "%"
    assert figure_for(TopItems(("a",), ((1,),))) is None and figure_for(None) is None


def test_mini_charts_are_plain_html_in_our_palette():
    from huizhi.cockpit.charts import mini_chart

    bars = mini_chart(Breakdown(tuple((f"<街道{i}>", float(i)) for i in range(10)), by="镇街"), color="#123456")
    assert bars.count('class="hz-bar"') == 8 and "另有 2 项" in bars and "#123456" in bars
    assert "&lt;街道0&gt;" in bars and "<街道" not in bars  # labels are escaped
    trend = mini_chart(Series(((dt.date(2025, 1, 1), 10_000.0), (dt.date(2025, 2, 1), 250_000.0)), target=300_000))
    assert "<svg" in trend and "25万" in trend and "目标 30万" in trend and "2025.1" in trend
    assert mini_chart(TopItems(("a",), ((1,),))) is None


def test_chart_dialog_opens_the_interactive_figure(host, database_url):
    host.dispose()
    at = AppTest.from_function(_page_script, args=(database_url, {}), default_timeout=60).run()
    at.button(key="hz-zoom-cases_total").click().run()
    assert not at.exception
    assert any("按镇街" in str(df.value.columns[0]) for df in at.dataframe)


def test_error_results_are_counted_separately(host):
    counts = cockpit.status_counts(compute_tiles(host, LEADER))
    assert counts[Status.ERROR] == 1 and sum(counts.values()) == 4
