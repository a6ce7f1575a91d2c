"""Facts the demo data is built from: figures of the action plan, with the line they come from.

Source: shared/seed/000_13d12552085a2273.txt, 《大兴区新型智慧城市建设行动计划（2022-2025年）》
(京兴智慧文〔2022〕3号, issued 2022-10-09). ``line`` is the line number in that file.

Where the demo needs a number the plan does not give (how the 13万 IoT devices split into kinds,
how many cases the city-management centre handles a month), the figure is marked ``assumed``
with the reasoning, so nobody mistakes it for the plan's.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


@dataclass(frozen=True)
class Fact:
    value: float
    unit: str
    line: int | None
    text: str  # what the plan says (or, for assumptions, why the figure is reasonable)
    assumed: bool = False


PLAN_TITLE = "大兴区新型智慧城市建设行动计划（2022-2025年）"
PLAN_ISSUED = dt.date(2022, 10, 9)

FACTS: dict[str, Fact] = {
    "cameras_built": Fact(30_000, "路", 11, "全区建成各类视频监控3万余路"),
    "cameras_shared": Fact(39_000, "路", 11, "联网整合各行业部门及社会单位3.9万路视频监控资源"),
    "iot_devices": Fact(
        130_000,
        "套",
        11,
        "覆盖智慧灯杆、消防栓、易涝点、空气质量检测、煤改清洁能源监测等数十类感知设备近13万套",
    ),
    "iot_kinds": Fact(30, "种", 11, "实现区内各领域30多种传感设备的统一接入管理"),
    "base_stations_5g": Fact(2_466, "个", 13, "累计建设5G基站2466个"),
    "cloud_hosts": Fact(800, "台", 15, "用户云主机800多台，累计服务单位37家，入云系统60个"),
    "catalog_items": Fact(5_081, "项", 17, "全区44家单位、5081项数据资源目录上链"),
    "signals_upgraded": Fact(170, "个路口", 29, "170个路口交通信号控制设备智能化改造"),
    "roadside_parking": Fact(3_655, "个车位", 29, "新城地区18条道路3655个路侧车位实现自动电子收费"),
    "heat_pump_households": Fact(
        50_000, "户", 31, "实现对全区5万余户空气源热泵用户数据采集、远端监测、故障报警"
    ),
    "communities": Fact(441, "个", 33, "开展全区441个社区/村的安全治理"),
    "safe_compounds": Fact(184, "个", 33, "184个平安小区建设"),
    "city_ops_records": Fact(2_110_000, "条", 17, "汇聚城市运行数据211万条"),
    "city_ops_data_kinds": Fact(
        27, "类", 27, "网格、气象、环保、视频监控、物联网设备等27类实时数据、81个业务系统接入"
    ),
    "signal_upgrade_planned": Fact(
        180, "套", 246, "重点区域道路路口共180多套交通信号灯控制设备进行智能化升级改造"
    ),
}

DEADLINES: dict[str, tuple[dt.date, int, str]] = {
    "sensing_census": (
        dt.date(2023, 12, 31),
        104,
        "完成各类视频监控摄像机、传感器等感知前端普查、核对，感知前端一套台账初步形成",
    ),
    "sensing_network": (dt.date(2023, 12, 31), 120, "实现全区感知网络“应联尽联”"),
    "hd_cameras": (dt.date(2022, 12, 31), 100, "新建、改建高清摄像机比例达到100%"),
    "cockpit_scenes": (dt.date(2023, 12, 31), 180, "完成10个行业部门优质驾驶舱应用场景建设"),
    "ecology_sensing": (dt.date(2025, 12, 31), 101, "水、大气等生态环境监测感知体系基本建成"),
}


# -- the sensing ledger ----------------------------------------------------------------------------


@dataclass(frozen=True)
class DeviceKind:
    """One kind of sensing front end and how the demo spreads it over the district."""

    name: str  # 设备类型 as in the sensing ledger
    code: str  # 城市码 type segment
    built: int  # how many exist in the district (scale 1.0)
    registered: float  # share of them already in the ledger (the census is not complete)
    owners: tuple[tuple[str, float], ...]  # (权属单位, weight)
    cycle_days: int  # 巡检周期
    setting: str  # where they stand: urban | rural | mixed
    first_year: int  # earliest installation year
    projects: tuple[str, ...]  # 所属建设项目
    networked: float  # share of devices in service on the network
    place: str  # how locations are named: road | community | village | river


# Cameras: line 11 (3万余路); who owns them: lines 100 and 205 (公安 builds its own and collects
# social units', 政法委 collects streets' and departments'; 人防办, 园林绿化局 in high-altitude
# lookout, 教委 campuses, 交通局 buses and freight). IoT devices: line 11 (近13万套) split by kind
# (assumed shares, named in lines 11, 31, 101, 230, 244, 248, 258, 268, 269, 278, 281); heat pumps
# follow line 31 (5万余户 air-source heat pumps, one monitor per household).
DEVICE_KINDS: tuple[DeviceKind, ...] = (
    DeviceKind(
        "视频监控", "SP", 30_000, 0.985,
        (("区公安分局", 0.52), ("区委政法委", 0.30), ("区交通局", 0.05), ("区教委", 0.04),
         ("区人防办", 0.03), ("区园林绿化局", 0.03), ("区应急局", 0.02), ("区生态环境局", 0.01)),
        90, "mixed", 2015,
        ("雪亮工程", "智慧平安小区", "高空瞭望视频监控", "外围防线智能化监控", "铁路沿线视频监控", "高清视频监控补点工程"),
        0.95, "road",
    ),
    DeviceKind("智慧灯杆", "DG", 3_200, 0.97, (("区城市管理委", 1.0),), 90, "urban", 2019,
               ("智慧灯杆集约建设",), 0.93, "road"),
    DeviceKind("消防栓监测", "XH", 8_000, 0.95, (("区消防救援支队", 0.85), ("区水务局", 0.15)), 30, "urban", 2017,
               ("智慧消防建设工程", "市政消火栓物联监测"), 0.9, "road"),
    DeviceKind("易涝点监测", "YL", 620, 0.99, (("区水务局", 0.55), ("区城市管理委", 0.45)), 30, "mixed", 2018,
               ("下凹式地下桥防汛监测", "积水点物联监测"), 0.95, "road"),
    DeviceKind("空气质量监测", "KQ", 1_200, 1.0, (("区生态环境局", 1.0),), 30, "mixed", 2015,
               ("智慧生态工程", "大气精细化管理"), 0.97, "road"),
    DeviceKind("热泵监测", "RB", 52_000, 0.99, (("区城市管理委", 1.0),), 365, "rural", 2016,
               ("煤改清洁能源信息管控系统",), 0.9, "village"),
    DeviceKind("水质监测", "SZ", 1_500, 0.96, (("区水务局", 0.6), ("区生态环境局", 0.4)), 30, "mixed", 2016,
               ("水务物联网感知体系", "水环境智慧监控"), 0.92, "river"),
    DeviceKind("水文监测", "SW", 320, 1.0, (("区水务局", 1.0),), 90, "rural", 2018,
               ("河道水文自动监测站",), 0.96, "river"),
    DeviceKind("井盖监测", "JG", 12_000, 0.9, (("区城市管理委", 0.8), ("区水务局", 0.2)), 90, "urban", 2019,
               ("城市生命线统筹监测", "智慧井盖"), 0.84, "road"),
    DeviceKind("烟感", "YG", 22_000, 0.86, (("区消防救援支队", 0.45), ("区委社会工委区民政局", 0.4), ("区教委", 0.15)),
               180, "urban", 2018, ("智慧社区综合服务平台", "智慧平安小区", "独居老人烟感报警"), 0.8, "community"),
    DeviceKind("用电安全监测", "YD", 14_000, 0.9, (("区消防救援支队", 1.0),), 180, "mixed", 2019,
               ("智慧用电安全监控体系",), 0.86, "community"),
    DeviceKind("消防水箱水位监测", "SX", 3_000, 0.93, (("区消防救援支队", 1.0),), 90, "urban", 2022,
               ("消防设施感知体系",), 0.9, "community"),
    DeviceKind("扬尘监测", "YC", 1_500, 0.95, (("区生态环境局", 0.6), ("区住房城乡建设委", 0.4)), 30, "mixed", 2017,
               ("道路积尘负荷监测", "施工工地扬尘在线监测"), 0.92, "road"),
    DeviceKind("噪声监测", "ZS", 300, 1.0, (("区生态环境局", 1.0),), 90, "urban", 2018,
               ("声环境自动监测",), 0.95, "road"),
    DeviceKind("燃气监测", "RQ", 4_000, 0.88, (("区城市管理委", 0.7), ("区应急局", 0.3)), 90, "urban", 2020,
               ("燃气应用场景", "城市生命线统筹监测"), 0.87, "community"),
    DeviceKind("供热温度监测", "GR", 3_000, 0.9, (("区城市管理委", 1.0),), 180, "urban", 2021,
               ("城市供热监管平台",), 0.9, "community"),
    DeviceKind("停车泊位检测", "TC", 3_655, 1.0, (("区城市管理委", 1.0),), 180, "urban", 2017,
               ("路侧停车电子收费",), 0.97, "road"),
    DeviceKind("交通流量检测", "JT", 720, 1.0, (("区公安分局", 0.8), ("区交通局", 0.2)), 90, "mixed", 2019,
               ("交通信号灯系统智能化升级改造",), 0.98, "road"),
)  # fmt: skip

# Streets (街道) are the dense new town; towns (镇) near it are suburban, the others rural.
URBAN_WEIGHTS: dict[str, float] = {
    "兴丰街道": 3.0, "林校路街道": 3.0, "清源街道": 3.0, "观音寺街道": 2.8, "天宫院街道": 2.6,
    "高米店街道": 2.8, "荣华街道": 2.6, "博兴街道": 2.4, "瀛海镇": 1.8, "亦庄镇": 2.0, "旧宫镇": 2.6,
    "西红门镇": 2.6, "黄村镇": 2.4, "魏善庄镇": 0.8, "庞各庄镇": 0.8, "榆垡镇": 0.9, "礼贤镇": 0.8,
    "北臧村镇": 0.7, "安定镇": 0.6, "长子营镇": 0.6, "采育镇": 0.8, "青云店镇": 0.8,
}  # fmt: skip
RURAL_WEIGHTS: dict[str, float] = {
    "兴丰街道": 0.0, "林校路街道": 0.0, "清源街道": 0.0, "观音寺街道": 0.05, "天宫院街道": 0.05,
    "高米店街道": 0.0, "荣华街道": 0.0, "博兴街道": 0.05, "瀛海镇": 0.6, "亦庄镇": 0.3, "旧宫镇": 0.3,
    "西红门镇": 0.4, "黄村镇": 0.9, "魏善庄镇": 1.6, "庞各庄镇": 1.8, "榆垡镇": 1.8, "礼贤镇": 1.6,
    "北臧村镇": 1.3, "安定镇": 1.4, "长子营镇": 1.5, "采育镇": 1.6, "青云店镇": 1.6,
}  # fmt: skip
# Spread of devices around a street's or town's centre, in degrees (街道 are small, 镇 large).
SPREAD_DEG = {"街道": 0.009, "镇": 0.028}

# Share of devices in service whose inspection is overdue (assumed: a realistic backlog, worse in
# some departments than in others; the inspection page shows which).
OVERDUE_SHARE = 0.11

ROADS: tuple[str, ...] = (
    "兴华大街", "黄村西大街", "兴丰大街", "金星路", "清源路", "林校路", "兴业大街", "永兴路", "团河路",
    "旧宫东路", "德茂路", "西红门路", "欣宁街", "新源大街", "天华大街", "芦求路", "魏石路", "东大路",
    "孙垡路", "马朱路", "朱大路", "青礼路", "青采路", "安采路", "京开高速辅路", "黄良路", "礼贤路",
    "榆顺路", "庞安路", "采林路", "狼垡路", "盛坊路", "康庄路", "兴政街", "三合北路", "双河北路",
    "观音寺街", "宏业路", "博兴路", "荣华中路", "地盛北街", "104国道", "大广高速辅路", "京良路",
)  # fmt: skip
ROAD_SPOTS: tuple[str, ...] = (
    "与{cross}交叉口",
    "{n}号",
    "公交站",
    "东侧",
    "西侧",
    "南口",
    "北口",
    "桥下",
    "中段",
)
COMMUNITIES: tuple[str, ...] = (
    "康庄", "兴涛", "枣园", "清澄名苑", "林校北里", "滨河", "三合庄园", "天宫院", "宜家园", "兴华园",
    "金华里", "车站北里", "海子角", "观音寺南里", "郁花园", "宏福苑", "瀛海家园", "旧宫新苑", "西红门星光",
    "亦庄住总", "荣京丽都", "博兴嘉园", "高米店北里", "首创澜茵山", "绿地新都会", "育龙家园",
)  # fmt: skip
VILLAGES: tuple[str, ...] = (
    "留民营", "半壁店", "辛店", "小王庄", "西黄垡", "东黄垡", "南各庄", "北研垡", "大辛庄", "河南头",
    "赵家场", "前辛庄", "后辛庄", "东梁各庄", "西梁各庄", "王各庄", "李家场", "孙村", "太子务", "韩园子",
    "佟营", "朱脑", "北泗上", "东辛屯", "大张本庄", "孝义营", "东潞州", "沙窝店", "西芦各庄", "前野厂",
    "后野厂", "皋营", "佟家务", "西郏河", "东郏河", "大马村", "石垡", "刘家铺", "梨花村", "张公垡",
    "新立村", "西大营", "六合庄", "垡上", "西胡林", "定福庄", "北顿垡", "南顿垡", "求贤", "龙头",
)  # fmt: skip
RIVERS: tuple[str, ...] = (
    "凤河", "新凤河", "凉水河", "天堂河", "大龙河", "小龙河", "永定河", "念坛水库", "龙河", "旱河",
)  # fmt: skip


# -- the city-management case ledger (closed loop 发现-派单-处置-反馈-考核, lines 172, 266, 274) ----


@dataclass(frozen=True)
class CaseCategory:
    name: str  # 问题类别
    weight: float  # share of cases (assumed)
    units: tuple[tuple[str, float], ...]  # 承办单位 it is dispatched to
    limit_days: int  # 处置时限 from dispatch
    problems: tuple[str, ...]  # typical 问题描述
    season: str = ""  # "summer" (rain, dust) or "winter" (heating) peaks


CASE_CATEGORIES: tuple[CaseCategory, ...] = (
    CaseCategory("市容环境", 0.20, (("区城市管理委", 1.0),), 5,
                 ("乱堆物料", "违规设置户外广告", "街面废弃自行车", "沿街晾晒", "暴露垃圾")),
    CaseCategory("街面秩序", 0.14, (("区城市管理委", 0.8), ("区公安分局", 0.2)), 3,
                 ("店外经营", "占道经营", "无照游商", "非机动车乱停放", "夜间烧烤占道")),
    CaseCategory("门前三包", 0.12, (("区城市管理委", 1.0),), 5,
                 ("责任区内积存垃圾", "门前乱摆乱放", "责任区绿地脏乱", "冬季门前积雪未清", "门前违规停车")),
    CaseCategory("市政设施", 0.12, (("区城市管理委", 0.6), ("区交通局", 0.4)), 7,
                 ("井盖缺失", "井盖破损", "路灯不亮", "道路坑槽", "护栏损坏", "交通标志损坏")),
    CaseCategory("环境卫生", 0.10, (("区城市管理委", 1.0),), 3,
                 ("垃圾满溢", "公厕保洁不到位", "道路保洁不到位", "焚烧垃圾", "积存渣土")),
    CaseCategory("垃圾分类", 0.06, (("区城市管理委", 1.0),), 5,
                 ("分类桶站不规范", "混装混运", "桶站周边脏乱", "大件垃圾乱堆")),
    CaseCategory("园林绿化", 0.06, (("区园林绿化局", 1.0),), 7,
                 ("绿地毁损", "树木倒伏", "树枝遮挡信号灯", "绿地内堆放杂物")),
    CaseCategory("排水防汛", 0.05, (("区水务局", 1.0),), 3,
                 ("道路积水", "雨水口堵塞", "污水冒溢", "下凹桥积水"), "summer"),
    CaseCategory("扬尘噪声", 0.05, (("区生态环境局", 0.6), ("区住房城乡建设委", 0.4)), 5,
                 ("工地扬尘", "裸露土地未苫盖", "夜间施工噪声", "道路遗撒"), "summer"),
    CaseCategory("渣土运输", 0.03, (("区城市管理委", 0.7), ("区交通局", 0.3)), 5,
                 ("渣土车未密闭", "渣土车遗撒", "黑渣土车夜间运输")),
    CaseCategory("违法建设", 0.03, (("区住房城乡建设委", 0.6), ("区城市管理委", 0.4)), 15,
                 ("私搭乱建", "违规圈占", "楼顶违建")),
    CaseCategory("供热保障", 0.04, (("区城市管理委", 1.0),), 3,
                 ("室温不达标", "供热管线漏水", "热泵设备故障"), "winter"),
)  # fmt: skip

CASE_SOURCES: tuple[tuple[str, float], ...] = (
    ("网格员", 0.38),
    ("12345热线", 0.32),
    ("视频AI", 0.14),  # assumed to grow over the years as video analysis spreads
    ("巡查", 0.16),
)
# Assumed: about 1,700 city-management cases a month across the district at scale 1.0, more in
# summer; 2023-01 to the present.
CASES_PER_MONTH = 1_700
CASES_START = dt.date(2023, 1, 1)
# Assumed on-time closure rate (按期办结率), improving from 2023 to 2026 as the closed loop matures.
ON_TIME_BY_YEAR = {2023: 0.86, 2024: 0.9, 2025: 0.93, 2026: 0.95}
