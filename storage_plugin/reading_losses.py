"""What of a client's event the CRM cannot keep: what rendering the stored activity would not reproduce.

``from_ical.read_event`` reports these ``losses`` (short phrases); the server
serves a client's exact bytes back only when there are none (SPEC 3.7).

Layer: storage_plugin (pure: raw iCalendar lines in, phrases out).
"""

from __future__ import annotations

from collections import Counter

from storage_plugin import ical_lines, rules
from storage_plugin.ical_lines import Component, property_name, value_of

# Modelled properties the CRM keeps one value of, and text properties it keeps without parameters.
SINGLE_EVENT_PROPERTIES = (
    "UID", "DTSTART", "DTEND", "DURATION", "SUMMARY", "LOCATION", "DESCRIPTION", "CLASS", "ORGANIZER",
)
TEXT_EVENT_PROPERTIES = frozenset({"SUMMARY", "LOCATION", "DESCRIPTION"})
KEPT_CALENDAR_COMPONENTS = frozenset({"VEVENT", "VTIMEZONE"})
RECURRENCE_ORDER = ("RRULE", "RDATE", "EXDATE", "RECURRENCE-ID")


def calendar_losses(raw_calendar: Component) -> list[str]:
    """METHOD, a non-Gregorian CALSCALE, and components other than VEVENT and VTIMEZONE."""
    losses = []
    for line in raw_calendar.lines:
        name, value = property_name(line), value_of(line).strip()
        if name == "METHOD" or (name == "CALSCALE" and value.upper() != "GREGORIAN"):
            losses.append(f"{name}:{value}")
    others = Counter(c.name for c in raw_calendar.children if c.name not in KEPT_CALENDAR_COMPONENTS)
    losses += [f"the {name} component" if count == 1 else f"{count} {name} components"
               for name, count in others.items()]
    return losses


def recurrence_losses(raw_calendar: Component, raw_master: Component) -> list[str]:
    """In first-occurrence mode: the recurrence rules, overrides and other VEVENTs dropped (SPEC 3.4)."""
    found = [name for name in RECURRENCE_ORDER if has_property(raw_master, name)]
    losses = [f"the recurrence ({', '.join(found)})"] if found else []
    others = [c for c in raw_calendar.children if c.name == "VEVENT" and c is not raw_master]
    overrides = sum(1 for c in others if has_property(c, "RECURRENCE-ID"))
    if overrides:
        losses.append(counted(overrides, "overridden occurrence") + " (RECURRENCE-ID)")
    if len(others) > overrides:
        losses.append(counted(len(others) - overrides, "other VEVENT"))
    return losses


def event_losses(raw_event: Component) -> list[str]:
    """Repeated or parameterised modelled properties, CLASS values, sub-components besides VALARM."""
    names = [property_name(line) for line in raw_event.lines]
    losses = [] if "UID" in names else ["the event has no UID"]
    losses += [f"{names.count(name)} {name} properties (the first is kept)"
               for name in SINGLE_EVENT_PROPERTIES if names.count(name) > 1]
    losses += [f"the parameters of {name} ({ical_lines.parameters_of(line)})"
               for name, line in zip(names, raw_event.lines, strict=True)
               if name in TEXT_EVENT_PROPERTIES and ical_lines.parameters_of(line)]
    class_value = next((value_of(line).strip().upper() for line in raw_event.lines
                        if property_name(line) == "CLASS"), None)
    if class_value:
        served = rules.class_line(rules.is_private(class_value), client_sent_class=True)
        if served != f"CLASS:{class_value}":
            losses.append(f"CLASS:{class_value} (served as {served})")
    others = Counter(c.name for c in raw_event.children if c.name != "VALARM")
    losses += [f"the {name} inside the event" if count == 1 else f"{count} {name} inside the event"
               for name, count in others.items()]
    return losses


def attendee_losses(raw_event: Component) -> list[str]:
    """ATTENDEE lines without an address, and addresses sent more than once (kept once)."""
    addresses = [ical_lines.mailto_address(line).strip().lower() for line in raw_event.lines
                 if property_name(line) == "ATTENDEE"]
    losses = []
    empty = addresses.count("")
    if empty:
        losses.append("an ATTENDEE without an address" if empty == 1
                      else f"{empty} ATTENDEEs without an address")
    repeated = Counter(address for address in addresses if address)
    losses += [f"ATTENDEE {address} sent {count} times (kept once)"
               for address, count in repeated.items() if count > 1]
    return losses


def has_property(component: Component, name: str) -> bool:
    """True when a raw component has a property called ``name``."""
    return any(property_name(line) == name for line in component.lines)


def counted(number: int, noun: str) -> str:
    """ "1 alarm", "2 alarms"."""
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"
