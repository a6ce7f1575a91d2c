"""The portal itself behind the real sign-in: who gets in, who is turned away (issue 4 §7)."""

from __future__ import annotations

from pathlib import Path

from huizhi import demo

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "browser"


def _main_text(page) -> str:
    return page.locator('[data-testid="stMain"]').inner_text()


def test_signed_out_visitor_sees_only_the_sign_in_page(page, portal, wait_rendered, screenshot) -> None:
    page.goto(portal.url)
    wait_rendered(page)
    text = _main_text(page)
    assert "登录" in text
    assert page.locator('[data-testid="stSidebarNav"]').count() == 0
    screenshot(page, ARTIFACTS / "portal-sign-in.png")


def test_leader_is_greeted_by_name(page, portal, sign_in) -> None:
    sign_in(page, "leader")
    assert f"您好，{demo.demo_identity('leader').name}" in _main_text(page)


def test_department_staff_is_greeted_by_name(page, portal, sign_in) -> None:
    sign_in(page, "staff-jxj")
    assert f"您好，{demo.demo_identity('staff-jxj').name}" in _main_text(page)


def test_unmapped_identity_gets_the_no_access_page(page, portal, sign_in, sign_out) -> None:
    sign_in(page, "visitor")
    text = _main_text(page)
    assert "暂无访问权限" in text
    assert "visitor（127.0.0.1:" in text and "|visitor" not in text  # a readable account, not <issuer>|<sub>
    assert page.locator('[data-testid="stSidebarNav"]').count() == 0
    sign_out(page)
    assert "暂无访问权限" not in _main_text(page)
