"""Bulk reading for an import: the stored rows a file refers to, read in chunks.

Lookups run before validation (so that validation can go in document order),
one IN list per ``CHUNK`` keys, and what they find is held in plain rows that
the import compares its items with.

Layer: crm_model.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from crm_model.models import Activity, Contact, Lead, Participant, User
from crm_model.services.users import normalize_email

# Ids per IN list: far below SQLite's limit on bound parameters, and short
# enough statements for PostgreSQL's planner.
CHUNK = 500

# The activity columns an import sets; a stored activity whose values differ
# is updated (which fires the change-tracking trigger).
FIELDS = ("owner_id", "type", "title", "starts_at", "ends_at", "all_day", "location",
          "description", "private", "reminder_minutes")
PARTICIPANT_FIELDS = ("contact_id", "lead_id", "email", "name")


@dataclass
class Planned:
    """One activity as the import will leave it, and what must be written for that."""

    id: str
    fields: dict[str, Any]  # the FIELDS values
    participants: list[dict[str, Any]]  # the PARTICIPANT_FIELDS values, in order
    new: dict[str, Any] | None = None  # id, uid, href, source... when the import creates it
    fields_changed: bool = False
    participants_changed: bool = False


@dataclass
class Lookups:
    """What the stored data says about the ids, owners and people a file names."""

    owners: dict[str, tuple[int, str]]  # email -> (user id, time zone)
    contacts: dict[str, str | None]  # id -> e-mail
    leads: dict[str, str | None]
    activities: dict[str, Planned]  # stored activities named in the file
    # (owner id, uid) -> id of the activity using it; the same for hrefs. UID and
    # href are unique per calendar (RFC 4791 5.3.2.1, migration 0006).
    uids: dict[tuple[int, str], str] = field(default_factory=dict)
    hrefs: dict[tuple[int, str], str] = field(default_factory=dict)


def chunks(values: Iterable[Any], size: int = CHUNK) -> Iterator[list[Any]]:
    batch = sorted(values)
    for i in range(0, len(batch), size):
        yield batch[i:i + size]


def rows_where_in(
    session: Session, query: Select[*tuple[Any, ...]], values: Iterable[Any]
) -> Iterator[Any]:
    """The rows of ``query`` whose first column is one of ``values``.

    One IN list per chunk of values; but when the table holds no more rows
    than there are values (a first load into an empty table, say), one read
    of the whole table, since IN lists cost some Python for every value.
    """
    column = query.selected_columns[0]
    wanted = set(values)
    if not wanted:
        return
    if (session.scalar(select(func.count()).select_from(column.table)) or 0) <= len(wanted):
        yield from (row for row in session.execute(query) if row[0] in wanted)
        return
    for chunk in chunks(wanted):
        yield from session.execute(query.where(column.in_(chunk)))


def loose(raw: Any, key: str) -> str | None:
    """``raw[key]`` as the lookup key validation will use, or None when it is unusable.

    Lookups run before validation (so that validation can go in document
    order); a malformed item is simply not looked up and fails validation.
    """
    value = raw.get(key) if isinstance(raw, dict) else None
    return str(value) if isinstance(value, (str, int)) else None


def look_up(session: Session, raws: list[Any]) -> Lookups:
    """Read every stored row the activities of the file refer to."""
    owners = {normalize_email(raw["owner"]) for raw in raws
              if isinstance(raw, dict) and isinstance(raw.get("owner"), str)}
    users = rows_where_in(session, select(User.email, User.id, User.timezone), owners)
    contact_ids, lead_ids = _referenced_people(raws)
    lookups = Lookups(
        owners={row.email: (row.id, row.timezone) for row in users},
        contacts=dict(rows_where_in(session, select(Contact.id, Contact.email), contact_ids)),
        leads=dict(rows_where_in(session, select(Lead.id, Lead.email), lead_ids)),
        activities=_stored_activities(session, {key for raw in raws if (key := loose(raw, "id")) is not None}),
    )
    # uid and href only matter for activities the import creates.
    creating = [raw for raw in raws if isinstance(raw, dict) and loose(raw, "id") not in lookups.activities]
    uids = {raw["uid"] for raw in creating if isinstance(raw.get("uid"), str)}
    hrefs = {raw["href"] for raw in creating if isinstance(raw.get("href"), str)}
    hrefs |= {f"{uid}.ics" for uid in uids}  # the href of an activity given a uid only
    for column, found in ((Activity.uid, lookups.uids), (Activity.href, lookups.hrefs)):
        query = select(column, Activity.owner_id, Activity.id)
        wanted = uids if column is Activity.uid else hrefs
        found.update(((owner_id, key), activity_id)
                     for key, owner_id, activity_id in rows_where_in(session, query, wanted))
    return lookups


def _referenced_people(raws: list[Any]) -> tuple[set[str], set[str]]:
    contacts: set[str] = set()
    leads: set[str] = set()
    for raw in raws:
        participants = raw.get("participants") if isinstance(raw, dict) else None
        for item in participants if isinstance(participants, list) else ():
            if not isinstance(item, dict):
                continue
            if item.get("contact") is not None:
                contacts.add(str(item["contact"]))
            elif item.get("lead") is not None:
                leads.add(str(item["lead"]))
    return contacts, leads


def _stored_activities(session: Session, ids: set[str]) -> dict[str, Planned]:
    """The stored activities among ``ids``, with their participants in order."""
    query = select(Activity.id, *[getattr(Activity, name) for name in FIELDS])
    stored = {row[0]: Planned(row[0], dict(zip(FIELDS, row[1:], strict=True)), [])
              for row in rows_where_in(session, query, ids)}
    query = (select(Participant.activity_id, *[getattr(Participant, name) for name in PARTICIPANT_FIELDS])
             .order_by(Participant.activity_id, Participant.position, Participant.id))
    for row in rows_where_in(session, query, stored):
        stored[row[0]].participants.append(dict(zip(PARTICIPANT_FIELDS, row[1:], strict=True)))
    return stored
