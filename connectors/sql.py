"""SQL connector: read-only queries against a department's own database (any SQLAlchemy URL).

Read-only in fact, in layers that each catch a different mistake:

1. the statement: :meth:`SQLConnection.query` runs a ``sqlalchemy.select`` or one
   ``sqlalchemy.text`` ``SELECT`` (or ``WITH … SELECT``) with bound parameters, never a plain
   string (values spliced into text are how injection happens); anything else (INSERT, UPDATE, DELETE, DDL, SET, PRAGMA, ATTACH, a second
   statement after ``;``) is refused with :class:`ReadOnlyError` before it reaches the database;
2. the session: every connection the engine opens is read-only at the database, per backend
   (PostgreSQL ``default_transaction_read_only``, MySQL/MariaDB ``SET SESSION TRANSACTION READ
   ONLY``, DuckDB ``read_only`` with external access off, SQLite ``mode=ro`` and ``PRAGMA
   query_only``), and every query's transaction is rolled back, never committed (which also
   undoes a ``SELECT set_config('default_transaction_read_only', 'off', false)`` on PostgreSQL);
3. the account: a deployment should still connect as a database user that may only read. In-process
   code cannot be sandboxed (docs/architecture.md, trust model); that account is what holds
   against code that means harm. See docs/connectors.md.

A backend for which no read-only setting is known here is refused rather than trusted.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

if TYPE_CHECKING:
    import pandas as pd

DEFAULT_STATEMENT_TIMEOUT = 30.0  # seconds; a department database must not hang a page
CONFIG_KEYS = frozenset({"url", "statement_timeout", "timeout"})
BACKENDS = ("postgresql", "mysql", "mariadb", "duckdb", "sqlite")

# Whitespace, comments and opening parentheses may come before the first keyword.
_LEADING = re.compile(r"(?:\s+|--[^\n]*(?:\n|\Z)|/\*.*?\*/|\()*", re.S)
_WORD = re.compile(r"[A-Za-z_]+")
_READ_STATEMENTS = frozenset({"select", "with"})


class ReadOnlyError(ValueError):
    """A statement the read-only SQL connector does not run. The message says what and why."""


def check_read_only(sql: str) -> None:
    """Raise :class:`ReadOnlyError` unless ``sql`` is one SELECT (or WITH … SELECT) statement.

    Any ``;`` inside the text is refused, even inside a string literal: telling a literal from a
    statement separator needs each backend's quoting rules, and literal text belongs in a bound
    parameter anyway. A write hidden inside a SELECT or WITH is the database's to refuse (the
    session is read-only).
    """
    if not isinstance(sql, str):
        raise ReadOnlyError(f"the sql connector takes the statement as text, got {type(sql).__name__}")
    body = sql.strip()
    body = body.removesuffix(";").rstrip()
    if ";" in body:
        raise ReadOnlyError(
            "the sql connector runs one statement per call: remove the ';' (pass literal text as a "
            "bound :parameter)"
        )
    start = _LEADING.match(body)
    rest = body[start.end() if start else 0:]
    word = _WORD.match(rest)
    keyword = word.group().lower() if word else ""
    if keyword not in _READ_STATEMENTS:
        got = keyword.upper() if keyword else repr(rest[:20])
        raise ReadOnlyError(f"the sql connector is read-only: it runs SELECT (or WITH … SELECT), not {got}")


def _read_only_engine(url: sa.URL, timeout: float) -> sa.Engine:
    """An engine whose every connection is read-only at the database, with a statement timeout
    where the backend has one."""
    backend = url.get_backend_name()
    if backend == "postgresql":
        options = f"-c default_transaction_read_only=on -c statement_timeout={int(timeout * 1000)}"
        return sa.create_engine(url, pool_pre_ping=True, connect_args={"options": options})
    if backend in ("mysql", "mariadb"):
        engine = sa.create_engine(url, pool_pre_ping=True)

        def on_connect(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            try:
                cursor.execute("SET SESSION TRANSACTION READ ONLY")
                cursor.execute("SELECT VERSION()")
                # MariaDB counts seconds over every statement, MySQL milliseconds over SELECTs.
                if "mariadb" in str(cursor.fetchone()[0]).lower():
                    cursor.execute(f"SET SESSION max_statement_time = {float(timeout)}")
                else:
                    cursor.execute(f"SET SESSION max_execution_time = {int(timeout * 1000)}")
            finally:
                cursor.close()

        sa.event.listen(engine, "connect", on_connect)
        return engine
    if backend == "duckdb":
        # read_only opens the file for reading; with external access off a statement can neither
        # ATTACH another file (which would be writable) nor COPY out, and the setting is locked.
        # DuckDB has no statement timeout.
        config = {"enable_external_access": False, "lock_configuration": True}
        return sa.create_engine(url, connect_args={"read_only": True, "config": config})
    if backend == "sqlite":
        if not url.database or url.database == ":memory:":
            raise ValueError("sql connector: a SQLite url must name a database file")
        path = url.database.removeprefix("file:")
        ro_url = url.set(database=f"file:{path}", query={**url.query, "mode": "ro", "uri": "true"})
        engine = sa.create_engine(ro_url)

        def on_connect_sqlite(dbapi_connection: Any, _record: Any) -> None:
            # mode=ro covers the main file; query_only also covers any database ATTACHed later.
            dbapi_connection.execute("PRAGMA query_only = ON")

        sa.event.listen(engine, "connect", on_connect_sqlite)
        return engine
    raise ValueError(
        f"sql connector: no read-only setting is known for {backend!r} databases "
        f"(supported: {', '.join(BACKENDS)})"
    )


class SQLConnection:
    """Read-only, parameterised queries: ``conn.query(sa.text("SELECT … WHERE street = :street"), street=…)``."""

    def __init__(self, engine: sa.Engine):
        # Private: the documented path is query()/rows(), which check the statement first.
        self._engine = engine

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> SQLConnection:
        if "url" not in config:
            raise ValueError("sql connector needs 'url' (a SQLAlchemy database URL) in its configuration")
        unknown = sorted(set(config) - CONFIG_KEYS)
        if unknown:
            raise ValueError(
                f"sql connector: unknown configuration keys {', '.join(unknown)} "
                f"(known: {', '.join(sorted(CONFIG_KEYS))}, and the host's departments)"
            )
        timeout = float(config.get("statement_timeout", config.get("timeout", DEFAULT_STATEMENT_TIMEOUT)))
        if timeout <= 0:
            raise ValueError("sql connector: statement_timeout must be a positive number of seconds")
        return cls(_read_only_engine(sa.make_url(config["url"]), timeout))

    @property
    def backend(self) -> str:
        return self._engine.url.get_backend_name()

    def _statement(self, statement: Any) -> sa.Executable:
        """The statement to run: a ``sa.text`` (checked to be one SELECT) or a SELECT object.

        Plain strings are refused: text built with f-strings or ``+`` is how values end up
        spliced into SQL. ``sa.text("… WHERE street = :street")`` with the value passed as a
        parameter is the way (the value is bound, never part of the text)."""
        if isinstance(statement, str):
            raise ReadOnlyError(
                "the sql connector takes sqlalchemy.text(\"SELECT … WHERE x = :x\") with the values as "
                "parameters (or a sqlalchemy.select), not a string: strings are how values get spliced into SQL"
            )
        if isinstance(statement, sa.TextClause):
            check_read_only(statement.text)
            return statement
        if isinstance(statement, sa.Select | sa.CompoundSelect):
            return statement
        raise ReadOnlyError(
            f"the sql connector runs sqlalchemy.text(...) or sqlalchemy.select(...) statements, "
            f"not {type(statement).__name__}"
        )

    def _run(self, statement: Any, params: Mapping[str, Any]) -> tuple[list[str], list[sa.Row[Any]]]:
        stmt = self._statement(statement)
        with self._engine.connect() as conn:
            result = conn.execute(stmt, dict(params))
            columns, rows = list(result.keys()), list(result.fetchall())
            conn.rollback()  # nothing a query did is ever committed, not even a SET
        return columns, rows

    def rows(self, statement: Any, **params: Any) -> list[sa.Row[Any]]:
        """Run a parameterised SELECT (``sa.text`` with ``:name`` placeholders, or a
        ``sa.select``) and return its rows."""
        return self._run(statement, params)[1]

    def query(self, statement: Any, **params: Any) -> pd.DataFrame:
        """Run a parameterised SELECT (``sa.text`` with ``:name`` placeholders, or a
        ``sa.select``) and return a DataFrame."""
        import pandas as pd

        columns, rows = self._run(statement, params)
        return pd.DataFrame(rows, columns=columns)

    def fetch(self, statement: Any, params: Mapping[str, Any] | None = None) -> pd.DataFrame:
        """The uniform read used by ``ctx.source`` and syncs: :meth:`query` with ``params``."""
        return self.query(statement, **dict(params or {}))

    def cache_key(self, statement: Any) -> str:
        """The statement's SQL text with the values bound inside it (``select(...).where(c == 5)``
        carries its 5 as a parameter of the statement); the call's parameters are keyed by the
        cache."""
        compiled = self._statement(statement).compile()
        return f"{compiled} {sorted((k, repr(v)) for k, v in compiled.params.items())}"

    def close(self) -> None:
        """Close the pooled connections (the host calls this when it is disposed)."""
        self._engine.dispose()
