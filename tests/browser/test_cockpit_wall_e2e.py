"""The cockpit's wall-screen mode in Chromium at 1920×1080 (issue 12, item 7): opened from the
cockpit's 大屏 button; every chosen tile and the map; nothing scrolls; no Streamlit chrome; street
labels that do not overlap as drawn; a live clock; a refresh that recomputes without reloading.
Saves docs/screenshots/cockpit-wall.png with HUIZHI_UPDATE_SCREENSHOTS=1."""

from __future__ import annotations

import itertools
import re
import time

from harness import _SCROLL_HEIGHT, documented_screenshot

from huizhi import district

VITAL_SIGNS = ("sensing_registered", "sensing_networked_ratio", "sensing_inspection_overdue", "citymgmt_on_time_rate")

_LABELS = """() => [...document.querySelectorAll('.st-key-hz-wall-map g.annotation')].map((g) => {
  const bg = g.querySelector('rect.bg'); const r = bg.getBoundingClientRect();
  return {text: g.textContent, box: [r.left, r.top, r.right, r.bottom]};
})"""


def _overlap(a, b) -> bool:
    return min(a[2], b[2]) - max(a[0], b[0]) > 0.5 and min(a[3], b[3]) - max(a[1], b[1]) > 0.5


def _text(page, selector: str) -> str:
    return page.locator(selector).first.inner_text()


def test_wall_screen_fits_one_screen_refreshes_and_is_documented(page, portal, sign_in, wait_rendered):
    page.set_viewport_size({"width": 1920, "height": 1080})
    sign_in(page, "leader")
    page.goto(f"{portal.url}/cockpit")
    wait_rendered(page, timeout=90)
    page.get_by_role("link", name=re.compile("大屏")).first.click()  # the cockpit's button
    page.wait_for_url(re.compile(r".*wall=1.*"), timeout=30_000)
    wait_rendered(page, timeout=90)
    assert "refresh=60" in page.url
    documented_screenshot(page, "cockpit-wall")  # as the button opens it: refreshed every 60 s

    # refresh off: the clock still ticks (in the browser), the data stamp stays
    page.goto(f"{portal.url}/cockpit?wall=1&refresh=0")
    wait_rendered(page, timeout=90)
    tiles = page.locator(".hzw-tile")
    assert tiles.count() == 8  # nothing pinned: the plan's vital signs, two columns of four
    ids = [tiles.nth(i).get_attribute("data-tile-id") for i in range(tiles.count())]
    assert set(VITAL_SIGNS) <= set(ids)
    for i in range(tiles.count()):
        card = tiles.nth(i)
        assert card.locator(".hzw-t-value, .hzw-t-error").count() == 1 and card.locator(".hzw-badge").count() == 1
    assert "自动刷新已关闭" in _text(page, ".hzw-head")
    clock, stamp = _text(page, ".hzw-now"), _text(page, ".hzw-refreshed")
    page.wait_for_timeout(2500)
    assert _text(page, ".hzw-now") != clock and _text(page, ".hzw-refreshed") == stamp

    # one screen: nothing scrolls, Streamlit's own scrolling container included
    assert page.evaluate(_SCROLL_HEIGHT) <= 1080
    assert page.evaluate("() => document.scrollingElement.scrollHeight") <= 1080
    main = page.evaluate("() => document.querySelector('[data-testid=\"stMain\"]').scrollHeight")
    assert main <= 1080
    for chrome in ('[data-testid="stSidebar"]', '[data-testid="stHeader"]', '[data-testid="stToolbar"]'):
        assert not page.locator(chrome).first.is_visible(), chrome
    background = page.evaluate("() => getComputedStyle(document.querySelector('.stApp')).backgroundColor")
    assert background == "rgb(6, 18, 36)"  # dark

    # the map: every street labelled, no two labels overlapping as Chromium drew them
    labels = page.evaluate(_LABELS)
    street_labels = [lab for lab in labels if any(lab["text"].startswith(s) for s in district.street_names())]
    assert {s for s in district.street_names() if any(lab["text"].startswith(s) for lab in street_labels)} == set(
        district.street_names()
    )
    for a, b in itertools.combinations(street_labels, 2):
        assert not _overlap(a["box"], b["box"]), f"{a['text']} overlaps {b['text']}"
    for lab in street_labels:
        assert lab["box"][3] <= 1080 and lab["box"][2] <= 1920
    assert page.locator(".st-key-hz-wall-map .js-plotly-plot").count() == 1

    # refresh every 5 s: the fragment reruns (new stamp) and the page is not reloaded
    page.goto(f"{portal.url}/cockpit?wall=1&refresh=5")
    wait_rendered(page, timeout=90)
    page.evaluate("() => { window.__hzwNotReloaded = true; }")
    stamp = _text(page, ".hzw-refreshed")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and _text(page, ".hzw-refreshed") == stamp:
        page.wait_for_timeout(500)
    assert _text(page, ".hzw-refreshed") != stamp, "the wall did not refresh within 30 s"
    assert page.evaluate("() => window.__hzwNotReloaded === true")
    assert "每 5 秒自动刷新" in _text(page, ".hzw-head")
    wait_rendered(page, timeout=30)
    assert page.locator(".hzw-tile").count() == 8 and page.evaluate(_SCROLL_HEIGHT) <= 1080

    # and back to the cockpit
    page.get_by_role("button", name=re.compile("退出大屏")).click()
    page.locator('[class*="st-key-hz-tile-"]').first.wait_for(timeout=60_000)
    wait_rendered(page, timeout=90)
    assert page.locator(".hzw-tile").count() == 0 and page.locator('[class*="st-key-hz-tile-"]').count() >= 5
    assert "wall=1" not in page.url, page.url
