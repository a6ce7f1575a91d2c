"""A department shipped as a declarative file (区通信管理办's 5G ledger, plugins/declarative/) in
the real portal: its menu section, list page with filters, map, cockpit tiles and the plugin
status page, as a leader and a platform admin sign in to them.

Screenshots go to test-artifacts/browser/ and, with HUIZHI_UPDATE_SCREENSHOTS=1, docs/screenshots/.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from databases import create_pg_database, drop_pg_database, test_store
from harness import documented_screenshot

from huizhi import demo

ROOT = Path(__file__).resolve().parents[2]
FOLDER = ROOT / "plugins" / "declarative"


@pytest.fixture(scope="module")
def declared_portal(start_portal, tmp_path_factory: pytest.TempPathFactory) -> Iterator[demo.Portal]:
    """A portal whose settings point at plugins/declarative, on its own database seeded with the
    file's demo rows (and a little of the sensing ledger, so the cockpit has a neighbour)."""
    from huizhi.config import load_settings
    from huizhi.host import create_host
    from huizhi_seeds import load_demo

    state = tmp_path_factory.mktemp("declared-portal")
    url = create_pg_database() if test_store() == "postgres" else f"duckdb:///{state / 'huizhi.duckdb'}"
    config = demo.write_demo_config(state / "huizhi.toml", {"database_url": url, "declarative_dir": FOLDER})
    settings = load_settings({"HUIZHI_CONFIG": str(config)}, data_dir=state)
    with create_host(settings) as host:
        assert host.registry.plugins["txb_5g"].status == "enabled"
        load_demo(host, ledgers=["txb_5g_stations"])
        load_demo(host, ledgers=["sensing_devices"], scale=0.01)
    try:
        yield start_portal(demo.default_app_path(), env={"HUIZHI_CONFIG": str(config), "HUIZHI_DATA_DIR": str(state)})
    finally:
        if test_store() == "postgres":
            drop_pg_database(url)


def _element_screenshot(locator, name: str) -> None:
    import os
    import shutil

    from harness import ARTIFACTS, DOCS_SCREENSHOTS

    path = ARTIFACTS / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    locator.screenshot(path=str(path))
    if os.environ.get("HUIZHI_UPDATE_SCREENSHOTS") == "1":
        shutil.copy(path, DOCS_SCREENSHOTS / f"{name}.png")


def _main(page) -> str:
    return page.locator('[data-testid="stMain"]').inner_text()


def test_the_declared_department_in_the_portal(page, declared_portal, sign_in, wait_rendered):
    page.set_viewport_size({"width": 1440, "height": 1000})
    sign_in(page, "leader", declared_portal)
    nav = page.locator('[data-testid="stSidebarNav"]').inner_text()
    assert "区通信管理办" in nav and "5G基站台账" in nav and "5G基站分布图" in nav

    page.goto(f"{declared_portal.url}/txb-5g?street=清源街道")
    wait_rendered(page, timeout=90)
    text = _main(page)
    assert "5G基站台账" in text and "清源街道" in text and "条记录" in text
    assert re.search(r"共 [0-9,]+ 条记录", text)
    documented_screenshot(page, "declarative-5g-ledger-1440")

    page.goto(f"{declared_portal.url}/txb-5g-map")
    wait_rendered(page, timeout=90)
    assert "有经纬度的记录" in _main(page)
    documented_screenshot(page, "declarative-5g-map-1440")

    page.goto(f"{declared_portal.url}/cockpit")
    wait_rendered(page, timeout=120)
    text = _main(page)
    for title in ("已开通5G基站", "重点区域基站开通率", "各镇街已开通5G基站", "5G基站累计开通"):
        assert title in text
    card = page.locator('[class*="st-key-hz-tile-txb_5g_open"]').first
    assert "达标" in card.inner_text()  # past 3600 stations: the plan's 2023 target is met
    documented_screenshot(page, "declarative-5g-cockpit-1440")
    trend = page.locator('[class*="st-key-hz-tile-txb_5g_trend"]').first
    assert "5G基站累计开通" in trend.inner_text()
    _element_screenshot(trend, "declarative-5g-trend-tile")


def test_the_plugin_status_page_lists_the_file(page, declared_portal, sign_in, wait_rendered):
    sign_in(page, "platform-admin", declared_portal)
    page.goto(f"{declared_portal.url}/admin-plugins")
    wait_rendered(page, timeout=60)
    text = _main(page)
    assert "安装声明式插件" in text and "plugins/declarative" in text and "检查并安装" not in text  # no file yet
    # the status table is drawn on a canvas: the plugin switch's options name the file's plugin
    page.locator('[data-testid="stSelectbox"]').last.click()
    assert "txb_5g" in page.locator('[role="listbox"]').inner_text()
    page.keyboard.press("Escape")
    documented_screenshot(page, "declarative-admin-plugins-1280")


def test_a_department_sees_only_its_own_sites_on_the_shared_page(page, declared_portal, sign_in, wait_rendered):
    page.set_viewport_size({"width": 1440, "height": 1000})
    sign_in(page, "staff-cgw", declared_portal)
    nav = page.locator('[data-testid="stSidebarNav"]').inner_text()
    assert "本单位提供站址的5G基站" in nav and "5G基站台账" not in nav  # not 区通信管理办's own pages
    page.goto(f"{declared_portal.url}/txb-5g-sites")
    wait_rendered(page, timeout=90)
    text = _main(page)
    assert "按权限，您只能查看 区城市管理委 的记录" in text and re.search(r"共 [0-9,]+ 条记录", text)
    documented_screenshot(page, "declarative-5g-shared-cgw-1440")
