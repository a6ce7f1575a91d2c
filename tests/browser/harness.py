"""Plain helpers for driving the portal in Chromium (the fixtures in conftest.py wrap them).

Importable by tests that run their own provider or portal: ``from harness import sign_in``.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Any

from huizhi import demo

CHROMIUM = os.environ.get("HUIZHI_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
# Every request that is not loopback goes to a proxy that does not exist, so nothing leaves the
# machine — including redirect hops, which page.route() would not see.
NO_NETWORK_PROXY = {"server": "http://127.0.0.1:9", "bypass": "127.0.0.1,localhost,[::1]"}
VIEWPORT = {"width": 1280, "height": 900}
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "browser"

# st.button(key="login-<provider>") / key="logout…" give the element the class st-key-<key>
LOGIN_BUTTON = '[class*="st-key-login"] button'
LOGOUT_BUTTON = '[class*="st-key-logout"] button'
LOGIN_LABEL = re.compile(r"^\s*(使用.*)?登录\s*$")
LOGOUT_LABEL = re.compile(r"^\s*退出登录\s*$")


_RENDER_PROBE = """() => {
  const app = document.querySelector('[data-testid="stApp"]');
  if (!app) return 'no stApp';
  const conn = app.getAttribute('data-test-connection-state');
  if (conn !== 'CONNECTED') return 'connection ' + conn;
  const script = app.getAttribute('data-test-script-state');
  if (script !== 'notRunning' && script !== 'compilationError') return 'script ' + script;
  const busy = document.querySelector(
    '[data-testid="stSpinner"], [data-testid="stSkeleton"], [data-testid="stAppSkeleton"], ' +
    '[data-testid="stStatusWidgetRunningIcon"], [data-testid="stStatusWidgetRunningManIcon"], ' +
    '[data-stale="true"]');
  if (busy) return 'busy ' + (busy.getAttribute('data-testid') || 'stale element');
  return 'ok';
}"""


def wait_rendered(page: Any, timeout: float = 30.0, settle: float = 1.0) -> None:
    """Wait until Streamlit is connected, its script is not running and nothing is loading or
    stale, continuously for ``settle`` seconds. Raises AssertionError naming the last state."""
    deadline = time.monotonic() + timeout
    ok_since: float | None = None
    state = "not checked"
    while True:
        try:
            state = page.evaluate(_RENDER_PROBE)
        except Exception as error:  # navigation in progress destroys the context
            state = f"evaluate failed: {error.__class__.__name__}"
        now = time.monotonic()
        if state == "ok":
            ok_since = ok_since or now
            if now - ok_since >= settle:
                return
        else:
            ok_since = None
        if now > deadline:
            raise AssertionError(f"Streamlit page {page.url} not rendered after {timeout:.0f} s: {state}")
        page.wait_for_timeout(100)


def _click_button(page: Any, selector: str, label: re.Pattern[str], what: str, timeout: float = 20.0) -> None:
    """Click the button with Streamlit key class ``selector`` (or labelled ``label``), waiting for
    it to appear; opens a collapsed sidebar first when the button sits off-screen in it."""
    target = page.locator(selector).or_(page.get_by_role("button", name=label)).first
    try:
        target.wait_for(state="attached", timeout=timeout * 1000)
    except Exception:
        raise AssertionError(
            f"no {what} button on {page.url} after {timeout:.0f} s (key {selector!r} or label {label.pattern!r})"
        ) from None
    if not target.is_visible():
        toggle = page.locator('[data-testid="stExpandSidebarButton"]')
        if toggle.count():
            toggle.first.click()  # narrow windows keep the sidebar collapsed
    target.click()


def sign_in(page: Any, sub: str, portal: demo.Portal, provider: demo.Provider) -> None:
    """Sign ``sub`` in through the provider's real authorization form; ends rendered on the portal."""
    if not page.url.startswith(portal.url):
        page.goto(portal.url)
    _click_button(page, LOGIN_BUTTON, LOGIN_LABEL, "sign-in")
    page.wait_for_url(f"{provider.authorize_url}**")
    page.locator('input[name="sub"]').fill(sub)
    page.get_by_role("button", name="Authorize", exact=True).click()
    page.wait_for_url(f"{portal.url}/**")
    wait_rendered(page)


def sign_out(page: Any, portal: demo.Portal, provider: demo.Provider) -> None:
    """Press 退出登录; confirm on the provider's end-session page; ends rendered on the portal."""
    _click_button(page, LOGOUT_BUTTON, LOGOUT_LABEL, "sign-out")
    # Streamlit sends the browser to /auth/logout, which redirects to the provider's
    # end_session_endpoint (oidc-provider-mock always has one) with post_logout_redirect_uri.
    page.wait_for_url(f"{provider.base_url}/oauth2/end_session**")
    page.get_by_role("button", name="End session").click()
    page.wait_for_url(f"{portal.url}/**")
    wait_rendered(page)


_SCROLL_HEIGHT = """() => {
  const q = (s) => document.querySelector(s);
  const heights = [document.documentElement.scrollHeight];
  for (const sel of ['[data-testid="stMain"]', '[data-testid="stAppViewContainer"]',
                     '[data-testid="stSidebarContent"]', '[data-testid="stMainBlockContainer"]']) {
    const el = q(sel);
    if (el) heights.push(el.scrollHeight);
  }
  return Math.ceil(Math.max(...heights));
}"""


def screenshot(page: Any, path: str | Path, full_page: bool = True, max_height: int = 12_000) -> Path:
    """Save a screenshot; with ``full_page`` the viewport is first stretched to the height of
    Streamlit's scrolling container (and restored afterwards). Returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not full_page:
        page.screenshot(path=str(path))
        return path
    original = page.viewport_size or VIEWPORT
    height = min(max(page.evaluate(_SCROLL_HEIGHT), original["height"]), max_height)
    page.set_viewport_size({"width": original["width"], "height": height})
    try:
        wait_rendered(page, settle=0.5)
        # a taller window can reflow content (charts, columns): measure once more
        taller = min(max(page.evaluate(_SCROLL_HEIGHT), height), max_height)
        if taller > height:
            page.set_viewport_size({"width": original["width"], "height": taller})
            wait_rendered(page, settle=0.5)
        page.screenshot(path=str(path))
    finally:
        page.set_viewport_size(original)
    return path


DOCS_SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def documented_screenshot(page: Any, name: str) -> Path:
    """A full-page screenshot into test-artifacts/browser/, and into docs/screenshots/ as well
    when HUIZHI_UPDATE_SCREENSHOTS=1 (how the README's pictures are refreshed)."""
    import shutil

    path = screenshot(page, ARTIFACTS / f"{name}.png")
    if os.environ.get("HUIZHI_UPDATE_SCREENSHOTS") == "1":
        DOCS_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, DOCS_SCREENSHOTS / f"{name}.png")
    return path
