"""What a health check and a metrics scrape read: every table, and recently used devices.

Layer: crm_model.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import exists, func, literal, select, text
from sqlalchemy.orm import Session

import crm_model.models  # noqa: F401 - completes Base.metadata with every table
from crm_model.base import Base
from crm_model.models import Device


def read_every_table(session: Session, *, timeout_seconds: float) -> None:
    """Read the first row of every table of the schema, in one statement.

    ``SELECT EXISTS (SELECT 1 FROM users), EXISTS (SELECT 1 FROM activities), ...``:
    a missing, unreadable or locked table fails it, where ``SELECT 1`` would
    not notice. On PostgreSQL the statement (lock waits included) is limited to
    ``timeout_seconds`` for this transaction only; SQLite's wait for a locked
    file is the engine's busy timeout (crm_model.db.DatabaseLimits.lock_timeout).

    Raises:
        sqlalchemy.exc.SQLAlchemyError: the database did not answer (DBAPIError,
            OperationalError for a time limit, TimeoutError for the pool).
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text(f"SET LOCAL statement_timeout = {max(1, round(timeout_seconds * 1000))}"))
    tables = Base.metadata.sorted_tables
    session.execute(select(*(exists(select(literal(1)).select_from(table)) for table in tables)))


def devices_used_since(session: Session, *, since: datetime) -> int:
    """How many devices not revoked logged in at or after ``since`` (their last use, written once a minute)."""
    return session.scalar(select(func.count(Device.id)).where(
        Device.last_used_at >= since, Device.revoked_at.is_(None))) or 0
