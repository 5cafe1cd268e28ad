"""Export of what changed after a position (``crm-caldav export --changes-since``).

A position is where each user's change log stood: the change-tracking
triggers give every change of a calendar a position from ``users.sync_pos``
(SPEC 2; migrations 0002-0010), handed out under the user's row lock, so in
commit order. A CRM keeps the ``position`` of one answer and asks from it next
time; nothing committed later can carry a position at or below it.

Its text form is ``USER_ID:POS`` pairs joined by commas (``1:120,2:45``), or
``0`` for "from the beginning". A user missing from it (created since) starts
from 0; a user id that no longer exists is skipped (the user was deleted, and
with it their change log).

The answer is an import document (SPEC 5) plus two read-only keys::

    {"since": "1:120,2:45", "position": "1:131,2:45,3:7",
     "activities": [<export form of each activity changed, created or moved>],
     "deleted_activities": ["a-7", ...]}

An activity counts when its owner's change log (or, moved to another owner,
its former owner's) has a row after the position: its fields, its
participants, its owner, the served text of linked contacts and leads, or the
calendar's membership (a new initial window) changed. Each appears once, as it
is now, sorted by id; one that no longer exists is listed in
``deleted_activities``.

Layer: crm_model.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session, selectinload

from crm_model.errors import InvalidDataError, NotFoundError
from crm_model.models import Activity, CalendarChange, User
from crm_model.services.transfer.exporting import export_activity
from crm_model.services.transfer.reading import chunks
from crm_model.services.users import normalize_email

# ASCII digits only (re.ASCII): int() would also take "١٢" or full-width digits. 18 digits fit a BIGINT.
_PAIR = re.compile(r"(\d{1,18}):(\d{1,18})", re.ASCII)
# Users per OR-ed condition on the change log's (user_id, pos) index.
_USERS_PER_QUERY = 200


def parse_position(text: str) -> dict[int, int]:
    """``"1:120,2:45"`` -> {1: 120, 2: 45}; ``"0"`` -> {}. InvalidDataError names the bad part."""
    text = text.strip()
    if text == "0":
        return {}
    positions: dict[int, int] = {}
    for part in text.split(","):
        match = _PAIR.fullmatch(part.strip())
        if match is None:
            raise InvalidDataError(
                f"--changes-since: {part.strip() or text!r} is not a position (give 0, or the \"position\" "
                "of an earlier export, like 1:120,2:45)")
        user_id = int(match[1])
        if user_id in positions:  # two positions of one user: a hand-edited or concatenated value
            raise InvalidDataError(f"--changes-since: user {user_id} appears twice in {text!r}")
        positions[user_id] = int(match[2])
    return positions


def format_position(positions: dict[int, int]) -> str:
    return ",".join(f"{user_id}:{pos}" for user_id, pos in sorted(positions.items())) or "0"


def export_changes(session: Session, since: str, *, owner: str | None = None) -> dict[str, Any]:
    """What changed after ``since`` (all users, or ``owner``'s calendar), and the position to ask from next.

    Raises InvalidDataError for a malformed position or one ahead of the
    database (taken from another database), NotFoundError for an unknown owner.
    """
    asked = parse_position(since)
    # Positions first, then the log up to them: a change committed in between
    # has a larger position, so it is left for the next call, never lost.
    query = select(User.id, User.sync_pos).order_by(User.id)
    if owner is not None:
        query = query.where(User.email == normalize_email(owner))
    now: dict[int, int] = {row.id: row.sync_pos for row in session.execute(query)}
    if owner is not None and not now:
        raise NotFoundError(f"no user with e-mail {owner}")
    for user_id, pos in asked.items():
        if user_id in now and pos > now[user_id]:
            raise InvalidDataError(f"--changes-since: position {user_id}:{pos} is ahead of this database "
                                   f"(user {user_id} is at {now[user_id]}); was it taken from another database?")
    ranges = {user_id: (asked.get(user_id, 0), pos) for user_id, pos in now.items() if pos > asked.get(user_id, 0)}
    changed = _changed_ids(session, ranges)
    activities = _activities(session, changed)
    return {
        "since": format_position({user_id: asked[user_id] for user_id in now if user_id in asked}),
        "position": format_position(now),
        "activities": [export_activity(activities[key]) for key in sorted(activities)],
        "deleted_activities": sorted(changed - activities.keys()),
    }


def _changed_ids(session: Session, ranges: dict[int, tuple[int, int]]) -> set[str]:
    """Ids of the activities logged in ``ranges`` (user id -> (after, up to and including))."""
    found: set[str] = set()
    for users in chunks(ranges, _USERS_PER_QUERY):
        conditions = [and_(CalendarChange.user_id == user_id, CalendarChange.pos > ranges[user_id][0],
                           CalendarChange.pos <= ranges[user_id][1])
                      for user_id in users]
        found.update(session.scalars(select(CalendarChange.activity_id).where(or_(*conditions)).distinct()))
    return found


def _activities(session: Session, ids: set[str]) -> dict[str, Activity]:
    """The activities among ``ids`` that exist, with their owners and participants loaded."""
    found: dict[str, Activity] = {}
    for chunk in chunks(ids):
        query = (select(Activity).where(Activity.id.in_(chunk))
                 .options(selectinload(Activity.participants), selectinload(Activity.owner)))
        found.update((activity.id, activity) for activity in session.scalars(query))
    return found
