"""领导驾驶舱: the plan's vital signs at a glance, tiles of every department grouped by theme.

``render(ctx)`` is registered by the built-in pages plugin (url path ``cockpit``, permission
``Perm.COCKPIT``). The numbers come from :func:`huizhi.cockpit.compute_tiles` (concurrent,
cached, permission-scoped); this module only lays them out.

Query parameters (``street``, ``dept``, ``period``, see :func:`huizhi.cockpit.filters_to_params`)
preset the global filters, and every drill-down link carries the current filters on.
"""

from __future__ import annotations

import datetime as dt
import html
import logging
import time
from collections.abc import Sequence
from typing import Any

import streamlit as st

from huizhi import district
from huizhi.clock import BEIJING, utcnow
from huizhi.cockpit import (
    FILTER_LABELS,
    STATUS_ICON,
    STATUS_STYLE,
    THEME_COLORS,
    Status,
    TileResult,
    compute_tiles,
    filters_from_params,
    filters_to_params,
    load_pins,
    move_pin,
    normalize_filters,
    status_counts,
    toggle_pin,
)
from huizhi.context import Filters, PageContext, TileContext
from huizhi.fmt import format_as_of, format_date, format_value
from huizhi.portal import host_of
from huizhi.specs import Breakdown, Series, Theme, TopItems

log = logging.getLogger(__name__)

HEADER_STATUSES = (Status.OVERDUE, Status.AT_RISK, Status.ON_TRACK, Status.MET, Status.STALE, Status.NO_DATA)
ALL_TIME = "全部时间"
# Charts a tile's own render() returns: static on the overview (plotly's interactive layers cost
# about a fifth of the browser's drawing time); standard details are HTML/SVG mini charts, and
# the interactive plotly figure opens in the "图表" dialog.
CHART_CONFIG = {"displayModeBar": False, "staticPlot": True}

_CSS = """
<style>
/* cards flow: 4 a row on a 1920 wall screen, 3 on a 1366 laptop (sidebar open), 1 on a phone */
div[data-testid="stLayoutWrapper"]:has(> div[class*="st-key-hz-tile-"]) {
  flex: 1 1 290px !important; min-width: 270px; max-width: 640px; }
div[data-testid="stMainBlockContainer"] { padding-top: 2.5rem; }
.hz-counts { display: flex; flex-wrap: wrap; gap: 10px; margin: 2px 0 6px; }
.hz-count { flex: 1 1 120px; background: var(--secondary-background-color, #F6F8FA); border-radius: 8px;
  padding: 6px 12px; border-left: 6px solid; }
.hz-count b { font-size: 1.9rem; line-height: 1.2; display: block; }
.hz-count span { font-size: 0.85rem; opacity: 0.8; }
.hz-title { font-weight: 600; font-size: 0.98rem; line-height: 1.35; display: flex; justify-content: space-between;
  gap: 6px; align-items: flex-start; }
.hz-badge { font-size: 0.75rem; color: #fff; border-radius: 10px; padding: 1px 8px; white-space: nowrap; }
.hz-value { font-size: 2rem; font-weight: 700; line-height: 1.15; margin-top: 2px; }
.hz-value small { font-size: 0.95rem; font-weight: 500; opacity: 0.75; margin-left: 4px; }
.hz-meta { font-size: 0.8rem; opacity: 0.78; line-height: 1.45; }
.hz-top { font-size: 0.78rem; border-collapse: collapse; width: 100%; margin: 4px 0; }
.hz-top td, .hz-top th { border-bottom: 1px solid rgba(128,134,139,0.2); padding: 1px 4px; text-align: left; }
.hz-theme { font-size: 1.25rem; font-weight: 700; border-left: 6px solid; padding-left: 10px; margin: 10px 0 2px; }
</style>
"""


# ----------------------------------------------------------------------------------------------
# Filters


def _month_start(day: dt.date, months_back: int) -> dt.date:
    index = day.year * 12 + day.month - 1 - months_back
    return dt.date(index // 12, index % 12 + 1, 1)


def period_options(today: dt.date) -> dict[str, tuple[dt.date, dt.date] | None]:
    """The plan's years, this year and quarter, and the last 12 months: few distinct periods, so
    viewers share cached results and rollups (any period is exact: filters apply to raw dates)."""
    options: dict[str, tuple[dt.date, dt.date] | None] = {ALL_TIME: None}
    options["近12个月"] = (_month_start(today, 11), today)
    options["本年度"] = (dt.date(today.year, 1, 1), dt.date(today.year, 12, 31))
    q_start = dt.date(today.year, 3 * ((today.month - 1) // 3) + 1, 1)
    options["本季度"] = (q_start, _month_start(q_start, -3) - dt.timedelta(days=1))
    for year in range(today.year - 1, 2021, -1):
        options[f"{year}年"] = (dt.date(year, 1, 1), dt.date(year, 12, 31))
    return options


def _init_filters(ctx: PageContext, today: dt.date) -> dict[str, tuple[dt.date, dt.date] | None]:
    options = period_options(today)
    preset = filters_from_params(ctx.params)
    if "hz-streets" not in st.session_state:
        st.session_state["hz-streets"] = [s for s in preset.streets if s in district.street_names()]
        st.session_state["hz-depts"] = [d for d in preset.departments if d in district.department_names()]
        label = ALL_TIME
        if preset.period is not None:
            label = next((k for k, v in options.items() if v == preset.period), None) or (
                f"自定义：{format_date(preset.period[0])} 至 {format_date(preset.period[1])}"
            )
            options.setdefault(label, preset.period)
        st.session_state["hz-period-custom"] = (label, preset.period) if label not in period_options(today) else None
        st.session_state["hz-period"] = label
    custom = st.session_state.get("hz-period-custom")
    if custom:
        options.setdefault(custom[0], custom[1])
    return options


def filter_bar(ctx: PageContext, today: dt.date) -> Filters:
    options = _init_filters(ctx, today)
    c1, c2, c3 = st.columns([3, 3, 2])
    streets = c1.multiselect("镇街", district.street_names(), key="hz-streets", placeholder="全区 22 个镇街")
    depts = c2.multiselect("部门", district.department_names(), key="hz-depts", placeholder="全部部门")
    label = c3.selectbox("时间", list(options), key="hz-period")
    filters = Filters(streets=tuple(streets), departments=tuple(depts), period=options.get(label))
    _sync_url(filters)
    return filters


def _sync_url(filters: Filters) -> None:
    """Keep the filters in the address bar, so a reload or a shared link shows the same view."""
    wanted = filters_to_params(normalize_filters(filters))
    for key in ("street", "dept", "period"):
        if key in wanted:
            if st.query_params.get(key) != wanted[key]:
                st.query_params[key] = wanted[key]
        elif key in st.query_params:
            del st.query_params[key]


# ----------------------------------------------------------------------------------------------
# Pieces of a tile card


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _department(result: TileResult) -> str:
    return "跨部门" if result.tile.department is None else district.department_name(result.tile.department)


def header(results: Sequence[TileResult]) -> None:
    counts = status_counts(results)
    shown = HEADER_STATUSES + ((Status.DATA_DROP,) if counts[Status.DATA_DROP] else ())
    boxes = "".join(
        f'<div class="hz-count" style="border-color:{STATUS_STYLE[s][1]}"><b>{counts[s]}</b><span>{_e(s)}</span></div>'
        for s in shown
    )
    failing = counts[Status.ERROR] + counts[Status.DENIED]
    if failing:
        boxes += (
            f'<div class="hz-count" style="border-color:{STATUS_STYLE[Status.ERROR][1]}"><b>{failing}</b>'
            f"<span>无法显示</span></div>"
        )
    st.markdown(f'<div class="hz-counts">{boxes}</div>', unsafe_allow_html=True)


def _mini(ctx: PageContext, result: TileResult) -> str | None:
    """The HTML mini chart (or top-items table) for a tile's detail, built once per cached value."""
    from huizhi.cockpit.charts import mini_chart

    value = result.value
    if value is None or value.detail is None:
        return None

    def build() -> tuple[Any, str | None]:
        detail = value.detail
        if isinstance(detail, TopItems) and detail.rows:
            head = "".join(f"<th>{_e(c)}</th>" for c in detail.columns)
            body = "".join("<tr>" + "".join(f"<td>{_e(v)}</td>" for v in row) + "</tr>" for row in detail.rows[:8])
            return value, f'<table class="hz-top"><tr>{head}</tr>{body}</table>'
        return value, mini_chart(detail, color=THEME_COLORS.get(result.tile.theme))

    return host_of(ctx).cockpit.remember(("mini", result.tile.id, id(value)), build)[1]


def _has_figure(result: TileResult) -> bool:
    return result.value is not None and isinstance(result.value.detail, Series | Breakdown)


@st.dialog("指标详情", width="large")
def _detail_dialog(ctx: PageContext, result: TileResult) -> None:
    from huizhi.cockpit.charts import detail_rows, figure_for

    tile, a = result.tile, result.assessment
    st.markdown(f"#### {_e(tile.title)}")
    st.caption(f"{_department(result)} · {a.status} · {a.reason}")
    detail = result.value.detail if result.value is not None else None
    fig = figure_for(detail, color=THEME_COLORS.get(tile.theme), height=420)
    if fig is not None:  # interactive here: hover shows every value
        st.plotly_chart(fig, config={"displayModeBar": False}, theme=None, key=f"hz-dialog-{tile.id}")
        import pandas as pd

        rows = detail_rows(detail)  # each value in the detail's own unit, not the tile's
        label = f"按{detail.by}" if isinstance(detail, Breakdown) else "时间"
        st.dataframe(pd.DataFrame(rows, columns=[label, "数值"]),
                     hide_index=True, width="stretch", height=min(400, 36 * (len(rows) + 1)))
    if tile.description:
        st.caption(tile.description)


def _chart(ctx: PageContext, result: TileResult, filters: Filters, figures: dict[str, Any]) -> None:
    tile, value = result.tile, result.value
    if tile.render is not None:
        try:
            tctx = TileContext(_host=host_of(ctx), identity=ctx.identity, plugin=result.plugin, tile=tile,
                               filters=filters, today=ctx.today)
            drawn = tile.render(tctx, value)
        except Exception as exc:
            log.error("render of tile %s (plugin %s) failed", tile.id, result.plugin, exc_info=exc)
            st.error(f"图表绘制出错（插件：{result.plugin}），数值不受影响。")
            return
        if drawn is not None and hasattr(drawn, "to_plotly_json"):
            from huizhi.cockpit.charts import style

            figures[tile.id] = drawn
            st.plotly_chart(style(drawn), config=CHART_CONFIG, theme=None, key=f"hz-chart-{tile.id}")
        return
    mini = _mini(ctx, result)
    if mini:
        st.markdown(mini, unsafe_allow_html=True)


def tile_card(ctx: PageContext, result: TileResult, filters: Filters, pins: list[str], figures: dict[str, Any],
              pinned_section: bool = False) -> None:
    tile, a = result.tile, result.assessment
    color = STATUS_STYLE[a.status][1]
    key = f"hz-tile-{'p-' if pinned_section else ''}{tile.id}"
    with st.container(border=True, key=key):
        st.markdown(
            f'<div class="hz-title"><span>{_e(tile.title)}</span>'
            f'<span class="hz-badge" style="background:{color}" title="{_e(a.reason)}">{_e(a.status)}</span></div>',
            unsafe_allow_html=True,
        )
        if result.error is not None:
            if a.status is Status.DENIED:
                st.info(result.error, icon=STATUS_ICON[Status.DENIED])
            else:
                st.error(result.error, icon=STATUS_ICON[Status.ERROR])
                st.caption(f"技术细节：{result.error_detail}")
        else:
            value = result.value.value if result.value is not None else None
            shown = format_value(value, tile.unit)
            st.markdown(f'<div class="hz-value" title="{_e(a.reason)}">{_e(shown)}</div>', unsafe_allow_html=True)
            lines = []
            target = result.target  # the value's own target (this period's deadline), else the tile's
            if target is not None:
                lines.append(f"目标 {format_value(target.value, tile.unit)} · {format_date(target.deadline)}前")
            if target is not None or a.status in (Status.STALE, Status.NO_DATA, Status.DATA_DROP):
                lines.append(a.reason)
            st.markdown(
                '<div class="hz-meta">' + "<br>".join(_e(x) for x in lines if x) + "</div>", unsafe_allow_html=True
            )
            if target is not None and a.progress is not None and a.status is not Status.NO_DATA:
                done = "低于基线" if a.progress < 0 else f"完成 {min(999, a.progress * 100):.0f}%"
                st.progress(min(1.0, max(0.0, a.progress)), text=done)
            if result.value is not None:
                _chart(ctx, result, filters, figures)
                if result.value.note:
                    st.caption(result.value.note[:160])
            ignored = _ignored_filters(result, filters)
            st.caption(
                f"{_department(result)} · 数据截至 {format_as_of(result.as_of)}"
                + (f" · 不按{ignored}筛选" if ignored else "")
            )
        with st.container(horizontal=True, vertical_alignment="center", gap="small"):
            if tile.drilldown:
                ctx.link(tile.drilldown, label="查看明细", icon=":material/open_in_new:", **filters_to_params(filters))
            zoom = result.ok and _has_figure(result) and tile.render is None
            if zoom and st.button("图表", key=f"hz-zoom-{'p-' if pinned_section else ''}{tile.id}",
                                  icon=":material/zoom_in:", type="tertiary", help="放大查看交互图表和全部数值"):
                _detail_dialog(ctx, result)
            pinned = tile.id in pins
            st.button(
                "取消置顶" if pinned else "置顶", key=f"hz-pin-{'p-' if pinned_section else ''}{tile.id}",
                icon=":material/keep_off:" if pinned else ":material/keep:", type="tertiary",
                on_click=_toggle_pin, args=(ctx, tile.id),
            )
            if pinned_section:
                st.button("", key=f"hz-up-{tile.id}", icon=":material/arrow_back:", type="tertiary", help="前移",
                          on_click=_move_pin, args=(ctx, tile.id, -1))
                st.button("", key=f"hz-down-{tile.id}", icon=":material/arrow_forward:", type="tertiary", help="后移",
                          on_click=_move_pin, args=(ctx, tile.id, 1))


def _ignored_filters(result: TileResult, filters: Filters) -> str:
    active = []
    if filters.streets:
        active.append("street")
    if filters.departments:
        active.append("department")
    if filters.period is not None:
        active.append("period")
    return "、".join(FILTER_LABELS[f] for f in active if f not in result.filters_applied)


def _toggle_pin(ctx: PageContext, tile_id: str) -> None:
    toggle_pin(host_of(ctx), ctx.identity, tile_id)


def _move_pin(ctx: PageContext, tile_id: str, offset: int) -> None:
    move_pin(host_of(ctx), ctx.identity, tile_id, offset)


def grid(ctx: PageContext, results: Sequence[TileResult], filters: Filters, pins: list[str],
         figures: dict[str, Any], key: str, pinned_section: bool = False) -> None:
    with st.container(horizontal=True, key=f"hz-grid-{key}", gap="small"):
        for result in results:
            tile_card(ctx, result, filters, pins, figures, pinned_section=pinned_section)


# ----------------------------------------------------------------------------------------------
# Exports


def exports(ctx: PageContext, results: Sequence[TileResult], filters: Filters, figures: dict[str, Any]) -> None:
    from huizhi.cockpit import export as cockpit_export

    stamp = dt.datetime.now(BEIJING).strftime("%Y%m%d-%H%M")
    who = ctx.identity.name

    def excel() -> bytes:
        ctx.audit("cockpit.export", "cockpit", format="xlsx", tiles=len(results))
        return cockpit_export.excel_bytes(results, filters, exported_by=who)

    def image(fmt: str) -> bytes:
        ctx.audit("cockpit.export", "cockpit", format=fmt, tiles=len(results))
        doc, height = cockpit_export.snapshot_html(results, filters, figures=figures, exported_by=who)
        try:
            return cockpit_export.snapshot(doc, height, fmt)  # type: ignore[arg-type]
        except Exception as exc:  # no Chromium, or it failed: fall back to the printable HTML
            log.error("cockpit snapshot (%s) failed: %s", fmt, exc)
            return doc.encode("utf-8")

    with st.popover("导出", icon=":material/download:"):
        st.caption("导出当前筛选条件下您可见的全部指标。")
        st.download_button("指标数据（Excel）", data=excel, file_name=f"驾驶舱指标-{stamp}.xlsx",
                           mime="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                           icon=":material/table:", key="hz-export-xlsx", width="stretch")
        st.download_button("快照图片（PNG）", data=lambda: image("png"), file_name=f"驾驶舱快照-{stamp}.png",
                           mime="image/png", icon=":material/image:", key="hz-export-png", width="stretch")
        st.download_button("快照文档（PDF）", data=lambda: image("pdf"), file_name=f"驾驶舱快照-{stamp}.pdf",
                           mime="application/pdf", icon=":material/picture_as_pdf:", key="hz-export-pdf",
                           width="stretch")
        if cockpit_export.chromium_path() is None:
            st.caption(cockpit_export.SnapshotUnavailable.user_message)


# ----------------------------------------------------------------------------------------------
# The page


def render(ctx: PageContext) -> None:
    from huizhi.cockpit.charts import MINI_CSS
    from huizhi_pages import wall

    if wall.requested(ctx.params):  # ?wall=1: the wall-screen mode (大屏), see pages/wall.py
        wall.render(ctx)
        return
    st.markdown(_CSS.replace("</style>", MINI_CSS + "</style>"), unsafe_allow_html=True)
    today = ctx.today  # the one day of this view: tiles' values and their judgement
    title_col, export_col = st.columns([5, 2], vertical_alignment="bottom")
    title_col.markdown("## 领导驾驶舱")
    title_col.caption("《大兴区新型智慧城市建设行动计划（2022-2025年）》实施情况 · 城市生命体征")
    filters = filter_bar(ctx, today)

    started = time.perf_counter()
    results = compute_tiles(host_of(ctx), ctx.identity, filters=filters, today=today)
    seconds = time.perf_counter() - started
    if not results:
        st.info("暂无您可查看的驾驶舱指标。")
        return
    header(results)

    present = [s for s in Status if any(r.status is s for r in results)]
    only = st.pills("只看", present, selection_mode="multi", key="hz-only",
                    format_func=lambda s: f"{s}（{sum(r.status is s for r in results)}）")
    shown = [r for r in results if not only or r.status in only]
    pins = [p for p in load_pins(host_of(ctx), ctx.identity) if any(r.tile.id == p for r in results)]
    figures: dict[str, Any] = {}

    pinned = [next(r for r in shown if r.tile.id == p) for p in pins if any(r.tile.id == p for r in shown)]
    if pinned:
        st.markdown(f'<div class="hz-theme" style="border-color:#202124">我的置顶（{len(pinned)}）</div>',
                    unsafe_allow_html=True)
        grid(ctx, pinned, filters, pins, figures, "pinned", pinned_section=True)
    for theme in Theme:
        items = [r for r in shown if r.tile.theme == theme and r.tile.id not in pins]
        if not items:
            continue
        st.markdown(
            f'<div class="hz-theme" style="border-color:{THEME_COLORS[theme]}">{_e(theme)}（{len(items)}）</div>',
            unsafe_allow_html=True,
        )
        grid(ctx, items, filters, pins, figures, theme.name.lower())

    with export_col, st.container(horizontal=True, horizontal_alignment="right", gap="small"):
        ctx.link("cockpit", label="大屏", icon=":material/tv:", **wall.wall_params(filters))
        exports(ctx, shown, filters, figures)
    cached = sum(r.cached for r in results)
    newest = max((r.as_of for r in results if r.as_of is not None), default=None)
    st.caption(
        f"共 {len(results)} 项指标，计算用时 {seconds:.2f} 秒（其中 {cached} 项来自缓存，台账提交后自动重算）；"
        f"最新数据 {format_as_of(newest)}；页面生成于 {format_as_of(utcnow())}（北京时间）。"
    )
