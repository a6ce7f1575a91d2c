"""Record how an upload changed its ledger: replace the whole ledger (or a department's rows),
add and update rows by key, or delete the rows whose keys are listed.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-08
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # replace | upsert | delete; every version before this migration replaced its ledger
    for table in ("ledger_versions", "ledger_previews"):
        op.add_column(table, sa.Column("mode", sa.String(20), nullable=True, server_default="replace"))


def downgrade() -> None:
    for table in ("ledger_previews", "ledger_versions"):
        op.drop_column(table, "mode")
