"""How ``plugins/declarative/txb_5g.demo.csv`` was made: 区通信管理办's 5G base stations.

The declarative file ships its demo rows as a CSV headed like the template (a department without
Python keeps such a file); this script regenerates it from the plan's figures, deterministically:
2466 stations open at the plan's issue (line 13), about 3,700 by the end of 2023 (line 115: over
18 per 10,000 people, about 200万 residents), a slower pace since, and some planned and under
construction. Sites on municipal resources (lamp posts, schools, transport hubs) are attributed
to the department that provides them (line 115).

    .venv/bin/python -m huizhi_seeds.txb_5g plugins/declarative/txb_5g.demo.csv
"""

from __future__ import annotations

import csv
import datetime as dt
import random
import sys
from pathlib import Path

from huizhi import district

SEED = 20221009
PLAN = dt.date(2022, 10, 9)
URBAN = {"兴丰街道", "林校路街道", "清源街道", "观音寺街道", "天宫院街道", "高米店街道", "荣华街道", "博兴街道",
         "亦庄镇", "旧宫镇", "西红门镇", "黄村镇", "瀛海镇"}  # fmt: skip
AIRPORT = {"榆垡镇", "礼贤镇"}  # 临空经济区
AREAS_URBAN = ["新城地区"] * 5 + ["重点商圈"] * 2 + ["交通枢纽", "校园"] + ["其他"] * 3
AREAS_RURAL = ["行政村"] * 5 + ["其他"] * 2 + ["校园"]
OPERATORS = ["中国移动"] * 5 + ["中国联通"] * 3 + ["中国电信"] * 3 + ["中国广电"]
SITE_DEPTS = {
    "新城地区": ["区城市管理委"] * 4 + ["区住房城乡建设委"] * 2 + ["区通信管理办"] * 3,
    "重点商圈": ["区通信管理办"] * 3 + ["区城市管理委"],
    "交通枢纽": ["区交通局"] * 3 + ["区城市管理委"],
    "校园": ["区教委"],
    "行政村": ["区通信管理办"] * 2 + ["区城市管理委", "区委社会工委区民政局"],
    "临空经济区": ["区通信管理办"] * 2 + ["区交通局"],
    "其他": ["区通信管理办"] * 3 + ["区卫生健康委", "区政务服务局", "区城市管理委"],
}
NAMES = {"室外宏站": "宏站", "室外微站": "微站", "室内分布": "室分"}
ROADS = ["兴华大街", "黄村西大街", "京开路", "兴业大街", "永兴路", "金星路", "龙河路", "团河路", "新源大街", "清源路"]


def generate() -> list[dict[str, str]]:
    rng = random.Random(SEED)
    streets = district.STREETS
    weights = [5 if s.name in URBAN else 2 for s in streets]
    rows: list[dict[str, str]] = []

    def between(a: dt.date, b: dt.date) -> dt.date:
        return a + dt.timedelta(days=rng.randrange(max(1, (b - a).days)))

    def add(status: str, opened: dt.date | None) -> None:
        s = rng.choices(streets, weights)[0]
        if s.name in AIRPORT and rng.random() < 0.6:
            area = "临空经济区"
        else:
            area = rng.choice(AREAS_URBAN if s.name in URBAN else AREAS_RURAL)
        indoor = 2 if area in ("重点商圈", "交通枢纽", "校园") else 0.5
        coverage = rng.choices(["室外宏站", "室外微站", "室内分布"], [6, 2, indoor])[0]
        start = None
        if opened is not None:
            start = opened - dt.timedelta(days=rng.randrange(30, 150))
        elif status == "在建":
            start = between(dt.date(2026, 3, 1), dt.date(2026, 11, 20))
        lon: float | None = min(max(round(s.lon + rng.gauss(0, 0.018), 5), 116.21), 116.74)
        lat: float | None = min(max(round(s.lat + rng.gauss(0, 0.014), 5), 39.43), 39.85)
        if rng.random() < 0.03:  # a few stations registered without coordinates yet
            lon = lat = None
        road = rng.choice(ROADS)
        rows.append({
            "基站编号": f"5G-DX-{len(rows) + 1:05d}",
            "基站名称": f"{s.name}{road}{NAMES[coverage]}{rng.randrange(1, 40):02d}",
            "运营商": rng.choice(OPERATORS), "所属镇街": s.name, "重点区域": area, "覆盖方式": coverage,
            "站址提供单位": rng.choice(SITE_DEPTS[area]), "建设状态": status,
            "开工日期": start.isoformat() if start else "", "开通日期": opened.isoformat() if opened else "",
            "经度": "" if lon is None else f"{lon}", "纬度": "" if lat is None else f"{lat}",
        })  # fmt: skip

    for _ in range(2466):
        add("已开通", between(dt.date(2019, 10, 1), PLAN))
    for _ in range(1240):
        add("已开通", between(PLAN, dt.date(2023, 12, 31)))
    for _ in range(620):
        add("已开通", between(dt.date(2024, 1, 1), dt.date(2026, 11, 25)))
    for _ in range(140):
        add("在建", None)
    for _ in range(90):
        add("规划", None)
    return rows


def write(path: Path) -> int:
    rows = generate()
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return len(rows)


if __name__ == "__main__":
    print(write(Path(sys.argv[1])))
