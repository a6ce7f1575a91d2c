"""Plugins ship demo identities (``huizhi_demo_identities``): the demo's provider offers them and
its role mapping grants them their department (issue 11: a documented way to ship demo people)."""

from __future__ import annotations

from plugin_fixtures import make_plugin

from huizhi.access import identity_from_claims
from huizhi.demo import DEMO_IDENTITIES, demo_access, demo_config_toml, plugin_demo_identities
from huizhi.district import DAXING
from huizhi.plugins import load_registry
from huizhi.specs import DemoPerson, Perm


def test_plugin_people_sign_in_as_their_department_in_the_demo():
    people = [DemoPerson("staff-ylj", "周林", "ylj"), DemoPerson("admin-ylj", "吴青", "ylj", role="ledger_admin"),
              DemoPerson("leader", "冒名", "ylj")]  # the demo's own sub: skipped
    registry = load_registry(extra_plugins=[("parks", make_plugin("parks", department="ylj",
                                                                  huizhi_demo_identities=lambda: people))],
                             use_entry_points=False)
    assert registry.plugins["parks"].status == "enabled", registry.plugins["parks"].reason
    identities = plugin_demo_identities(registry.demo_people, DAXING)
    assert [i.sub for i in identities] == ["staff-ylj", "admin-ylj"]
    assert "ylj" not in {r.get("department") for r in demo_access()["rules"]}  # not mapped by default
    access = demo_access(["ylj"])
    staff = identity_from_claims(identities[0].claims(), access, departments=DAXING)
    admin = identity_from_claims(identities[1].claims(), access, departments=DAXING)
    assert staff.allows(Perm.VIEW, "ylj") and not staff.allows(Perm.VIEW, "jxj")
    assert not staff.allows(Perm.LEDGER_UPLOAD, "ylj") and admin.allows(Perm.LEDGER_UPLOAD, "ylj")
    assert 'value = "dept-ylj-ledger-admin"' in demo_config_toml(departments=["ylj"])
    assert len(DEMO_IDENTITIES) == 6  # the demo's own people are untouched


def test_a_bad_demo_person_disables_the_plugin_naming_it():
    bad = [DemoPerson("Staff YLJ", "", "nowhere", role="boss")]  # type: ignore[arg-type]
    registry = load_registry(extra_plugins=[("parks", make_plugin("parks", department="ylj",
                                                                  huizhi_demo_identities=lambda: bad))],
                             use_entry_points=False)
    reason = registry.plugins["parks"].reason
    assert registry.plugins["parks"].status == "disabled"
    assert "demo person sub 'Staff YLJ'" in reason and "unknown department id 'nowhere'" in reason
