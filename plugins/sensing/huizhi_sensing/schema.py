"""The 感知前端管理台账 (district sensing front-end ledger): its columns, rules and device types.

The action plan (行动计划, lines 103–108) asks for one district-wide ledger of every camera and
sensor ("感知前端一套台账"), each with a 城市码 identity ("一前端一标识"), kept by every owning
department (分级分权) and inspected periodically (定期巡检). 区经济和信息化局 (jxj) is the steward:
it reads every row; each other department reads the rows whose 权属单位 is itself.

城市码 used here: ``110115-<类型码>-<8位序号>``. ``110115`` is Daxing's administrative division
code, the two capital letters name the device type (:data:`DEVICE_TYPES`), the eight digits are
the owner's serial number, e.g. ``110115-SP-00012345`` for a camera.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from huizhi import district
from huizhi.specs import ColumnSpec, LedgerSpec, RowCheck

LEDGER_ID = "sensing_devices"
DEPARTMENT = "jxj"  # 区经济和信息化局, lead unit of lines 104 and 106

DEVICE_ID_PATTERN = r"^110115-[A-Z]{2}-[0-9]{8}\Z"


@dataclass(frozen=True)
class DeviceType:
    name: str
    code: str  # the 城市码 type segment
    group: str  # 视频感知 (cameras) or 物联感知 (IoT sensors): the plan counts them separately
    cycle_days: int  # usual inspection cycle (巡检周期)


# From the plan: cameras (lines 11, 100), smart lamp posts, hydrants, flood points, air quality,
# clean-energy heat pumps (lines 11, 31, 259), water and hydrology monitoring and underpass flood
# points (101), smart electricity and fire water tanks (278, 281), smoke sensors (230), dust (31),
# heating (268), gas (269), parking (248), traffic signals and detectors (29, 244).
DEVICE_TYPES: tuple[DeviceType, ...] = (
    DeviceType("视频监控", "SP", "视频感知", 90),
    DeviceType("智慧灯杆", "DG", "物联感知", 90),
    DeviceType("消防栓监测", "XH", "物联感知", 30),
    DeviceType("易涝点监测", "YL", "物联感知", 30),
    DeviceType("空气质量监测", "KQ", "物联感知", 30),
    DeviceType("热泵监测", "RB", "物联感知", 365),
    DeviceType("水质监测", "SZ", "物联感知", 30),
    DeviceType("水文监测", "SW", "物联感知", 90),
    DeviceType("井盖监测", "JG", "物联感知", 90),
    DeviceType("烟感", "YG", "物联感知", 180),
    DeviceType("用电安全监测", "YD", "物联感知", 180),
    DeviceType("消防水箱水位监测", "SX", "物联感知", 90),
    DeviceType("扬尘监测", "YC", "物联感知", 30),
    DeviceType("噪声监测", "ZS", "物联感知", 90),
    DeviceType("燃气监测", "RQ", "物联感知", 90),
    DeviceType("供热温度监测", "GR", "物联感知", 180),
    DeviceType("停车泊位检测", "TC", "物联感知", 180),
    DeviceType("交通流量检测", "JT", "物联感知", 90),
)
TYPE_CODES: dict[str, str] = {t.name: t.code for t in DEVICE_TYPES}
TYPE_NAMES: tuple[str, ...] = tuple(t.name for t in DEVICE_TYPES)
CAMERA_TYPES: tuple[str, ...] = tuple(t.name for t in DEVICE_TYPES if t.group == "视频感知")

STATUSES: tuple[str, ...] = ("在用", "故障", "停用", "待验收")
# Devices that are expected to be inspected on their cycle (停用 and 待验收 are not).
INSPECTED_STATUSES: tuple[str, ...] = ("在用", "故障")


# -- row checks ---------------------------------------------------------------------------------
# Each receives the typed DataFrame of an upload and returns True for rows that pass. A cell that
# is empty or could not be typed is reported by its column's own check, so rules pass it here.


def _dates(df: Any, column: str) -> Any:
    import pandas as pd

    return pd.to_datetime(df[column], errors="coerce")


def _today() -> Any:
    """Today in Beijing (an upload at 07:00 Beijing time is still 'yesterday' in UTC)."""
    import pandas as pd

    from huizhi.clock import beijing_today

    return pd.Timestamp(beijing_today())


def _inspection_not_before_install(df: Any) -> Any:
    installed, inspected = _dates(df, "install_date"), _dates(df, "last_inspection")
    return installed.isna() | inspected.isna() | (inspected >= installed)


def _dates_not_in_future(df: Any) -> Any:
    today = _today()
    installed, inspected = _dates(df, "install_date"), _dates(df, "last_inspection")
    return (installed.isna() | (installed <= today)) & (inspected.isna() | (inspected <= today))


def _code_matches_type(df: Any) -> Any:
    import pandas as pd

    codes = df["device_id"].astype("string").str.slice(7, 9)
    expected = df["device_type"].astype("string").map(TYPE_CODES)
    unknown = df["device_id"].isna() | df["device_type"].isna() | expected.isna()
    return pd.Series(unknown, index=df.index) | (codes == expected).fillna(False)


def _bool(df: Any, column: str) -> Any:
    return df[column].astype("boolean").fillna(False)


def _stopped_not_networked(df: Any) -> Any:
    return ~(_bool(df, "networked") & (df["status"] == "停用").fillna(False))


def _in_use_inspected(df: Any) -> Any:
    return ~((df["status"] == "在用").fillna(False) & df["last_inspection"].isna())


ROW_CHECKS: tuple[RowCheck, ...] = (
    RowCheck(
        name="inspection_not_before_install",
        columns=("install_date", "last_inspection"),
        message="末次巡检日期早于安装日期：巡检只能发生在安装之后，请核对两个日期。",
        check=_inspection_not_before_install,
    ),
    RowCheck(
        name="dates_not_in_future",
        columns=("install_date", "last_inspection"),
        message="安装日期或末次巡检日期晚于今天：请填写已经发生的日期。",
        check=_dates_not_in_future,
    ),
    RowCheck(
        name="code_matches_type",
        columns=("device_id", "device_type"),
        message="城市码中的类型码与设备类型不一致（如视频监控应为 110115-SP-…）：请按类型码表修正编码或类型。",
        check=_code_matches_type,
    ),
    RowCheck(
        name="stopped_but_networked",
        columns=("networked", "status"),
        message="设备已停用却标记为联网：请核实是否已断网，或更正运行状态。",
        check=_stopped_not_networked,
        soft=True,
    ),
    RowCheck(
        name="in_use_never_inspected",
        columns=("status", "last_inspection"),
        message="在用设备没有末次巡检日期：请补录最近一次巡检（或验收）日期。",
        check=_in_use_inspected,
        soft=True,
    ),
)


def _type_code_table() -> str:
    return "；".join(f"{t.code}={t.name}" for t in DEVICE_TYPES)


COLUMNS: tuple[ColumnSpec, ...] = (
    ColumnSpec(
        "device_id",
        "城市码",
        pattern=DEVICE_ID_PATTERN,
        pattern_hint="写成 110115-类型码-8位数字，如 110115-SP-00012345（类型码："
        + _type_code_table()
        + "）",
        unique=True,
        description="感知前端的“城市码”身份标识，一前端一标识（行动计划第103行）。110115 为大兴区行政区划代码。",
        example="110115-SP-00012345",
        aliases=("设备编号", "设备编码", "前端编码", "城市码编号", "城市码（设备编号）", "编号"),
    ),
    ColumnSpec(
        "device_name",
        "设备名称",
        description="便于现场识别的名称，通常为“安装位置 + 设备类型 + 序号”。",
        example="兴华大街与金星路交叉口视频监控1号",
        aliases=("名称", "前端名称", "点位名称"),
    ),
    ColumnSpec(
        "device_type",
        "设备类型",
        choices=TYPE_NAMES,
        description="感知前端类别，决定城市码中的类型码与默认巡检周期。",
        example="视频监控",
        aliases=("类型", "设备类别", "前端类型", "感知类型"),
    ),
    ColumnSpec(
        "owner_dept",
        "权属单位",
        choices=district.department_names(),
        description="建设或管理该设备的区级部门（全称）。各部门只能查看本单位登记的设备（分级分权）。",
        example="区公安分局",
        aliases=("权属部门", "管理单位", "建设单位", "责任单位", "所属部门"),
    ),
    ColumnSpec(
        "street",
        "所属镇街",
        choices=district.street_names(),
        description="设备所在的街道或镇（全称）。",
        example="兴丰街道",
        aliases=("镇街", "街镇", "属地", "所属街镇", "所在镇街"),
    ),
    ColumnSpec(
        "location",
        "安装地点",
        required=False,
        description="道路、路口、小区或村庄等具体位置。",
        example="兴华大街与金星路交叉口",
        aliases=("安装位置", "点位地址", "地址", "位置"),
    ),
    ColumnSpec(
        "lon",
        "经度",
        dtype="float",
        min=district.LON_RANGE[0],
        max=district.LON_RANGE[1],
        description=f"WGS-84 经度，须在大兴区范围内（{district.LON_RANGE[0]}–{district.LON_RANGE[1]}）。",
        example="116.338210",
        aliases=("经度坐标", "X坐标", "lng", "longitude"),
    ),
    ColumnSpec(
        "lat",
        "纬度",
        dtype="float",
        min=district.LAT_RANGE[0],
        max=district.LAT_RANGE[1],
        description=f"WGS-84 纬度，须在大兴区范围内（{district.LAT_RANGE[0]}–{district.LAT_RANGE[1]}）。",
        example="39.741635",
        aliases=("纬度坐标", "Y坐标", "latitude"),
    ),
    ColumnSpec(
        "install_date",
        "安装日期",
        dtype="date",
        description="设备安装（或建成）日期。",
        example="2019-06-18",
        aliases=("建设日期", "建成日期", "安装时间"),
    ),
    ColumnSpec(
        "networked",
        "是否联网",
        dtype="bool",
        description="是否已接入物联专网或视频专网（行动计划第120行“应联尽联”）。填“是”或“否”。",
        example="是",
        aliases=("联网", "联网状态", "是否接入"),
    ),
    ColumnSpec(
        "status",
        "运行状态",
        choices=STATUSES,
        description="在用 / 故障 / 停用 / 待验收。",
        example="在用",
        aliases=("状态", "设备状态"),
    ),
    ColumnSpec(
        "last_inspection",
        "末次巡检日期",
        dtype="date",
        required=False,
        description="最近一次现场巡检或验收的日期；尚未巡检可留空。",
        example="2026-09-02",
        aliases=("最近巡检日期", "上次巡检日期", "巡检日期"),
    ),
    ColumnSpec(
        "inspection_cycle",
        "巡检周期（天）",
        dtype="int",
        min=7,
        max=730,
        description="两次巡检之间最多间隔的天数；末次巡检日期加巡检周期早于今天即为巡检逾期。",
        example="90",
        aliases=("巡检周期", "巡检周期(天)", "巡检间隔"),
    ),
    ColumnSpec(
        "project",
        "所属建设项目",
        required=False,
        description="设备来源的建设项目，如雪亮工程、智慧平安小区、煤改清洁能源信息管控系统。",
        example="雪亮工程",
        aliases=("建设项目", "项目名称"),
    ),
)

SENSING_LEDGER = LedgerSpec(
    id=LEDGER_ID,
    title="感知前端管理台账",
    department=DEPARTMENT,
    columns=COLUMNS,
    key=("device_id",),
    department_column="owner_dept",
    row_checks=ROW_CHECKS,
    description=(
        "全区视频监控摄像机、传感器等感知前端的统一台账（行动计划第104、106行）："
        "各权属单位按“城市码”登记本单位设备并定期巡检，区经济和信息化局统筹汇总。"
    ),
)
