"""Validation of the items of an import document, one at a time.

Each check names the place of the first problem (``activities[3].start: not a
date-time``).

Layer: crm_model.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from crm_model.errors import InvalidDataError
from crm_model.services import field_limits
from crm_model.services.calendar import SOURCE_CRM
from crm_model.services.transfer.reading import Lookups
from crm_model.services.users import normalize_email


def require(raw: Any, key: str, where: str, kind: type | tuple[type, ...] = str) -> Any:
    if not isinstance(raw, dict):
        raise InvalidDataError(f"{where.rstrip('.')}: must be an object")
    value = raw.get(key)
    if value is None or not isinstance(value, kind) or (isinstance(value, str) and not value.strip()):
        raise InvalidDataError(f"{where}{key}: required")
    return value


def optional(raw: dict[str, Any], key: str, where: str, kind: type | tuple[type, ...]) -> Any:
    value = raw.get(key)
    if value is not None and (not isinstance(value, kind) or isinstance(value, bool) and kind is int):
        raise InvalidDataError(f"{where}{key}: must be {_kind_name(kind)}")
    return value


def bounded(value: Any, where: str, limit: int) -> Any:
    """``value`` itself, refused when it is a string longer than the column's ``limit`` characters."""
    if isinstance(value, str) and field_limits.too_long(value, limit):
        raise InvalidDataError(f"{where}: {len(value)} characters, more than the limit of {limit}")
    return value


def clean_text(data: Any, where: str = "") -> None:
    """Refuse any string of the document (keys too) holding a character no CRM text may hold
    (NUL, other C0 controls but TAB/LF/CR, lone surrogates: field_limits.forbidden_character).

    All strings are searched at once first (joined by LF, which is allowed); the
    walk that names the place runs only when something was found: naming every
    place of a clean 50,000-activity file cost more than its database writes.
    """
    if field_limits.forbidden_character("\n".join(_strings(data))) is None:
        return
    stack: list[tuple[Any, str]] = [(data, where)]
    while stack:
        value, place = stack.pop()
        if isinstance(value, str):
            found = field_limits.forbidden_character(value)
            if found is not None:
                raise InvalidDataError(f"{place or 'the file'}: contains the control character {found}")
        elif isinstance(value, dict):
            for key, item in value.items():
                stack.append((key, f"{place}.{key}".lstrip(".")))
                stack.append((item, f"{place}.{key}".lstrip(".")))
        elif isinstance(value, list):
            stack.extend((item, f"{place}[{i}]") for i, item in enumerate(value))


def _strings(data: Any) -> Iterator[str]:
    """Every string of a JSON document, keys included."""
    stack = [data]
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            yield value
        elif isinstance(value, dict):
            yield from value.keys()
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)


def _kind_name(kind: type | tuple[type, ...]) -> str:
    names = {str: "a string", bool: "true or false", int: "a whole number", list: "a list", dict: "an object"}
    return names.get(kind, "valid") if isinstance(kind, type) else "valid"


def time_zone(name: str, where: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidDataError(f"{where}: unknown time zone {name!r}") from None


def parse_moment(value: Any, where: str, *, all_day: bool, zone: ZoneInfo) -> datetime:
    if not isinstance(value, str):
        raise InvalidDataError(f"{where}: required")
    try:
        if all_day:
            moment = datetime.combine(date.fromisoformat(value), time(), UTC)
        else:
            moment = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidDataError(f"{where}: not a {'date' if all_day else 'date-time'}") from None
    if not field_limits.year_near_range(moment.year):
        raise InvalidDataError(f"{where}: out of range: dates must be {field_limits.DATE_RANGE_TEXT}")
    moment = (moment if moment.tzinfo else moment.replace(tzinfo=zone)).astimezone(UTC)
    if not field_limits.in_date_range(moment):
        raise InvalidDataError(f"{where}: out of range: dates must be {field_limits.DATE_RANGE_TEXT}")
    return moment


def activity_fields(raw: Any, where: str, owners: dict[str, tuple[int, str]]) -> tuple[str, dict[str, Any]]:
    """The id and the FIELDS values of one activity item, validated."""
    activity_id = bounded(str(require(raw, "id", where, (str, int))), f"{where}id", field_limits.ACTIVITY_ID)
    owner_email = normalize_email(require(raw, "owner", where))
    if owner_email not in owners:
        raise InvalidDataError(f"{where}owner: no user {owner_email}")
    owner_id, owner_zone = owners[owner_email]
    all_day = bool(optional(raw, "all_day", where, bool))
    zone = time_zone(owner_zone, f"{where}owner")
    start = parse_moment(raw.get("start"), f"{where}start", all_day=all_day, zone=zone)
    end = (parse_moment(raw["end"], f"{where}end", all_day=all_day, zone=zone) if raw.get("end")
           else start + (timedelta(days=1) if all_day else timedelta()))
    if end < start or (all_day and end == start):
        raise InvalidDataError(f"{where}end: before start")
    reminder = optional(raw, "reminder_minutes", where, int)
    if reminder is not None and not field_limits.reminder_in_range(reminder):
        raise InvalidDataError(f"{where}reminder_minutes: more than {field_limits.MAX_REMINDER_MINUTES} "
                               "(366 days) from the start")
    kind = bounded(optional(raw, "type", where, str), f"{where}type", field_limits.ACTIVITY_TYPE)
    title = bounded(optional(raw, "title", where, str), f"{where}title", field_limits.TITLE)
    return activity_id, {
        "owner_id": owner_id, "type": kind or "meeting",
        "title": title or "", "starts_at": start, "ends_at": end,
        "all_day": all_day, "location": optional(raw, "location", where, str),
        "description": optional(raw, "description", where, str),
        "private": bool(optional(raw, "private", where, bool)), "reminder_minutes": reminder,
    }


def new_activity(
    raw: dict[str, Any], where: str, activity_id: str, now: datetime, lookups: Lookups, *, owner_id: int
) -> dict[str, Any]:
    """The columns only a created activity gets: uid and href (from the file if given), source.

    uid and href must be free in the owner's calendar (another calendar may use them).
    """
    uid = bounded(optional(raw, "uid", where, str), f"{where}uid", field_limits.UID) or str(uuid.uuid4()).upper()
    href = bounded(optional(raw, "href", where, str) or f"{uid}.ics", f"{where}href", field_limits.HREF)
    if "/" in href or href in (".", ".."):
        raise InvalidDataError(f"{where}href: must be a plain file name")
    clash = lookups.uids.get((owner_id, uid)) or lookups.hrefs.get((owner_id, href))
    if clash is not None:
        raise InvalidDataError(f"{where}uid: already used by activity {clash} of the same owner")
    # Later items of the file must not take them either.
    lookups.uids[(owner_id, uid)] = lookups.hrefs[(owner_id, href)] = activity_id
    source = raw.get("source") if raw.get("source") in ("crm", "caldav") else SOURCE_CRM
    return {"id": activity_id, "uid": uid, "href": href, "source": source, "created_at": now}


def participants(raw_list: list[Any], where: str, lookups: Lookups) -> list[dict[str, Any]]:
    """The participant rows (PARTICIPANT_FIELDS) of one activity item, validated."""
    result: list[dict[str, Any]] = []
    for j, raw in enumerate(raw_list):
        place = f"{where}participants[{j}]"
        if not isinstance(raw, dict):
            raise InvalidDataError(f"{place}: must be an object")
        kind = "contact" if raw.get("contact") is not None else "lead" if raw.get("lead") is not None else None
        if kind is not None:
            known = lookups.contacts if kind == "contact" else lookups.leads
            party_id = str(raw[kind])
            if party_id not in known:
                raise InvalidDataError(f"{place}.{kind}: no {kind} {raw[kind]}")
            result.append({"contact_id": party_id if kind == "contact" else None,
                           "lead_id": party_id if kind == "lead" else None,
                           "email": known[party_id], "name": None})
        elif isinstance(raw.get("email"), str) and "@" in raw["email"]:
            email = bounded(raw["email"].strip(), f"{place}.email", field_limits.ATTENDEE_EMAIL)
            name = bounded(optional(raw, "name", f"{place}.", str), f"{place}.name", field_limits.ATTENDEE_NAME)
            result.append({"contact_id": None, "lead_id": None, "email": email, "name": name})
        else:
            raise InvalidDataError(f"{place}: needs a contact, a lead or an email")
    return result
