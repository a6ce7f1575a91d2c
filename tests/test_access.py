"""Claims → roles, deny by default, permission checks and row scopes (the access seam)."""

from __future__ import annotations

import datetime as dt

import pytest
from plugin_fixtures import ASSETS

from huizhi.access import Grant, Identity, Role, check_access_config, identity_from_claims, map_claims
from huizhi.config import DEFAULT_ACCESS
from huizhi.specs import Perm


def ident(*grants: Grant) -> Identity:
    return Identity(subject="s", name="n", grants=frozenset(grants))


def test_claims_map_to_grants_by_configuration():
    grants = map_claims({"groups": ["dept-jxj-staff", "dept-jxj-ledger-admin", "unrelated"]}, DEFAULT_ACCESS)
    assert grants == {Grant(Role.STAFF, "jxj"), Grant(Role.LEDGER_ADMIN, "jxj")}
    assert map_claims({"groups": "daxing-leaders"}, DEFAULT_ACCESS) == {Grant(Role.LEADER)}


def test_unmapped_identity_has_no_access():
    identity = identity_from_claims({"sub": "visitor", "iss": "http://idp", "groups": ["someone-else"]}, DEFAULT_ACCESS)
    assert not identity.has_access
    assert not identity.allows(Perm.SIGNED_IN)
    assert identity.subject == "http://idp|visitor"


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
    ]})
    assert len(problems) == 4
    assert "unknown role 'superuser'" in problems[0] and "needs a department" in problems[1]
    assert "nowhere" in problems[2] and "needs 'value'" in problems[3]
    assert check_access_config(DEFAULT_ACCESS) == []


def test_expiry_from_the_id_token():
    past = dt.datetime(2020, 1, 1, tzinfo=dt.UTC).timestamp()
    assert identity_from_claims({"sub": "a", "exp": past}, DEFAULT_ACCESS).is_expired()
    future = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).timestamp()
    assert not identity_from_claims({"sub": "a", "exp": future}, DEFAULT_ACCESS).is_expired()


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
