"""The input limits of a client's event, checked before anything is written (issue 9).

Every limit is refused with 400 and a precondition element (RFC 4791 5.3.2.1)
whose message names the limit; nothing is stored:

- characters: none that crm_model.services.field_limits forbids (NUL and the other
  C0 controls but TAB/LF/CR, lone surrogates, U+FFFE/U+FFFF), anywhere in the body;
- text lengths: the database column lengths (field_limits): SUMMARY 500, UID 255,
  the resource name (href) 255, an attendee's address 320 and CN 200, the kept TZID 64;
- counts: at most ``Limits.max_attendees`` ATTENDEE properties (default 1000,
  CRM_CALDAV_MAX_ATTENDEES; ``C:max-attendees-per-instance``) and
  ``Limits.max_alarms`` VALARM components (default 20, CRM_CALDAV_MAX_ALARMS) in the event;
- dates: DTSTART and DTEND (as sent, and as UTC instants) from 1900-01-01 to
  2200-12-31 (``C:min-date-time`` / ``C:max-date-time``), and every DURATION or
  TRIGGER must land inside that range;
- the reminder: at most 366 days before or after the start.

Layer: storage_plugin (pure).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from crm_model.records import ActivityDraft
from crm_model.services import field_limits

VALID_DATA = "C:valid-calendar-data"
MAX_ATTENDEES = "C:max-attendees-per-instance"
MIN_DATE_TIME = "C:min-date-time"
MAX_DATE_TIME = "C:max-date-time"
DATE_RANGE_MESSAGE = f"dates must be {field_limits.DATE_RANGE_TEXT}"


class LimitError(ValueError):
    """A client's event exceeds an input limit.

    Attributes:
        status: the HTTP status to answer (400).
        condition: the precondition element, "C:name".
    """

    def __init__(self, message: str, condition: str = VALID_DATA, status: int = 400) -> None:
        super().__init__(message)
        self.status = status
        self.condition = condition


@dataclass(frozen=True)
class Limits:
    """The configurable counts (server settings CRM_CALDAV_MAX_ATTENDEES / _MAX_ALARMS)."""

    max_attendees: int = 1000
    max_alarms: int = 20


DEFAULT_LIMITS = Limits()


def check_characters(text: str) -> None:
    """Refuse a body holding a character no CRM text may hold (see field_limits).

    Raises:
        LimitError: naming the character, e.g. U+0000.
    """
    found = field_limits.forbidden_character(text)
    if found is not None:
        raise LimitError(f"the event contains the control character {found}, which cannot be stored "
                         "(only TAB, CR and LF are allowed)")


def check_counts(*, attendees: int, alarms: int, limits: Limits) -> None:
    """Refuse more ATTENDEE properties or VALARM components than the limits allow.

    Raises:
        LimitError: C:max-attendees-per-instance for attendees, else valid-calendar-data.
    """
    if attendees > limits.max_attendees:
        raise LimitError(f"{attendees} attendees is more than the limit of {limits.max_attendees} per event",
                         MAX_ATTENDEES)
    if alarms > limits.max_alarms:
        raise LimitError(f"{alarms} alarms is more than the limit of {limits.max_alarms} per event")


def check_sent_moment(name: str, value: date) -> None:
    """Refuse a DTSTART/DTEND value whose year, as sent, is not within a year of the range.

    Checked before any time zone conversion, which could overflow Python's years
    1..9999; ``check_instant`` then checks the exact UTC instant.

    Raises:
        LimitError: min-date-time or max-date-time.
    """
    if not field_limits.year_near_range(value.year):
        raise _date_error(name, early=value.year < field_limits.FIRST_YEAR)


def check_instant(name: str, moment: datetime) -> None:
    """Refuse an aware instant outside [1900-01-01T00:00Z, 2201-01-01T00:00Z].

    Raises:
        LimitError: min-date-time or max-date-time.
    """
    if not field_limits.in_date_range(moment):
        raise _date_error(name, early=moment < field_limits.EARLIEST)


def out_of_range(name: str) -> LimitError:
    """The refusal of a value whose arithmetic left Python's dates (OverflowError)."""
    return LimitError(f"{name} is out of range: {DATE_RANGE_MESSAGE}")


def _date_error(name: str, *, early: bool) -> LimitError:
    return LimitError(f"{name} is out of range: {DATE_RANGE_MESSAGE}", MIN_DATE_TIME if early else MAX_DATE_TIME)


def check_href(href: str) -> None:
    """Refuse a resource name longer than the href column (255 characters).

    Raises:
        LimitError: naming the limit.
    """
    _check_length("the resource name", href, field_limits.HREF)
    check_characters(href)


def check_draft(draft: ActivityDraft) -> None:
    """Refuse an event whose values do not fit the CRM's columns or ranges.

    Raises:
        LimitError: naming the first limit exceeded.
    """
    _check_length("SUMMARY", draft.title, field_limits.TITLE)
    _check_length("UID", draft.uid, field_limits.UID)
    _check_length("TZID", draft.tzid, field_limits.TZID)
    for attendee in draft.attendees:
        _check_length("an ATTENDEE address", attendee.email, field_limits.ATTENDEE_EMAIL)
        _check_length("an ATTENDEE's CN", attendee.name, field_limits.ATTENDEE_NAME)
    check_instant("DTSTART", draft.starts_at)
    check_instant("DTEND", draft.ends_at)
    if draft.reminder_minutes is not None and not field_limits.reminder_in_range(draft.reminder_minutes):
        raise LimitError(f"the alarm fires {abs(draft.reminder_minutes)} minutes from the start: at most "
                         f"{field_limits.MAX_REMINDER_MINUTES} minutes (366 days) before or after it are kept")


def _check_length(name: str, value: str | None, limit: int) -> None:
    if field_limits.too_long(value, limit):
        assert value is not None
        raise LimitError(f"{name} is {len(value)} characters long; the limit is {limit}")
