"""Initial host tables: ledger versions and heads, audit log, plugin state.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.schema import CreateSequence, DropSequence

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

ledger_seq = sa.Sequence("ledger_versions_id_seq")
audit_seq = sa.Sequence("audit_log_id_seq")


def upgrade() -> None:
    op.execute(CreateSequence(ledger_seq))
    op.execute(CreateSequence(audit_seq))
    op.create_table(
        "ledger_versions",
        sa.Column("id", sa.BigInteger, server_default=ledger_seq.next_value(), primary_key=True),
        sa.Column("ledger_id", sa.String(64), nullable=False),
        sa.Column("number", sa.Integer, nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("file_name", sa.String(500)),
        sa.Column("file_sha256", sa.String(64)),
        sa.Column("row_count", sa.BigInteger, nullable=False),
        sa.Column("added", sa.BigInteger, nullable=False),
        sa.Column("changed", sa.BigInteger, nullable=False),
        sa.Column("removed", sa.BigInteger, nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("restored_from", sa.Integer),
        sa.Column("note", sa.Text, nullable=False),
    )
    op.create_index("ix_ledger_versions_ledger_id", "ledger_versions", ["ledger_id"])
    op.create_table(
        "ledger_heads",
        sa.Column("ledger_id", sa.String(64), primary_key=True),
        sa.Column("version_id", sa.BigInteger, nullable=False),
        sa.Column("number", sa.Integer, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger, server_default=audit_seq.next_value(), primary_key=True),
        sa.Column("occurred_at", sa.DateTime, nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("actor_name", sa.String(200), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("target", sa.String(300), nullable=False),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
    )
    op.create_index("ix_audit_log_occurred_at", "audit_log", ["occurred_at"])
    op.create_index("ix_audit_log_action", "audit_log", ["action"])
    op.create_table(
        "plugin_state",
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("changed_by", sa.String(200), nullable=False),
        sa.Column("changed_at", sa.DateTime, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("plugin_state")
    op.drop_table("audit_log")
    op.drop_table("ledger_heads")
    op.drop_table("ledger_versions")
    op.execute(DropSequence(audit_seq))
    op.execute(DropSequence(ledger_seq))
