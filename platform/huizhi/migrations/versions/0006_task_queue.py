"""Background work: the host's record of each task (``task_runs``) and, on PostgreSQL,
procrastinate's own tables, functions and triggers (its ``schema.sql`` for the pinned release).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02

Runs under :func:`huizhi.db.lock_schema` like every migration, so replicas starting together
install procrastinate's schema once. A later procrastinate release that changes its schema ships
SQL migrations in ``procrastinate/sql/migrations``; apply them in a new Alembic migration of ours
(procrastinate's documented way for projects that own their migrations).
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.schema import CreateSequence, DropSequence

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

task_run_seq = sa.Sequence("task_runs_id_seq")


def upgrade() -> None:
    op.execute(CreateSequence(task_run_seq))
    op.create_table(
        "task_runs",
        sa.Column("id", sa.BigInteger, server_default=task_run_seq.next_value(), primary_key=True),
        sa.Column("task", sa.String(100), nullable=False),
        sa.Column("label", sa.String(300), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("job_id", sa.BigInteger),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("args", sa.Text, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("max_attempts", sa.Integer, nullable=False),
        sa.Column("phase", sa.String(40), nullable=False),
        sa.Column("progress", sa.Float, nullable=False),
        sa.Column("error", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("started_at", sa.DateTime),
        sa.Column("finished_at", sa.DateTime),
        sa.Column("worker", sa.String(200), nullable=False),
        sa.Column("payload", sa.LargeBinary),
        sa.Column("result", sa.LargeBinary),
    )
    op.create_index("ix_task_runs_task", "task_runs", ["task"])
    op.create_index("ix_task_runs_created_at", "task_runs", ["created_at"])
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        from procrastinate.schema import SchemaManager

        # The raw DBAPI cursor: the schema is many statements, with % and :name text that
        # SQLAlchemy's and psycopg's parameter styles would otherwise try to read.
        with bind.connection.dbapi_connection.cursor() as cursor:  # type: ignore[union-attr]
            cursor.execute(SchemaManager.get_schema())


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        # every procrastinate object: tables (with their triggers) first, then functions and types
        rows = bind.execute(sa.text(
            "SELECT 'TABLE', tablename FROM pg_tables WHERE schemaname = current_schema() "
            "AND tablename LIKE 'procrastinate%' UNION ALL "
            "SELECT 'FUNCTION', p.oid::regprocedure::text FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
            "WHERE n.nspname = current_schema() AND p.proname LIKE 'procrastinate%' UNION ALL "
            "SELECT 'TYPE', typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace "
            "WHERE n.nspname = current_schema() AND typname LIKE 'procrastinate%' AND t.typtype = 'e'"
        )).all()
        for kind, name in rows:
            quoted = name if kind == "FUNCTION" else f'"{name}"'
            op.execute(f"DROP {kind} IF EXISTS {quoted} CASCADE")
    op.drop_index("ix_task_runs_created_at", "task_runs")
    op.drop_index("ix_task_runs_task", "task_runs")
    op.drop_table("task_runs")
    op.execute(DropSequence(task_run_seq))
