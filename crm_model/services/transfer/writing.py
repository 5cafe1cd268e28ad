"""Bulk INSERT for an import: many rows per statement, with the driver's own fast path.

- PostgreSQL: ``COPY table (columns) FROM STDIN`` through psycopg (one
  statement for all the rows given). COPY fires the tables' triggers like
  INSERT; the change-tracking triggers there are statement triggers
  (migrations 0005, 0010), so a COPY of a page of rows takes one position per
  owner, not one per row. psycopg's ``executemany`` would send one statement per row.
- SQLite: multi-row ``INSERT ... VALUES`` statements, as many rows each as
  its limit of bound parameters allows (its change tracking is row triggers,
  which see every row either way).

Values pass through each column type's bind processing for the dialect (as
SQLAlchemy would do; e.g. ``UtcDateTime`` stores naive UTC, SQLite stores
datetimes as text), once per value and without SQLAlchemy's per-row
statement bookkeeping, which cost as much as the database's own work on a
50,000-activity import. Columns missing from the rows get their scalar
Python defaults, as a Core INSERT gives them.

Layer: crm_model.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import chain
from typing import Any

from sqlalchemy import Column, Table
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.orm import Session

# SQLITE_MAX_VARIABLE_NUMBER of SQLite 3.32 and later (https://www.sqlite.org/limits.html, 9).
SQLITE_MAX_VARIABLES = 32766


def insert_rows(session: Session, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """INSERT ``rows`` (dicts with the same keys, column name -> Python value) into ``table``.

    Raises ValueError for a column missing from the rows whose default is not
    a plain value (a callable default must be given in the rows).
    """
    if not rows:
        return
    given = list(rows[0])
    defaults = {column.name: _scalar_default(column) for column in table.columns
                if column.name not in given and column.default is not None}
    names = given + list(defaults)
    connection = session.connection()
    processors = [(i, process) for i, name in enumerate(names)
                  if (process := _bind_processor(table.c[name], connection.dialect)) is not None]
    fixed = list(defaults.values())
    values = [_processed([*(row[name] for name in given), *fixed], processors) for row in rows]
    if connection.dialect.name == "postgresql":
        _copy(connection, table, names, values)
    else:
        _insert_values(connection, table, names, values)


def _insert_values(connection: Connection, table: Table, names: list[str], values: list[list[Any]]) -> None:
    """Multi-row ``INSERT ... VALUES (...), (...)`` statements of as many rows as SQLite's
    limit of bound parameters allows (measured: 20,000 activities and their participants
    took about 1.5x as long with the driver's executemany of a one-row INSERT)."""
    per_statement = max(1, SQLITE_MAX_VARIABLES // len(names))
    row_marks = "(" + ", ".join("?" for _ in names) + ")"
    head = f"INSERT INTO {table.name} ({', '.join(names)}) VALUES "
    for start in range(0, len(values), per_statement):
        page = values[start:start + per_statement]
        connection.exec_driver_sql(head + ", ".join([row_marks] * len(page)), tuple(chain.from_iterable(page)))


def _scalar_default(column: Column[Any]) -> Any:
    default = column.default  # not None: insert_rows takes only columns that have one
    if not getattr(default, "is_scalar", False):
        raise ValueError(f"{column.table.name}.{column.name}: rows must give it (its default is not a value)")
    return getattr(default, "arg", None)


def _bind_processor(column: Column[Any], dialect: Dialect) -> Callable[[Any], Any] | None:
    """What SQLAlchemy applies to a value of ``column`` before the driver sees it (None: nothing)."""
    return column.type.dialect_impl(dialect).bind_processor(dialect)


def _processed(row: list[Any], processors: list[tuple[int, Callable[[Any], Any]]]) -> list[Any]:
    """``row`` with the values at the processors' indexes processed (in place)."""
    for i, process in processors:
        row[i] = process(row[i])
    return row


def _copy(connection: Connection, table: Table, names: list[str], values: list[list[Any]]) -> None:
    """COPY ``values`` into ``table`` over the session's own psycopg connection (same transaction)."""
    from psycopg import sql  # PostgreSQL only; SQLite needs no psycopg

    driver = connection.connection.driver_connection
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(table.name), sql.SQL(", ").join(sql.Identifier(name) for name in names))
    with driver.cursor() as cursor, cursor.copy(statement) as copy:  # type: ignore[union-attr]
        for row in values:
            copy.write_row(row)
