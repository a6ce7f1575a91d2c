"""The cockpit's wall-screen mode (大屏), without Streamlit: which tiles, the district map, labels.

``pages/wall.py`` draws the screen; everything here is plain data and plotly, so it is tested
without a browser:

* :func:`wall_tiles` — the leader's pinned tiles in their order, or, with nothing pinned, the
  plan's vital signs: the tiles judged against a plan target, then the others in cockpit order
  (skipping per-street counts, which the map shows), at most :data:`MAX_TILES`;
* :func:`street_measures` — every tile whose detail is a :class:`~huizhi.specs.Breakdown` by
  镇街: what the map can show (devices per street, open cases per street …), no extra query;
* :func:`place_labels` — non-overlapping label positions for markers, in screen pixels;
* :func:`district_map` — the plotly figure of Daxing's 22 streets and towns: plain ``scatter``
  traces on longitude/latitude axes at equal scale, no tile server, no geo projection data (the
  product runs air-gapped);
* :func:`refresh_seconds` — the ``refresh`` query parameter, clamped.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from huizhi import district
from huizhi.cockpit.runner import TileResult
from huizhi.cockpit.status import Status
from huizhi.fmt import format_value
from huizhi.specs import Breakdown

if TYPE_CHECKING:
    import plotly.graph_objects as go

__all__ = [
    "DEFAULT_REFRESH",
    "MAP_SIZE",
    "MAX_TILES",
    "STATUS_COLORS",
    "Label",
    "StreetMeasure",
    "district_map",
    "place_labels",
    "refresh_seconds",
    "street_measures",
    "wall_tiles",
]

#: tiles a 1920×1080 wall holds at a size readable from three metres (two columns of four)
MAX_TILES = 8
#: seconds between refreshes when the URL gives none; ``refresh=0`` turns refreshing off
DEFAULT_REFRESH = 60
MIN_REFRESH, MAX_REFRESH = 5, 3600
#: the map's size in pixels on a 1920×1080 wall (the centre column)
MAP_SIZE = (940, 836)

# the wall's dark palette
BACKGROUND = "#061224"
INK = "#EAF2FF"
MUTED = "#A9BCD6"
GRID = "rgba(120,160,210,0.14)"
#: status colours bright enough on the dark background (same meaning as theme.STATUS_STYLE)
STATUS_COLORS: dict[Status, str] = {
    Status.MET: "#34D27B",
    Status.ON_TRACK: "#4DA3FF",
    Status.AT_RISK: "#FFB020",
    Status.OVERDUE: "#FF5A4F",
    Status.STALE: "#C18CFF",
    Status.NO_DATA: "#9AA5B1",
    Status.MONITOR: "#7FB2E5",
    Status.ERROR: "#FF6B6B",
    Status.DENIED: "#9AA5B1",
    Status.DATA_DROP: "#FF8A3D",
}
COLORSCALE = [
    [0.0, "#1565C0"],
    [0.35, "#00A8E8"],
    [0.65, "#2EE6C9"],
    [1.0, "#FFE066"],
]
FONT = "Noto Sans CJK SC, Source Han Sans SC, PingFang SC, Microsoft YaHei, sans-serif"
LABEL_FONT = 17
#: a landmark for orientation (not a street): the airport's terminal, approximately
AIRPORT = ("大兴国际机场", 116.410, 39.509)


def refresh_seconds(params: Mapping[str, Any]) -> int:
    """Seconds between refreshes from ``refresh=`` (default 60; 0 = off; clamped to 5–3600)."""
    raw = params.get("refresh")
    if isinstance(raw, list | tuple):
        raw = raw[0] if raw else None
    if raw is None or str(raw).strip() == "":
        return DEFAULT_REFRESH
    try:
        seconds = int(float(str(raw).strip()))
    except ValueError:
        return DEFAULT_REFRESH
    if seconds <= 0:
        return 0
    return max(MIN_REFRESH, min(MAX_REFRESH, seconds))


def _street_breakdown(result: TileResult) -> Breakdown | None:
    detail = result.value.detail if result.ok and result.value is not None else None
    if isinstance(detail, Breakdown) and detail.by == "镇街":
        names = set(district.street_names())
        if any(k in names for k, _ in detail.items):
            return detail
    return None


def wall_tiles(results: Sequence[TileResult], pins: Sequence[str], limit: int = MAX_TILES) -> list[TileResult]:
    """The tiles the wall shows: the pinned ones in pin order, or with no pin the vital signs."""
    by_id = {r.tile.id: r for r in results}
    pinned = [by_id[p] for p in pins if p in by_id]
    if pinned:
        return pinned[:limit]
    judged = [r for r in results if r.tile.target is not None]
    others = [r for r in results if r.tile.target is None and not (_street_breakdown(r) and r.tile.unit != "%")]
    rest = [r for r in results if r not in judged and r not in others]
    return (judged + others + rest)[:limit]


@dataclass(frozen=True)
class StreetMeasure:
    """What the map can colour the streets by: one tile's breakdown by 镇街."""

    id: str  # the tile id
    title: str
    unit: str
    values: dict[str, float]  # street name → value (streets without a value are absent)

    @property
    def label(self) -> str:
        return f"{self.title}（{self.unit}）" if self.unit else self.title


def street_measures(results: Sequence[TileResult]) -> list[StreetMeasure]:
    """Every tile the viewer sees whose detail is a breakdown by street, counts before rates."""
    names = set(district.street_names())
    measures = []
    for r in results:
        detail = _street_breakdown(r)
        if detail is None:
            continue
        unit = detail.unit or ("" if r.tile.unit.startswith("个") else r.tile.unit)
        values = {str(k): float(v) for k, v in detail.items if k in names and v is not None and v == v}
        measures.append(StreetMeasure(r.tile.id, r.tile.title, unit, values))
    return sorted(measures, key=lambda m: m.unit == "%")


# ----------------------------------------------------------------------------------------------
# Labels


@dataclass(frozen=True)
class Label:
    """A placed label: the box's centre offset from its marker (pixels, y downwards) and size."""

    name: str
    dx: float
    dy: float
    width: float
    height: float
    x: float  # the marker, in pixels from the plot area's top left
    y: float

    @property
    def box(self) -> tuple[float, float, float, float]:
        cx, cy = self.x + self.dx, self.y + self.dy
        return (cx - self.width / 2, cy - self.height / 2, cx + self.width / 2, cy + self.height / 2)


def text_width(text: str, font_px: float) -> float:
    """Estimated width of one line: CJK characters one em, digits and Latin about 0.6 em."""
    width = 0.0
    for ch in text:
        if ord(ch) > 0x2E80:
            width += 1.0
        elif ch in ".,:;|!'":
            width += 0.32
        elif ch == " ":
            width += 0.3
        else:
            width += 0.62
    return width * font_px


def _overlap(a: tuple[float, float, float, float], b: tuple[float, float, float, float], pad: float = 0) -> float:
    w = min(a[2], b[2]) + pad - max(a[0], b[0])
    h = min(a[3], b[3]) + pad - max(a[1], b[1])
    return w * h if w > 0 and h > 0 else 0.0


def _circle_hits(box: tuple[float, float, float, float], x: float, y: float, r: float) -> bool:
    nx, ny = min(max(x, box[0]), box[2]), min(max(y, box[1]), box[3])
    return (nx - x) ** 2 + (ny - y) ** 2 < r * r


def place_labels(
    points: Sequence[tuple[str, float, float, float, float, float]],
    width: float,
    height: float,
    gap: float = 3.0,
) -> list[Label]:
    """Place a label beside every marker so that no two labels overlap and no label covers a
    marker. ``points`` are (name, x, y, marker radius, label width, label height) in pixels of
    the plot area (y downwards). Greedy: markers in crowded places choose first; each tries
    positions around its marker at growing distances (a leader line joins far ones), preferring
    the side facing away from its neighbours. Returns one :class:`Label` per point, in order."""
    def crowd(i: int) -> int:
        _, x, y, *_ = points[i]
        return sum(1 for j, p in enumerate(points) if j != i and math.hypot(p[1] - x, p[2] - y) < 160)

    order = sorted(range(len(points)), key=lambda i: (-crowd(i), i))
    placed: dict[int, Label] = {}
    angles = [math.radians(a) for a in range(0, 360, 15)]
    for i in order:
        name, x, y, r, w, h = points[i]
        near = [(p[1], p[2]) for j, p in enumerate(points) if j != i and math.hypot(p[1] - x, p[2] - y) < 200]
        if near:
            cx, cy = sum(p[0] for p in near) / len(near), sum(p[1] for p in near) / len(near)
            away = math.atan2(y - cy, x - cx) if (cx, cy) != (x, y) else 0.0
        else:
            away = 0.0  # alone: to the right
        best: tuple[float, Label] | None = None
        for step, extra in enumerate((2, 14, 34, 60, 90, 125, 165, 210)):
            for a in angles:
                ux, uy = math.cos(a), math.sin(a)
                dist = r + extra
                # the box's nearest edge at `dist` from the marker centre along (ux, uy)
                dx = ux * (dist + w / 2 * abs(ux) ** 0.5)
                dy = uy * (dist + h / 2 * abs(uy) ** 0.5)
                label = Label(name, dx, dy, w, h, x, y)
                box = label.box
                if box[0] < 2 or box[1] < 2 or box[2] > width - 2 or box[3] > height - 2:
                    continue
                clash = sum(_overlap(box, other.box, gap) for other in placed.values())
                clash += sum(
                    w * h for j, p in enumerate(points) if _circle_hits(box, p[1], p[2], p[3] + gap)
                )
                turn = abs(math.atan2(math.sin(a - away), math.cos(a - away)))
                horizontal = 0.3 * abs(math.sin(a))  # beside reads better than above or below
                cost = clash * 1000 + step * 3 + turn + horizontal
                if best is None or cost < best[0]:
                    best = (cost, label)
            if best is not None and best[0] < 1000:
                break
        placed[i] = best[1] if best is not None else Label(name, r + w / 2, 0, w, h, x, y)
    return [placed[i] for i in range(len(points))]


# ----------------------------------------------------------------------------------------------
# The map


def _hull(points: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """Convex hull (Andrew's monotone chain), counter-clockwise."""
    pts = sorted(set(points))
    if len(pts) <= 2:
        return pts

    def cross(o, a, b):
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

    lower: list[tuple[float, float]] = []
    for p in pts:
        while len(lower) >= 2 and cross(lower[-2], lower[-1], p) <= 0:
            lower.pop()
        lower.append(p)
    upper: list[tuple[float, float]] = []
    for p in reversed(pts):
        while len(upper) >= 2 and cross(upper[-2], upper[-1], p) <= 0:
            upper.pop()
        upper.append(p)
    return lower[:-1] + upper[:-1]


def _ranges(width: float, height: float, kx: float) -> tuple[tuple[float, float], tuple[float, float]]:
    """Longitude and latitude ranges at equal ground scale that fit the streets with a margin."""
    lons = [s.lon for s in district.STREETS] + [AIRPORT[1]]
    lats = [s.lat for s in district.STREETS] + [AIRPORT[2]]
    pad = 0.075
    lon0, lon1 = min(lons) - pad / kx, max(lons) + pad / kx
    lat0, lat1 = min(lats) - pad, max(lats) + pad
    span_x, span_y = (lon1 - lon0) * kx, lat1 - lat0  # in "latitude degrees"
    per_px = max(span_x / width, span_y / height)
    cx, cy = (lon0 + lon1) / 2, (lat0 + lat1) / 2
    half_x, half_y = width * per_px / 2 / kx, height * per_px / 2
    return (cx - half_x, cx + half_x), (cy - half_y, cy + half_y)


def _ticks(vmin: float, vmax: float, n: int = 6) -> list[float]:
    """About ``n`` round tick values between vmin and vmax (for the colour bar)."""
    if vmax <= vmin:
        return [vmin]
    raw = (vmax - vmin) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(vmin / step) * step
    ticks = []
    t = first
    while t <= vmax + 1e-9:
        ticks.append(round(t, 6))
        t += step
    return ticks


def district_map(
    measure: StreetMeasure | None,
    *,
    size: tuple[int, int] = MAP_SIZE,
    margin: tuple[int, int, int, int] = (8, 96, 8, 8),  # left, right, top, bottom
) -> go.Figure:
    """Daxing's 22 streets and towns as markers at their approximate centres, sized and coloured
    by ``measure`` (grey where it has no value), each labelled with its name and value where no
    other label or marker is. Axes are longitude and latitude at equal ground scale; a rounded
    outline around the streets marks the district (schematic, not a surveyed boundary)."""
    import plotly.graph_objects as go

    width, height = size
    left, right, top, bottom = margin
    pw, ph = width - left - right, height - top - bottom
    lat_mid = sum(s.lat for s in district.STREETS) / len(district.STREETS)
    kx = math.cos(math.radians(lat_mid))
    (x0, x1), (y0, y1) = _ranges(pw, ph, kx)

    def to_px(lon: float, lat: float) -> tuple[float, float]:
        return (lon - x0) / (x1 - x0) * pw, (y1 - lat) / (y1 - y0) * ph

    values = measure.values if measure else {}
    present = [v for v in values.values() if v is not None]
    vmin, vmax = (min(present), max(present)) if present else (0.0, 1.0)
    unit = measure.unit if measure else ""

    def radius(v: float | None) -> float:
        if v is None or not present:
            return 7.0
        if vmax <= 0:
            return 10.0
        if unit == "%":  # rates: colour says most; size varies a little
            return 11.0 + 9.0 * ((v - vmin) / (vmax - vmin) if vmax > vmin else 0.5)
        return 9.0 + 17.0 * math.sqrt(max(v, 0) / vmax)  # area ∝ value

    fig = go.Figure()
    # the district outline: the streets' hull widened by ~5 km, drawn as a soft spline
    ring = []
    for s in district.STREETS:
        for k in range(24):
            t = 2 * math.pi * k / 24
            ring.append((s.lon + 0.05 / kx * math.cos(t), s.lat + 0.05 * math.sin(t)))
    hull = _hull(ring)
    hull.append(hull[0])
    fig.add_trace(go.Scatter(
        x=[p[0] for p in hull], y=[p[1] for p in hull], mode="lines", fill="toself",
        line=dict(color="rgba(90,170,255,0.55)", width=2, shape="spline", smoothing=0.6),
        fillcolor="rgba(30,90,170,0.16)", hoverinfo="skip", name="大兴区",
    ))
    streets = list(district.STREETS)
    vals = [values.get(s.name) for s in streets]
    fmt = [format_value(v, unit) if v is not None else "—" for v in vals]
    fig.add_trace(go.Scatter(
        x=[s.lon for s in streets], y=[s.lat for s in streets], mode="markers",
        marker=dict(
            size=[2 * radius(v) for v in vals],
            color=[v if v is not None else vmin for v in vals],
            colorscale=COLORSCALE, cmin=vmin, cmax=vmax if vmax > vmin else vmin + 1,
            line=dict(color=[("rgba(255,255,255,0.85)" if v is not None else "rgba(160,170,190,0.6)") for v in vals],
                      width=1.5),
            opacity=0.9,
            showscale=bool(present),
            colorbar=dict(
                x=1.0, xanchor="left", xpad=14, y=0.02, yanchor="bottom", len=0.42, thickness=16,
                outlinewidth=0, tickfont=dict(color=MUTED, size=15),
                title=dict(text=unit or "数值", font=dict(color=MUTED, size=15), side="top"),
                tickvals=_ticks(vmin, vmax),
                ticktext=[format_value(t, "%" if unit == "%" else "") for t in _ticks(vmin, vmax)],
            ),
        ),
        text=[f"{s.name}：{t}" for s, t in zip(streets, fmt, strict=True)],
        hoverinfo="text", name=measure.title if measure else "镇街",
    ))
    # grey markers where the measure has no value
    missing = [s for s, v in zip(streets, vals, strict=True) if v is None]
    if missing and present:
        fig.add_trace(go.Scatter(
            x=[s.lon for s in missing], y=[s.lat for s in missing], mode="markers",
            marker=dict(size=14, color="#4A5568", line=dict(color="#A0AEC0", width=1)),
            hoverinfo="skip", name="无数据",
        ))
    fig.add_trace(go.Scatter(
        x=[AIRPORT[1]], y=[AIRPORT[2]], mode="markers",
        marker=dict(symbol="diamond", size=12, color="#C3CFE2", line=dict(width=0)),
        hoverinfo="text", text=[AIRPORT[0]], name=AIRPORT[0],
    ))

    # labels: name on the first line, value on the second; the airport a single muted line
    pts = []
    for s, shown, v in zip(streets, fmt, vals, strict=True):
        px, py = to_px(s.lon, s.lat)
        w = max(text_width(s.name, LABEL_FONT), text_width(shown, LABEL_FONT)) + 8
        pts.append((s.name, px, py, radius(v) if v is not None or not present else 7.0, w, 2 * LABEL_FONT * 1.25 + 4))
    ax_, ay_ = to_px(AIRPORT[1], AIRPORT[2])
    pts.append((AIRPORT[0], ax_, ay_, 6.0, text_width(AIRPORT[0], 15) + 8, 15 * 1.3 + 4))
    labels = place_labels(pts, pw, ph)
    for (name, lon, lat), label, value_text in zip(
        [(s.name, s.lon, s.lat) for s in streets] + [AIRPORT], labels, [*fmt, None], strict=True
    ):
        far = math.hypot(label.dx, label.dy) > label.width / 2 + 30
        text = (f"<b>{name}</b><br><span style='color:#7FDBFF'>{value_text}</span>" if value_text is not None
                else f"<i>{name}</i>")
        fig.add_annotation(
            x=lon, y=lat, xref="x", yref="y", text=text, showarrow=True,
            ax=label.dx, ay=label.dy, axref="pixel", ayref="pixel",
            arrowhead=0, arrowwidth=1.2, standoff=0,
            arrowcolor="rgba(170,200,235,0.75)" if far else "rgba(0,0,0,0)",
            font=dict(size=LABEL_FONT if value_text is not None else 15, color=INK if value_text is not None else MUTED, family=FONT),
            align="center", bgcolor="rgba(6,18,36,0.55)", borderpad=1,
            width=label.width - 2, height=label.height - 2,
        )
    # a 10 km scale bar and the north arrow, bottom left
    km = 10 / (111.32 * kx)
    sx, sy = x0 + (x1 - x0) * 0.04, y0 + (y1 - y0) * 0.035
    fig.add_shape(type="line", x0=sx, x1=sx + km, y0=sy, y1=sy, line=dict(color=MUTED, width=3))
    fig.add_annotation(x=sx + km / 2, y=sy, text="10 公里", showarrow=False, yanchor="bottom", yshift=4,
                       font=dict(size=15, color=MUTED, family=FONT))
    fig.add_annotation(x=sx + km / 2, y=sy + (y1 - y0) * 0.06, text="▲<br>北", showarrow=False,
                       font=dict(size=16, color=MUTED, family=FONT))
    fig.add_annotation(xref="paper", yref="paper", x=0, y=1, xanchor="left", yanchor="top", showarrow=False,
                       text="镇街位置为近似中心点；外轮廓为示意，非测绘边界",
                       font=dict(size=14, color=MUTED, family=FONT))

    fig.update_layout(
        width=width, height=height,
        margin=dict(l=left, r=right, t=top, b=bottom, autoexpand=False),
        paper_bgcolor="rgba(0,0,0,0)", plot_bgcolor="rgba(0,0,0,0)",
        showlegend=False, font=dict(family=FONT, color=INK), hovermode="closest",
        hoverlabel=dict(font=dict(family=FONT, size=16)),
    )
    axis = dict(showgrid=True, gridcolor=GRID, zeroline=False, showticklabels=False, ticks="",
                fixedrange=True, showline=False)
    fig.update_xaxes(range=[x0, x1], dtick=0.1, **axis)
    fig.update_yaxes(range=[y0, y1], dtick=0.1, **axis)
    return fig
