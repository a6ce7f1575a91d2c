"""Cockpit: pinned tiles per person (a leader's personal layout).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cockpit_pins",
        sa.Column("subject", sa.String(200), primary_key=True),
        sa.Column("tile_id", sa.String(64), primary_key=True),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("pinned_at", sa.DateTime, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("cockpit_pins")
