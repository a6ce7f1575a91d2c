"""Discovery, checking and isolation of plugins (issue 3, item 3)."""

from __future__ import annotations

import sys

import pytest
from plugin_fixtures import (
    ASSETS,
    BROKEN_IMPORT,
    GOOD_INSTALLED,
    install_distribution,
    make_plugin,
    page,
    tile,
)

from huizhi import HOST_API_VERSION
from huizhi.plugins import PluginError, load_registry
from huizhi.specs import PageSpec


@pytest.fixture
def installed(tmp_path, monkeypatch):
    """Install a broken and a working plugin distribution for this test only."""
    site = tmp_path / "site"
    install_distribution(site, "huizhi-broken", "huizhi_broken_plugin", BROKEN_IMPORT, entry_name="broken")
    install_distribution(site, "huizhi-good", "huizhi_good_plugin", GOOD_INSTALLED, entry_name="goodplug")
    yield site
    sys.path.remove(str(site))
    for mod in ("huizhi_good_plugin", "huizhi_broken_plugin"):
        sys.modules.pop(mod, None)


def test_entry_points_discover_installed_plugins_and_contain_a_broken_one(installed):
    registry = load_registry()
    broken = registry.plugins["broken"]
    assert broken.status == "disabled"
    assert "ImportError" in broken.reason and "huizhi-gis-tools" in broken.reason
    assert broken.distribution == "huizhi-broken"
    good = registry.plugins["goodplug"]
    assert good.status == "enabled", good.reason
    assert "water-page" in registry.pages
    # the built-ins come through the same entry-point group
    assert registry.plugins["builtin_pages"].status == "enabled"
    assert "cockpit" in registry.pages and "home" in registry.pages


def test_strict_mode_turns_a_broken_plugin_into_a_failure(installed):
    with pytest.raises(PluginError) as exc:
        load_registry(strict=True)
    assert "broken" in str(exc.value) and "ImportError" in str(exc.value)


def test_allow_list_loads_only_named_plugins(installed):
    registry = load_registry(load_plugins=["goodplug"])
    assert registry.plugins["broken"].status == "not loaded"
    assert registry.plugins["goodplug"].status == "enabled"
    assert registry.plugins["builtin_pages"].status == "enabled"  # built-ins are always loaded


def test_incompatible_host_api_is_refused_with_the_versions_that_would_work():
    registry = load_registry(extra_plugins=[("old", make_plugin("old", host_api=">=0.1,<1"))], use_entry_points=False)
    record = registry.plugins["old"]
    assert record.status == "disabled"
    assert ">=0.1,<1" in record.reason and HOST_API_VERSION in record.reason


def test_invalid_spec_disables_only_that_plugin():
    bad_page = PageSpec(title="坏页面", url_path="Bad Path!", render=lambda ctx: None)
    registry = load_registry(
        extra_plugins=[("bad", make_plugin("bad", pages=[bad_page])), ("fine", make_plugin("fine", pages=[page("fine-page")]))],
        use_entry_points=False,
    )
    assert registry.plugins["bad"].status == "disabled"
    assert "url_path" in registry.plugins["bad"].reason
    assert registry.plugins["fine"].status == "enabled"
    assert list(registry.pages) == ["fine-page"]


def test_hook_that_raises_or_returns_wrong_type_is_contained():
    def boom():
        raise RuntimeError("database of the department is down")

    registry = load_registry(
        extra_plugins=[
            ("raiser", make_plugin("raiser", huizhi_tiles=boom)),
            ("dicty", make_plugin("dicty", huizhi_ledgers=lambda: [{"id": "x"}])),
            ("noinfo", make_plugin("noinfo", info=False)),
            ("ok", make_plugin("ok", tiles=[tile("ok_tile")])),
        ],
        use_entry_points=False,
    )
    assert "RuntimeError: database of the department is down" in registry.plugins["raiser"].reason
    assert "expected LedgerSpec" in registry.plugins["dicty"].reason
    assert "huizhi_plugin_info" in registry.plugins["noinfo"].reason
    assert registry.plugins["ok"].status == "enabled" and "ok_tile" in registry.tiles


def test_unknown_department_is_a_spec_error():
    registry = load_registry(extra_plugins=[("nodept", make_plugin("nodept", department="nowhere"))], use_entry_points=False)
    assert "unknown department id 'nowhere'" in registry.plugins["nodept"].reason


def test_clash_disables_both_plugins_naming_each_other():
    registry = load_registry(
        extra_plugins=[
            ("alpha", make_plugin("alpha", pages=[page("shared-path")])),
            ("beta", make_plugin("beta", pages=[page("shared-path")])),
            ("gamma", make_plugin("gamma", ledgers=[ASSETS])),
            ("delta", make_plugin("delta", ledgers=[ASSETS])),
        ],
        use_entry_points=False,
    )
    for name in ("alpha", "beta"):
        reason = registry.plugins[name].reason
        assert registry.plugins[name].status == "disabled"
        assert "'alpha'" in reason and "'beta'" in reason and "shared-path" in reason
    assert "ledger 'assets'" in registry.plugins["gamma"].reason
    assert registry.pages == {} and registry.ledgers == {}


def test_builtin_keeps_its_path_when_a_department_plugin_clashes():
    registry = load_registry(extra_plugins=[("copycat", make_plugin("copycat", pages=[page("cockpit")]))])
    assert registry.plugins["copycat"].status == "disabled"
    assert "builtin_pages" in registry.plugins["copycat"].reason
    assert registry.plugins["builtin_pages"].status == "enabled"
    assert registry.plugin_of_page("cockpit") == "builtin_pages"


def test_duplicate_ids_inside_one_plugin():
    registry = load_registry(extra_plugins=[("twice", make_plugin("twice", tiles=[tile("t1"), tile("t1")]))],
                             use_entry_points=False)
    assert "'t1' more than once" in registry.plugins["twice"].reason


def test_admin_disabled_plugin_is_not_loaded_and_not_a_problem():
    registry = load_registry(extra_plugins=[("quiet", make_plugin("quiet", pages=[page("quiet-page")]))],
                             use_entry_points=False, disabled_by_admin=["quiet"], strict=True)
    assert registry.plugins["quiet"].status == "disabled"
    assert registry.plugins["quiet"].reason == "disabled by a platform admin"
    assert "quiet-page" not in registry.pages


def test_admin_switch_is_persisted_and_audited(make_host):
    from huizhi.access import system_identity

    host = make_host(extra_plugins=[("quiet", make_plugin("quiet", pages=[page("quiet-page")]))])
    assert "quiet-page" in host.registry.pages
    host.set_plugin_enabled(system_identity("test"), "quiet", False)
    again = make_host(extra_plugins=[("quiet", make_plugin("quiet", pages=[page("quiet-page")]))])
    assert again.registry.plugins["quiet"].status == "disabled"
    assert [e.target for e in host.audit.search(action="plugin.disable")] == ["plugin:quiet"]


def test_misspelt_hook_disables_the_plugin_and_names_the_hook():
    registry = load_registry(
        extra_plugins=[
            ("typo", make_plugin("typo", huizhi_tile=lambda: [tile("never_called")])),
            ("ok", make_plugin("ok", tiles=[tile("ok_tile")])),
        ],
        use_entry_points=False,
    )
    record = registry.plugins["typo"]
    assert record.status == "disabled"
    assert "'huizhi_tile'" in record.reason and "did you mean 'huizhi_tiles'" in record.reason
    assert registry.plugins["ok"].status == "enabled" and "ok_tile" in registry.tiles
    with pytest.raises(PluginError, match="huizhi_tile"):
        load_registry(extra_plugins=[("typo", make_plugin("typo", huizhi_tile=lambda: []))],
                      use_entry_points=False, strict=True)


def test_optional_unknown_hook_is_allowed_as_pluggy_allows_it():
    from types import SimpleNamespace

    from huizhi import hookimpl

    plugin = make_plugin("future")
    # pluggy's rule: an implementation marked optionalhook may name a hook this host lacks
    plugin.huizhi_from_a_newer_host = hookimpl(optionalhook=True)(lambda: None)
    assert isinstance(plugin, SimpleNamespace)
    registry = load_registry(extra_plugins=[("future", plugin)], use_entry_points=False, strict=True)
    assert registry.plugins["future"].status == "enabled"


def test_departments_are_checked_against_the_deployments_list():
    from huizhi.district import Departments

    water = Departments.of([("water", "水务中心")])
    registry = load_registry(
        extra_plugins=[("w", make_plugin("w", department="water")), ("j", make_plugin("j", department="jxj"))],
        use_entry_points=False, departments=water,
    )
    assert registry.plugins["w"].status == "enabled", registry.plugins["w"].reason
    assert "unknown department id 'jxj' (known: water)" in registry.plugins["j"].reason
