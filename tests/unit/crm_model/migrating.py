"""Moving a test database to one Alembic revision, up or down (the migration tests)."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

from crm_model.db import MIGRATIONS


def migrate(engine: Engine, revision: str, *, down: bool = False) -> None:
    """Upgrade (or, with ``down``, downgrade) ``engine``'s database to ``revision`` in one transaction."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        (command.downgrade if down else command.upgrade)(config, revision)
