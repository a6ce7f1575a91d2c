"""Record which departments a ledger version covers (department uploads, submission tracking).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # JSON list of department names a department upload replaced; NULL for a whole-ledger version
    op.add_column("ledger_versions", sa.Column("scope", sa.Text, nullable=True))


def downgrade() -> None:
    op.drop_column("ledger_versions", "scope")
