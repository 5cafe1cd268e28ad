"""A down, restarting, locked or overloaded database: 503 + Retry-After on every path (SPEC 6).

Layer: storage_plugin.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from storage_plugin.refusals import Refusal, unavailable

logger = logging.getLogger(__name__)


class Unavailable(BaseException):  # noqa: N818 - named for what the caller answers
    """The database outage of a request that Radicale answers, carried past Radicale.

    Radicale turns every Exception its storage plugin raises into a bare 500;
    this one derives from BaseException (as asyncio's CancelledError does) so it
    passes Radicale's ``except Exception`` and the crm-caldav handler can
    answer ``refusal`` (503 + Retry-After). Only a backend built with
    ``PluginSettings(outage_passes_radicale=True)`` raises it.
    """

    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.message)
        self.refusal = refusal


@contextmanager
def database_errors(*, passes_radicale: bool) -> Iterator[None]:
    """Turn a database outage into Refusal 503 + Retry-After (or Unavailable carrying it).

    Covers the time limits of crm_model.db.DatabaseLimits: PostgreSQL's
    lock_timeout (LockNotAvailable, SQLSTATE 55P03) and statement_timeout
    (QueryCanceled, 57014) and SQLite's busy timeout ("database is locked")
    arrive as OperationalError, a pool wait over pool_timeout as
    sqlalchemy.exc.TimeoutError. The transaction was rolled back, so its
    connection goes back to the pool usable. The log names the cause.
    """
    try:
        yield
    except (OperationalError, PoolTimeoutError) as error:
        cause = getattr(error, "orig", None) or error
        logger.error("database unavailable: %s: %s", cause.__class__.__name__,
                     str(cause).strip().splitlines()[0] if str(cause).strip() else "")
        raise _outage(passes_radicale) from error
    except DBAPIError as error:
        if not error.connection_invalidated:
            raise
        logger.error("database unavailable: %s", error.__class__.__name__)
        raise _outage(passes_radicale) from error


def _outage(passes_radicale: bool) -> BaseException:
    refusal = unavailable()
    return Unavailable(refusal) if passes_radicale else refusal
