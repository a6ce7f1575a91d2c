"""The cockpit's own tables: each person's pinned tiles (their personal layout).

Created by the Alembic migration ``0002_cockpit_pins``.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import DateTime, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from huizhi.models import Base, utcnow


class CockpitPin(Base):
    """One tile pinned by one person. ``subject`` is the identity's issuer-qualified subject."""

    __tablename__ = "cockpit_pins"

    subject: Mapped[str] = mapped_column(String(200), primary_key=True)
    tile_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    pinned_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
