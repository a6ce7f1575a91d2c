"""Plotly figures for cockpit tiles, in one colour scheme and Chinese number format.

Tiles whose ``TileValue.detail`` is a :class:`huizhi.cockpit.Series` or
:class:`huizhi.cockpit.Breakdown` get a chart without any plotting code in the plugin; a tile's
own ``render`` may call :func:`style` on a figure it builds to match. Values on axes are scaled to
万 / 亿 and hover labels use :func:`huizhi.cockpit.format_number`.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from huizhi.cockpit import (
    SERIES_COLORS,
    Breakdown,
    Series,
    format_number,
    format_percent,
    scale_for,
)

if TYPE_CHECKING:
    import plotly.graph_objects as go

FONT = "Noto Sans CJK SC, Source Han Sans SC, PingFang SC, Microsoft YaHei, sans-serif"
TILE_HEIGHT = 200


def _fmt(value: float, unit: str) -> str:
    return format_percent(value) if unit == "%" else f"{format_number(value)}{unit}"


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
    hover = [f"{_label(x)}：{_fmt(y, series.unit)}" for x, y in zip(xs, ys, strict=True)]
    scaled = [y / div for y in ys]
    if series.kind == "bar":
        trace: Any = go.Bar(
            x=xs,
            y=scaled,
            marker_color=color or SERIES_COLORS[0],
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
    if xs and series.kind == "line":  # charts are static on the cockpit: print the latest value
        fig.add_annotation(x=xs[-1], y=scaled[-1], text=_fmt(ys[-1], series.unit), showarrow=False,
                           xanchor="right", yanchor="bottom", font=dict(size=11, color=color or SERIES_COLORS[0]))
    if series.target is not None:
        fig.add_hline(
            y=series.target / div,
            line=dict(color="#D93025", width=1, dash="dash"),
            annotation_text=f"目标 {_fmt(series.target, series.unit)}",
            annotation_font_size=11,
        )
    style(fig, height=height, color=color)
    ticksuffix = "%" if series.unit == "%" else suffix
    fig.update_yaxes(ticksuffix=ticksuffix, tickformat=",.3~g" if div != 1.0 else ",~r")
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


def _label(x: Any) -> str:
    if isinstance(x, dt.datetime | dt.date):
        return f"{x.year}年{x.month}月"
    return str(x)


def _tint(hex_color: str, alpha: float = 0.12) -> str:
    h = hex_color.lstrip("#")
    r, g, b = (int(h[i : i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r},{g},{b},{alpha})"
