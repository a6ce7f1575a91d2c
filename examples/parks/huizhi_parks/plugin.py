"""区园林绿化局 公园绿地台账: one ledger, one page, one cockpit tile, demo rows.

Only documented names of the plugin contract are used (docs/plugins.md): ``huizhi.hookimpl``,
the specs, the contexts, ``huizhi.kit`` and ``huizhi.district``.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from huizhi import district, hookimpl, kit
from huizhi.context import PageContext, TileContext
from huizhi.specs import (
    Breakdown,
    ColumnSpec,
    DemoPerson,
    DemoRows,
    LedgerSpec,
    PageSpec,
    PluginInfo,
    Target,
    Theme,
    TileSpec,
    TileValue,
)
from huizhi_parks import __version__

DEPARTMENT = "ylj"  # 区园林绿化局
PAGE = "parks"
KINDS = ("综合公园", "社区公园", "口袋公园", "郊野公园")

PARKS = LedgerSpec(
    id="parks",
    title="公园绿地台账",
    department=DEPARTMENT,
    key=("park_id",),
    description="全区公园绿地的基本信息与智慧化改造情况，按月更新。",
    period="monthly",
    columns=(
        ColumnSpec("park_id", "公园编号", pattern=r"^YL-[0-9]{4}\Z", pattern_hint="YL-加4位数字，如 YL-0001",
                   example="YL-0001", description="每个公园唯一"),
        ColumnSpec("name", "公园名称", example="念坛公园", description="公园全称"),
        ColumnSpec("kind", "公园类型", choices=KINDS, example="综合公园", description="、".join(KINDS)),
        ColumnSpec("street", "所属镇街", choices=district.street_names(), example="清源街道",
                   description="大兴区的镇街之一"),
        ColumnSpec("area_ha", "面积（公顷）", "float", min=0, max=2000, example="12.5", description="0–2000"),
        ColumnSpec("lon", "经度", "float", required=False, min=district.LON_RANGE[0], max=district.LON_RANGE[1],
                   example="116.34", description="大兴区范围内"),
        ColumnSpec("lat", "纬度", "float", required=False, min=district.LAT_RANGE[0], max=district.LAT_RANGE[1],
                   example="39.73", description="大兴区范围内"),
        ColumnSpec("opened", "开园日期", "date", example="2010-05-01", description="年-月-日"),
        ColumnSpec("smart", "已完成智慧化改造", "bool", example="是", description="是 / 否"),
    ),
)

FILTERS = (
    (
        kit.Search("search", placeholder="编号或名称"),
        kit.Pick("kinds", "公园类型", KINDS, params=("kind",)),
        kit.Pick("streets", "所属镇街", district.street_names(), params=("street",)),
    ),
)


def render(ctx: PageContext) -> None:
    import streamlit as st

    st.title("公园绿地")
    reader = kit.open_ledger(ctx, PARKS.id)
    if reader is None:
        return
    st.caption(kit.data_caption(reader, "全区公园绿地。", "您只能查看 {names} 的公园。"))
    chosen = kit.filters(ctx, reader, FILTERS)
    conds = reader.where(
        equals={"kind": chosen["kinds"], "street": chosen["streets"]},
        search=chosen["search"] or None,
        search_columns=("park_id", "name"),
    )
    c = reader.rows.c
    total, smart, area = reader.execute(
        sa.select(sa.func.count(), sa.func.count().filter(c.smart.is_(True)), sa.func.sum(c.area_ha)).where(*conds)
    )[0]
    kit.metrics([
        kit.Metric("公园数", int(total or 0)),
        kit.Metric("智慧公园", int(smart or 0)),
        kit.Metric("总面积（公顷）", round(float(area or 0), 1)),
    ])
    kit.paged_table(
        int(total or 0),
        lambda limit, offset, order: reader.page(*conds, limit=limit, offset=offset),
        key=kit.widget_key(ctx),
        labels=kit.column_labels(PARKS),
    )


def smart_share(ctx: TileContext) -> TileValue:
    """智慧公园占比 (%), by street; honours the cockpit's street filter."""
    reader = ctx.ledger(PARKS.id)
    conds = ctx.filter_conditions(reader, street="street")
    c = reader.rows.c
    rows = reader.execute(
        sa.select(c.street, sa.func.count(), sa.func.count().filter(c.smart.is_(True)))
        .where(*conds)
        .group_by(c.street)
        .order_by(c.street)
    )
    total = sum(int(n) for _, n, _ in rows)
    if not total:
        return TileValue(None, note="尚无数据：公园绿地台账还没有记录")
    smart = sum(int(s) for _, _, s in rows)
    items = tuple(sorted(((str(st), 100.0 * int(s) / int(n)) for st, n, s in rows), key=lambda kv: -kv[1]))
    return TileValue(round(100.0 * smart / total, 1), as_of=reader.updated_at,
                     detail=Breakdown(items, by="镇街", unit="%"), note=f"{smart} / {total} 个公园")


@hookimpl
def huizhi_plugin_info() -> PluginInfo:
    return PluginInfo(name="parks", title="公园绿地", department=DEPARTMENT, version=__version__,
                      host_api=">=1.0,<2", description="公园绿地台账与智慧公园改造进度（示例插件）。")


@hookimpl
def huizhi_ledgers() -> list[LedgerSpec]:
    return [PARKS]


@hookimpl
def huizhi_pages() -> list[PageSpec]:
    return [PageSpec("公园绿地", PAGE, render, department=DEPARTMENT, icon=":material/park:")]


@hookimpl
def huizhi_tiles() -> list[TileSpec]:
    return [
        TileSpec(
            id="parks_smart_share",
            title="智慧公园占比",
            department=DEPARTMENT,
            theme=Theme.PUBLIC_SERVICE,
            query=smart_share,
            unit="%",
            target=Target(value=60, deadline=dt.date(2025, 12, 31), scope="each", source="示例目标（非行动计划原文）"),
            drilldown=PAGE,
            ledgers=(PARKS.id,),
        )
    ]


_DEMO = (
    ("念坛公园", "综合公园", "清源街道", 116.0, True),
    ("兴旺公园", "综合公园", "兴丰街道", 18.5, True),
    ("康庄公园", "综合公园", "观音寺街道", 14.2, False),
    ("黄村公园", "社区公园", "林校路街道", 6.3, True),
    ("清源口袋公园", "口袋公园", "清源街道", 0.8, False),
    ("亦庄口袋公园", "口袋公园", "亦庄镇", 0.6, True),
    ("南海子郊野公园", "郊野公园", "瀛海镇", 800.0, True),
    ("念坛郊野公园", "郊野公园", "北臧村镇", 120.0, False),
    ("永兴河公园", "社区公园", "榆垡镇", 9.4, False),
    ("魏善庄公园", "社区公园", "魏善庄镇", 5.1, False),
)


@hookimpl
def huizhi_demo_rows() -> list[DemoRows]:
    rows = tuple(
        {"park_id": f"YL-{i:04d}", "name": name, "kind": kind, "street": street, "area_ha": area,
         "lon": 116.30 + i * 0.01, "lat": 39.70 + i * 0.005, "opened": dt.date(2000 + i, 5, 1), "smart": smart}
        for i, (name, kind, street, area, smart) in enumerate(_DEMO, start=1)
    )
    return [DemoRows(PARKS.id, rows, note="演示数据：示例公园（虚构，仅供演示）")]


@hookimpl
def huizhi_demo_identities() -> list[DemoPerson]:
    return [
        DemoPerson("staff-ylj", "周林", DEPARTMENT, title="区园林绿化局 科员"),
        DemoPerson("admin-ylj", "吴青", DEPARTMENT, role="ledger_admin", title="区园林绿化局 台账管理员"),
    ]
