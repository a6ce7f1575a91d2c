"""Pinned tiles: each person's personal cockpit layout, kept in the table ``cockpit_pins``
(created by the Alembic migration ``0002_cockpit_pins``), so it follows them across sessions."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy import DateTime, Integer, String
from sqlalchemy.orm import Mapped, Session, mapped_column

from huizhi.access import Identity
from huizhi.models import Base, utcnow

if TYPE_CHECKING:
    from huizhi.host import Host


class CockpitPin(Base):
    """One tile pinned by one person. ``subject`` is the identity's issuer-qualified subject."""

    __tablename__ = "cockpit_pins"

    subject: Mapped[str] = mapped_column(String(200), primary_key=True)
    tile_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    pinned_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


def load_pins(host: Host, identity: Identity) -> list[str]:
    """The tile ids ``identity`` pinned, in their chosen order."""
    stmt = (
        sa.select(CockpitPin.tile_id)
        .where(CockpitPin.subject == identity.subject)
        .order_by(CockpitPin.position, CockpitPin.tile_id)
    )
    with Session(host.engine) as session:
        return list(session.scalars(stmt))


def save_pins(host: Host, identity: Identity, tile_ids: Sequence[str]) -> list[str]:
    """Replace ``identity``'s pins with ``tile_ids`` (in that order); unknown ids are dropped.
    Audited as ``cockpit.pins``. Returns the pins stored."""
    known = host.registry.tiles
    clean = [t for t in dict.fromkeys(tile_ids) if t in known]
    with Session(host.engine) as session, session.begin():
        session.execute(sa.delete(CockpitPin).where(CockpitPin.subject == identity.subject))
        now = utcnow()
        for position, tile_id in enumerate(clean):
            session.add(
                CockpitPin(subject=identity.subject, tile_id=tile_id, position=position, pinned_at=now)
            )
    host.audit.record(identity, "cockpit.pins", "cockpit", pins=clean)
    return clean


def toggle_pin(host: Host, identity: Identity, tile_id: str) -> list[str]:
    pins = load_pins(host, identity)
    return save_pins(
        host, identity, [p for p in pins if p != tile_id] if tile_id in pins else [*pins, tile_id]
    )


def move_pin(host: Host, identity: Identity, tile_id: str, offset: int) -> list[str]:
    """Move a pinned tile ``offset`` places (negative: earlier)."""
    pins = load_pins(host, identity)
    if tile_id not in pins:
        return pins
    i = pins.index(tile_id)
    j = min(len(pins) - 1, max(0, i + offset))
    pins.insert(j, pins.pop(i))
    return save_pins(host, identity, pins)
