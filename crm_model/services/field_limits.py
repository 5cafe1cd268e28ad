"""What any value written to the CRM tables must satisfy, identically on SQLite and PostgreSQL.

SQLite stores a 600-character title in a VARCHAR(500), a NUL in TEXT and a
year-202 timestamp; PostgreSQL refuses the first two with a database error,
and the served iCalendar text of the third is not valid (``DTSTART:2021215T...``).
Every writer (CalDAV PUT, JSON import) checks its values against these rules
before anything is written, so both databases store exactly the same things.

- Text lengths are the column lengths of crm_model.models, in characters
  (PostgreSQL's VARCHAR(n) counts characters; a non-BMP character is one).
- Characters: only XML 1.0 ``Char`` (W3C XML 1.0 section 2.2): no C0 control
  character other than TAB, LF and CR, no lone surrogate (U+D800..U+DFFF), and
  neither U+FFFE nor U+FFFF. PostgreSQL refuses NUL in any text; the others
  cannot appear in a REPORT's XML answer, so an event holding one would break
  its calendar for every client.
- Instants: from ``EARLIEST`` (1900-01-01T00:00:00Z) to ``LATEST``
  (2201-01-01T00:00:00Z, the end of 2200-12-31), so that every served date has
  four-digit years in every time zone (RFC 5545 3.3.4 DATE is ``4DIGIT``).
- Reminders: at most ``MAX_REMINDER_MINUTES`` (366 days) before or after the start
  (the column is a 32-bit INTEGER on PostgreSQL).

Layer: crm_model (pure).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from sqlalchemy import Column, String

from crm_model.models import Activity, Contact, Lead, Participant, User

EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(2201, 1, 1, tzinfo=UTC)
FIRST_YEAR, LAST_YEAR = EARLIEST.year, LATEST.year - 1
DATE_RANGE_TEXT = f"from {FIRST_YEAR}-01-01 to {LAST_YEAR}-12-31 (UTC)"
MAX_REMINDER_MINUTES = 366 * 24 * 60
_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def length_of(column: object) -> int:
    """The declared length (characters) of a String(n) model column, e.g. ``Activity.title`` -> 500.

    Raises:
        TypeError: when the column is not a String with a length.
    """
    column_type = getattr(column, "type", None)
    if not isinstance(column_type, String) or column_type.length is None:
        raise TypeError(f"{column!r} is not a String(n) column")
    return column_type.length


# The String(n) columns a CalDAV PUT or an import fills, by the name messages use.
TITLE = length_of(Activity.title)  # 500
UID = length_of(Activity.uid)  # 255
HREF = length_of(Activity.href)  # 255
TZID = length_of(Activity.tzid)  # 64
ACTIVITY_ID = length_of(Activity.id)  # 64
ACTIVITY_TYPE = length_of(Activity.type)  # 32
ATTENDEE_EMAIL = length_of(Participant.email)  # 320
ATTENDEE_NAME = length_of(Participant.name)  # 200
PARTY_ID = length_of(Contact.id)  # 64 (leads too)
PARTY_NAME = length_of(Contact.name)  # 200 (leads too)
PARTY_EMAIL = length_of(Lead.email)  # 320 (contacts too)
USER_EMAIL = length_of(User.email)  # 320
USER_NAME = length_of(User.name)  # 200
USER_TIMEZONE = length_of(User.timezone)  # 64
SYNCED_TYPES = length_of(User.synced_types)  # 200


def too_long(value: str | None, limit: int) -> bool:
    """True when ``value`` has more than ``limit`` characters (None is never too long)."""
    return value is not None and len(value) > limit


def forbidden_character(value: str) -> str | None:
    """The first character of ``value`` no CRM text may hold, as ``U+0000``; None when clean."""
    found = _FORBIDDEN.search(value)
    return None if found is None else f"U+{ord(found.group()):04X}"


def in_date_range(moment: datetime) -> bool:
    """True when the (aware) instant lies within [EARLIEST, LATEST]."""
    return EARLIEST <= moment <= LATEST


def year_near_range(year: int) -> bool:
    """True for a year within one of FIRST_YEAR..LAST_YEAR: the check of a value as sent
    (local time, before any time zone conversion, which could overflow Python's years
    1..9999); the instant is then checked with ``in_date_range``."""
    return FIRST_YEAR - 1 <= year <= LAST_YEAR + 1


def reminder_in_range(minutes: int) -> bool:
    """True when a reminder fires at most MAX_REMINDER_MINUTES before or after the start."""
    return -MAX_REMINDER_MINUTES <= minutes <= MAX_REMINDER_MINUTES


def string_columns() -> dict[str, int]:
    """Every String(n) column of the CRM tables as ``table.column`` -> length (for tests and docs)."""
    result = {}
    for model in (Activity, Participant, Contact, Lead, User):
        for column in model.__table__.columns:
            if isinstance(column, Column) and isinstance(column.type, String) and column.type.length:
                result[f"{model.__tablename__}.{column.name}"] = column.type.length
    return result
