"""Claims → roles, deny by default, permission checks and row scopes (the access seam)."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from plugin_fixtures import ASSETS

from huizhi.access import Grant, Identity, Role, check_access_config, identity_from_claims, map_claims
from huizhi.config import load_settings
from huizhi.demo import demo_access
from huizhi.district import DAXING, Departments
from huizhi.specs import Perm

DEMO_ACCESS = demo_access()  # the demo's mapping, passed explicitly: there is no default one


def ident(*grants: Grant) -> Identity:
    return Identity(subject="s", name="n", grants=frozenset(grants))


def test_claims_map_to_grants_by_configuration():
    grants = map_claims({"groups": ["dept-jxj-staff", "dept-jxj-ledger-admin", "unrelated"]}, DEMO_ACCESS)
    assert grants == {Grant(Role.STAFF, "jxj"), Grant(Role.LEDGER_ADMIN, "jxj")}
    assert map_claims({"groups": "daxing-leaders"}, DEMO_ACCESS) == {Grant(Role.LEADER)}


def test_unmapped_identity_has_no_access():
    identity = identity_from_claims(
        {"sub": "visitor", "iss": "http://idp", "groups": ["someone-else"]}, DEMO_ACCESS, departments=DAXING
    )
    assert not identity.has_access
    assert not identity.allows(Perm.SIGNED_IN)
    assert identity.subject == "http://idp|visitor"
    # what a person reads on the no-access page: their login and the provider's host
    assert identity.account == "visitor（idp）"
    named = identity_from_claims(
        {"sub": "u-81f3", "iss": "https://sso.daxing.gov.cn/realms/x", "preferred_username": "zhao.min"},
        DEMO_ACCESS, departments=DAXING,
    )
    assert named.account == "zhao.min（sso.daxing.gov.cn）"


def test_nested_claims_and_per_rule_claim():
    access = {"claim": "groups", "rules": [
        {"claim": "realm_access.roles", "value": "leader", "role": "leader"},
        {"claim": "department", "value": "D-0042", "role": "staff", "department": "swj"},
    ]}
    grants = map_claims({"realm_access": {"roles": ["leader"]}, "department": "D-0042"}, access)
    assert grants == {Grant(Role.LEADER), Grant(Role.STAFF, "swj")}


def test_configuration_problems_are_reported():
    problems = check_access_config({"rules": [
        {"value": "x", "role": "superuser"},
        {"value": "y", "role": "staff"},
        {"value": "z", "role": "staff", "department": "nowhere"},
        {"role": "leader"},
    ]}, DAXING)
    assert len(problems) == 4
    assert "unknown role 'superuser'" in problems[0] and "needs a department" in problems[1]
    assert "nowhere" in problems[2] and "needs 'value'" in problems[3]
    assert check_access_config(DEMO_ACCESS, DAXING) == []


def test_expiry_from_the_id_token():
    past = dt.datetime(2020, 1, 1, tzinfo=dt.UTC).timestamp()
    assert identity_from_claims({"sub": "a", "exp": past}, DEMO_ACCESS, departments=DAXING).is_expired()
    future = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).timestamp()
    assert not identity_from_claims({"sub": "a", "exp": future}, DEMO_ACCESS, departments=DAXING).is_expired()


@pytest.mark.parametrize(
    ("grant", "perm", "department", "expected"),
    [
        (Grant(Role.LEADER), Perm.COCKPIT, None, True),
        (Grant(Role.LEADER), Perm.VIEW, "gaj", True),
        (Grant(Role.LEADER), Perm.LEDGER_UPLOAD, "jxj", False),
        (Grant(Role.LEADER), Perm.PLATFORM_ADMIN, None, False),
        (Grant(Role.STAFF, "jxj"), Perm.VIEW, "jxj", True),
        (Grant(Role.STAFF, "jxj"), Perm.VIEW, "gaj", False),
        (Grant(Role.STAFF, "jxj"), Perm.LEDGER_UPLOAD, "jxj", False),
        (Grant(Role.LEDGER_ADMIN, "jxj"), Perm.LEDGER_UPLOAD, "jxj", True),
        (Grant(Role.LEDGER_ADMIN, "jxj"), Perm.LEDGER_ROLLBACK, "gaj", False),
        (Grant(Role.PLATFORM_ADMIN), Perm.PLATFORM_ADMIN, None, True),
        (Grant(Role.PLATFORM_ADMIN), Perm.VIEW, "jxj", False),
        (Grant(Role.PLATFORM_ADMIN), Perm.LEDGER_READ, None, False),
    ],
)
def test_permission_table(grant, perm, department, expected):
    assert ident(grant).allows(perm, department) is expected


def test_row_scope_follows_department_column_and_stewardship():
    assert ident(Grant(Role.LEADER)).row_scope(ASSETS).all_rows
    assert ident(Grant(Role.STAFF, "jxj")).row_scope(ASSETS).all_rows  # jxj stewards the ledger
    gaj = ident(Grant(Role.STAFF, "gaj")).row_scope(ASSETS)
    assert not gaj.all_rows and gaj.department_names == {"区公安分局"}
    assert ident(Grant(Role.PLATFORM_ADMIN)).row_scope(ASSETS).empty
    assert ident().row_scope(ASSETS).empty


def test_no_access_section_grants_nobody_anything(tmp_path):
    settings = load_settings({}, data_dir=tmp_path)  # no huizhi.toml in the working directory
    assert dict(settings.access) == {}
    with pytest.raises(TypeError):
        settings.access["rules"] = []  # immutable: one process's sessions share it
    leader = identity_from_claims({"sub": "w", "groups": ["daxing-leaders"]}, settings.access,
                                  departments=settings.departments)
    assert not leader.has_access
    problems = check_access_config(settings.access, settings.departments)
    assert len(problems) == 1 and "no [access] section" in problems[0] and "docs/sign-in.md" in problems[0]
    assert "has no rules" in check_access_config({"claim": "groups"}, DAXING)[0]


def test_access_from_the_config_file_is_read_only(tmp_path):
    config = tmp_path / "huizhi.toml"
    config.write_text('''
[access]
contact = "信息中心"
[[access.rules]]
value = "leaders"
role = "leader"
''', encoding="utf-8")
    settings = load_settings({"HUIZHI_CONFIG": str(config)}, data_dir=tmp_path)
    assert settings.access["contact"] == "信息中心"
    with pytest.raises(TypeError):
        settings.access["rules"][0]["role"] = "platform_admin"
    with pytest.raises(AttributeError):
        settings.access["rules"].append({"value": "x", "role": "leader"})
    assert map_claims({"groups": ["leaders"]}, settings.access) == {Grant(Role.LEADER)}


def test_departments_are_settings(tmp_path):
    assert load_settings({}, data_dir=tmp_path).departments == DAXING  # the default list
    config = tmp_path / "huizhi.toml"
    config.write_text('''
[[departments]]
id = "water"
name = "水务中心"
[[departments]]
id = "roads"
name = "道路所"
[access]
[[access.rules]]
value = "w"
role = "staff"
department = "water"
[[access.rules]]
value = "j"
role = "staff"
department = "jxj"
''', encoding="utf-8")
    settings = load_settings({"HUIZHI_CONFIG": str(config)}, data_dir=tmp_path)
    assert settings.departments.ids() == ("water", "roads")
    assert settings.departments.name("water") == "水务中心"
    # jxj is a Daxing id, unknown to this deployment
    problems = check_access_config(settings.access, settings.departments)
    assert problems == ["rule 2: unknown department id 'jxj' (known: water, roads)"]
    person = identity_from_claims({"sub": "p", "groups": ["w"]}, settings.access, departments=settings.departments)
    assert person.grant_labels == ["水务中心 · 部门工作人员"]
    ledger = dataclasses.replace(ASSETS, department="roads")
    assert person.row_scope(ledger).department_names == {"水务中心"}  # the deployment's names


@pytest.mark.parametrize("bad", [
    '[[departments]]\nid = "Water Dept"\nname = "水务"',
    '[[departments]]\nid = "w"\nname = "水务"\n[[departments]]\nid = "w"\nname = "水务二"',
    '[[departments]]\nid = "w"',
])
def test_bad_departments_stop_the_start_up(tmp_path, bad):
    config = tmp_path / "huizhi.toml"
    config.write_text(bad, encoding="utf-8")
    with pytest.raises(ValueError, match="departments"):
        load_settings({"HUIZHI_CONFIG": str(config)}, data_dir=tmp_path)


def test_departments_directory():
    deps = Departments.of([("a", "甲"), ("b", "乙")])
    assert deps.get("a").name == "甲" and deps.by_name("乙").id == "b" and "a" in deps
    assert deps.name(None) == "平台" and deps.name("zz") == "zz"
    with pytest.raises(KeyError, match="unknown department id 'zz' \\(known: a, b\\)"):
        deps.get("zz")


@pytest.mark.parametrize(
    ("grants", "read", "upload", "rollback"),
    [
        ((Grant(Role.LEADER),), True, False, False),
        ((Grant(Role.STAFF, "jxj"),), True, False, False),  # the owning department's staff
        ((Grant(Role.STAFF, "gaj"),), True, False, False),  # its own rows of a district-wide ledger
        ((Grant(Role.LEDGER_ADMIN, "jxj"),), True, True, True),
        # another department's ledger admin uploads its own rows but cannot roll the ledger back
        ((Grant(Role.LEDGER_ADMIN, "gaj"),), True, True, False),
        ((Grant(Role.PLATFORM_ADMIN),), False, False, False),
        ((), False, False, False),
    ],
)
def test_can_is_the_one_ledger_decision(grants, read, upload, rollback):
    who = ident(*grants)
    assert who.can(Perm.LEDGER_READ, ASSETS) is read
    assert who.can(Perm.LEDGER_UPLOAD, ASSETS) is upload
    assert who.can(Perm.LEDGER_ROLLBACK, ASSETS) is rollback
    # without a department column, another department has no rows to read or replace
    local = dataclasses.replace(ASSETS, department_column=None)
    assert who.can(Perm.LEDGER_UPLOAD, local) is (upload and Grant(Role.LEDGER_ADMIN, "jxj") in grants)
    with pytest.raises(ValueError):
        who.can(Perm.VIEW, ASSETS)
