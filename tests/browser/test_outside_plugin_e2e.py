"""The outside plugin (examples/parks) in the real portal: its wheel installed with pip into a
folder of its own, discovered through its entry point, seeded with its own demo rows
(``huizhi seed``), and shown to a signed-in leader in Chromium (issue 11, point 7)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import ARTIFACTS, screenshot
from outside_plugin import build_and_install

from huizhi import demo
from huizhi.testing import create_database, drop_database

# packaging, docs and page text: the same on either store (tests/conftest.py)
pytestmark = pytest.mark.store_independent


@pytest.fixture(scope="module")
def parks_site(tmp_path_factory) -> Path:
    return build_and_install(tmp_path_factory.mktemp("parks-wheel"))


@pytest.fixture(scope="module")
def parks_portal(start_portal, parks_site, tmp_path_factory) -> Iterator[demo.Portal]:
    tmp = tmp_path_factory.mktemp("parks-portal")
    site = parks_site
    url = create_database(tmp)
    # the demo's role mapping, extended to the plugin's department the way `huizhi demo` does for
    # plugins that ship demo people (huizhi_demo_identities)
    config = demo.write_demo_config(tmp / "huizhi.toml", departments=["ylj"])
    env = {"HUIZHI_DATABASE_URL": url, "PYTHONPATH": str(site), "HUIZHI_CONFIG": str(config),
           "HUIZHI_DATA_DIR": str(tmp / "data")}
    seeded = subprocess.run(
        [sys.executable, "-m", "huizhi.cli", "seed", "--scale", "0.01"],
        env={**{k: v for k, v in os.environ.items() if not k.startswith("HUIZHI_")}, **env},
        cwd=tmp, capture_output=True, text=True, timeout=600,
    )
    assert seeded.returncode == 0, seeded.stderr
    assert "parks: 10 rows" in seeded.stdout, seeded.stdout  # the plugin's own demo rows (huizhi_demo_rows)
    yield start_portal(demo.default_app_path(), env=env)
    drop_database(url)


def test_the_outside_plugin_shows_in_the_portal(page, parks_portal, sign_in, wait_rendered):
    sign_in(page, "leader", parks_portal)
    nav = page.locator('[data-testid="stSidebarNav"]').inner_text()
    assert "区园林绿化局" in nav and "公园绿地" in nav, nav
    page.goto(f"{parks_portal.url}/parks")
    wait_rendered(page, timeout=60)
    main = page.locator('[data-testid="stMain"]').inner_text()
    assert "公园绿地" in main and "公园数" in main and "智慧公园" in main, main
    assert "10" in main and "运行出错" not in main
    screenshot(page, ARTIFACTS / "outside-plugin-parks.png")
    page.goto(f"{parks_portal.url}/cockpit")
    wait_rendered(page, timeout=90)
    cockpit = page.locator('[data-testid="stMain"]').inner_text()
    assert "智慧公园占比" in cockpit and "50%" in cockpit, cockpit  # 5 of the 10 demo parks
    screenshot(page, ARTIFACTS / "outside-plugin-cockpit.png")


def test_the_plugins_demo_person_sees_its_department(page, parks_portal, parks_site, oidc, sign_in, wait_rendered):
    """``staff-ylj`` comes from the plugin's huizhi_demo_identities, as ``huizhi demo`` offers it."""
    sys.path.insert(0, str(parks_site))
    try:
        from huizhi_parks import plugin as parks

        from huizhi.district import DAXING

        people = demo.plugin_demo_identities([(p, "parks") for p in parks.huizhi_demo_identities()], DAXING)
    finally:
        sys.path.remove(str(parks_site))
    staff = next(p for p in people if p.sub == "staff-ylj")
    oidc.set_user(staff.sub, staff.claims())
    sign_in(page, staff.sub, parks_portal)
    nav = page.locator('[data-testid="stSidebarNav"]').inner_text()
    assert "公园绿地" in nav and "区经济和信息化局" not in nav and "感知前端台账" not in nav, nav
    page.goto(f"{parks_portal.url}/parks")
    wait_rendered(page, timeout=60)
    main = page.locator('[data-testid="stMain"]').inner_text()
    assert "公园数" in main and "运行出错" not in main, main
