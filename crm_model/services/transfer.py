"""CRM data in and out as JSON-ready dicts (the format of SPEC 5).

Import validates the whole document first and names the place of the first
problem (``activities[3].start: not a date-time``); the caller's transaction
makes it all or nothing.

Layer: crm_model.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import delete, select, text
from sqlalchemy.orm import Session, selectinload

from crm_model.errors import InvalidDataError, NotFoundError
from crm_model.models import Activity, Contact, Lead, Participant, User
from crm_model.services.calendar import SOURCE_CRM
from crm_model.services.mapping import split_types
from crm_model.services.users import apply_sync_settings, normalize_email

_SECTIONS = ("users", "contacts", "leads", "activities", "deleted_activities")


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
    contacts = [_import_party(session, Contact, raw, f"contacts[{i}].")
                for i, raw in enumerate(data.get("contacts", []))]
    leads = [_import_party(session, Lead, raw, f"leads[{i}].")
             for i, raw in enumerate(data.get("leads", []))]
    session.flush()
    created = updated = 0
    for i, raw in enumerate(data.get("activities", [])):
        was_new = _import_activity(session, raw, f"activities[{i}].", now)
        created, updated = created + was_new, updated + (not was_new)
    deleted = _delete_activities(session, data.get("deleted_activities", []))
    session.flush()
    if created + deleted > 1000:
        refresh_statistics(session)
    return ImportSummary(len(users), len(contacts), len(leads), created, updated, deleted)


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


def _import_party(session: Session, model: type[Contact] | type[Lead], raw: Any, where: str) -> Any:
    party_id = str(_require(raw, "id", where, (str, int)))
    party = session.get(model, party_id)
    if party is None:
        party = model(id=party_id)
        session.add(party)
    party.name = _optional(raw, "name", where, str) or party.name or ""
    email = _optional(raw, "email", where, str)
    party.email = normalize_email(email) if email else None
    return party


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
            return datetime.combine(date.fromisoformat(value), time(), timezone.utc)
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidDataError(f"{where}: not a {'date' if all_day else 'date-time'}") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=zone)).astimezone(timezone.utc)


def _import_activity(session: Session, raw: Any, where: str, now: datetime) -> bool:
    activity_id = str(_require(raw, "id", where, (str, int)))
    owner_email = normalize_email(_require(raw, "owner", where))
    owner = session.scalars(select(User).where(User.email == owner_email)).one_or_none()
    if owner is None:
        raise InvalidDataError(f"{where}owner: no user {owner_email}")
    all_day = bool(_optional(raw, "all_day", where, bool))
    zone = _zone(owner.timezone, f"{where}owner")
    start = _moment(raw.get("start"), f"{where}start", all_day=all_day, zone=zone)
    end = (_moment(raw["end"], f"{where}end", all_day=all_day, zone=zone) if raw.get("end")
           else start + (timedelta(days=1) if all_day else timedelta()))
    if end < start or (all_day and end == start):
        raise InvalidDataError(f"{where}end: before start")
    reminder = _optional(raw, "reminder_minutes", where, int)
    fields = {
        "owner_id": owner.id, "type": _optional(raw, "type", where, str) or "meeting",
        "title": _optional(raw, "title", where, str) or "", "starts_at": start, "ends_at": end,
        "all_day": all_day, "location": _optional(raw, "location", where, str),
        "description": _optional(raw, "description", where, str),
        "private": bool(_optional(raw, "private", where, bool)), "reminder_minutes": reminder,
    }
    participants = _participants(session, _optional(raw, "participants", where, list) or [], where)
    activity = session.scalars(
        select(Activity).where(Activity.id == activity_id).options(selectinload(Activity.participants))
    ).one_or_none()
    is_new = activity is None
    if activity is None:
        activity = _new_crm_activity(session, raw, where, activity_id, now)
    changed = is_new
    for name, value in fields.items():
        if getattr(activity, name) != value:
            setattr(activity, name, value)
            changed = True
    if _participant_keys(activity.participants) != _participant_keys(participants):
        activity.participants.clear()
        session.flush()
        for position, participant in enumerate(participants):
            participant.position = position
            activity.participants.append(participant)
        changed = True
    if changed:
        activity.updated_at = now
    return is_new


def _new_crm_activity(session: Session, raw: dict, where: str, activity_id: str, now: datetime) -> Activity:
    uid = _optional(raw, "uid", where, str) or str(uuid.uuid4()).upper()
    href = _optional(raw, "href", where, str) or f"{uid}.ics"
    if "/" in href or href in (".", ".."):
        raise InvalidDataError(f"{where}href: must be a plain file name")
    clash = session.scalars(
        select(Activity.id).where((Activity.uid == uid) | (Activity.href == href))
    ).first()
    if clash is not None:
        raise InvalidDataError(f"{where}uid: already used by activity {clash}")
    source = raw.get("source") if raw.get("source") in ("crm", "caldav") else SOURCE_CRM
    activity = Activity(id=activity_id, uid=uid, href=href, source=source, created_at=now,
                        updated_at=now, participants=[])
    session.add(activity)
    return activity


def _participants(session: Session, raw_list: list, where: str) -> list[Participant]:
    result = []
    for j, raw in enumerate(raw_list):
        place = f"{where}participants[{j}]"
        if not isinstance(raw, dict):
            raise InvalidDataError(f"{place}: must be an object")
        if raw.get("contact") is not None:
            contact = session.get(Contact, str(raw["contact"]))
            if contact is None:
                raise InvalidDataError(f"{place}.contact: no contact {raw['contact']}")
            result.append(Participant(contact=contact, email=contact.email))
        elif raw.get("lead") is not None:
            lead = session.get(Lead, str(raw["lead"]))
            if lead is None:
                raise InvalidDataError(f"{place}.lead: no lead {raw['lead']}")
            result.append(Participant(lead=lead, email=lead.email))
        elif isinstance(raw.get("email"), str) and "@" in raw["email"]:
            result.append(Participant(email=raw["email"].strip(), name=raw.get("name")))
        else:
            raise InvalidDataError(f"{place}: needs a contact, a lead or an email")
    return result


def _participant_keys(participants: list[Participant]) -> list[tuple]:
    return [(p.contact.id if p.contact else None, p.lead.id if p.lead else None,
             None if (p.contact or p.lead) else (p.email or "").lower()) for p in participants]


def _delete_activities(session: Session, ids: list) -> int:
    wanted = [str(i) for i in ids]
    if not wanted:
        return 0
    return session.execute(delete(Activity).where(Activity.id.in_(wanted))).rowcount or 0


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
