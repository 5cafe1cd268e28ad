"""The `crm-caldav` command line (SPEC 5): a thin layer over crm_model services.

Each command opens one transaction, calls services, and prints. Domain and
configuration errors become one-line messages and a non-zero exit.

Layer: server.
"""

from __future__ import annotations

import ipaddress
import json
import os
import sys
from datetime import date
from typing import Any

import click

from crm_model.db import make_session_factory
from crm_model.errors import NotFoundError
from crm_model.services import admins as admin_service
from crm_model.services import transfer
from crm_model.services import users as user_service
from crm_model.services.passwords import generate_app_password
from server import cli_transfer
from server.cli_caldav import caldav
from server.cli_context import Context, now, pass_context, server_url
from server.cli_feeds import feed
from server.config import Settings


@click.group()
@click.option("--config", "config_file", type=click.Path(dir_okay=False),
              help="File of CRM_CALDAV_NAME=value lines (the environment wins).")
@click.pass_context
def cli(ctx: click.Context, config_file: str | None) -> None:
    """CRM activities as CalDAV calendars. The database URL comes from CRM_CALDAV_DB."""
    ctx.obj = Context(config_file)


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5232, show_default=True, type=click.IntRange(0, 65535))
@click.option("--demo", is_flag=True, help="Fill an empty database with a demo CRM and print logins.")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64),
              help="Server processes (use PostgreSQL with more than one in production).")
@click.option("--threads", default=8, show_default=True, type=click.IntRange(1, 256),
              help="Request threads per process.")
@click.option("--create-database", is_flag=True,
              help="Create the SQLite file when it does not exist, also for a production server "
                   "(--workers above 1, a --host other than loopback, or CRM_CALDAV_PUBLIC_URL set).")
@pass_context
def serve(context: Context, host: str, port: int, demo: bool, workers: int, threads: int,
          create_database: bool) -> None:
    """Run the CalDAV server (Ctrl-C stops it)."""
    from server.app import create_app, serving_limits
    from server.http import listen
    from server.http import serve as serve_http
    from server.metrics import share_between_processes
    from server.request_log import configure_logging

    settings = context.settings
    server_url(context)  # a bad CRM_CALDAV_PUBLIC_URL is one line now, not a wrong link on every profile
    configure_logging(settings)  # the supervisor's lines too (a process that ended), in the chosen format
    if not (demo or create_database):
        _refuse_new_sqlite(settings, _production_reasons(settings, host, workers))
    if demo:
        _prepare_demo(context)
    context.engine.dispose()  # schema checked; each worker opens its own connections
    try:
        sock = listen(host, port)
    except OSError as error:
        raise click.ClickException(f"cannot listen on {host}:{port}: {error.strerror}") from None
    click.echo(_startup_line(settings, host, sock.getsockname()[1], workers), err=True)
    if settings.metrics_enabled:
        share_between_processes(workers)  # /metrics adds up every process's counts
    serve_http(lambda: create_app(settings), sock, workers=workers, limits=serving_limits(settings, threads))


def _production_reasons(settings: Settings, host: str, workers: int) -> list[str]:
    """Why this `serve` looks like a production server (empty: a developer's or the demo's).

    Several processes, an address other than loopback (other machines can connect), or a
    public URL (devices are told to use it) are each the mark of a deployment.
    """
    reasons = [f"--workers {workers}"] if workers > 1 else []
    if not _is_loopback(host):
        reasons.append(f"--host {host}")
    if settings.public_url:
        reasons.append("CRM_CALDAV_PUBLIC_URL is set")
    return reasons


def _is_loopback(host: str) -> bool:
    """True for localhost, 127.0.0.0/8 and ::1; False for any other address or name (0.0.0.0 included)."""
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it names an interface others reach
        return False


def _refuse_new_sqlite(settings: Settings, reasons: list[str]) -> None:
    """Stop a production server that would start on a new, empty SQLite database.

    An unset or mistyped CRM_CALDAV_DB otherwise gives every device an empty calendar
    from a file in the current folder (issue 12). An existing file, PostgreSQL, or a
    developer's server (no reasons) pass.

    Raises:
        click.ClickException: one line naming the file, the reasons and the two ways on.
    """
    if not reasons or not (settings.in_memory or (settings.sqlite_file and not settings.sqlite_file.exists())):
        return
    what = "an in-memory SQLite database" if settings.in_memory else f"a new SQLite file {settings.sqlite_file}"
    if not settings.database_url_given:
        reasons = [*reasons, "CRM_CALDAV_DB is not set"]
    raise click.ClickException(
        f"refusing to serve {what} in production ({'; '.join(reasons)}): set CRM_CALDAV_DB to your "
        f"database (postgresql+psycopg://USER@HOST/DATABASE), or pass --create-database to create it")


def _startup_line(settings: Settings, host: str, port: int, workers: int) -> str:
    """'Serving CalDAV on URL ...; database URL (password masked); public URL ...' for the operator."""
    bound = f"http://{f'[{host}]' if ':' in host else host}:{port}/"
    processes = f" with {workers} processes" if workers > 1 else ""
    default = "" if settings.database_url_given else " (the default: CRM_CALDAV_DB is not set)"
    public = (settings.public_url if settings.public_url else
              f"{bound} (the bound address: CRM_CALDAV_PUBLIC_URL is not set)")
    return (f"Serving CalDAV on {bound}{processes}; database {settings.database_shown}{default}; "
            f"public URL {public} (Ctrl-C to stop)")


def _prepare_demo(context: Context) -> None:
    """Fill an empty database with the demo CRM and print a first login per demo user.

    A demo user already enabled (a second ``serve --demo``) keeps its devices
    and passwords: the line printed says so instead of a new password. A
    database without admin accounts gets DEMO_ADMIN, whose login is printed.
    """
    from server.demo import DEMO_ADMIN, DEMO_USERS, demo_data

    with context.transaction() as session:
        if not user_service.list_user_emails(session):
            transfer.import_data(session, demo_data(date.today()), now=now(),
                                 policy=context.settings.window_policy)
        for email, _, _ in DEMO_USERS:
            if user_service.find_user(session, email=email) is None:
                continue
            _, password = user_service.enable_caldav(
                session, email=email, password=None, now=now(), policy=context.settings.window_policy
            )
            click.echo(f"{email} {password}" if password is not None else
                       f"{email}: CalDAV already enabled, logins unchanged "
                       f"(crm-caldav caldav password list {email})")
        if not admin_service.list_admins(session):
            password = generate_app_password()
            admin_service.add_admin(session, email=DEMO_ADMIN, password=password, now=now())
            click.echo(f"admin page (/admin/): {DEMO_ADMIN} {password}")
    sys.stdout.flush()  # the logins must show before the server blocks


@cli.command("import")
@click.argument("file", type=click.File("rb"))
@pass_context
def import_command(context: Context, file: Any) -> None:
    """Load CRM data from a JSON FILE ('-' for standard input; UTF-8), all or nothing.

    A progress bar shows on standard error when it is a terminal and the file is large.
    """
    data = cli_transfer.read_json_file(file)
    with (cli_transfer.import_progress(transfer.progress_total(data)) as progress,
          context.transaction() as session):
        summary = transfer.import_data(session, data, now=now(), policy=context.settings.window_policy,
                                       progress=progress)
    click.echo(
        f"imported {summary.users} users, {summary.contacts} contacts, {summary.leads} leads; "
        f"activities: {summary.activities_created} created, {summary.activities_updated} updated, "
        f"{summary.activities_deleted} deleted", err=True,
    )


@cli.command("export")
@click.option("--owner", help="Only this user's activities.")
@click.option("--changes-since", "since", metavar="POSITION",
              help="Only what changed after POSITION (0, or the \"position\" of an earlier answer), "
                   "deletions included, and the position to ask from next time.")
@pass_context
def export_command(context: Context, owner: str | None, since: str | None) -> None:
    """Print CRM data as JSON (the import format plus read-only fields)."""
    with context.transaction() as session:
        data = (transfer.export_data(session, owner=owner) if since is None
                else transfer.export_changes(session, since, owner=owner))
    try:
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))
        sys.stdout.flush()
    except OSError as error:  # a full disk or a closed pipe: say so, not a traceback
        # What stays buffered would fail again at exit: send it nowhere.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise click.ClickException(f"cannot write the export: {error.strerror or error}") from None


cli.add_command(caldav)
caldav.add_command(feed)


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


@cli.group()
def admin() -> None:
    """Accounts of the admin web page (not CalDAV app passwords)."""


@admin.command("add")
@click.argument("email")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input (also when piped).")
@pass_context
def admin_add(context: Context, email: str, password_stdin: bool) -> None:
    """Create an admin account EMAIL: the password comes from standard input when piped, else is generated."""
    password = _piped_password(required=password_stdin)
    generated = password is None
    password = password or generate_app_password()
    with context.transaction() as session:
        record = admin_service.add_admin(session, email=email, password=password, now=now())
    click.echo(f"admin {record.email} added" + (f"\npassword: {password}" if generated else ""))


def _piped_password(*, required: bool) -> str | None:
    """The password on standard input (one trailing newline stripped) when asked for or piped, else None."""
    if not required and sys.stdin.isatty():
        return None
    password = sys.stdin.read()
    password = password[:-1] if password.endswith("\n") else password
    if required and not password:
        raise click.ClickException("no password on standard input")
    return password or None


def main() -> None:
    """Console entry point."""
    cli()
