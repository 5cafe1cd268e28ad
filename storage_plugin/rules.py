"""The calendar rules applied on the CalDAV side, each with one home (SPEC 3).

The window and attendee-deletion rules act on CRM data and live in
crm_model.services; the rules here decide what a client's event becomes.

Layer: storage_plugin (pure).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Sequence

RECURRENCE_PROPERTIES = frozenset({"RRULE", "RDATE", "EXDATE", "RECURRENCE-ID"})
RECURRENCE_REJECT = "reject"
RECURRENCE_FIRST_OCCURRENCE = "first-occurrence"
RECURRENCE_REFUSAL = (
    "Recurring events are not supported by the CRM calendar: CRM activities are single "
    "occurrences. Create each occurrence as its own event."
)


class RecurrenceRefusedError(ValueError):
    """A client sent a recurring event and the server is set to refuse them (SPEC 3.4)."""


def is_real_alarm(action: str | None) -> bool:
    """Apple's ACTION:NONE "no alert" placeholder is not an alarm (SPEC 3.3)."""
    return (action or "DISPLAY").upper() != "NONE"


def keep_first_alarm(alarms: Sequence[object], actions: Sequence[str | None]) -> object | None:
    """Only the first real VALARM becomes the CRM reminder; later ones are dropped (SPEC 3.3)."""
    for alarm, action in zip(alarms, actions):
        if is_real_alarm(action):
            return alarm
    return None


def minutes_before_start(
    trigger: timedelta | datetime, *, related_end: bool, start: datetime, end: datetime
) -> int:
    """Convert any VALARM trigger into whole minutes before the start (SPEC 3.3).

    Relative triggers count from the start (or from the end with RELATED=END);
    absolute triggers are a moment in time.
    """
    if isinstance(trigger, datetime):
        fire_at = trigger
    else:
        fire_at = (end if related_end else start) + trigger
    return round((start - fire_at).total_seconds() / 60)
