"""CRM data in and out as JSON-ready dicts (the format of SPEC 5).

Import checks each section in document order and names the place of the
first problem (``activities[3].start: not a date-time``); the caller's
transaction makes it all or nothing.

Import is built for files of hundreds of thousands of activities: the stored
rows a file refers to are read in chunks (one IN list per ``_CHUNK`` keys),
every activity is checked and compared against those in-memory copies, and
only then is the result written, with one executemany statement per kind of
change instead of one ORM object and flush per row. The change-tracking
triggers still fire for every row written.

Layer: crm_model.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import Select, delete, func, insert, select, text, update
from sqlalchemy.orm import Session, selectinload

from crm_model.errors import InvalidDataError, NotFoundError
from crm_model.models import Activity, Contact, Lead, Participant, User
from crm_model.services.calendar import SOURCE_CRM
from crm_model.services.mapping import split_types
from crm_model.services.users import apply_sync_settings, normalize_email

_SECTIONS = ("users", "contacts", "leads", "activities", "deleted_activities")

# Ids per IN list: far below SQLite's limit on bound parameters, and short
# enough statements for PostgreSQL's planner.
_CHUNK = 500

# The activity columns an import sets; a stored activity whose values differ
# is updated (which fires the change-tracking trigger).
_FIELDS = ("owner_id", "type", "title", "starts_at", "ends_at", "all_day", "location",
           "description", "private", "reminder_minutes")
_PARTICIPANT_FIELDS = ("contact_id", "lead_id", "email", "name")


@dataclass(frozen=True)
class ImportSummary:
    """Counts of what an import did."""

    users: int
    contacts: int
    leads: int
    activities_created: int
    activities_updated: int
    activities_deleted: int


def import_data(session: Session, data: Any, *, now: datetime) -> ImportSummary:
    """Upsert users (by email), contacts, leads, activities (by id); delete listed activities."""
    if not isinstance(data, dict):
        raise InvalidDataError("the file must hold one JSON object")
    unknown = set(data) - set(_SECTIONS)
    if unknown:
        raise InvalidDataError(f"unknown section(s): {', '.join(sorted(unknown))}")
    for section in _SECTIONS:
        if not isinstance(data.get(section, []), list):
            raise InvalidDataError(f"{section}: must be a list")
    users = [_import_user(session, raw, f"users[{i}].") for i, raw in enumerate(data.get("users", []))]
    session.flush()
    contacts = _import_parties(session, Contact, data.get("contacts", []), "contacts")
    leads = _import_parties(session, Lead, data.get("leads", []), "leads")
    created, updated = _import_activities(session, data.get("activities", []), now)
    deleted = _delete_activities(session, data.get("deleted_activities", []))
    # The bulk statements bypassed the session, and the triggers moved
    # users.sync_pos: objects the caller still holds must be read again.
    session.expire_all()
    if created + deleted > 1000:
        refresh_statistics(session)
    return ImportSummary(len(users), contacts, leads, created, updated, deleted)


def refresh_statistics(session: Session) -> None:
    """Refresh the planner's statistics after a bulk load.

    Without them SQLite reads a 50-href multiget through the (owner, start)
    index, scanning the whole calendar, instead of the unique href index: the
    first sync then grows with the square of the calendar size.
    """
    for table in ("activities", "participants", "calendar_changes", "initial_window"):
        session.execute(text(f"ANALYZE {table}"))


def _require(raw: Any, key: str, where: str, kind: type | tuple[type, ...] = str) -> Any:
    if not isinstance(raw, dict):
        raise InvalidDataError(f"{where.rstrip('.')}: must be an object")
    value = raw.get(key)
    if value is None or not isinstance(value, kind) or (isinstance(value, str) and not value.strip()):
        raise InvalidDataError(f"{where}{key}: required")
    return value


def _optional(raw: dict, key: str, where: str, kind: type | tuple[type, ...]) -> Any:
    value = raw.get(key)
    if value is not None and (not isinstance(value, kind) or isinstance(value, bool) and kind is int):
        raise InvalidDataError(f"{where}{key}: must be {_kind_name(kind)}")
    return value


def _kind_name(kind: type | tuple[type, ...]) -> str:
    names = {str: "a string", bool: "true or false", int: "a whole number", list: "a list", dict: "an object"}
    return names.get(kind, "valid") if isinstance(kind, type) else "valid"


# --- bulk reading ------------------------------------------------------------

def _chunks(values: Iterable[Any]) -> Iterator[list[Any]]:
    batch = sorted(values)
    for i in range(0, len(batch), _CHUNK):
        yield batch[i:i + _CHUNK]


def _rows_where_in(session: Session, query: Select, values: Iterable[Any]) -> Iterator[Any]:
    """The rows of ``query`` whose first column is one of ``values``.

    One IN list per chunk of values; but when the table holds no more rows
    than there are values (a first load into an empty table, say), one read
    of the whole table, since IN lists cost some Python for every value.
    """
    column = query.selected_columns[0]
    values = set(values)
    if not values:
        return
    if session.scalar(select(func.count()).select_from(column.table)) <= len(values):
        yield from (row for row in session.execute(query) if row[0] in values)
        return
    for chunk in _chunks(values):
        yield from session.execute(query.where(column.in_(chunk)))


def _loose(raw: Any, key: str) -> str | None:
    """``raw[key]`` as the lookup key validation will use, or None when it is unusable.

    Lookups run before validation (so that validation can go in document
    order); a malformed item is simply not looked up and fails validation.
    """
    value = raw.get(key) if isinstance(raw, dict) else None
    return str(value) if isinstance(value, (str, int)) else None


# --- users, contacts, leads --------------------------------------------------

def _import_user(session: Session, raw: Any, where: str) -> User:
    email = normalize_email(_require(raw, "email", where))
    if "@" not in email:
        raise InvalidDataError(f"{where}email: not an e-mail address")
    zone = _optional(raw, "timezone", where, str)
    if zone is not None:
        _zone(zone, f"{where}timezone")
    user = session.scalars(select(User).where(User.email == email)).one_or_none()
    if user is None:
        user = User(email=email, name="", timezone="UTC")
        session.add(user)
    user.name = _optional(raw, "name", where, str) or user.name
    user.timezone = zone or user.timezone
    caldav = _optional(raw, "caldav", where, dict)
    if caldav:
        types = _optional(caldav, "synced_types", f"{where}caldav.", list)
        apply_sync_settings(
            user, sync_type=_optional(caldav, "sync_type", f"{where}caldav.", str),
            synced_types=tuple(types) if types is not None else None, where=f"{where}caldav.",
        )
    return user


def _import_parties(session: Session, model: type[Contact] | type[Lead], raws: list, section: str) -> int:
    """Upsert contacts or leads by id; returns how many items the file held."""
    ids = {key for key in (_loose(raw, "id") for raw in raws) if key is not None}
    query = select(model.id, model.name, model.email)
    stored = {row.id: row._asdict() for row in _rows_where_in(session, query, ids)}
    wanted: dict[str, dict] = {}  # id -> the row to store; a later item of the same id wins
    for i, raw in enumerate(raws):
        where = f"{section}[{i}]."
        party_id = str(_require(raw, "id", where, (str, int)))
        previous = wanted.get(party_id) or stored.get(party_id) or {}
        name = _optional(raw, "name", where, str) or previous.get("name") or ""
        email = _optional(raw, "email", where, str)
        wanted[party_id] = {"id": party_id, "name": name, "email": normalize_email(email) if email else None}
    new = [row for key, row in wanted.items() if key not in stored]
    changed = [row for key, row in wanted.items() if key in stored and row != stored[key]]
    if new:
        session.execute(_bulk_insert(model), new)
    if changed:
        session.execute(update(model), changed)
    return len(raws)


# --- activities --------------------------------------------------------------

@dataclass
class _Planned:
    """One activity as the import will leave it, and what must be written for that."""

    id: str
    fields: dict[str, Any]  # the _FIELDS values
    participants: list[dict[str, Any]]  # the _PARTICIPANT_FIELDS values, in order
    new: dict[str, Any] | None = None  # id, uid, href, source... when the import creates it
    fields_changed: bool = False
    participants_changed: bool = False


@dataclass
class _Lookups:
    """What the stored data says about the ids, owners and people a file names."""

    owners: dict[str, tuple[int, str]]  # email -> (user id, time zone)
    contacts: dict[str, str | None]  # id -> e-mail
    leads: dict[str, str | None]
    activities: dict[str, _Planned]  # stored activities named in the file
    uids: dict[str, str] = field(default_factory=dict)  # uid -> id of the activity using it
    hrefs: dict[str, str] = field(default_factory=dict)


def _import_activities(session: Session, raws: list, now: datetime) -> tuple[int, int]:
    """Upsert activities by id; returns (created, updated)."""
    lookups = _look_up(session, raws)
    planned: dict[str, _Planned] = {}
    created = updated = 0
    for i, raw in enumerate(raws):
        where = f"activities[{i}]."
        activity_id, fields = _activity_fields(raw, where, lookups.owners)
        participants = _participants(_optional(raw, "participants", where, list) or [], where, lookups)
        current = planned.get(activity_id) or lookups.activities.get(activity_id)
        if current is None:
            new = _new_activity(raw, where, activity_id, now, lookups)
            planned[activity_id] = _Planned(activity_id, fields, participants, new=new)
            created += 1
            continue
        # Compare with the state so far (the stored row, or an earlier item of
        # the same id) and write only what differs: the triggers then record
        # the same changes as the former row-by-row writes did.
        planned[activity_id] = current
        updated += 1
        if current.fields != fields:
            current.fields, current.fields_changed = fields, True
        if _participant_keys(current.participants) != _participant_keys(participants):
            current.participants, current.participants_changed = participants, True
    _write_activities(session, planned.values(), now)
    return created, updated


def _look_up(session: Session, raws: list) -> _Lookups:
    """Read every stored row the activities of the file refer to."""
    owners = {normalize_email(raw["owner"]) for raw in raws
              if isinstance(raw, dict) and isinstance(raw.get("owner"), str)}
    users = _rows_where_in(session, select(User.email, User.id, User.timezone), owners)
    contact_ids, lead_ids = _referenced_people(raws)
    lookups = _Lookups(
        owners={row.email: (row.id, row.timezone) for row in users},
        contacts=dict(_rows_where_in(session, select(Contact.id, Contact.email), contact_ids)),
        leads=dict(_rows_where_in(session, select(Lead.id, Lead.email), lead_ids)),
        activities=_stored_activities(session, {_loose(raw, "id") for raw in raws} - {None}),
    )
    # uid and href only matter for activities the import creates.
    creating = [raw for raw in raws if isinstance(raw, dict) and _loose(raw, "id") not in lookups.activities]
    uids = {raw["uid"] for raw in creating if isinstance(raw.get("uid"), str)}
    hrefs = {raw["href"] for raw in creating if isinstance(raw.get("href"), str)}
    hrefs |= {f"{uid}.ics" for uid in uids}  # the href of an activity given a uid only
    lookups.uids.update(_rows_where_in(session, select(Activity.uid, Activity.id), uids))
    lookups.hrefs.update(_rows_where_in(session, select(Activity.href, Activity.id), hrefs))
    return lookups


def _referenced_people(raws: list) -> tuple[set[str], set[str]]:
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


def _stored_activities(session: Session, ids: set[str]) -> dict[str, _Planned]:
    """The stored activities among ``ids``, with their participants in order."""
    query = select(Activity.id, *[getattr(Activity, name) for name in _FIELDS])
    stored = {row[0]: _Planned(row[0], dict(zip(_FIELDS, row[1:], strict=True)), [])
              for row in _rows_where_in(session, query, ids)}
    query = (select(Participant.activity_id, *[getattr(Participant, name) for name in _PARTICIPANT_FIELDS])
             .order_by(Participant.activity_id, Participant.position, Participant.id))
    for row in _rows_where_in(session, query, stored):
        stored[row[0]].participants.append(dict(zip(_PARTICIPANT_FIELDS, row[1:], strict=True)))
    return stored


def _zone(name: str, where: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidDataError(f"{where}: unknown time zone {name!r}") from None


def _moment(value: Any, where: str, *, all_day: bool, zone: ZoneInfo) -> datetime:
    if not isinstance(value, str):
        raise InvalidDataError(f"{where}: required")
    try:
        if all_day:
            return datetime.combine(date.fromisoformat(value), time(), UTC)
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidDataError(f"{where}: not a {'date' if all_day else 'date-time'}") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=zone)).astimezone(UTC)


def _activity_fields(raw: Any, where: str, owners: dict[str, tuple[int, str]]) -> tuple[str, dict[str, Any]]:
    """The id and the _FIELDS values of one activity item, validated."""
    activity_id = str(_require(raw, "id", where, (str, int)))
    owner_email = normalize_email(_require(raw, "owner", where))
    if owner_email not in owners:
        raise InvalidDataError(f"{where}owner: no user {owner_email}")
    owner_id, owner_zone = owners[owner_email]
    all_day = bool(_optional(raw, "all_day", where, bool))
    zone = _zone(owner_zone, f"{where}owner")
    start = _moment(raw.get("start"), f"{where}start", all_day=all_day, zone=zone)
    end = (_moment(raw["end"], f"{where}end", all_day=all_day, zone=zone) if raw.get("end")
           else start + (timedelta(days=1) if all_day else timedelta()))
    if end < start or (all_day and end == start):
        raise InvalidDataError(f"{where}end: before start")
    reminder = _optional(raw, "reminder_minutes", where, int)
    return activity_id, {
        "owner_id": owner_id, "type": _optional(raw, "type", where, str) or "meeting",
        "title": _optional(raw, "title", where, str) or "", "starts_at": start, "ends_at": end,
        "all_day": all_day, "location": _optional(raw, "location", where, str),
        "description": _optional(raw, "description", where, str),
        "private": bool(_optional(raw, "private", where, bool)), "reminder_minutes": reminder,
    }


def _new_activity(
    raw: dict, where: str, activity_id: str, now: datetime, lookups: _Lookups
) -> dict[str, Any]:
    """The columns only a created activity gets: uid and href (from the file if given), source."""
    uid = _optional(raw, "uid", where, str) or str(uuid.uuid4()).upper()
    href = _optional(raw, "href", where, str) or f"{uid}.ics"
    if "/" in href or href in (".", ".."):
        raise InvalidDataError(f"{where}href: must be a plain file name")
    clash = lookups.uids.get(uid) or lookups.hrefs.get(href)
    if clash is not None:
        raise InvalidDataError(f"{where}uid: already used by activity {clash}")
    # Later items of the file must not take them either.
    lookups.uids[uid] = lookups.hrefs[href] = activity_id
    source = raw.get("source") if raw.get("source") in ("crm", "caldav") else SOURCE_CRM
    return {"id": activity_id, "uid": uid, "href": href, "source": source, "created_at": now}


def _participants(raw_list: list, where: str, lookups: _Lookups) -> list[dict[str, Any]]:
    """The participant rows (_PARTICIPANT_FIELDS) of one activity item, validated."""
    result = []
    for j, raw in enumerate(raw_list):
        place = f"{where}participants[{j}]"
        if not isinstance(raw, dict):
            raise InvalidDataError(f"{place}: must be an object")
        if raw.get("contact") is not None:
            contact_id = str(raw["contact"])
            if contact_id not in lookups.contacts:
                raise InvalidDataError(f"{place}.contact: no contact {raw['contact']}")
            result.append({"contact_id": contact_id, "lead_id": None,
                           "email": lookups.contacts[contact_id], "name": None})
        elif raw.get("lead") is not None:
            lead_id = str(raw["lead"])
            if lead_id not in lookups.leads:
                raise InvalidDataError(f"{place}.lead: no lead {raw['lead']}")
            result.append({"contact_id": None, "lead_id": lead_id,
                           "email": lookups.leads[lead_id], "name": None})
        elif isinstance(raw.get("email"), str) and "@" in raw["email"]:
            result.append({"contact_id": None, "lead_id": None, "email": raw["email"].strip(),
                           "name": raw.get("name")})
        else:
            raise InvalidDataError(f"{place}: needs a contact, a lead or an email")
    return result


def _participant_keys(participants: list[dict[str, Any]]) -> list[tuple]:
    """What identifies a participant list: the same keys mean it is left as stored."""
    return [(p["contact_id"], p["lead_id"],
             None if (p["contact_id"] or p["lead_id"]) else (p["email"] or "").lower()) for p in participants]


def _write_activities(session: Session, planned: Iterable[_Planned], now: datetime) -> None:
    """Write the plan with one executemany statement per kind of change.

    Updates set ``updated_at`` alone when only the participants changed, so
    that the activity trigger (which watches the content columns) does not
    record a change the participant triggers already record.

    Rows go in activity id order: the primary-key index, and the triggers'
    lookups of each participant's activity, then walk the B-trees in order
    instead of at random, which keeps a large load inside the page cache
    (on SQLite, 250,000 activities and their participants took 66 s to insert
    in random order and 26 s in id order).
    """
    created, changed, touched, replaced, participants = [], [], [], [], []
    for item in sorted(planned, key=lambda item: item.id):
        if item.new is not None:
            created.append({**item.new, **item.fields, "updated_at": now})
            participants += _participant_rows(item)
            continue
        if item.fields_changed:
            changed.append({"id": item.id, **item.fields, "updated_at": now})
        elif item.participants_changed:
            touched.append({"id": item.id, "updated_at": now})
        if item.participants_changed:
            replaced.append(item.id)
            participants += _participant_rows(item)
    for statement, rows in ((_bulk_insert(Activity), created), (update(Activity), changed),
                            (update(Activity), touched)):
        if rows:
            session.execute(statement, rows)
    for chunk in _chunks(replaced):
        session.execute(delete(Participant).where(Participant.activity_id.in_(chunk)),
                        execution_options={"synchronize_session": False})
    if participants:
        session.execute(_bulk_insert(Participant), participants)


def _bulk_insert(model: type) -> Any:
    """A Core INSERT of ``model``'s table, for executemany with a list of dicts.

    Core, not ``insert(model)``: the ORM's bulk path costs about as much
    Python per row again, and by default leaves None values out, which starts
    a new statement wherever the pattern of Nones changes (tens of thousands
    of single-row INSERTs for a large file). Column defaults still apply.
    """
    return insert(model.__table__)


def _participant_rows(item: _Planned) -> list[dict[str, Any]]:
    return [{"activity_id": item.id, "position": position, **row}
            for position, row in enumerate(item.participants)]


def _delete_activities(session: Session, ids: list) -> int:
    deleted = 0
    for chunk in _chunks({str(i) for i in ids}):
        deleted += session.execute(delete(Activity).where(Activity.id.in_(chunk)),
                                   execution_options={"synchronize_session": False}).rowcount or 0
    return deleted


def export_data(session: Session, *, owner: str | None = None) -> dict[str, Any]:
    """Everything (or one owner's activities) in the import format, plus read-only fields."""
    users_query = select(User).order_by(User.email)
    activities_query = (select(Activity).options(selectinload(Activity.participants))
                        .order_by(Activity.starts_at, Activity.id))
    if owner is not None:
        email = normalize_email(owner)
        users_query = users_query.where(User.email == email)
        activities_query = activities_query.join(User, Activity.owner_id == User.id).where(User.email == email)
    users = session.scalars(users_query).all()
    if owner is not None and not users:
        raise NotFoundError(f"no user with e-mail {owner}")
    return {
        "users": [_export_user(u) for u in users],
        "contacts": [{"id": c.id, "name": c.name, "email": c.email}
                     for c in session.scalars(select(Contact).order_by(Contact.id))],
        "leads": [{"id": c.id, "name": c.name, "email": c.email}
                  for c in session.scalars(select(Lead).order_by(Lead.id))],
        "activities": [_export_activity(a) for a in session.scalars(activities_query)],
    }


def _export_user(user: User) -> dict[str, Any]:
    return {
        "email": user.email, "name": user.name, "timezone": user.timezone,
        "caldav": {
            "enabled": user.caldav_enabled, "enabled_at": _iso(user.caldav_enabled_at),
            "sync_type": user.sync_type, "synced_types": list(split_types(user.synced_types)),
        },
    }


def _export_activity(activity: Activity) -> dict[str, Any]:
    zone = ZoneInfo(activity.owner.timezone)
    if activity.all_day:
        start, end = activity.starts_at.date().isoformat(), activity.ends_at.date().isoformat()
    else:
        start = activity.starts_at.astimezone(zone).isoformat()
        end = activity.ends_at.astimezone(zone).isoformat()
    return {
        "id": activity.id, "owner": activity.owner.email, "type": activity.type,
        "title": activity.title, "start": start, "end": end, "all_day": activity.all_day,
        "location": activity.location, "description": activity.description,
        "private": activity.private, "reminder_minutes": activity.reminder_minutes,
        "participants": [_export_participant(p) for p in activity.participants],
        "uid": activity.uid, "href": activity.href, "created_at": _iso(activity.created_at),
        "updated_at": _iso(activity.updated_at), "source": activity.source,
    }


def _export_participant(participant: Participant) -> dict[str, Any]:
    if participant.contact_id:
        return {"contact": participant.contact_id}
    if participant.lead_id:
        return {"lead": participant.lead_id}
    exported: dict[str, Any] = {"email": participant.email}
    if participant.name:
        exported["name"] = participant.name
    return exported


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None
