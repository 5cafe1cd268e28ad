"""crm_model.db.make_engine with DatabaseLimits: what each connection and the pool are bounded by
(SQLite, and PostgreSQL when CRM_CALDAV_TEST_DATABASE_URL is set)."""

from __future__ import annotations

import sqlite3
import time

import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from crm_model.db import LIFT_STATEMENT_TIMEOUT, DatabaseLimits, make_engine, make_session_factory, upgrade_schema

LIMITS = DatabaseLimits(lock_timeout=1, statement_timeout=2, pool_timeout=1)


def _postgres_only(database_url: str) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL settings")


def _timeouts(engine) -> tuple[str, str]:
    with engine.connect() as connection:
        return (connection.execute(text("SHOW lock_timeout")).scalar(),
                connection.execute(text("SHOW statement_timeout")).scalar())


def test_postgres_connections_keep_both_timeouts_after_a_cancelled_statement(database_url):
    _postgres_only(database_url)
    engine = make_engine(database_url, LIMITS, pool_size=1, max_overflow=0)
    try:
        started = time.monotonic()
        with pytest.raises(OperationalError) as raised, engine.begin() as connection:
            connection.execute(text("SELECT pg_sleep(5)"))
        assert raised.value.orig.sqlstate == "57014" and time.monotonic() - started < 3  # QueryCanceled
        assert _timeouts(engine) == ("1s", "2s")  # the same pooled connection, rolled back
    finally:
        engine.dispose()


def test_long_statements_lift_only_the_statement_timeout(database_url):
    _postgres_only(database_url)
    engine = make_engine(database_url, LIMITS, long_statements=True)
    try:
        assert _timeouts(engine) == ("1s", "0")
    finally:
        engine.dispose()


def test_without_limits_postgres_waits_as_before(database_url):
    _postgres_only(database_url)
    engine = make_engine(database_url)
    try:
        assert _timeouts(engine) == ("0", "0") and engine.pool.timeout() == 30
    finally:
        engine.dispose()


def test_a_schema_upgrade_runs_without_the_statement_timeout(database_url):
    _postgres_only(database_url)
    engine = make_engine(database_url, LIMITS)
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda _c, _cur, statement, *_: statements.append(statement))
    try:
        upgrade_schema(engine)
        assert LIFT_STATEMENT_TIMEOUT in statements
        assert statements.index(LIFT_STATEMENT_TIMEOUT) < min(
            i for i, s in enumerate(statements) if s.lstrip().upper().startswith("CREATE"))
    finally:
        engine.dispose()


def test_a_sqlite_writer_waits_for_the_write_lock_only_the_lock_timeout(tmp_path):
    path = tmp_path / "crm.db"
    engine = make_engine(f"sqlite:///{path}", LIMITS)
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        with engine.begin() as connection:  # the file and WAL exist before the lock is taken
            connection.execute(text("CREATE TABLE t (x INTEGER)"))
        holder.execute("BEGIN IMMEDIATE")
        started = time.monotonic()
        with pytest.raises(OperationalError, match="database is locked"), make_session_factory(engine).begin() as s:
            s.execute(text("SELECT 1"))  # the write transaction's BEGIN IMMEDIATE waits here
        assert 0.9 < time.monotonic() - started < 2
    finally:
        holder.close()
        engine.dispose()


def test_the_pool_timeout_bounds_the_wait_for_a_connection(database_url):
    engine = make_engine(database_url, LIMITS, pool_size=1, max_overflow=0)
    try:
        with engine.connect():
            started = time.monotonic()
            with pytest.raises(PoolTimeoutError), engine.connect():
                pass
            assert time.monotonic() - started < 2
    finally:
        engine.dispose()


def test_in_memory_sqlite_takes_limits():
    engine = make_engine("sqlite://", LIMITS)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT 1")).scalar() == 1
