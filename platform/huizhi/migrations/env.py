"""Alembic environment: the engine is handed in by huizhi.db.upgrade (no alembic.ini needed)."""

from alembic import context

from huizhi.migrations import DuckDBImpl  # noqa: F401 (registers Alembic's DuckDB dialect)
from huizhi.models import Base


def run(connection) -> None:
    context.configure(connection=connection, target_metadata=Base.metadata)
    with context.begin_transaction():
        context.run_migrations()


# huizhi.db.upgrade hands in a connection inside its transaction, holding the schema lock;
# alembic.command.upgrade(alembic_config(engine), rev) alone (tests building old schemas) opens one.
if "connection" in context.config.attributes:
    run(context.config.attributes["connection"])
else:
    with context.config.attributes["engine"].begin() as connection:
        run(connection)
