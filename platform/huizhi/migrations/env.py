"""Alembic environment: the engine is handed in by huizhi.db.upgrade (no alembic.ini needed)."""

from alembic import context
from alembic.ddl.impl import DefaultImpl

from huizhi.models import Base


class DuckDBImpl(DefaultImpl):
    """Alembic has no DuckDB dialect of its own; DuckDB's DDL is close enough to PostgreSQL's."""

    __dialect__ = "duckdb"
    transactional_ddl = True


engine = context.config.attributes["engine"]
with engine.begin() as connection:
    context.configure(connection=connection, target_metadata=Base.metadata)
    with context.begin_transaction():
        context.run_migrations()
