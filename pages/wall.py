"""领导驾驶舱 · 大屏: the cockpit on a wall screen or projector (``/cockpit?wall=1``).

One 1920×1080 screen, no scrolling, no Streamlit chrome, a dark theme and type readable from
three metres: the header (title, status counts, the current time and the time of the data), the
leader's pinned tiles (or the plan's vital signs) in two columns, and in the centre a map of
Daxing's 22 streets and towns coloured by a measure (``measure=<tile id>``). The whole screen is
one ``st.fragment(run_every=...)``: it recomputes every ``refresh`` seconds (default 60, ``0``
off) from the runner's cache, without reloading the page. The cockpit's filters (``street``,
``dept``, ``period``) apply here too.

What goes where is decided by :mod:`huizhi.cockpit.wall` (no Streamlit); this module draws it.
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Mapping, Sequence
from typing import Any

import streamlit as st

from huizhi.clock import BEIJING, beijing_today, utcnow
from huizhi.cockpit import (
    Status,
    TileResult,
    compute_tiles,
    filters_from_params,
    filters_to_params,
    load_pins,
)
from huizhi.cockpit import wall as layout
from huizhi.context import Filters, PageContext
from huizhi.fmt import format_as_of, format_clock, format_date, format_value
from huizhi.portal import host_of
from huizhi.specs import Series

WEEKDAYS = "一二三四五六日"
COUNTED = (Status.OVERDUE, Status.AT_RISK, Status.ON_TRACK, Status.MET)

_CSS = """
<style>
/* wall-screen mode: no Streamlit chrome, dark, one 1920x1080 screen */
section[data-testid="stSidebar"], [data-testid="stSidebarCollapsedControl"], [data-testid="stExpandSidebarButton"],
header[data-testid="stHeader"], [data-testid="stToolbar"], [data-testid="stDecoration"],
[data-testid="stStatusWidget"] { display: none !important; }
.stApp, [data-testid="stAppViewContainer"], [data-testid="stMain"] { background: #061224 !important; color: #EAF2FF; }
[data-testid="stMainBlockContainer"] { padding: 14px 24px 0 24px !important; max-width: none !important; }
[data-testid="stMainBlockContainer"] [data-testid="stVerticalBlock"] { gap: 12px; }
[data-stale="true"] { opacity: 1 !important; transition: none !important; }
.hzw { font-family: "Noto Sans CJK SC", "Source Han Sans SC", "PingFang SC", "Microsoft YaHei", sans-serif; }
.hzw-head { display: flex; align-items: center; gap: 28px; height: 88px; padding: 0 22px;
  border: 1px solid rgba(90,170,255,0.35); border-radius: 10px;
  background: linear-gradient(90deg, rgba(20,70,140,0.55), rgba(6,18,36,0.2) 45%, rgba(20,70,140,0.55)); }
.hzw-title { flex: 0 0 auto; }
.hzw-title b { display: block; font-size: 38px; line-height: 1.15; letter-spacing: 3px; color: #FFFFFF; }
.hzw-title span { font-size: 17px; color: #A9BCD6; }
.hzw-counts { flex: 1 1 auto; display: flex; justify-content: center; gap: 14px; }
.hzw-count { min-width: 104px; text-align: center; padding: 2px 12px; border-bottom: 4px solid; border-radius: 4px;
  background: rgba(255,255,255,0.04); }
.hzw-count b { display: block; font-size: 40px; line-height: 1.05; }
.hzw-count span { font-size: 18px; color: #C9D6E8; }
.hzw-time { flex: 0 0 auto; text-align: right; }
.hzw-now { font-size: 36px; font-weight: 700; font-variant-numeric: tabular-nums; color: #FFFFFF; line-height: 1.15; }
.hzw-date { font-size: 18px; color: #C9D6E8; }
.hzw-sub { font-size: 16px; color: #A9BCD6; }
.hzw-col { display: flex; flex-direction: column; gap: 14px; height: 892px; }
.hzw-tile { flex: 1 1 0; min-height: 0; overflow: hidden; display: flex; flex-direction: column; gap: 3px;
  padding: 12px 18px 10px 20px; border-radius: 10px; background: rgba(16,42,80,0.72);
  border: 1px solid rgba(90,170,255,0.22); border-left: 8px solid var(--st); }
.hzw-tile > * { flex-shrink: 0; }
.hzw-t-head { display: flex; justify-content: space-between; align-items: flex-start; gap: 10px; }
.hzw-t-title { font-size: 23px; font-weight: 600; line-height: 1.25; color: #EAF2FF; }
.hzw-badge { flex: 0 0 auto; font-size: 18px; font-weight: 700; color: #061224; background: var(--st);
  border-radius: 14px; padding: 1px 12px; }
.hzw-t-value { font-size: 54px; font-weight: 800; line-height: 1.0; color: #FFFFFF; font-variant-numeric: tabular-nums;
  margin-top: 2px; }
.hzw-t-value small { font-size: 24px; font-weight: 600; color: #C9D6E8; margin-left: 6px; }
.hzw-t-target { font-size: 19px; color: #DCE6F5; }
.hzw-bar { height: 10px; border-radius: 5px; background: rgba(255,255,255,0.12); overflow: hidden; }
.hzw-bar i { display: block; height: 100%; background: var(--st); border-radius: 5px; }
.hzw-t-reason { font-size: 17px; color: #C9D6E8; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.hzw-t-foot { margin-top: auto; font-size: 16px; color: #A9BCD6; white-space: nowrap; overflow: hidden;
  text-overflow: ellipsis; }
.hzw-t-error { font-size: 20px; color: #FFB4AB; }
.hzw-spark { height: 40px; }
.hzw-maphead { display: flex; align-items: baseline; justify-content: space-between; height: 40px; }
.hzw-maphead b { font-size: 26px; color: #FFFFFF; }
.hzw-maphead span { font-size: 17px; color: #A9BCD6; }
.hzw-foot { display: flex; justify-content: space-between; font-size: 16px; color: #A9BCD6; }
.st-key-hz-wall-measure p { font-size: 17px !important; }
.st-key-hz-wall-measure button { min-height: 34px; padding: 0 14px; background: rgba(16,42,80,0.8);
  border-color: rgba(90,170,255,0.35); color: #DCE6F5; }
.st-key-hz-wall-measure button[aria-checked="true"] { background: #1E6FD9 !important; border-color: #4DA3FF !important; }
.st-key-hz-wall-measure button[aria-checked="true"] * { color: #FFFFFF !important; }
.st-key-hz-wall-measure button[aria-checked="false"] * { color: #DCE6F5 !important; }
.st-key-hz-wall-exit button { min-height: 34px; background: rgba(16,42,80,0.8); border: 1px solid rgba(90,170,255,0.35); }
.st-key-hz-wall-exit button p, .st-key-hz-wall-exit button span { color: #DCE6F5 !important; font-size: 16px !important; }
</style>
"""

# keeps the clock in the header ticking between refreshes (Beijing time whatever the browser's zone)
_CLOCK_JS = """
<script>
(function () {
  if (window.__hzwClock) clearInterval(window.__hzwClock);
  const pad = (n) => String(n).padStart(2, '0');
  const tick = () => {
    const bj = new Date(Date.now() + 8 * 3600 * 1000);  // UTC+8, no DST
    const time = pad(bj.getUTCHours()) + ':' + pad(bj.getUTCMinutes()) + ':' + pad(bj.getUTCSeconds());
    const day = bj.getUTCFullYear() + '年' + (bj.getUTCMonth() + 1) + '月' + bj.getUTCDate() + '日 星期' +
      '日一二三四五六'[bj.getUTCDay()];
    document.querySelectorAll('.hzw-now').forEach((e) => { e.textContent = time; });
    document.querySelectorAll('.hzw-date').forEach((e) => { e.textContent = day; });
  };
  tick();
  window.__hzwClock = setInterval(tick, 1000);
})();
</script>
"""


def requested(params: Mapping[str, Any]) -> bool:
    """True when the URL asks for the wall screen (``wall=1``; also ``true``/``yes``/``on``)."""
    raw = params.get("wall")
    if isinstance(raw, list | tuple):
        raw = raw[0] if raw else None
    return str(raw or "").strip().lower() in {"1", "true", "yes", "on"}


def wall_params(filters: Filters, refresh: int = layout.DEFAULT_REFRESH) -> dict[str, str]:
    """Query parameters of the wall screen for these filters (the cockpit's 大屏 button)."""
    return {"wall": "1", "refresh": str(refresh), **filters_to_params(filters)}


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _department(result: TileResult) -> str:
    from huizhi import district

    return "跨部门" if result.tile.department is None else district.department_name(result.tile.department)


def _value_html(result: TileResult) -> str:
    value = result.value.value if result.value is not None else None
    unit = result.tile.unit
    shown = format_value(value, unit)
    if value is not None and unit and shown.endswith(unit):
        return f"{_e(shown[: -len(unit)])}<small>{_e(unit)}</small>"
    return _e(shown)


def _spark(series: Series, color: str) -> str:
    ys = [float(v) for _, v in series.points if v is not None]
    if len(ys) < 2:
        return ""
    lo, hi = min(ys), max(ys)
    span = hi - lo or 1.0
    step = 300 / (len(ys) - 1)
    pts = " ".join(f"{i * step:.1f},{36 - 32 * (y - lo) / span:.1f}" for i, y in enumerate(ys))
    return (
        f'<svg class="hzw-spark" viewBox="0 0 300 40" preserveAspectRatio="none" width="100%">'
        f'<polyline points="{pts}" fill="none" stroke="{color}" stroke-width="2.5" '
        f'vector-effect="non-scaling-stroke"/></svg>'
    )


def tile_html(result: TileResult) -> str:
    """One wall tile: title and status, the value large, target and deadline, progress, reason,
    department and the time of its data."""
    tile, a = result.tile, result.assessment
    color = layout.STATUS_COLORS[a.status]
    parts = [
        f'<div class="hzw-tile" data-tile-id="{_e(tile.id)}" data-status="{_e(a.status)}" style="--st:{color}">',
        f'<div class="hzw-t-head"><span class="hzw-t-title">{_e(tile.title)}</span>'
        f'<span class="hzw-badge">{_e(a.status)}</span></div>',
    ]
    if result.error is not None:
        parts.append(f'<div class="hzw-t-error">{_e(result.error)}</div>')
    else:
        parts.append(f'<div class="hzw-t-value">{_value_html(result)}</div>')
        if tile.target is not None:
            target = f"目标 {format_value(tile.target.value, tile.unit)} · {format_date(tile.target.deadline)}前"
            if a.progress is not None and a.status is not Status.NO_DATA:
                target += " · 低于基线" if a.progress < 0 else f" · 完成 {min(999, a.progress * 100):.0f}%"
            parts.append(f'<div class="hzw-t-target">{_e(target)}</div>')
            if a.progress is not None and a.status is not Status.NO_DATA:
                width = min(100.0, max(0.0, a.progress * 100))
                parts.append(f'<div class="hzw-bar"><i style="width:{width:.1f}%"></i></div>')
            parts.append(f'<div class="hzw-t-reason" title="{_e(a.reason)}">{_e(a.reason)}</div>')
        else:
            detail = result.value.detail if result.value is not None else None
            if isinstance(detail, Series):
                parts.append(_spark(detail, color))
            note = (result.value.note if result.value is not None else "") or a.reason
            parts.append(f'<div class="hzw-t-reason" title="{_e(note)}">{_e(note)}</div>')
    parts.append(f'<div class="hzw-t-foot">{_e(_department(result))} · 数据截至 {_e(format_as_of(result.as_of))}</div>')
    parts.append("</div>")
    return "".join(parts)


def header_html(results: Sequence[TileResult], now_bj: dt.datetime, data_as_of: dt.datetime | None,
                refresh: int, filters: Filters) -> str:
    counts = {s: sum(r.status is s for r in results) for s in Status}
    shown = [s for s in COUNTED] + [s for s in (Status.STALE, Status.NO_DATA, Status.ERROR) if counts[s]]
    chips = "".join(
        f'<div class="hzw-count" style="border-color:{layout.STATUS_COLORS[s]}">'
        f'<b style="color:{layout.STATUS_COLORS[s]}">{counts[s]}</b><span>{_e(s)}</span></div>'
        for s in shown
    )
    scope = "全区" if not (filters.streets or filters.departments) else "、".join(
        [*filters.streets, *filters.departments][:3]) + ("等" if len(filters.streets) + len(filters.departments) > 3 else "")
    every = f"每 {refresh} 秒自动刷新" if refresh else "自动刷新已关闭"
    day = f"{now_bj.year}年{now_bj.month}月{now_bj.day}日 星期{WEEKDAYS[now_bj.weekday()]}"
    return (
        '<div class="hzw hzw-head">'
        '<div class="hzw-title"><b>大兴区智慧城市 · 领导驾驶舱</b>'
        f"<span>《新型智慧城市建设行动计划（2022-2025年）》城市生命体征 · {_e(scope)} · 共 {len(results)} 项指标</span></div>"
        f'<div class="hzw-counts">{chips}</div>'
        '<div class="hzw-time">'
        f'<div class="hzw-now">{format_clock(now_bj)}</div><div class="hzw-date">{day}</div>'
        f'<div class="hzw-sub">数据截至 <span class="hzw-asof">{_e(format_as_of(data_as_of))}</span>（北京时间） · '
        f'{every} · 刷新于 <span class="hzw-refreshed">{format_clock(now_bj)}</span></div>'
        "</div></div>"
    )


def _column(results: Sequence[TileResult]) -> str:
    return '<div class="hzw hzw-col">' + "".join(tile_html(r) for r in results) + "</div>"


def _measure(ctx: PageContext, measures: Sequence[layout.StreetMeasure]) -> layout.StreetMeasure | None:
    if not measures:
        return None
    by_id = {m.id: m for m in measures}
    wanted = st.session_state.get("hz-wall-measure") or ctx.params.get("measure")
    chosen = by_id.get(str(wanted)) or measures[0]
    if len(measures) > 1:
        picked = st.segmented_control(
            "地图指标", [m.id for m in measures], default=chosen.id, key="hz-wall-measure",
            format_func=lambda i: by_id[i].title, label_visibility="collapsed",
        )
        chosen = by_id.get(str(picked)) or chosen
        if st.query_params.get("measure") != chosen.id:  # a reload or a shared link shows the same map
            st.query_params["measure"] = chosen.id
    return chosen


def screen(ctx: PageContext, refresh: int, first_day: dt.date) -> None:
    """One refresh of the wall: compute (cached), then draw everything."""
    if ctx.identity.is_expired():  # a screen left on for days: let the portal sign the person out
        st.rerun(scope="app")
    host = host_of(ctx)
    today = ctx.today + (beijing_today() - first_day)  # the day moves on while the screen stays
    filters = filters_from_params(ctx.params)
    results = compute_tiles(host, ctx.identity, filters=filters, today=today)
    pins = load_pins(host, ctx.identity)
    chosen = layout.wall_tiles(results, pins)
    now_bj = utcnow().replace(tzinfo=dt.UTC).astimezone(BEIJING)
    newest = max((r.as_of for r in chosen if r.as_of is not None), default=None)
    st.html(header_html(results, now_bj, newest, refresh, filters) + _CLOCK_JS, unsafe_allow_javascript=True)
    if not results:
        st.markdown('<div class="hzw hzw-t-title">暂无您可查看的驾驶舱指标。</div>', unsafe_allow_html=True)
        return
    half = (len(chosen) + 1) // 2
    left, mid, right = st.columns([1, 2.1, 1], gap="small")
    left.markdown(_column(chosen[:half]), unsafe_allow_html=True)
    right.markdown(_column(chosen[half:]), unsafe_allow_html=True)
    with mid, st.container(key="hz-wall-map", gap=None):
        measures = layout.street_measures(results)
        head, pick = st.columns([1, 3.2], vertical_alignment="center")
        with pick:
            measure = _measure(ctx, measures)
        head.markdown(
            f'<div class="hzw hzw-maphead" title="{_e(measure.label if measure else "")}"><b>镇街分布</b></div>',
            unsafe_allow_html=True,
        )
        fig = layout.district_map(measure, size=layout.MAP_SIZE)
        st.plotly_chart(fig, config={"displayModeBar": False, "scrollZoom": False}, theme=None,
                        key="hz-wall-map-chart", width="content")
    source = "我的置顶" if any(p in {r.tile.id for r in results} for p in pins) else "城市生命体征（未置顶时的默认指标）"
    more = len([p for p in pins if p in {r.tile.id for r in results}]) - len(chosen)
    foot_l, foot_r = st.columns([4, 1], vertical_alignment="center")
    foot_l.markdown(
        f'<div class="hzw hzw-foot"><span>{_e(source)} {len(chosen)} 项'
        + (f"（另有 {more} 项置顶未显示）" if more > 0 else "")
        + " · 在驾驶舱中“置顶”即可更换大屏指标 · 地图数值来自各镇街分项</span></div>",
        unsafe_allow_html=True,
    )
    with foot_r, st.container(key="hz-wall-exit", horizontal=True, horizontal_alignment="right"):
        if st.button("退出大屏", key="hz-wall-exit-button", icon=":material/close_fullscreen:"):
            leave_wall()


def leave_wall() -> None:
    """Back to the cockpit with the same filters: the wall's parameters leave the address bar (a
    page link to the same page would keep them there, so a reload would open the wall again)."""
    for key in ("wall", "refresh", "measure"):
        if key in st.query_params:
            del st.query_params[key]
    st.rerun(scope="app")


def render(ctx: PageContext) -> None:
    st.html(_CSS)
    refresh = layout.refresh_seconds(ctx.params)
    first_day = beijing_today()
    body = st.fragment(run_every=refresh or None)(screen)
    body(ctx, refresh, first_day)
