"""The migration tests' tools: moving a test database to one Alembic revision, up or down, and plain SQL."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, text

from crm_model.db import MIGRATIONS


def migrate(engine: Engine, revision: str, *, down: bool = False) -> None:
    """Upgrade (or, with ``down``, downgrade) ``engine``'s database to ``revision`` in one transaction."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        (command.downgrade if down else command.upgrade)(config, revision)


def execute(engine: Engine, *statements: str) -> None:
    """Run SQL ``statements`` in one transaction."""
    with engine.begin() as connection:
        for statement in statements:
            connection.execute(text(statement))


def rows(engine: Engine, statement: str) -> list[tuple]:
    """The rows of a SQL query, as tuples."""
    with engine.begin() as connection:
        return [tuple(row) for row in connection.execute(text(statement))]
