"""The outside plugin's own tests, on the host's fixtures only (huizhi.testing)."""

from __future__ import annotations

import huizhi_parks.plugin as plugin

from huizhi.testing import commit_rows, compute_tile, identity, render_page

PLUGINS = [("parks", plugin)]


def demo_rows() -> list[dict]:
    (demo,) = plugin.huizhi_demo_rows()
    return list(demo.rows)


def test_loads_in_strict_mode(huizhi_host):
    host = huizhi_host(plugins=PLUGINS, strict=True)
    assert host.registry.plugins["parks"].status == "enabled", host.registry.plugins["parks"].reason


def test_page_filters_by_kind(huizhi_host):
    host = huizhi_host(plugins=PLUGINS)
    rows = demo_rows()
    commit_rows(host, plugin.PARKS.id, rows)
    staff = identity("staff", "ylj")
    at = render_page(host, "parks", staff)
    assert not at.exception, [e.value for e in at.exception]
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["公园数"] == str(len(rows)) and metrics["智慧公园"] == str(sum(r["smart"] for r in rows))
    at = render_page(host, "parks", staff, params={"kind": "郊野公园"})
    assert {m.label: m.value for m in at.metric}["公园数"] == "2"


def test_tile_is_the_share_of_smart_parks(huizhi_host):
    host = huizhi_host(plugins=PLUGINS)
    assert compute_tile(host, "parks_smart_share", identity("leader")).value is None
    rows = demo_rows()
    commit_rows(host, plugin.PARKS.id, rows)
    value = compute_tile(host, "parks_smart_share", identity("leader"))
    assert value.value == round(100 * sum(r["smart"] for r in rows) / len(rows), 1)
    assert dict(value.detail.items)["清源街道"] == 50.0  # 念坛公园 yes, 清源口袋公园 no
