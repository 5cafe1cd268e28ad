"""What every `crm-caldav` command shares: settings, the database, one transaction, the clock.

Layer: server.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import click
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from crm_model.db import make_engine, make_session_factory, schema_is_current, upgrade_schema
from crm_model.errors import CrmError
from server.config import ConfigError, Settings, environment_warnings, load_settings


class Context:
    """Settings and a lazily opened database for one command."""

    def __init__(self, config_file: str | None) -> None:
        self.config_file = config_file
        self._settings: Settings | None = None
        self._engine: Any = None

    @property
    def settings(self) -> Settings:
        """The settings, read once; unknown CRM_CALDAV_* variables get a warning line each on stderr."""
        if self._settings is None:
            try:
                self._settings = load_settings(self.config_file)
            except ConfigError as error:
                raise click.ClickException(str(error)) from None
            for warning in environment_warnings():
                click.echo(f"Warning: {warning}", err=True)
        return self._settings

    @property
    def engine(self) -> Any:
        if self._engine is None:
            try:
                # Admin work (a 50,000-activity import) may run statements longer than a request's limit.
                self._engine = make_engine(self.settings.database_url, self.settings.database_limits,
                                           long_statements=True)
                if not schema_is_current(self._engine):
                    upgrade_schema(self._engine)
            except SQLAlchemyError as error:
                raise click.ClickException(f"cannot open the database: {first_line(error)}") from None
            except ValueError as error:  # a malformed URL
                raise click.ClickException(f"CRM_CALDAV_DB: {error}") from None
        return self._engine

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One all-or-nothing transaction; domain errors become clean messages."""
        try:
            with make_session_factory(self.engine).begin() as session:
                yield session
        except CrmError as error:
            raise click.ClickException(str(error)) from None
        except SQLAlchemyError as error:
            raise click.ClickException(f"database error: {first_line(error)}") from None


def first_line(error: Exception) -> str:
    """The first line of an error's message (database drivers write several)."""
    return str(error).strip().splitlines()[0] if str(error).strip() else error.__class__.__name__


def now() -> datetime:
    """The current time, tz-aware UTC (T of an enable, a device's creation)."""
    return datetime.now(UTC)


pass_context = click.make_pass_decorator(Context)


def server_url(context: Context, *, checked: bool = True) -> str:
    """The URL devices are told to use (CRM_CALDAV_PUBLIC_URL, else the default local one).

    Raises:
        click.ClickException: with ``checked``, CRM_CALDAV_PUBLIC_URL is not an absolute
            http(s) URL. Commands that print a password or token ask for this before they
            make one (or check it inside their transaction, as `caldav profile` does).
    """
    url = context.settings.public_url or "http://127.0.0.1:5232/"
    parts = urlsplit(url)
    if checked and (parts.scheme not in ("http", "https") or not parts.hostname):
        raise click.ClickException(f"CRM_CALDAV_PUBLIC_URL: must be an absolute http(s) URL such as "
                                   f"https://caldav.example.com/, not {url!r}")
    return url
