"""Who someone is and what they may do: the one seam every page, tile and ledger read goes through.

Sign-in (OpenID Connect, see :mod:`huizhi.signin`) produces claims; :func:`map_claims` turns
them into :class:`Grant` s by configuration; an :class:`Identity` answers ``allows(perm, dept)``
for pages and tiles and :meth:`Identity.can` for a ledger ("may this identity read / upload /
roll back ledger L": the one decision every page, tile, service and the CLI asks), and, for ledger
reads, :meth:`Identity.row_scope`, which the ledger store turns into a WHERE clause, so a
plugin's query cannot skip it. Deny by default: no matching rule, no grant; no ``[access]``
section, no grant for anyone.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from huizhi.district import DAXING, Departments
from huizhi.specs import LedgerSpec, Perm


class Role(StrEnum):
    LEADER = "leader"  # district leaders: cockpit, every department read-only
    STAFF = "staff"  # a department's staff: its pages, tiles and ledger rows
    LEDGER_ADMIN = "ledger_admin"  # a department's ledger admin: staff + upload and rollback
    PLATFORM_ADMIN = "platform_admin"  # plugins, role mapping, audit log; no department data


ROLE_LABELS = {
    Role.LEADER: "区领导",
    Role.STAFF: "部门工作人员",
    Role.LEDGER_ADMIN: "台账管理员",
    Role.PLATFORM_ADMIN: "平台管理员",
}

ROLE_PERMISSIONS: dict[Role, frozenset[Perm]] = {
    Role.LEADER: frozenset({Perm.SIGNED_IN, Perm.VIEW, Perm.LEDGER_READ, Perm.COCKPIT}),
    Role.STAFF: frozenset({Perm.SIGNED_IN, Perm.VIEW, Perm.LEDGER_READ, Perm.COCKPIT}),
    Role.LEDGER_ADMIN: frozenset(
        {Perm.SIGNED_IN, Perm.VIEW, Perm.LEDGER_READ, Perm.COCKPIT, Perm.LEDGER_UPLOAD, Perm.LEDGER_ROLLBACK}
    ),
    Role.PLATFORM_ADMIN: frozenset({Perm.SIGNED_IN, Perm.PLATFORM_ADMIN}),
}

# Roles whose grant is district-wide (no department); the others need a department.
GLOBAL_ROLES = frozenset({Role.LEADER, Role.PLATFORM_ADMIN})


class AccessDenied(PermissionError):
    """Raised by the host when an identity lacks a permission. ``user_message`` is Chinese.

    ``audited`` is True when the refusal is already in the audit log (``ctx.deny``, the ledger
    service, connectors); the page and tile boundaries record the others, so every refusal is
    audited exactly once, also one a plugin raises itself.
    """

    def __init__(self, perm: Perm | str, target: str, user_message: str | None = None, *, audited: bool = False):
        super().__init__(f"access denied: {perm} on {target}")
        self.perm = perm
        self.target = target
        self.audited = audited
        self.user_message = (
            user_message or f"您没有访问“{target}”的权限。如需开通，请联系本部门负责人或平台管理员。"
        )


@dataclass(frozen=True)
class Grant:
    role: Role
    department: str | None = None  # None for district-wide roles

    def covers(self, department: str | None) -> bool:
        return self.department is None or department is None or self.department == department

    def label(self, departments: Departments) -> str:
        role = ROLE_LABELS[self.role]
        return role if self.department is None else f"{departments.name(self.department)} · {role}"


@dataclass(frozen=True)
class RowScope:
    """Which rows of a ledger an identity may read: all, none, or those of some departments."""

    all_rows: bool = False
    department_names: frozenset[str] = frozenset()

    @property
    def empty(self) -> bool:
        return not self.all_rows and not self.department_names


@dataclass(frozen=True)
class Identity:
    subject: str  # issuer-qualified, stable: "<issuer>|<sub>"
    name: str
    grants: frozenset[Grant]
    email: str = ""
    claims: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)
    expires_at: dt.datetime | None = None  # from the ID token's exp (UTC)
    # The deployment's departments (Settings.departments): grant ids → the names ledgers store.
    directory: Departments = field(default=DAXING, compare=False, hash=False, repr=False)

    @property
    def has_access(self) -> bool:
        return bool(self.grants)

    @property
    def departments(self) -> frozenset[str]:
        return frozenset(g.department for g in self.grants if g.department)

    @property
    def roles(self) -> frozenset[Role]:
        return frozenset(g.role for g in self.grants)

    @property
    def grant_labels(self) -> list[str]:
        """The grants in Chinese, sorted: 区经济和信息化局 · 台账管理员 …"""
        return sorted(g.label(self.directory) for g in self.grants)

    @property
    def account(self) -> str:
        """A readable account identifier for people and admins (the no-access page, the audit
        log's 操作人): the login name and the provider's host, e.g. ``visitor（idp.example.gov.cn）``.
        The stable key remains :attr:`subject`."""
        claims = self.claims
        login = str(claims.get("preferred_username") or claims.get("email") or claims.get("sub") or self.subject)
        issuer = urlsplit(str(claims.get("iss") or "")).netloc
        return f"{login}（{issuer}）" if issuer else login

    def is_expired(self, now: dt.datetime | None = None) -> bool:
        if self.expires_at is None:
            return False
        now = now or dt.datetime.now(dt.UTC).replace(tzinfo=None)
        return now >= self.expires_at

    def allows(self, perm: Perm, department: str | None = None) -> bool:
        """True when some grant carries ``perm`` for ``department`` (None: any department)."""
        return any(perm in ROLE_PERMISSIONS[g.role] and g.covers(department) for g in self.grants)

    def can(self, perm: Perm, ledger: LedgerSpec) -> bool:
        """THE answer to "may this identity read / upload / roll back ``ledger``".

        * ``LEDGER_READ``: a read grant and a non-empty :meth:`row_scope` (some rows to see);
        * ``LEDGER_UPLOAD``: a non-empty :meth:`upload_scope` (the whole ledger, or on a
          district-wide ledger its own department's rows);
        * ``LEDGER_ROLLBACK``: the rollback permission for the ledger's owning department
          (a rollback replaces every department's rows).

        Any other permission is a programming error (ValueError): pages and tiles are checked
        with :meth:`allows`.
        """
        if perm == Perm.LEDGER_READ:
            return self.allows(Perm.LEDGER_READ) and not self.row_scope(ledger).empty
        if perm == Perm.LEDGER_UPLOAD:
            return not self.upload_scope(ledger).empty
        if perm == Perm.LEDGER_ROLLBACK:
            return self.allows(Perm.LEDGER_ROLLBACK, ledger.department)
        raise ValueError(f"can() answers ledger permissions only, not {perm!r}")

    def row_scope(self, ledger: LedgerSpec) -> RowScope:
        """Rows of ``ledger`` this identity may read.

        District-wide readers (leaders) and the ledger's owning department (its steward) read
        every row; other departments read the rows whose ``department_column`` names them.
        """
        readers = [g for g in self.grants if Perm.LEDGER_READ in ROLE_PERMISSIONS[g.role]]
        if any(g.department is None or g.department == ledger.department for g in readers):
            return RowScope(all_rows=True)
        if ledger.department_column is None:
            return RowScope()
        return RowScope(department_names=frozenset(self.directory.name(g.department) for g in readers))

    def upload_scope(self, ledger: LedgerSpec) -> RowScope:
        """Rows of ``ledger`` this identity may replace by uploading.

        The owning department's ledger admins replace the whole ledger. On a ledger with a
        ``department_column``, another department's ledger admins replace only their own rows
        (each department keeps its part of a district-wide ledger, 分级分权).
        """
        uploaders = [g for g in self.grants if Perm.LEDGER_UPLOAD in ROLE_PERMISSIONS[g.role]]
        if any(g.department is None or g.department == ledger.department for g in uploaders):
            return RowScope(all_rows=True)
        if ledger.department_column is None:
            return RowScope()
        return RowScope(department_names=frozenset(self.directory.name(g.department) for g in uploaders))


def _claim_values(claims: Mapping[str, Any], claim: str) -> set[str]:
    value: Any = claims
    for part in claim.split("."):  # "realm_access.roles" reaches into nested claims (Keycloak)
        value = value.get(part) if isinstance(value, Mapping) else None
    if value is None:
        return set()
    if isinstance(value, str):
        return {value}
    if isinstance(value, Sequence):
        return {str(v) for v in value}
    return {str(value)}


def map_claims(claims: Mapping[str, Any], access: Mapping[str, Any]) -> frozenset[Grant]:
    """Grants from ID-token claims, by the ``[access]`` configuration.

    Each rule: ``value`` to match in ``claim`` (the rule's own or the section default), the
    ``role`` it grants and, for department roles, the ``department`` id. Unknown roles or
    departments in the configuration are errors (raised, so a typo is found at start-up by
    :func:`check_access_config`), never silently ignored.
    """
    default_claim = access.get("claim", "groups")
    grants: set[Grant] = set()
    for rule in access.get("rules", []):
        if rule["value"] in _claim_values(claims, rule.get("claim", default_claim)):
            role = Role(rule["role"])
            department = rule.get("department")
            grants.add(Grant(role, None if role in GLOBAL_ROLES else department))
    return frozenset(grants)


def check_access_config(access: Mapping[str, Any], departments: Departments) -> list[str]:
    """Problems in an ``[access]`` section, in English for the start-up log, ``huizhi check``
    and the admin page. A missing section or one without rules is a problem: the portal then
    denies everyone."""
    if not access:
        return [
            "no [access] section in huizhi.toml: no role mapping, so every signed-in person is denied; "
            "add [access] rules (see docs/sign-in.md)"
        ]
    problems = []
    if not access.get("rules"):
        problems.append(
            "[access] has no rules: every signed-in person is denied; add [[access.rules]] (see docs/sign-in.md)"
        )
    for i, rule in enumerate(access.get("rules", []), 1):
        if "value" not in rule or "role" not in rule:
            problems.append(f"rule {i}: needs 'value' and 'role'")
            continue
        try:
            role = Role(rule["role"])
        except ValueError:
            problems.append(f"rule {i}: unknown role {rule['role']!r} (known: {', '.join(Role)})")
            continue
        dept = rule.get("department")
        if role not in GLOBAL_ROLES:
            if not dept:
                problems.append(f"rule {i}: role {role} needs a department")
            else:
                try:
                    departments.get(dept)
                except KeyError as exc:
                    problems.append(f"rule {i}: {exc.args[0]}")
    return problems


def identity_from_claims(
    claims: Mapping[str, Any], access: Mapping[str, Any], *, departments: Departments
) -> Identity:
    """Build the identity for a set of ID-token claims (evaluated at every sign-in), by the
    deployment's ``[access]`` rules and departments (``Settings.access``, ``Settings.departments``)."""
    issuer = str(claims.get("iss", ""))
    sub = str(claims.get("sub", ""))
    exp = claims.get("exp")
    expires_at = dt.datetime.fromtimestamp(float(exp), dt.UTC).replace(tzinfo=None) if exp else None
    return Identity(
        subject=f"{issuer}|{sub}" if issuer else sub,
        name=str(claims.get("name") or claims.get("preferred_username") or sub),
        email=str(claims.get("email") or ""),
        grants=map_claims(claims, access),
        claims=dict(claims),
        expires_at=expires_at,
        directory=departments,
    )


def system_identity(purpose: str, departments: Departments = DAXING) -> Identity:
    """The host acting on its own behalf (seeding, CLI maintenance, warming the cockpit).

    Host-internal: plugins are never handed one, and it is not part of the plugin contract
    (a test fails when a plugin imports it). Call it through :meth:`huizhi.host.Host.system_identity`,
    so each use names its purpose, which the audit log records as the subject ``system:<purpose>``.
    """
    return Identity(
        subject=f"system:{purpose}",
        name="系统",
        # a district-wide ledger admin too: seeds and scripted imports commit through the service
        grants=frozenset({Grant(Role.LEADER), Grant(Role.PLATFORM_ADMIN), Grant(Role.LEDGER_ADMIN)}),
        directory=departments,
    )
