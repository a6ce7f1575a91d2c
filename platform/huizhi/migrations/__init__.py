"""The host's Alembic migrations (env.py, versions/) and Alembic's DuckDB dialect."""

from alembic.ddl.impl import DefaultImpl


class DuckDBImpl(DefaultImpl):
    """Alembic has no DuckDB dialect of its own; DuckDB's DDL is close enough to PostgreSQL's.

    Defined here rather than in env.py so that reading a revision (``huizhi.db.current_revision``)
    works in a process that has not run a migration yet.
    """

    __dialect__ = "duckdb"
    transactional_ddl = True
