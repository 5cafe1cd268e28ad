"""The one rendering of an activity as a calendar object resource, and its one cache key.

GET, calendar-multiget, calendar-query and sync-collection all serve
``served_text``: the client's own bytes while the CRM kept everything they say
(RFC 4791 5.3.4: then the PUT got a strong ETag), else the CRM's rendering.
Renderings are cached in the database under (activity, change position,
``RENDERING_VARIANT``); the position moves with every input of the text, so
an entry is never stale.

Containment (issue 9): a stored activity that does not satisfy the input
limits (crm_model.services.field_limits: a row written by another program or
before the limits existed: a year-202 start, an unknown TZID, a NUL, broken
kept lines) never fails an answer. ``served_text`` then logs it (once per
change position: the text is cached) and serves a safe rendering of what can
be kept: dates clamped into the range, forbidden characters and line breaks in
one-line values removed, no kept client lines, no out-of-range reminder.

Layer: storage_plugin (pure, apart from logging).
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from datetime import datetime
from typing import Any

from crm_model.records import ActivityRecord, ParticipantRecord
from crm_model.services import field_limits
from storage_plugin import ical_lines, rules
from storage_plugin.to_ical import RENDER_VERSION, render_vcalendar

logger = logging.getLogger(__name__)
RENDERER_NAME = "ics"
RENDERING_VARIANT = f"{RENDERER_NAME}{RENDER_VERSION}"
Rendering = tuple[str, int, str, str]  # a cache row: (activity id, change position, variant, text)
_EXTRAS_LISTS = ("calendar", "event", "alarm")


def served_text(record: ActivityRecord) -> str:
    """The VCALENDAR text served for ``record`` at its change position; never raises."""
    problem = unservable(record)
    if problem is None:
        try:
            return record.verbatim_text if record.verbatim_text is not None else render_vcalendar(record)
        except Exception as error:  # noqa: BLE001 - a stored value the renderer cannot take
            problem = f"the renderer failed: {error.__class__.__name__}: {error}"
    logger.warning("activity %s (change %s) cannot be served as stored (%s); serving a safe rendering",
                   record.id, record.change_pos, problem)
    return render_vcalendar(safe_record(record))


def cache_row(record: ActivityRecord, text: str) -> Rendering:
    """The rendering-cache row of ``text``, served for ``record`` at its change position."""
    return (record.id, record.change_pos, RENDERING_VARIANT, text)


def unservable(record: ActivityRecord) -> str | None:
    """Why ``record`` cannot be served as stored (a short phrase), or None when it can."""
    if not (field_limits.in_date_range(record.starts_at) and field_limits.in_date_range(record.ends_at)):
        return f"dates outside {field_limits.DATE_RANGE_TEXT}"
    if record.tzid and not record.all_day and rules.kept_tzid(record.tzid, _kept_timezones(record)) is None:
        return f"unknown TZID {record.tzid!r}"
    if record.reminder_minutes is not None and not field_limits.reminder_in_range(record.reminder_minutes):
        return "reminder out of range"
    lines = (record.uid, record.href, record.owner_email, record.owner_name, record.tzid or "",
             *(value or "" for p in record.participants for value in (p.email, p.name)))
    if any("\r" in value or "\n" in value for value in lines):
        return "a line break in a one-line value"
    texts = (*lines, record.title, record.location or "", record.description or "",
             record.client_extras or "", record.verbatim_text or "")
    if any(field_limits.forbidden_character(value) for value in texts):
        return "a control character"
    if record.client_extras and not _extras_are_lines(record.client_extras):
        return "kept client lines that are not iCalendar content lines"
    return None


def _kept_timezones(record: ActivityRecord) -> list[list[str]]:
    """The client's VTIMEZONEs kept with ``record`` (from_ical._extras), or [] when there are none usable."""
    if not record.client_extras or not _extras_are_lines(record.client_extras):
        return []
    timezones: list[list[str]] = json.loads(record.client_extras).get("timezones") or []
    return timezones


def _extras_are_lines(extras: str) -> bool:
    """True when the kept client lines (from_ical._extras) are a dict of content lines."""
    try:
        data = json.loads(extras)
    except ValueError:
        return False
    if not isinstance(data, dict):
        return False
    lists = [data.get(key) or [] for key in _EXTRAS_LISTS]
    timezones = data.get("timezones") or []
    attendees = data.get("attendees") or {}
    if not (all(isinstance(value, list) for value in (*lists, timezones)) and isinstance(attendees, dict)
            and all(isinstance(block, list) for block in timezones)):
        return False
    lines: list[Any] = [line for value in lists for line in value]
    lines += [line for block in timezones for line in block] + list(attendees.values())
    lines += [data["class"]] if data.get("class") is not None else []
    return all(isinstance(line, str) and ":" in line and ical_lines.property_name(line).strip()
               and "\r" not in line and "\n" not in line for line in lines)


def safe_record(record: ActivityRecord) -> ActivityRecord:
    """``record`` reduced to what can always be rendered (see the module docstring)."""
    start = _clamp(record.starts_at)
    return replace(
        record, uid=_line(record.uid), title=_text(record.title), owner_name=_line(record.owner_name),
        owner_email=_line(record.owner_email), starts_at=start, ends_at=max(start, _clamp(record.ends_at)),
        tzid=record.tzid if rules.kept_tzid(_line(record.tzid or "")) else None,
        location=None if record.location is None else _text(record.location),
        description=None if record.description is None else _text(record.description),
        reminder_minutes=(record.reminder_minutes if record.reminder_minutes is not None
                          and field_limits.reminder_in_range(record.reminder_minutes) else None),
        participants=tuple(ParticipantRecord(_line(p.email), None if p.name is None else _line(p.name), p.kind,
                                             p.ref_id) for p in record.participants),
        client_extras=None, verbatim_text=None,
    )


def _clamp(moment: datetime) -> datetime:
    return min(max(moment, field_limits.EARLIEST), field_limits.LATEST)


def _text(value: str) -> str:
    """``value`` without the characters no served text may hold."""
    return "".join(char for char in value if field_limits.forbidden_character(char) is None)


def _line(value: str) -> str:
    """A one-line value: ``_text`` without line breaks."""
    return _text(value).replace("\r", "").replace("\n", "")
