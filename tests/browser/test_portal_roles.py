"""What each demo identity sees in the real portal, signed in through the local provider.

Also writes the README/docs screenshots: to test-artifacts/browser/ always, and to
docs/screenshots/ when HUIZHI_UPDATE_SCREENSHOTS=1.
"""

from __future__ import annotations

import re

import pytest
from harness import documented_screenshot


def _nav(page) -> str:
    return page.locator('[data-testid="stSidebarNav"]').inner_text()


def _main(page) -> str:
    return page.locator('[data-testid="stMain"]').inner_text()


def _open(page, portal, url_path: str, wait_rendered) -> None:
    page.goto(f"{portal.url}/{url_path}")
    wait_rendered(page, timeout=60)


@pytest.fixture
def wide(page):
    page.set_viewport_size({"width": 1600, "height": 1000})
    return page


def test_leader_sees_every_department_and_the_cockpit(wide, portal, sign_in, wait_rendered, screenshot):
    page = wide
    sign_in(page, "leader")
    nav = _nav(page)
    for section in ("总览", "领导驾驶舱", "区经济和信息化局", "区城市管理委", "感知前端台账"):
        assert section in nav
    assert "插件状态" not in nav  # leaders are not platform admins
    documented_screenshot(page, "home")

    _open(page, portal, "cockpit", wait_rendered)
    text = _main(page)
    assert "感知前端建账数" in text and "按期办结率" in text  # tiles of both departments
    documented_screenshot(page, "cockpit")

    _open(page, portal, "sensing-ledger", wait_rendered)
    text = _main(page)
    # st.dataframe draws rows on a canvas; the metrics above it are text
    assert "感知前端管理台账" in text and "设备数" in text and "15.27万" in text
    documented_screenshot(page, "sensing-ledger")


def test_department_staff_sees_only_its_department(page, portal, sign_in, wait_rendered):
    sign_in(page, "staff-cgw")
    nav = _nav(page)
    assert "区城市管理委" in nav
    assert "区经济和信息化局" not in nav and "感知前端台账" not in nav
    # a crafted URL to another department's page does not render it
    _open(page, portal, "sensing-ledger", wait_rendered)
    assert "设备数" not in _main(page)
    # the cockpit shows this department's tiles only
    _open(page, portal, "cockpit", wait_rendered)
    text = _main(page)
    assert "按期办结率" in text
    assert "感知前端建账数" not in text


def test_platform_admin_sees_the_broken_plugin_disabled_and_no_department_data(
    wide, portal, sign_in, wait_rendered, screenshot
):
    page = wide
    sign_in(page, "platform-admin")
    nav = _nav(page)
    assert "插件状态" in nav and "审计日志" in nav
    assert "区经济和信息化局" not in nav and "领导驾驶舱" not in nav
    _open(page, portal, "admin-plugins", wait_rendered)
    text = _main(page)
    assert "1 个插件未能加载" in text  # exactly the broken one: sensing and citymgmt load
    assert "broken" in text and "huizhi-gis-tools" in text  # disabled with its reason
    documented_screenshot(page, "admin-plugins")

    _open(page, portal, "admin-audit", wait_rendered)
    # this session's own sign-in and page views are already there (rows are on a canvas)
    count = re.search(r"共 (\d+) 条", _main(page))
    assert count and int(count.group(1)) >= 3


FORBIDDEN = ("sensing-ledger", "admin-audit", "no-such-page")  # another department's, admin-only, unknown


def test_typed_urls_to_forbidden_pages_are_refused_in_chinese_and_audited(page, portal, sign_in, sign_out,
                                                                          wait_rendered):
    sign_in(page, "staff-cgw")
    for url_path in FORBIDDEN:
        _open(page, portal, url_path, wait_rendered)
        text = _main(page)
        assert f"无法打开页面“/{url_path}”" in text, text
        assert "您好" not in text  # not quietly the home page instead
        assert "Page not found" not in page.content()  # not Streamlit's English dialog
        assert "区城市管理委" in _nav(page)  # the person's own menu is still there
    sign_out(page)

    # the platform admin finds each attempt in the audit log: who, what, how
    sign_in(page, "platform-admin")
    _open(page, portal, "admin-audit", wait_rendered)
    main = page.locator('[data-testid="stMain"]')
    main.get_by_label("操作人（姓名或标识）").fill("staff-cgw")
    main.get_by_label("操作人（姓名或标识）").press("Enter")
    wait_rendered(page)
    for url_path in FORBIDDEN:
        box = main.get_by_label("对象或详情包含")
        box.fill(f"page:{url_path}")
        box.press("Enter")
        wait_rendered(page)
        count = re.search(r"共 (\d+) 条", _main(page))
        assert count and int(count.group(1)) >= 1, f"no audit entry for page:{url_path}"
    box = main.get_by_label("对象或详情包含")
    box.fill("typed URL")
    box.press("Enter")
    wait_rendered(page)
    count = re.search(r"共 (\d+) 条", _main(page))
    assert count and int(count.group(1)) >= len(FORBIDDEN)
