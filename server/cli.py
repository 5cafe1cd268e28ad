"""The `crm-caldav` command line (SPEC 5): a thin layer over crm_model services.

Each command opens one transaction, calls services, and prints. Domain and
configuration errors become one-line messages and a non-zero exit.

Layer: server.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from typing import Any

import click
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from crm_model.db import make_engine, make_session_factory, schema_is_current, upgrade_schema
from crm_model.errors import CrmError, NotFoundError
from crm_model.services import transfer
from crm_model.services import users as user_service
from server.config import ConfigError, Settings, load_settings


class Context:
    """Settings and a lazily opened database for one command."""

    def __init__(self, config_file: str | None) -> None:
        self.config_file = config_file
        self._settings: Settings | None = None
        self._engine: Any = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            try:
                self._settings = load_settings(self.config_file)
            except ConfigError as error:
                raise click.ClickException(str(error)) from None
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
                raise click.ClickException(f"cannot open the database: {_first_line(error)}") from None
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
            raise click.ClickException(f"database error: {_first_line(error)}") from None


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else error.__class__.__name__


def _now() -> datetime:
    return datetime.now(UTC)


pass_context = click.make_pass_decorator(Context)


@click.group()
@click.option("--config", "config_file", type=click.Path(dir_okay=False),
              help="File of CRM_CALDAV_NAME=value lines (the environment wins).")
@click.pass_context
def cli(ctx: click.Context, config_file: str | None) -> None:
    """CRM activities as CalDAV calendars. The database URL comes from CRM_CALDAV_DB."""
    ctx.obj = Context(config_file)


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5232, show_default=True, type=int)
@click.option("--demo", is_flag=True, help="Fill an empty database with a demo CRM and print logins.")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64),
              help="Server processes (use PostgreSQL with more than one in production).")
@click.option("--threads", default=8, show_default=True, type=click.IntRange(1, 256),
              help="Request threads per process.")
@pass_context
def serve(context: Context, host: str, port: int, demo: bool, workers: int, threads: int) -> None:
    """Run the CalDAV server (Ctrl-C stops it)."""
    from server.app import create_app, serving_limits
    from server.http import listen
    from server.http import serve as serve_http

    if demo:
        _prepare_demo(context)
    settings = context.settings
    context.engine.dispose()  # schema checked; each worker opens its own connections
    try:
        sock = listen(host, port)
    except OSError as error:
        raise click.ClickException(f"cannot listen on {host}:{port}: {error.strerror}") from None
    bound_port = sock.getsockname()[1]
    processes = f" with {workers} processes" if workers > 1 else ""
    click.echo(f"Serving CalDAV on http://{host}:{bound_port}/{processes} (Ctrl-C to stop)", err=True)
    serve_http(lambda: create_app(settings), sock, workers=workers, limits=serving_limits(settings, threads))


def _prepare_demo(context: Context) -> None:
    from server.demo import DEMO_USERS, demo_data

    with context.transaction() as session:
        if not user_service.list_user_emails(session):
            transfer.import_data(session, demo_data(date.today()), now=_now(),
                                 policy=context.settings.window_policy)
        for email, _, _ in DEMO_USERS:
            if user_service.find_user(session, email=email) is None:
                continue
            _, password = user_service.enable_caldav(
                session, email=email, password=None, now=_now(), policy=context.settings.window_policy
            )
            click.echo(f"{email} {password}")
    sys.stdout.flush()  # the logins must show before the server blocks


@cli.command("import")
@click.argument("file", type=click.File("r", encoding="utf-8"))
@pass_context
def import_command(context: Context, file: Any) -> None:
    """Load CRM data from a JSON FILE ('-' for standard input), all or nothing."""
    try:
        data = json.load(file)
    except json.JSONDecodeError as error:
        raise click.ClickException(f"{file.name}: not JSON (line {error.lineno}: {error.msg})") from None
    with context.transaction() as session:
        summary = transfer.import_data(session, data, now=_now(), policy=context.settings.window_policy)
    click.echo(
        f"imported {summary.users} users, {summary.contacts} contacts, {summary.leads} leads; "
        f"activities: {summary.activities_created} created, {summary.activities_updated} updated, "
        f"{summary.activities_deleted} deleted", err=True,
    )


@cli.command("export")
@click.option("--owner", help="Only this user's activities.")
@pass_context
def export_command(context: Context, owner: str | None) -> None:
    """Print CRM data as JSON (the import format plus read-only fields)."""
    with context.transaction() as session:
        data = transfer.export_data(session, owner=owner)
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


@cli.group()
def caldav() -> None:
    """Turn CalDAV on or off per user and see their sync state."""


def _server_url(context: Context) -> str:
    return context.settings.public_url or "http://127.0.0.1:5232/"


@caldav.command("enable")
@click.argument("email")
@click.option("--password-stdin", is_flag=True, help="Read the app password from standard input.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@pass_context
def caldav_enable(context: Context, email: str, password_stdin: bool, as_json: bool) -> None:
    """Enable CalDAV for EMAIL (records T, the start of the initial window) and print the login."""
    password = None
    if password_stdin:
        password = sys.stdin.read()
        password = password[:-1] if password.endswith("\n") else password
        if not password:
            raise click.ClickException("no password on standard input")
    with context.transaction() as session:
        user, password = user_service.enable_caldav(
            session, email=email, password=password, now=_now(), policy=context.settings.window_policy
        )
    url = _server_url(context)
    if as_json:
        click.echo(json.dumps({"url": url, "login": user.email, "password": password}))
    else:
        click.echo(f"server: {url}\nlogin: {user.email}\npassword: {password}")


@caldav.command("disable")
@click.argument("email")
@pass_context
def caldav_disable(context: Context, email: str) -> None:
    """Disable CalDAV for EMAIL; their logins fail from now on."""
    with context.transaction() as session:
        user = user_service.disable_caldav(session, email=email)
    click.echo(f"CalDAV disabled for {user.email}")


@caldav.command("settings")
@click.argument("email")
@click.option("--sync-type", type=click.Choice(["two-way", "read-only"]))
@click.option("--types", help="Comma-separated activity types to sync, e.g. meeting,call.")
@pass_context
def caldav_settings(context: Context, email: str, sync_type: str | None, types: str | None) -> None:
    """Show or change EMAIL's sync settings; new types start a new initial window."""
    with context.transaction() as session:
        user = user_service.update_sync_settings(
            session, email=email, sync_type=sync_type,
            synced_types=tuple(types.split(",")) if types is not None else None,
            now=_now(), policy=context.settings.window_policy,
        )
    click.echo(f"{user.email}: sync type {user.sync_type}, types {','.join(user.synced_types)}")


@caldav.command("status")
@click.argument("email", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_context
def caldav_status(context: Context, email: str | None, as_json: bool) -> None:
    """Show CalDAV state for EMAIL, or for every user."""
    with context.transaction() as session:
        emails = [email] if email else user_service.list_user_emails(session)
        states = [user_service.caldav_status(session, email=e) for e in emails]
    if as_json:
        rows = [_status_dict(s) for s in states]
        click.echo(json.dumps(rows[0] if email else rows, indent=2))
        return
    for s in states:
        since = f"since {s.enabled_at:%Y-%m-%d %H:%M} UTC" if s.enabled and s.enabled_at else ""
        last = f"{s.last_sync_at:%Y-%m-%d %H:%M} UTC" if s.last_sync_at else "never"
        click.echo(
            f"{s.email}: {'enabled' if s.enabled else 'disabled'} {since}; {s.sync_type}, "
            f"types {','.join(s.synced_types)}; initial set {s.initial_set_size}, "
            f"offered {s.offered}; last sync {last}"
        )


@cli.command("explain")
@click.argument("email")
@click.argument("activity_id")
@pass_context
def explain(context: Context, email: str, activity_id: str) -> None:
    """Say whether ACTIVITY_ID is on EMAIL's calendar, and which rule keeps it off.

    Exit status: 0 on the calendar, 1 not on it, 2 unknown user or activity.
    """
    from crm_model.services.explain import explain_activity

    try:
        with make_session_factory(context.engine).begin() as session:
            explanation = explain_activity(session, email=email, activity_id=activity_id)
    except NotFoundError as error:
        click.echo(f"Error: {error}", err=True)
        sys.exit(2)
    click.echo(explanation.sentence)
    sys.exit(0 if explanation.on_calendar else 1)


def _status_dict(status: Any) -> dict[str, Any]:
    return {
        "email": status.email, "enabled": status.enabled,
        "enabled_at": status.enabled_at.isoformat() if status.enabled_at else None,
        "sync_type": status.sync_type, "synced_types": list(status.synced_types),
        "initial_set_size": status.initial_set_size, "offered": status.offered,
        "last_sync_at": status.last_sync_at.isoformat() if status.last_sync_at else None,
    }


def main() -> None:
    """Console entry point."""
    cli()
