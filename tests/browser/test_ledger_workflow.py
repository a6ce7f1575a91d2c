"""A ledger admin's month, in the real portal: template → mistakes → every error explained →
marked workbook → fix → preview → commit → history → rollback (issues 3 and 5); then the
template route in 新增和修改 mode: 20 new devices added, nothing deleted (issue 12).

The test ends by rolling back, which restores the session's demo data for the tests after it.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import openpyxl
from harness import documented_screenshot

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "browser"


def _main(page) -> str:
    return page.locator('[data-testid="stMain"]').inner_text()


def _download(page, label: str, folder: Path) -> Path:
    with page.expect_download() as info:
        page.get_by_role("button", name=label).click()
    target = folder / info.value.suggested_filename
    info.value.save_as(target)
    return target


def _upload(page, path: Path, wait_rendered) -> None:
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(path))
    page.wait_for_timeout(500)
    wait_rendered(page, timeout=90)


def _fill(template: Path, out: Path, *, mistakes: bool, examples: bool = True) -> Path:
    """The downloaded template with its two example rows kept (or deleted) and one more row
    typed in the ways people do: a date as 2023年5月1日, 否 for a boolean, a number as text."""
    wb = openpyxl.load_workbook(template)
    ws = wb.worksheets[0]
    headers = [c.value for c in ws[1]]
    if not examples:
        ws.delete_rows(2, ws.max_row)
    row = {
        "城市码": "110115-XX-123" if mistakes else "110115-SP-00099001",
        "设备名称": "黄村西大街路口视频监控1号",
        "设备类型": "视频监控",
        "权属单位": "区公安分局",
        "所属镇街": "不存在镇" if mistakes else "黄村镇",
        "安装地点": "黄村西大街路口",
        "经度": 200 if mistakes else "116.3120",
        "纬度": 39.7215,
        "安装日期": "2023年5月1日",
        "是否联网": "否",
        "运行状态": "在用",
        "末次巡检日期": dt.date(2026, 10, 8),
        "巡检周期（天）": "90",
        "所属建设项目": "雪亮工程",
    }
    ws.append([row.get(h) for h in headers])
    wb.save(out)
    return out


def _fill_new(template: Path, out: Path, count: int) -> Path:
    """The template with its example rows replaced by ``count`` new devices."""
    wb = openpyxl.load_workbook(template)
    ws = wb.worksheets[0]
    headers = [c.value for c in ws[1]]
    ws.delete_rows(2, ws.max_row)
    for i in range(1, count + 1):
        row = {
            "城市码": f"110115-SP-{99_100_000 + i:08d}", "设备名称": f"兴华大街新装视频监控{i}号", "设备类型": "视频监控",
            "权属单位": "区公安分局", "所属镇街": "兴丰街道", "安装地点": "兴华大街", "经度": 116.3381, "纬度": 39.7416,
            "安装日期": "2024-03-01", "是否联网": "是", "运行状态": "在用", "末次巡检日期": dt.date(2026, 9, 1),
            "巡检周期（天）": 90, "所属建设项目": "雪亮工程",
        }  # fmt: skip
        ws.append([row.get(h) for h in headers])
    wb.save(out)
    return out


def _audit_count(page, portal, wait_rendered, *, action: str, text: str) -> int:
    """How many audit entries the platform admin's audit page finds (this session's database)."""
    page.goto(f"{portal.url}/admin-audit")
    wait_rendered(page)
    main = page.locator('[data-testid="stMain"]')
    main.get_by_label("操作", exact=True).click()
    page.get_by_role("option", name=action, exact=True).click()
    wait_rendered(page)
    box = main.get_by_label("对象或详情包含")
    box.fill(text)
    box.press("Enter")
    wait_rendered(page)
    return int(re.search(r"共 (\d+) 条", _main(page)).group(1))


def _no_leftovers(text: str) -> None:
    """After a commit or rollback: no stale preview, commit button or ticked confirmation."""
    assert "变更预览" not in text and "提交为新版本" not in text and "我确认删除" not in text, text


def test_ledger_admin_workflow(page, portal, sign_in, sign_out, wait_rendered, tmp_path, screenshot):
    page.set_viewport_size({"width": 1500, "height": 1000})
    sign_in(page, "admin-jxj")
    page.goto(f"{portal.url}/ledgers")
    wait_rendered(page)
    # the ledger this admin uploads comes first in the selector
    assert page.get_by_role("combobox", name="台账").input_value() == "感知前端管理台账（区经济和信息化局）"
    assert "当前为第 1 版" in _main(page)

    page.get_by_role("tab", name="模板与导出").click()
    wait_rendered(page)
    template = _download(page, "下载填报模板", tmp_path)
    assert openpyxl.load_workbook(template).sheetnames == ["感知前端管理台账", "填写说明"]

    # 1. an upload with mistakes: nothing can be committed, every bad cell is explained
    page.get_by_role("tab", name="上传新版本").click()
    assert page.get_by_role("radio", name="新增和修改").is_checked()  # the default: deletes nothing unlisted
    page.get_by_text("整表替换", exact=True).click()  # this month's file is the whole ledger
    wait_rendered(page)
    _upload(page, _fill(template, tmp_path / "感知设备-有错.xlsx", mistakes=True), wait_rendered)
    text = _main(page)
    errors = int(re.search(r"发现 (\d+) 处错误", text).group(1))
    assert errors == 3, text  # 城市码 format, 所属镇街 not a choice, 经度 out of range
    assert "提交为新版本" not in text
    documented_screenshot(page, "ledger-upload-errors")

    marked = openpyxl.load_workbook(_download(page, "下载标注错误的工作簿", tmp_path))
    sheet = marked.worksheets[0]
    headers = [c.value for c in sheet[1]]
    noted = {headers[c.column - 1] for c in sheet[4] if c.comment}  # row 4: header + 2 examples + ours
    assert noted == {"城市码", "所属镇街", "经度"}
    assert "错误清单" in marked.sheetnames

    # 2. fixed, but the template's two example rows still in: refused, naming them (their
    # realistic 城市码 may be real devices), nothing staged
    _upload(page, _fill(template, tmp_path / "感知设备-带示例.xlsx", mistakes=False), wait_rendered)
    text = _main(page)
    assert "处错误" not in text and "变更预览" not in text and "提交为新版本" not in text
    assert re.search(r"第 2 行（110115-SP-\d+）、第 3 行（110115-SP-\d+）是下载模板时自带的示例行", text), text
    # the examples deleted: a preview against the current version, then an atomic commit
    _upload(page, _fill(template, tmp_path / "感知设备-已改.xlsx", mistakes=False, examples=False), wait_rendered)
    text = _main(page)
    assert "处错误" not in text
    assert "变更预览" in text and "新增" in text and "删除" in text
    # one row replacing the whole district ledger: the page asks before deleting the rest
    assert "本次提交将删除当前版本中" in text and "提交为新版本" not in text
    page.get_by_text(re.compile(r"我确认删除这 [\d,]+ 行")).click()
    wait_rendered(page)
    page.get_by_role("button", name="提交为新版本").click()
    wait_rendered(page, timeout=90)
    assert re.search(r"已提交为第 2 版：新增 1，修改 0，删除 [\d,]+，共 1 行", _main(page)), _main(page)
    text = _main(page)
    assert "当前为第 2 版" in text and "感知设备-已改.xlsx" not in text  # the uploader is empty again
    _no_leftovers(text)

    # 3. history and rollback: one action, a new version, nothing lost
    page.reload()
    wait_rendered(page)
    page.get_by_role("tab", name="版本历史").click()
    wait_rendered(page)
    assert "版本变更明细" in _main(page)  # what version 2 changed, recomputed from the kept rows
    page.get_by_text("我确认将“感知前端管理台账”恢复到第1版").click()
    wait_rendered(page)
    page.get_by_role("button", name="回滚").click()
    wait_rendered(page, timeout=90)
    text = _main(page)
    assert "已恢复第1版的数据，作为第3版。" in text and "当前为第 3 版" in text
    _no_leftovers(text)
    page.get_by_role("tab", name="版本历史").click()
    assert "当前为第 3 版" in _main(page)
    assert not page.get_by_role("checkbox", name=re.compile("我确认将")).is_checked()  # a new, unticked box
    assert page.get_by_role("button", name="回滚").is_disabled()
    documented_screenshot(page, "ledger-history")

    # 4. the template route: 20 new devices in 新增和修改 mode add 20 rows and delete none
    page.reload()
    wait_rendered(page)
    every_tab = page.locator('[data-testid="stMain"]').text_content()  # hidden tabs included
    rows_before = int(re.search(r"导出您可见的当前数据（([\d,]+) 行", every_tab).group(1).replace(",", ""))
    page.get_by_role("tab", name="上传新版本").click()
    assert page.get_by_role("radio", name="新增和修改").is_checked()
    _upload(page, _fill_new(template, tmp_path / "感知设备-新增20台.xlsx", 20), wait_rendered)
    text = _main(page)
    assert "处错误" not in text and "变更预览" in text, text
    counts = re.search(r"变更预览\s+新增\s+([\d,]+)\s+修改\s+([\d,]+)\s+删除\s+([\d,]+)", text)
    assert counts and counts.groups() == ("20", "0", "0"), text
    assert "本次提交将删除" not in text  # nothing to confirm
    documented_screenshot(page, "ledger-upload-modes")
    page.get_by_role("button", name="提交为新版本").click()
    wait_rendered(page, timeout=90)
    text = _main(page)
    assert f"已提交为第 4 版：新增 20，修改 0，删除 0，共 {rows_before + 20:,} 行。" in text, text
    assert "当前为第 4 版" in text
    _no_leftovers(text)
    page.get_by_role("tab", name="版本历史").click()
    wait_rendered(page)
    documented_screenshot(page, "ledger-history-modes")  # the history table (a canvas) names the mode

    # 5. the audit log holds what happened: four uploads (one refused for its example rows), no
    # entry for ticking a box
    page.get_by_text("我确认将“感知前端管理台账”恢复到第3版").click()
    wait_rendered(page)
    page.get_by_role("button", name="回滚").click()
    wait_rendered(page, timeout=90)
    assert "当前为第 5 版" in _main(page)
    sign_out(page)
    sign_in(page, "platform-admin")
    assert _audit_count(page, portal, wait_rendered, action="上传台账", text="感知设备-") == 4
    assert _audit_count(page, portal, wait_rendered, action="提交台账版本", text="感知设备-") == 2
