"""Engines, sessions and schema upgrades. Nothing is created at import time.

Layer: crm_model.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).with_name("migrations")
WRITE_OPTION = "crm_write"


@dataclass(frozen=True)
class DatabaseLimits:
    """Time limits, in seconds, for the server's database work (exceeding one is a DatabaseBusy).

    lock_timeout: waiting for a lock (PostgreSQL lock_timeout; SQLite's busy timeout).
    statement_timeout: one statement (PostgreSQL statement_timeout).
    pool_timeout: waiting for a free pooled connection.
    """

    lock_timeout: float = 5
    statement_timeout: float = 15
    pool_timeout: float = 5


def make_engine(url: str, limits: DatabaseLimits | None = None, **kwargs: Any) -> Engine:
    """Create an engine tuned for this application.

    SQLite: WAL (readers never block the writer), a busy timeout instead of
    immediate "database is locked" errors, foreign keys on, and write
    transactions opened with BEGIN IMMEDIATE so two writers queue instead of
    deadlocking on a read-to-write upgrade.
    PostgreSQL: a connection pool with pre-ping, so a restarted database is
    picked up again without restarting the server.
    """
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 15}, **kwargs)
        _tune_sqlite(engine)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    return create_engine(url, **kwargs)


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


def make_session_factory(engine: Engine, *, write: bool = True) -> sessionmaker[Session]:
    """Sessions bound to ``engine``; ``write`` sessions lock early on SQLite."""
    bind = engine.execution_options(**{WRITE_OPTION: True}) if write else engine
    return sessionmaker(bind=bind, expire_on_commit=False)


def upgrade_schema(engine: Engine) -> None:
    """Create or upgrade the schema to the newest revision (Alembic)."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def schema_is_current(engine: Engine) -> bool:
    """True when the database already has the newest schema (cheap check)."""
    from alembic.config import Config
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    if not inspect(engine).has_table("alembic_version"):
        return False
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    head = ScriptDirectory.from_config(config).get_current_head()
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision() == head
