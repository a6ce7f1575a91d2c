"""Putting rows into a test ledger the way the product does: through the ledger service."""

from __future__ import annotations

from typing import Any

from huizhi.access import Grant, Identity, Role


def admin(dept: str = "jxj") -> Identity:
    return Identity(subject=f"admin-{dept}", name=f"{dept}台账管理员", grants=frozenset({Grant(Role.LEDGER_ADMIN, dept)}))


def commit_rows(host, ledger_id: str, rows: Any, *, identity: Identity | None = None, kind: str = "upload",
                file_sha256: str | None = None):
    """Preview and commit ``rows`` (a DataFrame or Arrow table) as ``identity`` (default: the host's
    own system identity); returns the new version, or None when nothing changed."""
    who = identity or host.system_identity("test")
    return host.ledgers.import_rows(who, ledger_id, rows, kind=kind, file_sha256=file_sha256)
