"""Issue 12: one time zone for people, zh-CN where end users look, readable tables and charts.

The browser side (rendered text scanned for English, the uploader's Chinese) is in
tests/browser/test_zh_cn.py; these are the rules behind it.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import huizhi_citymgmt.plugin as citymgmt_plugin
import huizhi_sensing.plugin as sensing_plugin
import pandas as pd

from huizhi import fmt, kit
from huizhi.access import Grant, Identity, Role
from huizhi.context import PageContext

ROOT = Path(__file__).resolve().parents[1]
PLUGINS = [("sensing", sensing_plugin), ("citymgmt", citymgmt_plugin)]

# -- times -----------------------------------------------------------------------------------------

# Where people read times. A clock format (%H) anywhere here bypasses huizhi.fmt.format_as_of,
# so the page could show UTC or a time without its date; file-name stamps are the exception.
PEOPLE_FACING = [
    *sorted((ROOT / "pages").glob("*.py")),
    *sorted((ROOT / "plugins").glob("*/huizhi_*/*.py")),
    ROOT / "platform/huizhi/app.py",
    ROOT / "platform/huizhi/kit.py",
    ROOT / "platform/huizhi/cockpit/export.py",
]
FILE_STAMP = "%Y%m%d-%H%M"


def test_every_time_people_read_goes_through_format_as_of():
    offenders = []
    for path in PEOPLE_FACING:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            code = line.split("#", 1)[0]
            if FILE_STAMP in code:
                continue
            if "%H" in code or re.search(r"\.strftime\(", code):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
            if re.search(r"[（(]UTC[）)]", code):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: UTC shown to people: {line.strip()}")
    assert not offenders, "\n".join(offenders)


def test_format_as_of_is_beijing_time_with_its_date():
    stored = dt.datetime(2026, 11, 30, 17, 5, 9)  # naive UTC, as the host stores it
    assert fmt.format_as_of(stored) == "2026-12-01 01:05"
    assert fmt.format_as_of(stored, seconds=True) == "2026-12-01 01:05:09"
    aware = dt.datetime(2026, 12, 1, 1, 5, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    assert fmt.format_as_of(aware) == "2026-12-01 01:05"
    assert fmt.format_as_of(None) == "—"
    # a timestamp in a kit table (the host's naive UTC) reads in Beijing time too
    shown = kit.display_frame(pd.DataFrame({"at": [stored]}), {"at": "提交时间"})
    assert list(shown["提交时间"]) == ["2026-12-01 01:05"]


# -- numbers and charts ----------------------------------------------------------------------------


def test_chart_axes_use_the_labels_scale():
    # labels write 79,974 as 7.9974万: the axis must say 万 too, not 80,000
    assert fmt.format_number(79_974).endswith("万")
    assert fmt.scale_for([79_974, 9_936]) == (1e4, "万")
    assert fmt.scale_for([9_936]) == (1.0, "")
    fig = kit.bar_figure(["区公安分局", "区城市管理委"], [79_974, 9_936])
    ticks = list(fig.layout.xaxis.ticktext)
    assert ticks[0] == "0" and all(t.endswith("万") for t in ticks[1:]), ticks  # 0, 2万 … never "0万"
    assert max(fig.data[0].x) < 10  # drawn in 万
    assert list(fig.data[0].text) == ["8万", "9,936"]
    small = kit.bar_figure(["甲", "乙"], [11_100, 9_606])  # 0.25万 steps are not rounded to "1万"
    assert "0.25万" in list(small.layout.xaxis.ticktext), list(small.layout.xaxis.ticktext)
    assert fmt.axis_ticks(0.0) == ([0.0], ["0"])
    assert fmt.axis_ticks(9_606)[1] == ["0", "2,000", "4,000", "6,000", "8,000", "1万"]
    assert fig.layout.yaxis.tickangle in (None, 0)  # labels read horizontally


def test_ratio_range_keeps_a_rate_line_inside_its_axis():
    for values in ([0.95, 1.0, 0.99], [0.62, 0.81], [1.0, 1.0], [None, 0.4]):
        low, high = kit.ratio_range(values)
        nums = [v for v in values if v is not None]
        assert low < min(nums) and high > max(nums) and high - low >= 0.1
    assert kit.ratio_range([]) == [0.0, 1.05]
    assert kit.ratio_range([0.01, 0.02])[0] == 0.0  # never below the floor


# -- tables ----------------------------------------------------------------------------------------


def test_key_columns_lead():
    frame = pd.DataFrame({"a": [1], "b": [2], "c": [3], "lon": [116.3]})
    assert kit.column_order(frame, ("c", "a", "missing")) == ["c", "a", "b", "lon"]
    assert kit.column_order(frame, ("c",), hide=("lon",)) == ["c", "a", "b"]


# -- filters and the person's own unit -------------------------------------------------------------


def test_filters_active_ignores_the_panels_starting_window():
    today = dt.date(2026, 12, 1)
    rows = ((kit.DateRange("period", "发现日期"), kit.Pick("streets", "镇街", ("黄村镇",), ("street",))),)
    start, end = rows[0][0].bounds(rows[0][0].empty(), today)
    assert not kit.filters_active(rows, {"start": start, "end": end, "streets": ()}, today)
    assert kit.filters_active(rows, {"start": start, "end": end, "streets": ("黄村镇",)}, today)
    assert kit.filters_active(rows, {"start": dt.date(2020, 1, 1), "end": end, "streets": ()}, today)


def test_own_units_are_the_persons_departments_by_name():
    def ctx(*grants):
        who = Identity("t", "测试", frozenset(Grant(Role(r), d) for r, d in grants))
        return PageContext(_host=None, identity=who, plugin="t")

    assert kit.own_units(ctx(("staff", "jxj"))) == ("区经济和信息化局",)
    assert kit.own_units(ctx(("leader", None))) == ()
    assert kit.own_units(ctx(("staff", "cgw"), ("ledger_admin", "jxj"))) == ("区城市管理委", "区经济和信息化局")


# -- the audit log reads in Chinese ----------------------------------------------------------------


def test_audit_log_shows_readable_actions_targets_and_outcomes(make_host):
    from huizhi_pages.admin import audit_rows

    host = make_host(extra_plugins=PLUGINS)
    who = Identity("https://idp.example|staff-cgw", "张建国", frozenset({Grant(Role.STAFF, "cgw")}))
    host.audit.record(who, "access.denied", "ledger:sensing_devices", "denied", how="ledger read", plugin="sensing")
    host.audit.record(who, "access.denied", "page:sensing-ledger", "denied", how="typed URL", exists=True)
    host.audit.record(who, "access.denied", "page:no-such-page", "denied", how="typed URL", exists=False)
    host.audit.record(who, "ledger.upload", "ledger:city_cases", "rejected", reason="文件不是 Excel", rows=79974,
                      errors=12, warnings=0, file_name="案件.xlsx", sha256="ab" * 32)
    host.audit.record(who, "ledger.commit", "ledger:city_cases", version=3, rows=152738, added=1, changed=2,
                      removed=0)
    host.audit.record(who, "signin", grants=["区城市管理委 · 科员"], token="x@1")
    rows = audit_rows(host, list(reversed(host.audit.search(limit=10))))
    assert list(rows["结果"]) == ["拒绝", "拒绝", "拒绝", "未通过", "成功", "成功"]
    assert list(rows["对象"][:4]) == [
        "台账“感知前端管理台账”", "页面“感知前端台账”", "页面“/no-such-page”（不存在）", "台账“城市管理案件台账”",
    ] or rows["对象"][0] == "台账“感知前端管理台账”"
    assert rows["对象"][0] == "台账“感知前端管理台账”" and rows["对象"][1] == "页面“感知前端台账”"
    assert list(rows["操作"]) == ["拒绝访问", "拒绝访问", "拒绝访问", "上传台账", "提交台账版本", "登录"]
    assert "方式：读取台账" in rows["说明"][0] and "方式：直接输入网址" in rows["说明"][1]
    assert "行数 79,974" in rows["说明"][3] and "错误 12" in rows["说明"][3]
    assert "第3版" in rows["说明"][4] and "152,738" in rows["说明"][4]
    assert list(rows["操作人"]) == ["张建国"] * 6
    # no internal keys, raw JSON or English in what the table shows
    shown = " ".join(str(v) for v in rows.drop(columns=["编号", "时间（北京时间）"]).to_numpy().ravel())
    for raw in ("ledger:", "page:", "https://", '{"', "typed URL", "denied", "rejected", "sha256"):
        assert raw not in shown, raw
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", rows["时间（北京时间）"][0])


# -- the app shell's Chinese for Streamlit's English widgets ---------------------------------------


def test_shell_css_replaces_the_uploaders_and_multiselects_english():
    from huizhi.app import locale_css

    css = locale_css(200)
    for chinese in ("选择文件", "单个文件不超过 200MB", "将文件拖放到此处", "全选", "无匹配选项", "按回车键确认"):
        assert f'content: "{chinese}"' in css
    assert "stFileUploaderDropzoneInstructions" in css and "__select_all__" in css
    # the English text is hidden from sight and from innerText, not only shrunk
    assert css.count("visibility: hidden") == css.count("::after")
