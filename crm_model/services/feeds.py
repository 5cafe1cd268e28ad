"""Subscription feeds: add, list, revoke, and find the user of a feed's token.

Outlook's "subscribe from web" and Google Calendar's "From URL" fetch an
iCalendar feed and cannot send a password; a feed is the calendar at a secret
URL (Google Calendar's "secret address in iCal format"). Its token holds 192
random bits and only its SHA-256 is stored: a token is found by its hash, so a
guessed, a revoked and a valid token cost the same lookup.

Layer: crm_model.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

from sqlalchemy import bindparam, or_, select, update
from sqlalchemy.orm import Session

from crm_model.errors import InvalidDataError, NotFoundError
from crm_model.models import Feed, User
from crm_model.models.feeds import LABEL_LENGTH
from crm_model.records import FeedRecord, UserRecord
from crm_model.services.mapping import user_record
from crm_model.services.users import get_user

TOKEN_BYTES = 24  # 192 bits; 32 URL-safe characters
# A feed's last use is written at most this often (apps poll every few minutes).
USE_INTERVAL = timedelta(minutes=1)
# Built once: every feed request runs it.
_USER_BY_TOKEN_HASH = (
    select(Feed.token_hash, Feed.revoked_at, *User.__table__.columns)
    .join(User, User.id == Feed.user_id)
    .where(Feed.token_hash == bindparam("token_hash"))
)


def token_hash(token: str) -> str:
    """The stored form of a feed token: its SHA-256, hex."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def feed_record(feed: Feed) -> FeedRecord:
    """The boundary record of a feed row."""
    return FeedRecord(id=feed.id, label=feed.label, created_at=feed.created_at,
                      last_used_at=feed.last_used_at, revoked_at=feed.revoked_at)


def _clean_label(label: str) -> str:
    cleaned = label.strip()
    if not cleaned:
        raise InvalidDataError('label: give the feed a name, e.g. "Outlook"')
    if len(cleaned) > LABEL_LENGTH:
        raise InvalidDataError(f"label: {len(cleaned)} characters, more than the limit of {LABEL_LENGTH}")
    if any(ord(c) < 32 or ord(c) == 127 for c in cleaned):
        raise InvalidDataError("label: control characters are not allowed")
    return cleaned


def _feeds_of(session: Session, user: User) -> list[Feed]:
    return list(session.scalars(select(Feed).where(Feed.user_id == user.id).order_by(Feed.id)))


def add_feed(session: Session, *, email: str, label: str, now: datetime) -> tuple[FeedRecord, str]:
    """A new feed of user ``email`` and its token in clear (to show once; only its hash is kept).

    Works whether CalDAV is enabled or not (the URL serves the calendar only while it is).

    Raises:
        NotFoundError: no such user.
        InvalidDataError: a bad label, or one that a feed of this user not revoked already has.
    """
    user = get_user(session, email=email)
    cleaned = _clean_label(label)
    if any(f.label == cleaned and f.revoked_at is None for f in _feeds_of(session, user)):
        raise InvalidDataError(f"label: {user.email} already has a feed labelled {cleaned!r}; "
                               "revoke it first or choose another label")
    token = secrets.token_urlsafe(TOKEN_BYTES)
    feed = Feed(user_id=user.id, label=cleaned, token_hash=token_hash(token), created_at=now)
    session.add(feed)
    session.flush()
    return feed_record(feed), token


def list_feeds(session: Session, *, email: str) -> list[FeedRecord]:
    """Every feed of user ``email``, revoked ones included, oldest first; raises NotFoundError."""
    return [feed_record(f) for f in _feeds_of(session, get_user(session, email=email))]


def revoke_feed(session: Session, *, email: str, label_or_id: str, now: datetime) -> FeedRecord:
    """Revoke one feed of user ``email``: its URL answers 404 from this commit on.

    ``#3`` or ``id:3`` is the feed with id 3; any other value is the label of a
    feed not yet revoked, and only when no such feed has that label, a value of
    digits is taken as an id (the rule of ``caldav password revoke``).
    Revoking a feed already revoked changes nothing and returns it.

    Raises:
        NotFoundError: no such user, or no feed of theirs that ``label_or_id`` names.
    """
    user = get_user(session, email=email)
    feed = _named_feed(_feeds_of(session, user), label_or_id.strip())
    if feed is None:
        raise NotFoundError(f"{user.email} has no feed with the id or label {label_or_id!r}")
    if feed.revoked_at is None:
        feed.revoked_at = now
        session.flush()
    return feed_record(feed)


def _named_feed(feeds: list[Feed], name: str) -> Feed | None:
    for prefix in ("#", "id:"):
        if name.lower().startswith(prefix) and name[len(prefix):].strip().isdigit():
            return next((f for f in feeds if f.id == int(name[len(prefix):].strip())), None)
    labelled = next((f for f in feeds if f.label == name and f.revoked_at is None), None)
    if labelled is None and name.isdigit():
        return next((f for f in feeds if f.id == int(name)), None)
    return labelled


def find_feed_user(session: Session, *, token: str) -> UserRecord | None:
    """The user whose calendar the feed token ``token`` serves; None for a token unknown or revoked,
    or when the user's CalDAV is disabled.

    One indexed lookup of the token's hash whatever the token: a guessed and a
    revoked token cost the same work as a valid one.
    """
    wanted = token_hash(token)
    row = session.connection().execute(_USER_BY_TOKEN_HASH, {"token_hash": wanted}).one_or_none()
    if row is None or not hmac.compare_digest(row.token_hash, wanted):
        return None
    if row.revoked_at is not None or not row.caldav_enabled:
        return None
    return user_record(row)


def record_feed_use(session: Session, *, token: str, now: datetime) -> None:
    """Note that the feed of ``token`` was fetched at ``now``, at most once a minute (one conditional UPDATE)."""
    session.execute(
        update(Feed)
        .where(Feed.token_hash == token_hash(token), Feed.revoked_at.is_(None),
               or_(Feed.last_used_at.is_(None), Feed.last_used_at <= now - USE_INTERVAL))
        .values(last_used_at=now)
        .execution_options(synchronize_session=False)
    )
