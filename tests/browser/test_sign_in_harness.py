"""The sign-in plumbing on its own: oidc-provider-mock + st.login + Chromium, with a minimal app
(login_probe_app.py) so that a failure here points at the harness, not at the portal."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from huizhi import demo

# Nothing here touches the database: run it in the DuckDB pass only.
pytestmark = pytest.mark.skipif(
    os.environ.get("HUIZHI_TEST_DB", "duckdb") != "duckdb",
    reason="store-independent; runs in the duckdb pass",
)

PROBE_APP = Path(__file__).with_name("login_probe_app.py")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "browser"


@pytest.fixture(scope="module")
def probe(start_portal) -> demo.Portal:
    return start_portal(PROBE_APP)


def test_provider_listens_on_loopback_only(oidc: demo.Provider) -> None:
    status, body = demo.http_get(oidc.discovery_url)
    assert status == 200
    assert f'"issuer": "{oidc.base_url}"'.encode() in body
    with open("/proc/net/tcp") as fh:  # local_address of LISTEN (0A) sockets on the port
        listening = [line.split()[1] for line in fh.read().splitlines()[1:] if line.split()[3] == "0A"]
    ours = [addr for addr in listening if int(addr.split(":")[1], 16) == oidc.port]
    assert ours == ["0100007F:" + f"{oidc.port:04X}"], ours


@pytest.mark.parametrize("sub", ["leader", "staff-jxj", "visitor"])
def test_round_trip_puts_the_demo_claims_in_st_user(page, probe, sign_in, sub) -> None:
    identity = demo.demo_identity(sub)
    page.goto(probe.url)
    sign_in(page, sub, probe)
    main = page.locator('[data-testid="stMain"]')
    assert f"已登录：{identity.name}（{identity.title}）" in main.inner_text()
    shown = page.locator('[data-testid="stJson"]').inner_text()
    assert identity.email in shown
    for group in identity.groups:
        assert group in shown


def test_sign_out_ends_the_session(page, probe, sign_in, sign_out, wait_rendered) -> None:
    sign_in(page, "staff-cgw", probe)
    assert "张建国" in page.locator('[data-testid="stMain"]').inner_text()
    sign_out(page, probe)
    assert "尚未登录" in page.locator('[data-testid="stMain"]').inner_text()
    page.reload()
    wait_rendered(page)
    assert "尚未登录" in page.locator('[data-testid="stMain"]').inner_text()


def test_claims_changed_at_the_provider_apply_at_next_sign_in(page, oidc, probe, sign_in, sign_out) -> None:
    claims = demo.demo_identity("visitor").claims() | {"groups": ["dept-cgw-staff"], "title": "临时借调"}
    oidc.set_user("visitor-2", claims)
    sign_in(page, "visitor-2", probe)
    assert "赵敏（临时借调）" in page.locator('[data-testid="stMain"]').inner_text()
    assert "dept-cgw-staff" in page.locator('[data-testid="stJson"]').inner_text()


def test_full_page_screenshot_reaches_below_the_fold(page, probe, sign_in, screenshot) -> None:
    sign_in(page, "admin-jxj", probe)
    path = screenshot(page, ARTIFACTS / "sign-in-probe-full.png")
    width, height = _png_size(path)
    assert width == 1280
    assert height > 1500, "the screenshot stopped at the window instead of the whole page"
    assert page.viewport_size == {"width": 1280, "height": 900}, "viewport not restored"


def test_chinese_text_is_rendered_with_a_cjk_font(page, probe, wait_rendered) -> None:
    page.goto(probe.url)
    wait_rendered(page)
    # Without a CJK font every character is drawn as the same empty box: draw two different
    # characters in the page's own font and compare the pixels.
    same = page.evaluate(
        """() => {
          const font = getComputedStyle(document.querySelector('h1')).fontFamily;
          const draw = (ch) => { const c = document.createElement('canvas'); c.width = c.height = 48;
            const x = c.getContext('2d'); x.font = '40px ' + font; x.fillText(ch, 2, 40);
            return Array.from(x.getImageData(0, 0, 48, 48).data).join(','); };
          return draw('慧') === draw('治');
        }"""
    )
    assert not same, "慧 and 治 render identically: no CJK font (apt-get install fonts-noto-cjk)"


def _png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    return int.from_bytes(header[16:20], "big"), int.from_bytes(header[20:24], "big")
