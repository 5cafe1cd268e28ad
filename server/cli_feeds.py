"""`crm-caldav caldav feed ...`: subscription feeds for apps that cannot send a password.

A feed is the user's calendar at a secret URL (``/feeds/<token>.ics``, served
by server.feeds); ``add`` prints it once, with its ``webcal://`` form.

Layer: server.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import click

from crm_model.records import FeedRecord
from crm_model.services import feeds as feed_service
from crm_model.services import users as user_service
from server.cli_context import Context, now, pass_context, server_url
from server.feeds import feed_url, webcal_url


@click.group("feed")
def feed() -> None:
    """Subscription feeds (a secret iCalendar URL, for Outlook or Google Calendar): add, list, revoke."""


@feed.command("add")
@click.argument("email")
@click.option("--label", required=True, help='The app\'s name, e.g. "Outlook".')
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@pass_context
def feed_add(context: Context, email: str, label: str, as_json: bool) -> None:
    """Make a new feed of EMAIL's calendar and print its URL (shown this once only)."""
    base = server_url(context)  # a bad public URL stops the command before a feed is made
    with context.transaction() as session:
        record, token = feed_service.add_feed(session, email=email, label=label, now=now())
    url = feed_url(base, token)
    if as_json:
        click.echo(json.dumps({"url": url, "webcal": webcal_url(url), "login": user_service.normalize_email(email),
                               "feed": _feed_dict(record)}))
    else:
        click.echo(f"feed: {record.label} (id {record.id})\nurl: {url}\nwebcal: {webcal_url(url)}")


@feed.command("list")
@click.argument("email")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
@pass_context
def feed_list(context: Context, email: str, as_json: bool) -> None:
    """List EMAIL's feeds: label, id, created, last used, revoked (never their URLs)."""
    with context.transaction() as session:
        records = feed_service.list_feeds(session, email=email)
    if as_json:
        click.echo(json.dumps([_feed_dict(r) for r in records], indent=2))
        return
    if not records:
        click.echo(f"{user_service.normalize_email(email)} has no feeds")
    for r in records:
        revoked = f"; revoked {_when(r.revoked_at)}" if r.revoked else ""
        click.echo(f"{r.label} (id {r.id}): created {_when(r.created_at)}; last used {_when(r.last_used_at)}{revoked}")


@feed.command("revoke")
@click.argument("email")
@click.argument("name", metavar="LABEL-or-ID")
@pass_context
def feed_revoke(context: Context, email: str, name: str) -> None:
    """Revoke one feed of EMAIL: its URL answers 404 at once; other feeds keep working.

    \b
    LABEL-or-ID: #3 or id:3 is the feed with id 3; anything else the label of
    a feed not yet revoked (a number no such feed has as its label: an id).
    """
    with context.transaction() as session:
        record = feed_service.revoke_feed(session, email=email, label_or_id=name, now=now())
    click.echo(f"revoked feed {record.label!r} (id {record.id}) of {user_service.normalize_email(email)}: "
               "its URL no longer serves the calendar")


def _feed_dict(record: FeedRecord) -> dict[str, Any]:
    return {"id": record.id, "label": record.label, "created_at": _iso(record.created_at),
            "last_used_at": _iso(record.last_used_at), "revoked_at": _iso(record.revoked_at)}


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _when(moment: datetime | None) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC" if moment else "never"
