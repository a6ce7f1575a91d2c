"""The 城市管理案件台账 (city-management case ledger) of 区城市管理委.

Every case runs the closed loop the action plan asks for: 发现-派单-处置-反馈-考核 (line 274),
and for 门前三包 problems 登记-核查-下派-整改反馈-核实结案 (line 266); cases come from grid staff,
the 12345 hotline (热线+网格, line 172), video AI and patrols. 区城市管理委 (cgw) is the steward and
reads every case; a handling department (承办单位) reads the cases dispatched to it.

Case id: ``AJ<年月>-<6位序号>``, e.g. ``AJ202403-000127`` (the month the case was found).
"""

from __future__ import annotations

from typing import Any

from huizhi import district
from huizhi.specs import ColumnSpec, LedgerSpec, RowCheck

LEDGER_ID = "city_cases"
DEPARTMENT = "cgw"  # 区城市管理委

CASE_ID_PATTERN = r"^AJ[0-9]{6}-[0-9]{6}\Z"

CATEGORIES: tuple[str, ...] = (
    "市容环境", "街面秩序", "门前三包", "市政设施", "环境卫生", "垃圾分类",
    "园林绿化", "排水防汛", "扬尘噪声", "渣土运输", "违法建设", "供热保障",
)  # fmt: skip
SOURCES: tuple[str, ...] = ("网格员", "12345热线", "视频AI", "巡查")
# The loop's stages as they show in 办理状态: found (not yet dispatched), being handled, reported
# back by the handling unit (awaiting verification), closed after verification (考核 counts it).
STATUSES: tuple[str, ...] = ("待派单", "处置中", "已反馈", "已结案")
OPEN_STATUSES: tuple[str, ...] = ("待派单", "处置中", "已反馈")
CLOSED = "已结案"
SATISFACTION: tuple[str, ...] = ("满意", "基本满意", "不满意")


# -- row checks (True = the row passes; empty or untyped cells are left to the column checks) -----


def _d(df: Any, column: str) -> Any:
    import pandas as pd

    return pd.to_datetime(df[column], errors="coerce")


def _not_before(df: Any, later: str, earlier: str) -> Any:
    a, b = _d(df, later), _d(df, earlier)
    return a.isna() | b.isna() | (a >= b)


def _dispatch_after_found(df: Any) -> Any:
    return _not_before(df, "dispatch_date", "found_date")


def _deadline_after_dispatch(df: Any) -> Any:
    return _not_before(df, "deadline", "dispatch_date")


def _closed_after_found(df: Any) -> Any:
    return _not_before(df, "closed_date", "found_date") & _not_before(df, "closed_date", "dispatch_date")


def _closed_iff_status(df: Any) -> Any:
    closed = (df["status"] == CLOSED).fillna(False)
    has_date = df["closed_date"].notna()
    return (closed & has_date) | (~closed & ~has_date) | df["status"].isna()


def _dispatched_complete(df: Any) -> Any:
    dispatched = df["status"].isin(STATUSES[1:]).fillna(False)
    complete = df["dispatch_unit"].notna() & df["dispatch_date"].notna() & df["deadline"].notna()
    return ~dispatched | complete


def _dates_not_in_future(df: Any) -> Any:
    import pandas as pd

    from huizhi.clock import beijing_today

    today = pd.Timestamp(beijing_today())
    ok = None
    for col in ("found_date", "dispatch_date", "closed_date"):
        d = _d(df, col)
        part = d.isna() | (d <= today)
        ok = part if ok is None else ok & part
    return ok


def _satisfaction_only_closed(df: Any) -> Any:
    return df["satisfaction"].isna() | (df["status"] == CLOSED).fillna(False)


ROW_CHECKS: tuple[RowCheck, ...] = (
    RowCheck(
        "dispatch_after_found",
        ("found_date", "dispatch_date"),
        "派单日期早于发现日期：案件只能在发现之后派单，请核对日期。",
        _dispatch_after_found,
    ),
    RowCheck(
        "deadline_after_dispatch",
        ("dispatch_date", "deadline"),
        "处置时限早于派单日期：时限应为派单当天或之后。",
        _deadline_after_dispatch,
    ),
    RowCheck(
        "closed_after_found",
        ("found_date", "dispatch_date", "closed_date"),
        "结案日期早于发现或派单日期：请核对日期。",
        _closed_after_found,
    ),
    RowCheck(
        "closed_iff_status",
        ("status", "closed_date"),
        "办理状态与结案日期不一致：“已结案”的案件须填写结案日期，未结案的案件不应有结案日期。",
        _closed_iff_status,
    ),
    RowCheck(
        "dispatched_complete",
        ("status", "dispatch_unit", "dispatch_date", "deadline"),
        "已派单的案件（处置中、已反馈、已结案）须填写承办单位、派单日期和处置时限。",
        _dispatched_complete,
    ),
    RowCheck(
        "dates_not_in_future",
        ("found_date", "dispatch_date", "closed_date"),
        "发现、派单或结案日期晚于今天：请填写已经发生的日期。",
        _dates_not_in_future,
    ),
    RowCheck(
        "satisfaction_only_closed",
        ("status", "satisfaction"),
        "未结案的案件已填写回访满意度：回访通常在结案后进行，请核实。",
        _satisfaction_only_closed,
        soft=True,
    ),
)

COLUMNS: tuple[ColumnSpec, ...] = (
    ColumnSpec(
        "case_id",
        "案件编号",
        pattern=CASE_ID_PATTERN,
        pattern_hint="写成 AJ + 发现年月（6位）+ 短横线 + 6位序号，如 AJ202403-000127",
        unique=True,
        description="案件的唯一编号，按发现年月编排。",
        example="AJ202403-000127",
        aliases=("编号", "案件号", "工单号", "工单编号"),
    ),
    ColumnSpec(
        "category",
        "问题类别",
        choices=CATEGORIES,
        description="城市管理问题的大类；“门前三包”为责任区问题（行动计划第266行）。",
        example="门前三包",
        aliases=("类别", "问题大类", "案件类别"),
    ),
    ColumnSpec(
        "description",
        "问题描述",
        required=False,
        description="地点和问题的简要描述。",
        example="兴华大街123号附近店外经营",
        aliases=("描述", "案件描述", "问题内容"),
    ),
    ColumnSpec(
        "street",
        "所属镇街",
        choices=district.street_names(),
        description="问题发生地所在的街道或镇（全称）。",
        example="清源街道",
        aliases=("镇街", "街镇", "属地"),
    ),
    ColumnSpec(
        "source",
        "发现来源",
        choices=SOURCES,
        description="网格员上报、12345热线、视频AI识别或部门巡查（行动计划第172、274行）。",
        example="网格员",
        aliases=("来源", "案件来源", "上报渠道"),
    ),
    ColumnSpec(
        "found_date",
        "发现日期",
        dtype="date",
        description="问题被发现或受理的日期（闭环第一步：发现）。",
        example="2026-03-14",
        aliases=("上报日期", "受理日期", "立案日期"),
    ),
    ColumnSpec(
        "dispatch_unit",
        "承办单位",
        required=False,
        choices=district.department_names(),
        description="案件派往的承办部门（全称；闭环第二步：派单）。待派单的案件可留空。各承办单位只能查看派给本单位的案件。",
        example="区城市管理委",
        aliases=("承办部门", "处置单位", "责任单位", "派单单位"),
    ),
    ColumnSpec(
        "dispatch_date",
        "派单日期",
        dtype="date",
        required=False,
        description="派单给承办单位的日期。",
        example="2026-03-14",
        aliases=("派遣日期", "派发日期"),
    ),
    ColumnSpec(
        "deadline",
        "处置时限",
        dtype="date",
        required=False,
        description="承办单位须完成处置的日期；结案日期不晚于此日即为按期办结（闭环第五步：考核）。",
        example="2026-03-19",
        aliases=("办结时限", "截止日期", "处置期限"),
    ),
    ColumnSpec(
        "closed_date",
        "结案日期",
        dtype="date",
        required=False,
        description="核实后结案的日期；未结案留空。",
        example="2026-03-17",
        aliases=("办结日期", "结案时间"),
    ),
    ColumnSpec(
        "status",
        "办理状态",
        choices=STATUSES,
        description="待派单 / 处置中 / 已反馈（承办单位已反馈处置结果，待核实）/ 已结案。",
        example="已结案",
        aliases=("状态", "案件状态"),
    ),
    ColumnSpec(
        "satisfaction",
        "回访满意度",
        required=False,
        choices=SATISFACTION,
        description="结案后回访群众的评价（热线案件为主）：满意 / 基本满意 / 不满意。",
        example="满意",
        aliases=("满意度", "回访结果", "群众评价"),
    ),
)

CASES_LEDGER = LedgerSpec(
    id=LEDGER_ID,
    title="城市管理案件台账",
    department=DEPARTMENT,
    columns=COLUMNS,
    key=("case_id",),
    department_column="dispatch_unit",
    row_checks=ROW_CHECKS,
    period="monthly",
    description=(
        "城市管理问题“发现-派单-处置-反馈-考核”全闭环台账（行动计划第172、266、274行）："
        "网格员、12345热线、视频AI和巡查发现的问题，派往承办单位按时限处置，结案后回访考核。"
    ),
)
