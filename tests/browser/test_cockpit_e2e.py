"""The cockpit as a leader uses it (issue 6 acceptance): sign in, the plan's status at a glance,
filter by a street, drill down to the department page with the filter carried over, export."""

from __future__ import annotations

import io
import re
from pathlib import Path
from urllib.parse import parse_qs, urlparse

STREET = "清源街道"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "browser"


def _main(page) -> str:
    return page.locator('[data-testid="stMain"]').inner_text()


def test_leader_filters_drills_down_and_exports(page, portal, sign_in, wait_rendered, screenshot):
    page.set_viewport_size({"width": 1920, "height": 1080})
    sign_in(page, "leader")
    page.goto(f"{portal.url}/cockpit")
    wait_rendered(page, timeout=90)
    text = _main(page)
    for label in ("领导驾驶舱", "已逾期", "存在风险", "正常推进", "达标", "感知底座", "城市治理"):
        assert label in text
    cards = page.locator('[class*="st-key-hz-tile-"]')
    assert cards.count() >= 5

    # a street filter arriving in the URL (as from a shared link) applies to every tile
    page.goto(f"{portal.url}/cockpit?street={STREET}")
    wait_rendered(page, timeout=90)
    assert STREET in page.locator(".st-key-hz-streets").inner_text()
    assert f"street={STREET}" in page.url or "street=%E6%B8%85" in page.url  # kept in the address bar
    screenshot(page, ARTIFACTS / "cockpit-street-filter.png")

    # drill down: the tile's link opens the department page with the filter carried over
    link = page.locator('[class*="st-key-hz-tile-"] a[href*="street="]').first
    href = link.get_attribute("href")
    assert parse_qs(urlparse(href).query)["street"] == [STREET]
    link.click()
    page.wait_for_url(re.compile(r".*street=.*"), timeout=30_000)
    wait_rendered(page, timeout=90)
    assert "/cockpit" not in page.url

    # export the numbers as Excel from the cockpit
    page.goto(f"{portal.url}/cockpit")
    wait_rendered(page, timeout=90)
    page.get_by_role("button", name=re.compile("导出")).first.click()
    with page.expect_download(timeout=60_000) as download:
        page.get_by_role("button", name=re.compile("指标数据")).click()
    data = download.value.path().read_bytes()
    from openpyxl import load_workbook

    wb = load_workbook(io.BytesIO(data))
    assert "驾驶舱指标" in wb.sheetnames
    assert wb["驾驶舱指标"].max_row >= 6
