"""Engines, sessions and schema upgrades. Nothing is created at import time.

Layer: crm_model.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).with_name("migrations")
WRITE_OPTION = "crm_write"


@dataclass(frozen=True)
class DatabaseLimits:
    """Time limits, in seconds, for the server's database work.

    lock_timeout: waiting for a row or table lock (PostgreSQL lock_timeout; 0: no
        limit) or for the write lock (SQLite's busy timeout).
    statement_timeout: one statement (PostgreSQL statement_timeout, 0: no limit;
        SQLite has none).
    pool_timeout: waiting for a free connection of the engine's pool.

    Exceeding one raises sqlalchemy.exc.OperationalError (psycopg LockNotAvailable,
    SQLSTATE 55P03; QueryCanceled, 57014; sqlite3 "database is locked") or, for
    the pool, sqlalchemy.exc.TimeoutError; the calendar backend answers 503.
    """

    lock_timeout: float = 5
    statement_timeout: float = 15
    pool_timeout: float = 5


SQLITE_BUSY_TIMEOUT = 15.0  # seconds, without limits: a writer queues this long for the write lock
LIFT_STATEMENT_TIMEOUT = "SET LOCAL statement_timeout = 0"  # PostgreSQL: this transaction only


def make_engine(url: str, limits: DatabaseLimits | None = None, *, long_statements: bool = False,
                **kwargs: Any) -> Engine:
    """Create an engine tuned for this application.

    SQLite: WAL (readers never block the writer), a busy timeout instead of
    immediate "database is locked" errors (``limits.lock_timeout``, else 15 s),
    foreign keys on, and write transactions opened with BEGIN IMMEDIATE so two
    writers queue instead of deadlocking on a read-to-write upgrade.
    PostgreSQL: a connection pool with pre-ping, so a restarted database is
    picked up again without restarting the server; with ``limits``, every
    connection gets ``lock_timeout`` and ``statement_timeout`` (set once when
    it opens, kept while pooled), and opening a connection gives up after
    ``limits.pool_timeout`` (libpq's connect_timeout, at least 2 s).

    With ``limits`` the pool waits at most ``limits.pool_timeout`` for a free
    connection (SQLAlchemy's default is 30 s). ``long_statements=True`` is for
    administration work (``crm-caldav import`` of a large file, schema
    upgrades): no statement timeout, the lock and pool timeouts still hold.
    Without ``limits`` nothing is bounded beyond the SQLite busy timeout
    (scripts, tests). ``kwargs`` go to ``sqlalchemy.create_engine``.
    """
    if limits is not None and not _in_memory_sqlite(url):
        kwargs.setdefault("pool_timeout", limits.pool_timeout)
    if url.startswith("sqlite"):
        busy = SQLITE_BUSY_TIMEOUT if limits is None else limits.lock_timeout
        kwargs["connect_args"] = {"timeout": busy, **kwargs.get("connect_args", {})}
        engine = create_engine(url, **kwargs)
        _tune_sqlite(engine)
        return engine
    if limits is not None:  # a database host that drops packets: fail in seconds, not the TCP timeout
        kwargs["connect_args"] = {"connect_timeout": max(2, round(limits.pool_timeout)),
                                  **kwargs.get("connect_args", {})}
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    engine = create_engine(url, **kwargs)
    if limits is not None and engine.dialect.name == "postgresql":
        statement_timeout = 0 if long_statements else limits.statement_timeout
        _set_postgres_timeouts(engine, lock_timeout=limits.lock_timeout, statement_timeout=statement_timeout)
    return engine


def _in_memory_sqlite(url: str) -> bool:
    """True for an in-memory SQLite URL (its single-connection pool takes no pool_timeout)."""
    parsed = make_url(url)
    return parsed.get_backend_name() == "sqlite" and parsed.database in (None, "", ":memory:")


def _milliseconds(seconds: float) -> int:
    """PostgreSQL's unit for timeouts; 0 (no limit) for 0 or less."""
    return max(0, round(seconds * 1000))


def _set_postgres_timeouts(engine: Engine, *, lock_timeout: float, statement_timeout: float) -> None:
    """Set both timeouts (seconds; 0 = none) on each new connection, committed so a rollback keeps them."""
    statements = (f"SET SESSION lock_timeout = {_milliseconds(lock_timeout)}",
                  f"SET SESSION statement_timeout = {_milliseconds(statement_timeout)}")

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            for statement in statements:
                cursor.execute(statement)
        finally:
            cursor.close()
        dbapi_connection.commit()  # a SET in a transaction that rolls back would be undone


def _tune_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        write = connection.get_execution_options().get(WRITE_OPTION, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def connection_of(db: Session | Connection) -> Connection:
    """The Core connection to run a statement on: a Session's (which begins its
    transaction), or ``db`` itself. The hot reads take either: a plain Connection
    spares them the Session's bookkeeping (62 against 29 us per read transaction)."""
    return db.connection() if isinstance(db, Session) else db


def make_session_factory(engine: Engine, *, write: bool = True) -> sessionmaker[Session]:
    """Sessions bound to ``engine``; ``write`` sessions lock early on SQLite."""
    bind = engine.execution_options(**{WRITE_OPTION: True}) if write else engine
    return sessionmaker(bind=bind, expire_on_commit=False)


def upgrade_schema(engine: Engine) -> None:
    """Create or upgrade the schema to the newest revision (Alembic), in one transaction.

    On PostgreSQL without a statement timeout (a migration may rewrite large
    tables); the engine's lock timeout still holds.
    """
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql(LIFT_STATEMENT_TIMEOUT)  # a migration may rewrite big tables
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def lift_statement_timeout(session: Session) -> None:
    """End the statement time limit for the rest of ``session``'s transaction (PostgreSQL; a no-op elsewhere).

    For the rare long work of a server process, such as renumbering every
    activity after a renderer change at start-up.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text(LIFT_STATEMENT_TIMEOUT))


def schema_is_current(engine: Engine) -> bool:
    """True when the database already has the newest schema (cheap check).

    Reads the ``alembic_version`` row and compares it with the newest revision
    named by the migration files (``head_revision``), without importing
    Alembic: a server process that never migrates then never holds Alembic's
    modules (about 9 MiB of resident memory, measured with /proc VmRSS).
    """
    if not inspect(engine).has_table("alembic_version"):
        return False
    with engine.connect() as connection:
        current = connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    return current == [head_revision()]


_REVISION_LINE = re.compile(r"""^(down_revision|revision)\s*(?::[^=]*)?=\s*(?:['"]([^'"]+)['"]|None)""", re.M)


def head_revision() -> str:
    """The newest revision of the migration files: the one no other file names as its ``down_revision``.

    The files are read as text (their ``revision = "0009"`` and
    ``down_revision = "0008"`` lines); tests check the answer against
    Alembic's own ``ScriptDirectory.get_current_head()``. ValueError when the
    files do not form one line of revisions.
    """
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        found = dict((name, value) for name, value in _REVISION_LINE.findall(path.read_text(encoding="utf-8")))
        if found.get("revision"):
            revisions.add(found["revision"])
            if found.get("down_revision"):
                parents.add(found["down_revision"])
    heads = revisions - parents
    if len(heads) != 1:
        raise ValueError(f"the migrations have {len(heads)} heads, not one: {sorted(heads)}")
    return heads.pop()
