"""The authorization matrix (issue 4, item 6): every identity × every page, tile, ledger read and
ledger action that the installed plugins declare, generated from their declarations, so a new
page, tile or ledger is covered without touching this file.

The expected decisions come from POLICY below — the rules of issue 4 written as a table, not a
call into the code under test — and are checked against the host's real enforcement points: the
menu (``visible_pages``), the cockpit (``visible_tiles``), the SQL behind every ledger read, and
the upload and rollback scopes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest
import sqlalchemy as sa
from databases import create_pg_database, drop_pg_database, test_store

from huizhi import district
from huizhi.access import AccessDenied, Identity, identity_from_claims
from huizhi.config import load_settings
from huizhi.context import PageContext
from huizhi.demo import DEMO_IDENTITIES, demo_access
from huizhi.host import Host, create_host
from huizhi.ledger_store import VERSION_COLUMN
from huizhi.plugins import load_registry
from huizhi.specs import LedgerSpec, Perm


@dataclasses.dataclass(frozen=True)
class Who:
    """What the policy needs to know about a person, read from their groups (not from huizhi)."""

    name: str
    groups: frozenset[str]

    @property
    def leader(self) -> bool:
        return "daxing-leaders" in self.groups

    @property
    def platform_admin(self) -> bool:
        return "huizhi-platform-admins" in self.groups

    @property
    def depts(self) -> frozenset[str]:  # departments where they are staff or ledger admin
        return frozenset(g.split("-")[1] for g in self.groups if g.startswith("dept-"))

    @property
    def admin_depts(self) -> frozenset[str]:
        return frozenset(g.split("-")[1] for g in self.groups if g.startswith("dept-") and g.endswith("-ledger-admin"))


def _department_view(who: Who, dept: str | None) -> bool:
    return who.leader or (dept in who.depts if dept is not None else bool(who.depts))


def _department_admin(who: Who, dept: str | None) -> bool:
    return dept in who.admin_depts if dept is not None else bool(who.admin_depts)


POLICY: dict[Perm, Callable[[Who, str | None], bool]] = {
    Perm.SIGNED_IN: lambda who, dept: who.leader or who.platform_admin or bool(who.depts),
    Perm.VIEW: _department_view,
    Perm.COCKPIT: _department_view,
    Perm.LEDGER_READ: _department_view,
    Perm.LEDGER_UPLOAD: _department_admin,
    Perm.LEDGER_ROLLBACK: _department_admin,
    Perm.PLATFORM_ADMIN: lambda who, dept: who.platform_admin,
}

PEOPLE = [Who(i.sub, frozenset(i.groups)) for i in DEMO_IDENTITIES] + [
    # a department with no plugin of its own: it only has rows in district-wide ledgers
    Who("staff-gaj", frozenset({"dept-gaj-staff"})),
    Who("admin-gaj", frozenset({"dept-gaj-staff", "dept-gaj-ledger-admin"})),
]

REGISTRY = load_registry()  # the installed plugins, as a deployment would load them
PAGES = sorted(REGISTRY.pages)
TILES = sorted(REGISTRY.tiles)
LEDGERS = sorted(REGISTRY.ledgers)


def identity(who: Who) -> Identity:
    return identity_from_claims(
        {"sub": who.name, "groups": sorted(who.groups)}, demo_access(), departments=district.DAXING
    )


@pytest.fixture(scope="module")
def host(tmp_path_factory) -> Host:
    url = (
        create_pg_database()
        if test_store() == "postgres"
        else f"duckdb:///{tmp_path_factory.mktemp('matrix') / 'huizhi.duckdb'}"
    )
    host = create_host(load_settings({}, database_url=url, data_dir=tmp_path_factory.mktemp("matrix-data")))
    from huizhi_seeds.loader import load_demo

    load_demo(host, scale=0.02)
    yield host
    host.dispose()
    if test_store() == "postgres":
        drop_pg_database(url)


def test_the_matrix_covers_what_is_installed():
    assert {"sensing", "citymgmt", "builtin_pages"} <= {r.name for r in REGISTRY.enabled()}
    assert PAGES and TILES and LEDGERS


@pytest.mark.parametrize("who", PEOPLE, ids=lambda w: w.name)
@pytest.mark.parametrize("url_path", PAGES)
def test_page(host, who, url_path):
    spec, _ = host.registry.pages[url_path]
    expected = POLICY[spec.permission](who, spec.department)
    shown = url_path in {p.url_path for p in host.visible_pages(identity(who))}
    assert shown is expected, f"{who.name} {'should' if expected else 'must not'} see page {url_path}"


@pytest.mark.parametrize("who", PEOPLE, ids=lambda w: w.name)
@pytest.mark.parametrize("tile_id", TILES)
def test_tile(host, who, tile_id):
    spec, _ = host.registry.tiles[tile_id]
    expected = POLICY[spec.permission](who, spec.department)
    shown = tile_id in {t.id for t in host.visible_tiles(identity(who))}
    assert shown is expected, f"{who.name} {'should' if expected else 'must not'} see tile {tile_id}"


def _rows_by_department(host: Host, spec: LedgerSpec) -> dict[str | None, int]:
    """Ground truth straight from the table (no scoping): current rows per department name."""
    table = host.store.tables[spec.id]
    head = host.store.head(spec.id)
    col = table.c[spec.department_column] if spec.department_column else sa.literal(None)
    stmt = (
        sa.select(col, sa.func.count())
        .where(table.c[VERSION_COLUMN] == head.version_id)
        .group_by(col)
    )
    with host.engine.connect() as conn:
        return {dept: int(n) for dept, n in conn.execute(stmt)}


@pytest.mark.parametrize("who", PEOPLE, ids=lambda w: w.name)
@pytest.mark.parametrize("ledger_id", LEDGERS)
def test_ledger_read(host, who, ledger_id):
    spec = host.registry.ledger(ledger_id)
    truth = _rows_by_department(host, spec)
    if who.leader or spec.department in who.depts:
        expected = sum(truth.values())
    elif who.depts and spec.department_column:
        names = {district.department_name(d) for d in who.depts}
        expected = sum(n for dept, n in truth.items() if dept in names)
    else:
        expected = None  # no rows at all: the read is refused
    ctx = PageContext(_host=host, identity=identity(who), plugin="matrix")
    if expected is None:
        with pytest.raises(AccessDenied):
            ctx.ledger(ledger_id)
        return
    reader = ctx.ledger(ledger_id)
    assert reader.count() == expected
    if spec.department_column and not (who.leader or spec.department in who.depts):
        seen = {r[0] for r in reader.execute(sa.select(reader.c(spec.department_column)).distinct())}
        assert seen <= {district.department_name(d) for d in who.depts}


@pytest.mark.parametrize("who", PEOPLE, ids=lambda w: w.name)
@pytest.mark.parametrize("ledger_id", LEDGERS)
def test_ledger_actions(host, who, ledger_id):
    spec = host.registry.ledger(ledger_id)
    person = identity(who)
    scope = person.upload_scope(spec)
    if spec.department in who.admin_depts:
        assert scope.all_rows, f"{who.name} should upload the whole of {ledger_id}"
    elif who.admin_depts and spec.department_column:
        assert scope.department_names == {district.department_name(d) for d in who.admin_depts}
    else:
        assert scope.empty, f"{who.name} must not upload {ledger_id}"
    may_roll_back = person.allows(Perm.LEDGER_ROLLBACK, spec.department)
    assert may_roll_back is (spec.department in who.admin_depts)


def _may_read(who: Who, spec: LedgerSpec) -> bool:
    return who.leader or spec.department in who.depts or bool(who.depts and spec.department_column)


def _may_upload(who: Who, spec: LedgerSpec) -> bool:
    return spec.department in who.admin_depts or bool(who.admin_depts and spec.department_column)


def _may_roll_back(who: Who, spec: LedgerSpec) -> bool:
    return spec.department in who.admin_depts  # a rollback replaces every department's rows


@pytest.mark.parametrize("who", PEOPLE, ids=lambda w: w.name)
@pytest.mark.parametrize("ledger_id", LEDGERS)
def test_can_agrees_with_the_policy(who, ledger_id):
    """``Identity.can`` is the one decision pages, tiles and services ask; it must say what the
    policy above says, for every identity and ledger."""
    spec = REGISTRY.ledger(ledger_id)
    person = identity(who)
    assert person.can(Perm.LEDGER_READ, spec) is _may_read(who, spec), f"{who.name} read {ledger_id}"
    assert person.can(Perm.LEDGER_UPLOAD, spec) is _may_upload(who, spec), f"{who.name} upload {ledger_id}"
    assert person.can(Perm.LEDGER_ROLLBACK, spec) is _may_roll_back(who, spec), f"{who.name} roll back {ledger_id}"
