"""Alembic environment: runs on the connection handed over by crm_model.db.upgrade_schema."""

from alembic import context

import crm_model.models  # noqa: F401  (completes Base.metadata)
from crm_model.base import Base

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only via `alembic` CLI with a URL
    from sqlalchemy import create_engine

    url = context.config.get_main_option("sqlalchemy.url")
    if url is None:
        raise RuntimeError("alembic: no sqlalchemy.url configured")
    connection = create_engine(url).connect()

context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
