"""Cockpit tiles of the sensing ledger (theme 感知底座).

Each query aggregates in SQL on ``ctx.ledger(...).rows`` (permission-scoped) and applies the
cockpit's street and department filters through ``ctx.filter_conditions`` (the period filter
does not apply: the ledger is a census of devices, not events). Overdue inspections are counted
on ``ctx.today``, the day the cockpit judges the values. Details are
:class:`huizhi.specs.Breakdown` values, which the cockpit draws in its own style.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from huizhi.fmt import ratio
from huizhi.specs import Breakdown, Target, Theme, TileSpec, TileValue
from huizhi_sensing import plan, queries
from huizhi_sensing.fmt import fmt_count, fmt_pct
from huizhi_sensing.schema import DEPARTMENT, LEDGER_ID

if TYPE_CHECKING:
    from huizhi.context import LedgerReader, TileContext

EMPTY_NOTE = "感知前端管理台账尚无数据"


def _open(ctx: TileContext) -> tuple[LedgerReader, dt.datetime | None, list[Any]]:
    reader = ctx.ledger(LEDGER_ID)
    return (
        reader,
        queries.as_of(reader),
        ctx.filter_conditions(reader, street="street", department="owner_dept"),
    )


def _filtered_note(ctx: TileContext, text: str, district_target: bool = False) -> str:
    if ctx.filters.streets or ctx.filters.departments:
        # a district-wide count target is not used for the verdict (Target.scope="district");
        # rate targets (scope="each") hold for every street and department
        return f"{text}（按所选镇街、部门统计{'，目标为全区口径' if district_target else ''}）"
    return text


def _items(frame: Any, label: str, column: str, scale: float = 1.0) -> tuple[tuple[str, float], ...]:
    return tuple(
        (str(k), round(float(v) * scale, 4)) for k, v in zip(frame[label], frame[column], strict=True)
    )


def registered_query(ctx: TileContext) -> TileValue:
    reader, stamp, conds = _open(ctx)
    if stamp is None:
        return TileValue(None, note=EMPTY_NOTE)
    s = queries.summary(reader, conds, ctx.today)
    detail = Breakdown(
        (
            ("视频监控", round(100 * s.cameras / plan.BASELINE_CAMERAS, 2)),
            ("物联感知设备", round(100 * s.iot / plan.BASELINE_IOT, 2)),
        ),
        by="已建账占行动计划基数",
        unit="%",
    )
    note = (
        f"视频监控{fmt_count(s.cameras)}路（基数3万余路）、物联感知设备{fmt_count(s.iot)}套"
        f"（基数近13万套），合计为基数的 {fmt_pct(s.total / plan.BASELINE_TOTAL)}"
    )
    return TileValue(s.total, as_of=stamp, detail=detail, note=_filtered_note(ctx, note, district_target=True))


def networked_query(ctx: TileContext) -> TileValue:
    reader, stamp, conds = _open(ctx)
    if stamp is None:
        return TileValue(None, note=EMPTY_NOTE)
    s = queries.summary(reader, conds, ctx.today)
    if not s.inspected:
        return TileValue(None, as_of=stamp, note="没有在用设备")
    by_dept = queries.breakdown(reader, "owner_dept", conds, ctx.today)
    by_dept = by_dept[by_dept["inspected"] > 0].sort_values("networked_ratio")
    detail = Breakdown(
        _items(by_dept, "owner_dept", "networked_ratio", 100), by="权属单位", unit="%", limit=8
    )
    note = f"在用及故障设备 {fmt_count(s.inspected)} 台中已联网 {fmt_count(s.networked)} 台；图为联网率最低的单位"
    return TileValue(
        ratio(s.networked, s.inspected), as_of=stamp, detail=detail, note=_filtered_note(ctx, note)
    )


def overdue_query(ctx: TileContext) -> TileValue:
    reader, stamp, conds = _open(ctx)
    if stamp is None:
        return TileValue(None, note=EMPTY_NOTE)
    s = queries.summary(reader, conds, ctx.today)
    if not s.inspected:
        return TileValue(None, as_of=stamp, note="没有需要巡检的设备")
    by_dept = queries.breakdown(reader, "owner_dept", conds, ctx.today)
    by_dept = by_dept[by_dept["inspected"] > 0].sort_values("overdue_ratio", ascending=False)
    detail = Breakdown(_items(by_dept, "owner_dept", "overdue_ratio", 100), by="权属单位", unit="%", limit=8)
    note = (
        f"{fmt_count(s.overdue)} 台在用设备超过巡检周期未巡检；目标 5% 为区经济和信息化局的管理阈值，"
        "行动计划第104行要求定期巡检但未规定数值"
    )
    return TileValue(
        ratio(s.overdue, s.inspected), as_of=stamp, detail=detail, note=_filtered_note(ctx, note)
    )


def by_street_query(ctx: TileContext) -> TileValue:
    reader, stamp, conds = _open(ctx)
    if stamp is None:
        return TileValue(None, note=EMPTY_NOTE)
    frame = queries.breakdown(reader, "street", conds, ctx.today)
    if frame.empty:
        return TileValue(None, as_of=stamp, note="没有符合条件的设备")
    detail = Breakdown(_items(frame, "street", "total"), by="镇街", unit="台", limit=12)
    top = frame.iloc[0]
    note = f"{len(frame)} 个镇街已登记感知前端，最多为{top['street']}（{fmt_count(int(top['total']))} 台）"
    return TileValue(len(frame), as_of=stamp, detail=detail, note=_filtered_note(ctx, note))


def by_type_query(ctx: TileContext) -> TileValue:
    reader, stamp, conds = _open(ctx)
    if stamp is None:
        return TileValue(None, note=EMPTY_NOTE)
    frame = queries.breakdown(reader, "device_type", conds, ctx.today)
    if frame.empty:
        return TileValue(None, as_of=stamp, note="没有符合条件的设备")
    detail = Breakdown(_items(frame, "device_type", "total"), by="设备类型", unit="台", limit=12)
    note = f"已登记 {len(frame)} 类感知前端（行动计划第11行：数十类感知设备、30多种传感设备统一接入）"
    return TileValue(len(frame), as_of=stamp, detail=detail, note=_filtered_note(ctx, note))


TILES: tuple[TileSpec, ...] = (
    TileSpec(
        id="sensing_registered",
        title="感知前端建账数",
        department=DEPARTMENT,
        theme=Theme.SENSING,
        query=registered_query,
        unit="台",
        target=Target(
            value=plan.BASELINE_TOTAL,
            deadline=plan.CENSUS_DEADLINE,
            baseline=0,
            source="行动计划第11行（视频监控3万余路、感知设备近13万套）、第104行（2023年底完成普查，感知前端一套台账初步形成）",
        ),
        drilldown="sensing-ledger",
        ledgers=(LEDGER_ID,),
        description="已在感知前端管理台账中登记的视频监控与物联感知设备数，对照行动计划的全区基数；图为各类已建账占基数的比例。",
        order=10,
    ),
    TileSpec(
        id="sensing_networked_ratio",
        title="感知前端联网率",
        department=DEPARTMENT,
        theme=Theme.SENSING,
        query=networked_query,
        unit="%",
        target=Target(
            value=100.0,
            deadline=plan.NETWORK_DEADLINE,
            source="行动计划第120行：到2023年底，实现全区感知网络“应联尽联”",
            scope="each",  # a rate: it holds for every street and department
        ),
        drilldown="sensing-map",
        ledgers=(LEDGER_ID,),
        description="在用及故障设备中已接入物联专网或视频专网的比例；图为联网率最低的权属单位。",
        order=20,
    ),
    TileSpec(
        id="sensing_inspection_overdue",
        title="感知前端巡检逾期率",
        department=DEPARTMENT,
        theme=Theme.SENSING,
        query=overdue_query,
        unit="%",
        target=Target(
            value=plan.OVERDUE_THRESHOLD_PCT,
            deadline=plan.OVERDUE_THRESHOLD_DATE,
            higher_is_better=False,
            source="行动计划第104行要求定期开展感知设备巡检；5%为区经济和信息化局设定的管理阈值（计划未给出数值）",
            scope="each",  # a rate: it holds for every street and department
        ),
        drilldown="sensing-inspections",
        ledgers=(LEDGER_ID,),
        description="在用及故障设备中，末次巡检（未巡检按安装日期）加巡检周期早于今天的比例；图为逾期率最高的权属单位。",
        order=30,
    ),
    TileSpec(
        id="sensing_by_street",
        title="各镇街感知前端分布",
        department=DEPARTMENT,
        theme=Theme.SENSING,
        query=by_street_query,
        unit="个镇街",
        drilldown="sensing-map",
        ledgers=(LEDGER_ID,),
        description="登记了感知前端的镇街数；图为设备最多的镇街（导出含全部镇街）。",
        order=40,
    ),
    TileSpec(
        id="sensing_by_type",
        title="感知前端类型",
        department=DEPARTMENT,
        theme=Theme.SENSING,
        query=by_type_query,
        unit="类",
        drilldown="sensing-ledger",
        ledgers=(LEDGER_ID,),
        description="台账中已登记的感知前端类别数；图为数量最多的类别（导出含全部类别）。",
        order=50,
    ),
)
