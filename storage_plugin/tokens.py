"""ETags and sync tokens: what a client holds to say which version it has.

An item ETag is ``"<change position>-<renderer version>"``: the position moves
with every change of anything the served text depends on (the database
triggers track the activity, its participants, the owner's name, e-mail and
time zone, linked contacts and leads), so one ETag always names one text.
A sync token (RFC 6578 3.2) is a URI holding the calendar's change position:
every change of what the calendar offers is in the change log, a new initial
window or new synced types included (crm_model.services.window
.membership_logged), so a token stays valid across them. Tokens of the former
form ``<window position>-<position>``, issued when a new window still
invalidated them, are honoured while their window is the current one. The
CTag (calendarserver.org getctag) is the pair of window and change position.

Layer: storage_plugin (pure).
"""

from __future__ import annotations

import re

from crm_model.records import UserRecord
from storage_plugin.refusals import Refusal
from storage_plugin.to_ical import RENDER_VERSION

SYNC_TOKEN_PREFIX = "http://crm-caldav.invalid/ns/sync/"
# "<position>", or the former "<window position>-<position>"
_TOKEN = re.compile(re.escape(SYNC_TOKEN_PREFIX) + r"(?:(\d+)-)?(\d+)")
_ETAG = re.compile(r'"(\d+)-(\d+)"')
NEVER_MATCHES = -1


def etag_for(change_pos: int) -> str:
    """The strong ETag (quoted, RFC 9110 8.8.3) of an item at ``change_pos``."""
    return f'"{change_pos}-{RENDER_VERSION}"'


def change_pos_of(if_match: str) -> int:
    """The change position an If-Match value names; NEVER_MATCHES for any other value.

    A weak, foreign or older-renderer ETag, or a list of ETags, matches no version
    (RFC 9110 13.1.1: If-Match uses the strong comparison).
    """
    match = _ETAG.fullmatch(if_match.strip())
    if match is None or int(match[2]) != RENDER_VERSION:
        return NEVER_MATCHES
    return int(match[1])


def ctag(user: UserRecord) -> str:
    """The calendar's CTag: no item is read (SPEC 2)."""
    return f'"{user.window_pos}-{user.sync_pos}"'


def sync_token(user: UserRecord) -> str:
    """The calendar's current sync token: ``<prefix><change position>``."""
    return f"{SYNC_TOKEN_PREFIX}{user.sync_pos}"


def position_of(token: str, user: UserRecord) -> int | None:
    """The change position ``token`` stands for; None for an empty token (a first sync).

    Raises:
        Refusal: 403 DAV:valid-sync-token (RFC 6578 3.2) for a token not issued
            here, one above the calendar's current position, or one of the
            former window form whose window has since been replaced (such
            windows were not written to the change log); the client then
            starts a full sync.
    """
    if not token:
        return None
    match = _TOKEN.fullmatch(token.strip())
    if (not match or int(match[2]) > user.sync_pos
            or (match[1] is not None and int(match[1]) != user.window_pos)):
        raise Refusal(403, "This sync token is not valid for this calendar; sync again from scratch.",
                      "D:valid-sync-token")
    return int(match[2])
