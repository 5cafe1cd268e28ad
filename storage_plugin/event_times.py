"""A client's DTSTART / DTEND / DURATION -> the instants, TZID and floating flag the CRM keeps (SPEC 3.11).

The zone of a TZID is found by ``rules.zone_of``: an IANA name, a Windows
name (through icalendar's CLDR table), or the client's own VTIMEZONE in the
same body (``definitions``: its VTIMEZONE components as unfolded lines). A
client's VTIMEZONE is never given to icalendar's parser: icalendar keeps every
custom zone it parses in a process-wide cache under its TZID, so one client's
"Customized Time Zone" would be used for another's, and a hostile definition
could make a conversion run for minutes.

Layer: storage_plugin (pure: no session, no configuration, no clock).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import icalendar

from storage_plugin import limits, rules

Definitions = Sequence[Sequence[str]]  # VTIMEZONE components, each as unfolded content lines


class InvalidEventError(ValueError):
    """The body is not one storable event; the message says why."""


@dataclass(frozen=True)
class Times:
    """DTSTART/DTEND as the CRM keeps them (UTC instants), and what the reading lost."""

    start: datetime
    end: datetime
    all_day: bool
    tzid: str | None  # the TZID as the client sent it, when kept (rules.kept_tzid)
    floating: bool
    losses: tuple[str, ...] = ()


def single(component: icalendar.Component, name: str) -> Any:
    """A property's (first) value; icalendar gives a list when a property is repeated."""
    value = component.get(name)
    return value[0] if isinstance(value, list) and value else value


def read_times(event: icalendar.Component, definitions: Definitions, default_timezone: str) -> Times:
    """Start and end as UTC instants, with the TZID kept and the floating flag (RFC 5545 3.8.2).

    ``default_timezone`` is the user's zone: floating times, and TZIDs that
    nothing defines, are read in it.

    Raises:
        InvalidEventError: no DTSTART, or DTEND before DTSTART.
        limits.LimitError: a date outside the CRM's range (storage_plugin.limits).
    """
    start_prop = single(event, "DTSTART")
    if start_prop is None:
        raise InvalidEventError("the event has no DTSTART")
    start = start_prop.dt
    limits.check_sent_moment("DTSTART", start)
    try:
        if "DTEND" in event:
            end = single(event, "DTEND").dt
        elif "DURATION" in event:
            end = start + single(event, "DURATION").dt
        else:  # RFC 5545 3.6.1: a date lasts one day, a date-time no time at all
            end = start + timedelta(days=1) if not isinstance(start, datetime) else start
        limits.check_sent_moment("DTEND", end)
        if not isinstance(start, datetime):
            return _all_day(event, start, end)
        return _timed(event, start_prop, definitions, default_timezone)
    except OverflowError as error:  # a DURATION, or a zone's offset, beyond Python's years 1..9999
        raise limits.out_of_range("DTEND") from error


def _all_day(event: icalendar.Component, start: date, end: date | datetime) -> Times:
    """All-day events stay dates: midnight UTC of the first day and of the day after."""
    losses = []
    if isinstance(end, datetime):
        losses.append("a DATE-TIME DTEND with a DATE DTSTART (served as a date)")
        end = end.date()
    elif "DTEND" not in event and "DURATION" in event and single(event, "DURATION").dt % timedelta(days=1):
        losses.append("an all-day DURATION that is not whole days")
    if end <= start:
        losses.append("the all-day end (DTEND not after DTSTART: served one day long)")
    begin = datetime.combine(start, time(), UTC)
    finish = datetime.combine(max(end, start + timedelta(days=1)), time(), UTC)
    return Times(begin, finish, True, None, False, tuple(losses))


def _timed(event: icalendar.Component, start_prop: Any, definitions: Definitions,
           default_timezone: str) -> Times:
    """Timed events keep their instant and the TZID sent; floating is read in the user's zone."""
    sent_tzid = start_prop.params.get("TZID")
    start = localized(start_prop, definitions)
    floating = start is None and not sent_tzid
    losses = []
    if start is None:  # floating, or a TZID that nothing defines
        start = start_prop.dt.replace(tzinfo=rules.floating_zone(default_timezone))
        if sent_tzid:
            losses.append(f"TZID '{sent_tzid}' (no definition: read in the user's time zone, served in UTC)")
    tzid = rules.kept_tzid(sent_tzid, definitions)
    if sent_tzid and tzid is None and not losses:
        losses.append(f"TZID '{sent_tzid}' (served in UTC)")
    losses += _definition_losses(tzid, definitions)
    end, end_losses = _timed_end(event, start, definitions)
    begin, finish = start.astimezone(UTC), end.astimezone(UTC)
    if finish < begin:
        raise InvalidEventError("DTEND is before DTSTART")
    return Times(begin, finish, False, tzid, floating, (*losses, *end_losses))


def _timed_end(event: icalendar.Component, start: datetime, definitions: Definitions) -> tuple[datetime, list[str]]:
    """The end of a timed event: DTEND in its own zone (else DTSTART's), start + DURATION, or the start."""
    end_prop = single(event, "DTEND")
    if end_prop is None:
        return (start + single(event, "DURATION").dt if "DURATION" in event else start), []
    if not isinstance(end_prop.dt, datetime):
        return (datetime.combine(end_prop.dt, time(), start.tzinfo),
                ["a DATE DTEND with a DATE-TIME DTSTART (served as a date-time)"])
    end = localized(end_prop, definitions) or end_prop.dt.replace(tzinfo=start.tzinfo)
    start_prop = single(event, "DTSTART")
    losses = ["DTEND in another time zone than DTSTART (served in DTSTART's)"] \
        if _zone_text(end_prop) != _zone_text(start_prop) else []
    return end, losses


def localized(prop: Any, definitions: Definitions) -> datetime | None:
    """A DATE-TIME property as an aware datetime, or None when floating or its TZID has no zone.

    UTC ("Z") as icalendar read it; a TZID in the zone ``rules.zone_of`` gives
    (IANA or Windows name, else the client's own VTIMEZONE: the zone rendering
    uses); else the zone icalendar guessed from tzdata (a vendor-prefixed IANA
    name, "/freeassociation.sourceforge.net/Europe/Berlin"). Any other zone
    icalendar attached came from its process-wide cache and is not this client's.
    """
    value, tzid = prop.dt, prop.params.get("TZID")
    if not tzid:
        return value if value.tzinfo is not None else None
    zone = rules.zone_of(tzid, definitions)
    if zone is not None:
        return value.replace(tzinfo=zone)  # type: ignore[no-any-return]
    return value if isinstance(value.tzinfo, ZoneInfo) else None


def _definition_losses(tzid: str | None, definitions: Definitions) -> list[str]:
    """A kept Windows name without the client's VTIMEZONE: rendering adds one (RFC 5545 3.2.19)."""
    iana = rules.windows_zone_name(tzid)
    if tzid is None or iana is None or any(rules.definition_tzid(block) == tzid for block in definitions):
        return []
    return [f"TZID '{tzid}' without a VTIMEZONE (served with one made from {iana})"]


def _zone_text(prop: Any) -> str:
    """How a date-time property names its zone: its TZID, "UTC" (Z) or "floating"."""
    if prop.params.get("TZID"):
        return f"TZID={prop.params['TZID']}"
    return "floating" if prop.dt.tzinfo is None else "UTC"
