"""`crm-caldav caldav ...`: turn CalDAV on and off per user, their devices, settings, status and preview (SPEC 5).

Layer: server.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from typing import Any

import click

from crm_model.records import CalDavStatus, DeviceRecord, PreviewGroup, PreviewRecord
from crm_model.services import devices as device_service
from crm_model.services import users as user_service
from crm_model.services.preview import preview as preview_service
from server import profiles
from server.cli_context import Context, now, pass_context, server_url


@click.group()
def caldav() -> None:
    """Turn CalDAV on or off per user, manage their devices, and see their sync state."""


@caldav.command("enable")
@click.argument("email")
@click.option("--password-stdin", is_flag=True, help="Read the first app password from standard input.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@pass_context
def caldav_enable(context: Context, email: str, password_stdin: bool, as_json: bool) -> None:
    """Enable CalDAV for EMAIL (records T, the start of the initial window) and print the login.

    On a user already enabled nothing changes (devices, passwords, window) and it says so.
    """
    password = _stdin_password() if password_stdin else None
    url = server_url(context)  # a bad public URL stops the command before a password is made
    with context.transaction() as session:
        user, password = user_service.enable_caldav(
            session, email=email, password=password, now=now(), policy=context.settings.window_policy
        )
    if password is None:
        since = f" since {user.enabled_at:%Y-%m-%d %H:%M} UTC" if user.enabled_at else ""
        message = (f"CalDAV is already enabled for {user.email}{since}; nothing changed (its devices keep "
                   f"their passwords). For another device: crm-caldav caldav password add {user.email} --label L")
        click.echo(json.dumps({"url": url, "login": user.email, "password": None, "changed": False,
                               "message": message}) if as_json else message)
        return
    if as_json:
        click.echo(json.dumps({"url": url, "login": user.email, "password": password, "changed": True}))
    else:
        click.echo(f"server: {url}\nlogin: {user.email}\npassword: {password}")


def _stdin_password() -> str:
    password = sys.stdin.read()
    password = password[:-1] if password.endswith("\n") else password
    if not password:
        raise click.ClickException("no password on standard input")
    return password


@caldav.command("disable")
@click.argument("email")
@pass_context
def caldav_disable(context: Context, email: str) -> None:
    """Disable CalDAV for EMAIL; their logins fail from now on (every device is revoked)."""
    with context.transaction() as session:
        user = user_service.disable_caldav(session, email=email, now=now())
    click.echo(f"CalDAV disabled for {user.email}")


@caldav.command("settings")
@click.argument("email")
@click.option("--sync-type", type=click.Choice(["two-way", "read-only"]))
@click.option("--types", help="Comma-separated activity types to sync, e.g. meeting,call.")
@pass_context
def caldav_settings(context: Context, email: str, sync_type: str | None, types: str | None) -> None:
    """Show or change EMAIL's sync settings; new types start a new initial window.

    Types are those the CRM's activities have (and meeting, call); an unknown one is
    refused and nothing changes.
    """
    with context.transaction() as session:
        user = user_service.update_sync_settings(
            session, email=email, sync_type=sync_type,
            synced_types=tuple(types.split(",")) if types is not None else None,
            now=now(), policy=context.settings.window_policy, where="--types: ",
        )
    click.echo(f"{user.email}: sync type {user.sync_type}, types {','.join(user.synced_types)}")


@caldav.command("status")
@click.argument("email", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_context
def caldav_status(context: Context, email: str | None, as_json: bool) -> None:
    """Show CalDAV state for EMAIL, or for every user.

    The last sync is the user's latest authenticated request from any client (recorded at
    most once a minute per device), whatever the client asked for.
    """
    with context.transaction() as session:
        emails = [email] if email else user_service.list_user_emails(session)
        states = [user_service.caldav_status(session, email=e) for e in emails]
    if as_json:
        rows = [_status_dict(s) for s in states]
        click.echo(json.dumps(rows[0] if email else rows, indent=2))
        return
    if not states:
        click.echo("no users in the CRM yet: load them with crm-caldav import FILE", err=True)
    for s in states:
        since = f"since {s.enabled_at:%Y-%m-%d %H:%M} UTC" if s.enabled and s.enabled_at else ""
        last = f"{s.last_sync_at:%Y-%m-%d %H:%M} UTC" if s.last_sync_at else "never"
        click.echo(
            f"{s.email}: {'enabled' if s.enabled else 'disabled'} {since}; {s.sync_type}, "
            f"types {','.join(s.synced_types)}; initial set {s.initial_set_size}, "
            f"offered {s.offered}; last sync {last}"
        )


def _status_dict(status: CalDavStatus) -> dict[str, Any]:
    return {
        "email": status.email, "enabled": status.enabled, "enabled_at": _iso(status.enabled_at),
        "sync_type": status.sync_type, "synced_types": list(status.synced_types),
        "initial_set_size": status.initial_set_size, "offered": status.offered,
        "last_sync_at": _iso(status.last_sync_at),
    }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _when(moment: datetime | None, never: str = "never") -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC" if moment else never


@caldav.group("password")
def password() -> None:
    """Per-device app passwords: add one per phone or computer, list them, revoke one."""


@password.command("add")
@click.argument("email")
@click.option("--label", required=True, help="The device's name, e.g. \"Patricia's iPhone\".")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@pass_context
def password_add(context: Context, email: str, label: str, as_json: bool) -> None:
    """Make a new app password for one device of EMAIL and print it (shown this once only)."""
    url = server_url(context)  # a bad public URL stops the command before a password is made
    with context.transaction() as session:
        device, secret = device_service.add_device(session, email=email, label=label, now=now())
        login = user_service.normalize_email(email)
    if as_json:
        click.echo(json.dumps({"url": url, "login": login, "password": secret,
                               "device": _device_dict(device)}))
    else:
        click.echo(f"device: {device.label} (id {device.id})\nserver: {url}\nlogin: {login}\npassword: {secret}")


@password.command("list")
@click.argument("email")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
@pass_context
def password_list(context: Context, email: str, as_json: bool) -> None:
    """List EMAIL's devices: label, id, created, last used, client, address, revoked."""
    with context.transaction() as session:
        devices = device_service.list_devices(session, email=email)
    if as_json:
        click.echo(json.dumps([_device_dict(d) for d in devices], indent=2))
        return
    if not devices:
        click.echo(f"{user_service.normalize_email(email)} has no devices")
    for d in devices:
        revoked = f"; revoked {_when(d.revoked_at)}" if d.revoked else ""
        client = f"; client {d.last_user_agent}" if d.last_user_agent else ""
        address = f"; from {d.last_address}" if d.last_address else ""
        click.echo(f"{d.label} (id {d.id}): created {_when(d.created_at)}; last used {_when(d.last_used_at)}"
                   f"{client}{address}{revoked}")


@password.command("revoke")
@click.argument("email")
@click.argument("name", metavar="LABEL-or-ID")
@pass_context
def password_revoke(context: Context, email: str, name: str) -> None:
    """Revoke one device of EMAIL: its password fails at once; other devices keep working.

    \b
    LABEL-or-ID names the device (ids are in `caldav password list`):
      #3 or id:3   the device with id 3, whatever the labels
      anything else   the label of a device not yet revoked; a number
                      no such device has as its label is taken as an id
    """
    with context.transaction() as session:
        device = device_service.revoke_device_named(session, email=email, name=name, now=now())
    click.echo(f"revoked {device.label!r} (id {device.id}) of {user_service.normalize_email(email)}: "
               "its password no longer logs in")


def _device_dict(device: DeviceRecord) -> dict[str, Any]:
    return {
        "id": device.id, "label": device.label, "created_at": _iso(device.created_at),
        "last_used_at": _iso(device.last_used_at), "last_user_agent": device.last_user_agent,
        "last_address": device.last_address, "revoked_at": _iso(device.revoked_at),
    }


@caldav.command("profile")
@click.argument("email")
@click.option("--label", required=True, help="The device's name, e.g. \"Patricia's iPhone\".")
@pass_context
def caldav_profile(context: Context, email: str, label: str) -> None:
    """Make a new device password for EMAIL and print its iPhone/Mac configuration profile.

    \b
      crm-caldav caldav profile EMAIL --label iPhone > iphone.mobileconfig

    The .mobileconfig (an XML plist, unsigned) goes to standard output; host, port and TLS
    come from CRM_CALDAV_PUBLIC_URL. The password is in the profile only; the device is
    listed and revoked like any other (caldav password list / revoke).
    """
    url = server_url(context, checked=False)  # checked below, inside the transaction
    with context.transaction() as session:
        device, secret = device_service.add_device(session, email=email, label=label, now=now())
        login = user_service.normalize_email(email)
        try:
            body = profiles.mobileconfig(public_url=url, email=login, password=secret, label=device.label)
        except ValueError as error:  # nothing is committed: no device without its profile
            raise click.ClickException(f"CRM_CALDAV_PUBLIC_URL: {error}") from None
    click.echo(body, nl=False)  # bytes go to stdout's binary buffer, untouched


@caldav.command("preview")
@click.argument("email")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@pass_context
def caldav_preview(context: Context, email: str, as_json: bool) -> None:
    """Before enabling: how many activities EMAIL's calendar would offer, and how many each rule keeps off."""
    with context.transaction() as session:
        record = preview_service(session, email=email, policy=context.settings.window_policy, now=now())
    if as_json:
        click.echo(json.dumps(_preview_dict(record), indent=2))
        return
    end = f" to {_when(record.window_end)}" if record.window_end else " on"
    click.echo(f"{record.email}: the calendar would offer {record.offered.count} activities "
               f"(window from {_when(record.window_start)}{end}; cap {record.cap}; "
               f"types {','.join(record.synced_types)})")
    for title, group in _preview_groups(record):
        click.echo(f"  {title}: {group.count}")
        for item in group.sample:
            click.echo(f"    {item.id}  {_when(item.starts_at)}  {item.title}")


def _preview_groups(record: PreviewRecord) -> list[tuple[str, PreviewGroup]]:
    return [("offered", record.offered), ("type not synced", record.type_not_synced),
            ("outside the window", record.outside_window), ("over the cap", record.over_cap)]


def _preview_dict(record: PreviewRecord) -> dict[str, Any]:
    def group(g: PreviewGroup) -> dict[str, Any]:
        return {"count": g.count,
                "first": [{"id": i.id, "title": i.title, "start": i.starts_at.isoformat()} for i in g.sample]}

    return {
        "email": record.email, "enabled": record.enabled, "window_start": record.window_start.isoformat(),
        "window_end": _iso(record.window_end), "cap": record.cap, "synced_types": list(record.synced_types),
        "offered": group(record.offered), "type_not_synced": group(record.type_not_synced),
        "outside_window": group(record.outside_window), "over_cap": group(record.over_cap),
    }
