"""Plotly figures for cockpit tiles, in one colour scheme and Chinese number format.

Tiles whose ``TileValue.detail`` is a :class:`huizhi.specs.Series` or
:class:`huizhi.specs.Breakdown` get a chart without any plotting code in the plugin; a tile's
own ``render`` may call :func:`style` on a figure it builds to match. Values on axes are scaled to
万 / 亿 and hover labels use :func:`huizhi.fmt.format_number`.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from huizhi.cockpit.theme import SERIES_COLORS
from huizhi.fmt import axis_ticks, format_number, format_percent, scale_for
from huizhi.specs import Breakdown, Series

if TYPE_CHECKING:
    import plotly.graph_objects as go

FONT = "Noto Sans CJK SC, Source Han Sans SC, PingFang SC, Microsoft YaHei, sans-serif"
TILE_HEIGHT = 200


def _fmt(value: float, unit: str | None) -> str:
    """A detail's number in the detail's own unit (None: no unit; the runner resolves None to
    the tile's unit before anything is drawn)."""
    unit = unit or ""
    return format_percent(value) if unit == "%" else f"{format_number(value)}{unit}"


def detail_rows(detail: Series | Breakdown) -> list[tuple[str, str]]:
    """Every item or point of ``detail`` as (label, value shown in the detail's own unit): the
    dialog's table. A Breakdown of percentages in a tile counted in 台 shows 98.5%, never 98.51台;
    a partial last point is labelled 本月至今."""
    if isinstance(detail, Breakdown):
        return [(str(k), _fmt(v, detail.unit)) for k, v in detail.items]
    return [(point_label(detail, i), _fmt(y, detail.unit)) for i, (_, y) in enumerate(detail.points)]


def partial_label(series: Series) -> str:
    """What a series' partial last point is called: 本月至今 for a month, else 至今."""
    x = series.points[-1][0] if series.points else None
    return "本月至今" if isinstance(x, dt.date) and x.day == 1 else "至今"


def point_label(series: Series, i: int) -> str:
    """The label of point ``i``: 2026年12月, and 2026年12月（本月至今） for a partial last point."""
    text = _label(series.points[i][0])
    if series.partial and i == len(series.points) - 1:
        return f"{text}（{partial_label(series)}）"
    return text


def latest_complete(series: Series) -> tuple[Any, float] | None:
    """The last point that covers a whole period (the partial last point excluded)."""
    points = series.points[:-1] if series.partial else series.points
    return points[-1] if points else None


def style(fig: go.Figure, *, height: int = TILE_HEIGHT, color: str | None = None) -> go.Figure:
    """The cockpit look: compact margins, CJK font, light grid, our colour order."""
    fig.update_layout(
        height=height,
        margin=dict(l=4, r=8, t=6, b=4),
        font=dict(family=FONT, size=12, color="#3C4043"),
        colorway=[color, *SERIES_COLORS] if color else list(SERIES_COLORS),
        paper_bgcolor="rgba(0,0,0,0)",
        plot_bgcolor="rgba(0,0,0,0)",
        showlegend=False,
        hoverlabel=dict(font=dict(family=FONT)),
        separators=".,",
    )
    fig.update_xaxes(showgrid=False, zeroline=False, automargin=True)
    fig.update_yaxes(gridcolor="#ECEFF1", zeroline=False, automargin=True)
    return fig


def series_figure(series: Series, *, color: str | None = None, height: int = TILE_HEIGHT) -> go.Figure:
    import plotly.graph_objects as go

    xs = [p[0] for p in series.points]
    ys = [p[1] for p in series.points]
    div, suffix = (1.0, "") if series.unit == "%" else scale_for(ys)
    hover = [f"{point_label(series, i)}：{_fmt(y, series.unit)}" for i, y in enumerate(ys)]
    scaled = [y / div for y in ys]
    if series.kind == "bar":
        trace: Any = go.Bar(
            x=xs,
            y=scaled,
            marker_color=color or SERIES_COLORS[0],
            # a partial last period (this month so far) is drawn pale
            marker_opacity=[0.4 if series.partial and i == len(ys) - 1 else 1.0 for i in range(len(ys))],
            hovertext=hover,
            hoverinfo="text",
            name=series.name,
        )
    else:
        trace = go.Scatter(
            x=xs,
            y=scaled,
            mode="lines",
            line=dict(color=color or SERIES_COLORS[0], width=2),
            fill="tozeroy",
            fillcolor=_tint(color or SERIES_COLORS[0]),
            hovertext=hover,
            hoverinfo="text",
            name=series.name,
        )
    fig = go.Figure(trace)
    latest = latest_complete(series)
    if latest is not None and series.kind == "line":  # static on the cockpit: print the latest complete value
        fig.add_annotation(x=latest[0], y=latest[1] / div, text=_fmt(latest[1], series.unit), showarrow=False,
                           xanchor="right", yanchor="bottom", font=dict(size=11, color=color or SERIES_COLORS[0]))
    if series.partial and xs:
        fig.add_annotation(x=xs[-1], y=scaled[-1], text=partial_label(series), showarrow=False, yanchor="bottom",
                           font=dict(size=10, color="#80868B"))
    if series.target is not None:
        fig.add_hline(
            y=series.target / div,
            line=dict(color="#D93025", width=1, dash="dash"),
            annotation_text=f"目标 {_fmt(series.target, series.unit)}",
            annotation_font_size=11,
        )
    style(fig, height=height, color=color)
    if series.unit == "%":
        fig.update_yaxes(ticksuffix="%", tickformat=",~r")
    else:  # 0, 2万, 4万 … as the labels write them; never "0万"
        top = max([*scaled, (series.target or 0) / div, 0.0])
        tickvals, ticktext = axis_ticks(top, div, suffix)
        fig.update_yaxes(tickmode="array", tickvals=tickvals, ticktext=ticktext)
    if xs and isinstance(xs[0], dt.date):
        fig.update_xaxes(
            tickformat="%Y年%-m月" if len(xs) <= 12 else "%Y年", dtick="M12" if len(xs) > 12 else None
        )
    return fig


def breakdown_figure(
    breakdown: Breakdown, *, color: str | None = None, height: int | None = None
) -> go.Figure:
    import plotly.graph_objects as go

    items = list(breakdown.items[: breakdown.limit])[::-1]  # largest on top
    labels = [k for k, _ in items]
    values = [v for _, v in items]
    div, suffix = (1.0, "") if breakdown.unit == "%" else scale_for(values)
    fig = go.Figure(
        go.Bar(
            x=[v / div for v in values],
            y=labels,
            orientation="h",
            marker_color=color or SERIES_COLORS[0],
            hovertext=[f"{k}：{_fmt(v, breakdown.unit)}" for k, v in items],
            hoverinfo="text",
            text=[_fmt(v, breakdown.unit) for v in values],
            textposition="auto",
            textfont=dict(size=11),
            cliponaxis=False,
        )
    )
    style(fig, height=height or max(TILE_HEIGHT, 18 * len(items) + 20), color=color)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(showgrid=False, tickfont=dict(size=11))
    return fig


def figure_for(detail: Any, *, color: str | None = None, height: int | None = None) -> go.Figure | None:
    """A figure for a standard detail payload; None for anything else (tables, custom data)."""
    if isinstance(detail, Series) and detail.points:
        return series_figure(detail, color=color, height=height or TILE_HEIGHT)
    if isinstance(detail, Breakdown) and detail.items:
        return breakdown_figure(detail, color=color, height=height)
    return None


# ----------------------------------------------------------------------------------------------
# Mini charts as plain HTML/SVG: drawn by the browser with no JavaScript, so a cockpit of 50+
# tiles renders in about the time of the numbers alone (plotly costs ~80 ms of browser time per
# chart on the 2-core server, 4 s for 50). The same palette and number format as the figures.

MINI_BARS = 8


def _e(text: Any) -> str:
    import html

    return html.escape(str(text), quote=True)


def mini_series(series: Series, *, color: str | None = None, height: int = 88) -> str:
    color = color or SERIES_COLORS[0]
    ys = [float(p[1]) for p in series.points]
    if not ys:
        return ""
    lo, hi = min(0.0, min(ys)), max(ys)
    if series.target is not None:
        hi = max(hi, series.target)
    span = (hi - lo) or 1.0
    n = len(ys)
    w, h = 300.0, float(height)

    def xy(i: int, y: float) -> tuple[float, float]:
        return (i * w / max(1, n - 1), h - 4 - (y - lo) / span * (h - 8))

    pts = [xy(i, y) for i, y in enumerate(ys)]
    partial = bool(series.partial) and n > 0
    whole = pts[:-1] if partial and n > 1 else pts  # the partial last point is drawn apart
    line = " ".join(f"{x:.1f},{y:.1f}" for x, y in whole)
    if series.kind == "bar":
        bw = w / max(1, n) * 0.7
        shapes = "".join(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{bw:.1f}" height="{h - 4 - y:.1f}" fill="{color}"'
            + (' fill-opacity="0.4"' if partial and i == n - 1 else "") + "/>"
            for i, (x, y) in enumerate((i * w / max(1, n) + bw * 0.2, p[1]) for i, p in enumerate(pts))
        )
    else:
        area = f"M0,{h - 4:.1f} L{line.replace(' ', ' L')} L{whole[-1][0]:.1f},{h - 4:.1f} Z"
        shapes = (
            f'<path d="{area}" fill="{_tint(color, 0.14)}"/>'
            f'<polyline points="{line}" fill="none" stroke="{color}" stroke-width="2" '
            f'vector-effect="non-scaling-stroke" stroke-linejoin="round"/>'
        )
        if partial and n > 1:
            (x0, y0), (x1, y1) = pts[-2], pts[-1]
            shapes += (f'<line x1="{x0:.1f}" y1="{y0:.1f}" x2="{x1:.1f}" y2="{y1:.1f}" stroke="{color}" '
                       f'stroke-width="2" stroke-dasharray="3 3" stroke-opacity="0.5" '
                       f'vector-effect="non-scaling-stroke"/>')
    if series.target is not None:
        ty = h - 4 - (series.target - lo) / span * (h - 8)
        shapes += (f'<line x1="0" x2="{w}" y1="{ty:.1f}" y2="{ty:.1f}" stroke="#D93025" stroke-width="1" '
                   f'stroke-dasharray="5 4" vector-effect="non-scaling-stroke"/>')
    first, last = series.points[0][0], series.points[-1][0]
    target = f' · <span style="color:#D93025">目标 {_e(_fmt(series.target, series.unit))}</span>' if series.target is not None else ""
    latest = latest_complete(series)
    shown = f'最新 <b style="color:{color}">{_e(_fmt(latest[1], series.unit))}</b>' if latest is not None else ""
    if partial:  # this month so far: shown, but never as the latest value
        shown += f'{" · " if shown else ""}{_e(partial_label(series))} {_e(_fmt(ys[-1], series.unit))}'
    last_label = f"{_short(last)}（{partial_label(series)}）" if partial else _short(last)
    return (
        f'<div class="hz-mini"><svg viewBox="0 0 {w:.0f} {h:.0f}" preserveAspectRatio="none" width="100%" '
        f'height="{height}" role="img" aria-label="{_e(series.name or "趋势")}">{shapes}</svg>'
        f'<div class="hz-mini-axis"><span>{_e(_short(first))}</span>'
        f'<span>{shown}{target}</span>'
        f'<span>{_e(last_label)}</span></div></div>'
    )


def mini_breakdown(breakdown: Breakdown, *, color: str | None = None, limit: int = MINI_BARS) -> str:
    color = color or SERIES_COLORS[0]
    items = list(breakdown.items[:limit])
    if not items:
        return ""
    top = max((abs(v) for _, v in items), default=0) or 1.0
    rows = "".join(
        f'<div class="hz-bar"><span class="hz-bar-l" title="{_e(k)}">{_e(k)}</span>'
        f'<span class="hz-bar-b"><i style="width:{max(1.0, abs(v) / top * 100):.1f}%;background:{color}"></i></span>'
        f'<span class="hz-bar-v">{_e(_fmt(v, breakdown.unit))}</span></div>'
        for k, v in items
    )
    more = len(breakdown.items) - len(items)
    tail = f'<div class="hz-mini-axis"><span>按{_e(breakdown.by)}，另有 {more} 项</span></div>' if more > 0 else ""
    return f'<div class="hz-mini">{rows}{tail}</div>'


def mini_chart(detail: Any, *, color: str | None = None) -> str | None:
    """An HTML/SVG mini chart for a standard detail payload; None for anything else."""
    if isinstance(detail, Series) and detail.points:
        return mini_series(detail, color=color)
    if isinstance(detail, Breakdown) and detail.items:
        return mini_breakdown(detail, color=color)
    return None


MINI_CSS = """
.hz-mini { margin: 4px 0 2px; }
.hz-mini svg { display: block; }
.hz-mini-axis { display: flex; justify-content: space-between; gap: 6px; font-size: 0.72rem; opacity: 0.75;
  white-space: nowrap; overflow: hidden; }
.hz-bar { display: grid; grid-template-columns: minmax(4.5em, 7.5em) 1fr auto; gap: 6px; align-items: center;
  font-size: 0.76rem; line-height: 1.55; }
.hz-bar-l { overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.hz-bar-b { background: rgba(128,134,139,0.12); border-radius: 3px; height: 0.72rem; overflow: hidden; }
.hz-bar-b i { display: block; height: 100%; border-radius: 3px; }
.hz-bar-v { font-variant-numeric: tabular-nums; text-align: right; min-width: 3.5em; }
"""


def _label(x: Any) -> str:
    if isinstance(x, dt.datetime | dt.date):
        return f"{x.year}年{x.month}月"
    return str(x)


def _short(x: Any) -> str:
    if isinstance(x, dt.datetime | dt.date):
        return f"{x.year}.{x.month}"
    return str(x)


def _tint(hex_color: str, alpha: float = 0.12) -> str:
    h = hex_color.lstrip("#")
    r, g, b = (int(h[i : i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r},{g},{b},{alpha})"
