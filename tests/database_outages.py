"""Taking the test PostgreSQL database away and giving it back, as a restart looks to the server."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, make_url, text


def set_connections(database_url: str, allowed: bool) -> None:
    """PostgreSQL: refuse new connections to the test database and end the open ones (or allow them again)."""
    url = make_url(database_url)
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'ALTER DATABASE "{url.database}" ALLOW_CONNECTIONS {str(allowed).lower()}'))
        if not allowed:
            connection.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                    "WHERE datname = :n AND pid <> pg_backend_pid()"), {"n": url.database})
    admin.dispose()


@contextmanager
def refused_connections(database_url: str) -> Iterator[None]:
    """PostgreSQL refuses the server's connections inside the block."""
    set_connections(database_url, False)
    try:
        yield
    finally:
        set_connections(database_url, True)
