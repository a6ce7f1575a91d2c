"""``huizhi backup FILE`` / ``huizhi restore FILE``: the whole database, ledger history included.

Every ledger version keeps its rows in the database (``huizhi.ledger_store``), and the audit log,
plugin switches and submissions live beside them, so one database copy is the whole state of a
deployment; the files under ``HUIZHI_DATA_DIR`` are caches and can be rebuilt.

* **PostgreSQL**: ``pg_dump --format=custom`` (a consistent snapshot while portals keep working:
  one repeatable-read transaction) and ``pg_restore --single-transaction`` into an *empty*
  database (all or nothing). Needs Debian's ``postgresql-client`` of the server's major version
  or newer; the password goes to the tools through ``PGPASSWORD``, never on their command line.
* **DuckDB** (the embedded file): the file itself, copied after a ``CHECKPOINT`` while this
  process holds the file's write lock. A DuckDB file admits one writing process, so a running
  portal makes the backup refuse (stop the portal first); nothing is copied half-written.
  Restore copies the backup into place only where no database file exists yet.

Both write to a temporary file beside the target and rename it at the end: an interrupted backup
or restore leaves no file that looks complete. Messages are English, for operators.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import URL, make_url

PG_MAGIC = b"PGDMP"  # the first bytes of a pg_dump custom-format archive
DUCKDB_MAGIC = b"DUCK"  # at offset 8 of a DuckDB database file


class BackupError(RuntimeError):
    """A backup or restore that cannot be done; the message says why and what to do."""


@dataclass(frozen=True)
class Outcome:
    path: Path
    store: str  # 'postgresql' or 'duckdb'
    size: int
    revision: str | None  # the schema revision in the copy


def _store(url: URL) -> str:
    backend = url.get_backend_name()
    if backend not in {"postgresql", "duckdb"}:
        raise BackupError(f"backup and restore support PostgreSQL and DuckDB, not {backend}")
    return backend


def _revision(url: str) -> str | None:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            if not inspect(conn).has_table("alembic_version"):
                return None
            return conn.execute(text("select version_num from alembic_version")).scalar()
    finally:
        engine.dispose()


def _temp_beside(target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent)
    os.close(fd)
    return Path(name)


def backup(database_url: str, target: Path) -> Outcome:
    """Write the database at ``database_url`` to ``target`` (which must not exist yet)."""
    url = make_url(database_url)
    store = _store(url)
    target = Path(target)
    if target.exists():
        raise BackupError(f"{target} already exists: choose a new file name (backups are never overwritten)")
    partial = _temp_beside(target)
    try:
        if store == "postgresql":
            _pg_dump(url, partial)
        else:
            _duckdb_copy(url, partial)
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
    return Outcome(target, store, target.stat().st_size, _revision(database_url))


def restore(database_url: str, source: Path) -> Outcome:
    """Restore ``source`` (made by :func:`backup`) into the database at ``database_url``, which
    must be empty (PostgreSQL: no tables; DuckDB: no file yet)."""
    url = make_url(database_url)
    store = _store(url)
    source = Path(source)
    if not source.is_file():
        raise BackupError(f"{source} does not exist or is not a file")
    kind = backup_kind(source)
    if kind is None:
        raise BackupError(f"{source} is neither a PostgreSQL (pg_dump custom format) nor a DuckDB backup")
    if kind != store:
        raise BackupError(
            f"{source} is a {kind} backup and the configured database is {store}: restore it into a "
            f"{kind} database (moving between stores is not a restore)"
        )
    if store == "postgresql":
        _pg_restore(url, source)
    else:
        _duckdb_restore(url, source)
    return Outcome(source, store, source.stat().st_size, _revision(database_url))


def backup_kind(path: Path) -> str | None:
    with path.open("rb") as fh:
        head = fh.read(16)
    if head.startswith(PG_MAGIC):
        return "postgresql"
    if head[8:12] == DUCKDB_MAGIC:
        return "duckdb"
    return None


# -- PostgreSQL -------------------------------------------------------------------------------


def pg_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise BackupError(f"{name} not found: install the PostgreSQL client tools (Debian: apt-get install postgresql-client)")
    return path


def _libpq(url: URL) -> tuple[str, dict[str, str]]:
    """A libpq connection URL without the password (the command line is visible to every user
    of the machine) and the environment that carries it."""
    env = dict(os.environ)
    if url.password is not None:
        env["PGPASSWORD"] = str(url.password)
    plain = url.set(drivername="postgresql", password=None)
    return plain.render_as_string(hide_password=False), env


def _major(version_text: str) -> int | None:
    match = re.search(r"(\d+)(?:\.\d+)?", version_text)
    return int(match.group(1)) if match else None


def _run(cmd: list[str], env: dict[str, str], what: str) -> None:
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip()
        raise BackupError(f"{what} failed (exit {done.returncode}): {detail}")


def _pg_dump(url: URL, target: Path) -> None:
    tool = pg_tool("pg_dump")
    dsn, env = _libpq(url)
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            server = str(conn.execute(text("show server_version")).scalar())
    except Exception as exc:
        raise BackupError(f"cannot connect to {url.render_as_string(hide_password=True)}: {exc}") from exc
    finally:
        engine.dispose()
    client = subprocess.run([tool, "--version"], capture_output=True, text=True).stdout
    if (_major(client) or 0) < (_major(server) or 0):
        raise BackupError(
            f"pg_dump is {client.strip()} and the server is {server}: pg_dump must be the server's major "
            "version or newer (install that postgresql-client)"
        )
    _run([tool, "--format=custom", "--no-password", f"--file={target}", f"--dbname={dsn}"], env, "pg_dump")


def _pg_restore(url: URL, source: Path) -> None:
    tool = pg_tool("pg_restore")
    shown = url.render_as_string(hide_password=True)
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            tables = inspect(conn).get_table_names()
    except Exception as exc:
        raise BackupError(
            f"cannot connect to {shown}: {exc} (create the empty database first: createdb …)"
        ) from exc
    finally:
        engine.dispose()
    if tables:
        raise BackupError(
            f"{shown} is not empty ({len(tables)} tables, e.g. {sorted(tables)[0]}): restore into a new, "
            "empty database, then point HUIZHI_DATABASE_URL at it"
        )
    dsn, env = _libpq(url)
    # --no-owner/--no-privileges: the restoring account owns everything, whatever the old one was
    _run(
        [tool, "--single-transaction", "--exit-on-error", "--no-owner", "--no-privileges", "--no-password",
         f"--dbname={dsn}", str(source)],
        env, "pg_restore",
    )  # fmt: skip


# -- DuckDB -----------------------------------------------------------------------------------


def _duckdb_path(url: URL) -> Path:
    if not url.database or url.database == ":memory:":
        raise BackupError("an in-memory DuckDB database cannot be backed up or restored")
    return Path(url.database)


def _duckdb_copy(url: URL, target: Path) -> None:
    import duckdb

    path = _duckdb_path(url)
    if not path.is_file():
        raise BackupError(f"{path} does not exist: nothing to back up")
    try:
        conn = duckdb.connect(str(path))  # the write lock: no portal may write while we copy
    except duckdb.IOException as exc:
        if "lock" in str(exc).lower():
            raise BackupError(
                f"{path} is in use by another process (a running portal or `huizhi` command): a DuckDB "
                "file admits one process; stop the portal, back up, start it again"
            ) from exc
        raise BackupError(f"cannot open {path}: {exc}") from exc
    try:
        conn.execute("CHECKPOINT")  # everything in the write-ahead log moves into the file
        shutil.copyfile(path, target)
    finally:
        conn.close()


def _duckdb_restore(url: URL, source: Path) -> None:
    import duckdb

    path = _duckdb_path(url)
    if path.exists() or Path(f"{path}.wal").exists():
        raise BackupError(
            f"{path} already exists: a restore never replaces a database; move it away (or set "
            "HUIZHI_DATABASE_URL to a new file), then restore"
        )
    partial = _temp_beside(path)
    try:
        shutil.copyfile(source, partial)
        try:
            duckdb.connect(str(partial), read_only=True).close()  # a DuckDB file this version reads
        except duckdb.Error as exc:
            raise BackupError(f"{source} cannot be opened as a DuckDB database: {exc}") from exc
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)
