"""Staged uploads (a preview's rows wait in the ledger table until commit publishes them);
the display name of whoever made a version beside its subject.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ledger_previews",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),  # a ledger version id
        sa.Column("ledger_id", sa.String(64), nullable=False),
        sa.Column("base_version_id", sa.BigInteger),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("file_name", sa.String(500)),
        sa.Column("file_sha256", sa.String(64)),
        sa.Column("row_count", sa.BigInteger, nullable=False),
        sa.Column("added", sa.BigInteger, nullable=False),
        sa.Column("changed", sa.BigInteger, nullable=False),
        sa.Column("removed", sa.BigInteger, nullable=False),
        sa.Column("unchanged", sa.BigInteger, nullable=False),
        sa.Column("scope", sa.Text),
        sa.Column("note", sa.Text, nullable=False),
    )
    op.create_index("ix_ledger_previews_ledger_id", "ledger_previews", ["ledger_id"])
    # versions are recorded against the subject (stable); the name is what people read
    op.add_column("ledger_versions", sa.Column("created_by_name", sa.String(200), nullable=True))


def downgrade() -> None:
    op.drop_column("ledger_versions", "created_by_name")
    op.drop_index("ix_ledger_previews_ledger_id", "ledger_previews")
    op.drop_table("ledger_previews")
