"""Bulk writes of a typed Arrow table: the commit primitives measured in bench/ledger_ingest.py.

* DuckDB: register the Arrow table on the raw DuckDB connection and ``INSERT ... SELECT`` (zero
  copy; 100k rows ≈ 0.1–0.5 s, against ~37 s through ``DataFrame.to_sql`` + duckdb-engine).
* PostgreSQL (psycopg 3): ``COPY ... FROM STDIN (FORMAT csv)`` fed by Arrow's C++ CSV writer
  in batches. Nulls are written unquoted-empty and strings always quoted, so NULL and '' stay
  distinct. Both run inside the caller's transaction: the caller commits or rolls back.
"""

from __future__ import annotations

import io

import pyarrow as pa


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def insert_arrow_duckdb(con, table_name: str, table: pa.Table, *, create: bool = False) -> int:
    """Insert ``table`` into DuckDB table ``table_name`` (created from its schema if ``create``)."""
    view = "_huizhi_bulk_src"
    con.register(view, table)
    try:
        cols = ", ".join(_q(c) for c in table.column_names)
        if create:
            con.execute(f"CREATE TABLE {_q(table_name)} AS SELECT {cols} FROM {view}")
        else:
            con.execute(f"INSERT INTO {_q(table_name)} ({cols}) SELECT {cols} FROM {view}")
    finally:
        con.unregister(view)
    return table.num_rows


def postgres_type(typ: pa.DataType) -> str:
    if pa.types.is_int64(typ) or pa.types.is_integer(typ):
        return "BIGINT"
    if pa.types.is_floating(typ):
        return "DOUBLE PRECISION"
    if pa.types.is_boolean(typ):
        return "BOOLEAN"
    if pa.types.is_date(typ):
        return "DATE"
    if pa.types.is_timestamp(typ):
        return "TIMESTAMP"
    return "TEXT"


def copy_arrow_postgres(conn, table_name: str, table: pa.Table, *, batch_rows: int = 50_000) -> int:
    """``COPY`` ``table`` into PostgreSQL table ``table_name`` through a psycopg 3 connection."""
    import pyarrow.csv as pacsv
    from psycopg import sql

    target = sql.Identifier(*table_name.split("."))
    cols = sql.SQL(", ").join(sql.Identifier(c) for c in table.column_names)
    stmt = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv)").format(target, cols)
    options = pacsv.WriteOptions(include_header=False, quoting_style="needed")
    with conn.cursor() as cur, cur.copy(stmt) as copy:
        for batch in table.to_batches(max_chunksize=batch_rows):
            buf = io.BytesIO()
            pacsv.write_csv(pa.Table.from_batches([batch]), buf, options)
            copy.write(buf.getvalue())
    return table.num_rows
