"""Figures and dates from the action plan that the sensing tiles measure against.

Line numbers refer to shared/seed/000_13d12552085a2273.txt, the plan's text
(《大兴区新型智慧城市建设行动计划（2022-2025年）》, issued 2022-10-09).
"""

from __future__ import annotations

import datetime as dt

PLAN_ISSUED = dt.date(2022, 10, 9)

BASELINE_CAMERAS = 30_000  # 第11行：全区建成各类视频监控3万余路
BASELINE_IOT = 130_000  # 第11行：数十类感知设备近13万套
BASELINE_TOTAL = BASELINE_CAMERAS + BASELINE_IOT
BASELINE_IOT_KINDS = 30  # 第11行：区内各领域30多种传感设备统一接入

CENSUS_DEADLINE = dt.date(2023, 12, 31)  # 第104行：到2023年底完成普查、核对，感知前端一套台账初步形成
NETWORK_DEADLINE = dt.date(2023, 12, 31)  # 第120行：到2023年底实现全区感知网络“应联尽联”

# Not a figure from the plan: line 104 asks for periodic inspection without a number; the steward
# (区经济和信息化局) manages against this threshold. Said so wherever it is shown.
OVERDUE_THRESHOLD_PCT = 5.0
OVERDUE_THRESHOLD_DATE = dt.date(2025, 12, 31)
