"""The pages of a declarative file: a filtered, paged list of the ledger and a map of its rows.

Drawn with the page kit exactly as a Python plugin's page is (filters that read a cockpit
drill-down's ``street``/``dept``/``period``, a refusal for a department the person may not read,
a server-side paged table), plus a longitude/latitude plot when the ledger has coordinates. The
host draws these on behalf of the file, so this is the one host module besides the kit that
draws with Streamlit.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from huizhi import district, kit
from huizhi.fmt import format_number

if TYPE_CHECKING:
    import pandas as pd

    from huizhi.context import LedgerReader, PageContext
    from huizhi.declarative.parse import Declaration, PageDecl

MAP_POINT_LIMIT = 20_000
PER_ROW = 3  # filter widgets on one line


def filter_rows(decl: Declaration, page: PageDecl) -> list[list[Any]]:
    """The kit's filter fields for the page's ``filters`` and ``search``, three to a line."""
    spec = decl.ledger
    fields: list[Any] = []
    dates = 0
    for name in page.filters:
        col = spec.column(name)
        if name == spec.department_column:
            fields.append(kit.Departments(name, col.label, name, (name, "dept", "department")))
        elif col.dtype == "date":
            # the first date filter reads the cockpit's drill-down period (``period=a..b``)
            param = "period" if dates == 0 else name
            dates += 1
            fields.append(kit.DateRange(name, col.label, param=param, start=f"{name}__from", end=f"{name}__to",
                                        months=page.months))  # fmt: skip
        elif col.dtype == "bool":
            fields.append(kit.YesNo(name, col.label, (name,)))
        else:
            params = (name, "street") if name == decl.street_column and name != "street" else (name,)
            fields.append(kit.Pick(name, col.label, col.choices or (), params))
    rows = [fields[i : i + PER_ROW] for i in range(0, len(fields), PER_ROW)]
    if page.search:
        labels = "、".join(spec.column(c).label for c in page.search)
        rows.append([kit.Search("__search", "搜索", placeholder=labels)])
    return rows


def conditions(
    decl: Declaration, page: PageDecl, reader: LedgerReader, values: dict[str, Any]
) -> list[sa.ColumnElement[bool]]:
    """WHERE conditions for what :func:`kit.filters` returned."""
    spec = decl.ledger
    conds: list[sa.ColumnElement[bool]] = []
    for name in page.filters:
        col = spec.column(name)
        if col.dtype == "date":
            first, last = values.get(f"{name}__from"), values.get(f"{name}__to")
            if first is not None:
                conds.append(reader.c(name) >= first)
            if last is not None:
                conds.append(reader.c(name) <= last)
        elif col.dtype == "bool":
            if values.get(name) is not None:
                conds.append(reader.c(name) == values[name])
        elif values.get(name):
            conds.append(reader.c(name).in_(list(values[name])))
    text = values.get("__search")
    if text:
        conds += reader.where(search=text, search_columns=page.search)
    return conds


def make_render(decl: Declaration, page: PageDecl) -> Callable[[PageContext], None]:
    def render(ctx: PageContext) -> None:
        import streamlit as st

        spec = decl.ledger
        st.title(page.title)
        if page.description:
            st.caption(page.description)
        reader = kit.open_ledger(ctx, spec.id)
        if reader is None:
            return
        st.caption(kit.data_caption(reader, "可查看全部记录。", "按权限，您只能查看 {names} 的记录。"))
        key = kit.widget_key(ctx)
        rows = filter_rows(decl, page)
        values = kit.filters(ctx, reader, rows, key=key) if rows else {}
        conds = conditions(decl, page, reader, values)
        total = reader.count(*conds)
        empty = "没有符合筛选条件的记录。请放宽筛选条件。" if kit.filters_active(rows, values, ctx.today) else "台账中没有记录。"
        if page.kind == "map":
            _map(ctx, decl, page, reader, conds, total, key, empty)
            return

        def fetch(limit: int, offset: int, order: str | None) -> pd.DataFrame:
            return reader.page(*conds, limit=limit, offset=offset)

        kit.paged_table(total, fetch, key=key, labels=kit.column_labels(spec), noun="条记录", empty=empty,
                        first=page.first or spec.key)  # fmt: skip

    render.__name__ = f"render_{page.url_path.replace('-', '_')}"
    return render


def _map(
    ctx: PageContext,
    decl: Declaration,
    page: PageDecl,
    reader: LedgerReader,
    conds: list[Any],
    total: int,
    key: str,
    empty: str,
) -> None:
    import plotly.graph_objects as go
    import streamlit as st

    assert page.lon is not None and page.lat is not None  # checked by the parser
    spec = decl.ledger
    lon, lat = reader.c(page.lon), reader.c(page.lat)
    placed = [*conds, lon.is_not(None), lat.is_not(None)]
    shown = reader.count(*placed)
    if shown == 0:
        st.info(empty if total == 0 else "符合条件的记录都没有填写经纬度。")
        return
    names = [*spec.key, *([page.color] if page.color else [])]
    stmt = sa.select(lon, lat, *(reader.c(n) for n in names)).where(*placed).order_by(*(reader.c(k) for k in spec.key))
    frame = reader.frame(stmt.limit(MAP_POINT_LIMIT))
    more = f"，显示前 {MAP_POINT_LIMIT:,} 处" if shown > MAP_POINT_LIMIT else ""
    st.caption(
        f"共 {format_number(shown)} 处有经纬度的记录{more}（另有 {format_number(total - shown)} 处未填写坐标）。"
        "本图为经纬度平面示意（内网环境不加载在线底图），菱形标注为各镇街中心。"
    )
    key_text = frame[list(spec.key)].astype(str).agg(" ".join, axis=1)
    fig = go.Figure()
    groups = frame.groupby(page.color, sort=True) if page.color else [(spec.title, frame)]
    for name, part in groups:
        fig.add_trace(
            go.Scattergl(
                x=part[page.lon], y=part[page.lat], mode="markers", name=str(name),
                marker=dict(size=6, opacity=0.8), hovertext=key_text[part.index],
                hovertemplate="%{hovertext}<extra>" + str(name) + "</extra>",
            )
        )  # fmt: skip
    streets = district.STREETS
    fig.add_trace(
        go.Scatter(
            x=[s.lon for s in streets], y=[s.lat for s in streets], mode="markers+text", name="镇街",
            text=[s.name for s in streets], textposition="top center",
            textfont=dict(size=11, color="#111"), marker=dict(symbol="diamond", size=7, color="#444"),
            hoverinfo="skip",
        )
    )  # fmt: skip
    fig.update_layout(
        height=680, margin=dict(l=10, r=10, t=30, b=10), plot_bgcolor="#f5f7fa", legend=dict(orientation="h", y=-0.06),
        xaxis=dict(title="经度（东经）", range=list(district.LON_RANGE), ticksuffix="°", gridcolor="#e3e7ed", zeroline=False),
        yaxis=dict(title="纬度（北纬）", range=list(district.LAT_RANGE), ticksuffix="°", gridcolor="#e3e7ed", zeroline=False,
                   scaleanchor="x", scaleratio=1 / math.cos(math.radians(sum(district.LAT_RANGE) / 2))),
    )  # fmt: skip
    st.plotly_chart(fig, config=kit.CHART_CONFIG, key=f"{key}-map")
