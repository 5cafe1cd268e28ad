"""Why a caldav-server-tester feature is graded differently on crm-caldav than on stock Radicale 3.9.

``REASONS`` maps a feature, or a family written ``"prefix.*"`` (the prefix and
everything under it), to its reason. ``spec_refusal`` is true only for what the
SPEC refuses on purpose: creating or deleting calendars (SPEC 3.1: one calendar
per user, named after the e-mail), recurrence (SPEC 3.4), to-dos and journals
(the calendar holds the user's activities, meetings and calls, as VEVENTs). A
feature stock Radicale supports fully may be less than full here only for such
a reason; any other reason is a gap, and the matrix test fails on it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Reason:
    text: str
    spec_refusal: bool


CALENDARS = Reason("SPEC 3.1: one calendar per user; clients cannot create or delete calendars "
                   "(MKCALENDAR and DELETE of a collection get 403 with an explanation).", True)
SECOND_CALENDAR = Reason("Needs a second calendar, which a client cannot create here (SPEC 3.1).", True)
RECURRENCE = Reason("SPEC 3.4: recurring events are refused (403 with an explanation); nothing is stored.", True)
TODOS = Reason("To-dos are refused: the calendar holds CRM activities as VEVENTs only "
               "(supported-calendar-component-set VEVENT).", True)
JOURNALS = Reason("Journals are refused: the calendar holds CRM activities as VEVENTs only.", True)

REASONS: dict[str, Reason] = {
    "create-calendar.*": CALENDARS,
    "delete-calendar.*": CALENDARS,
    "synchronous-write.create-calendar": CALENDARS,
    "synchronous-write.delete-calendar": CALENDARS,
    "save.duplicate-uid.cross-calendar": SECOND_CALENDAR,
    "url.encode-at.literal.collection": Reason(
        "The probe creates a calendar whose id holds a literal '@', which a client cannot do here "
        "(SPEC 3.1); the principal and object spellings are probed and graded alike.", True),
    "url.encode-at.identity": Reason(
        "Radicale's grade includes the collection probe, which needs a new calendar (SPEC 3.1); "
        "without it the tester cannot decide, so it says unknown.", True),
    "save-load.event.recurrences.*": RECURRENCE,
    "search.recurrences.*": RECURRENCE,
    "save-load.todo.*": TODOS,
    "search.time-range.todo.*": TODOS,
    "search.time-range.open.*": Reason(
        "Not probed: the tester runs its open time-range checks (VTODO and VEVENT together) only "
        "after its to-do time-range search, and to-dos are refused here.", True),
    "save-load.journal.*": JOURNALS,
    "get-current-user-principal.has-calendar": Reason(
        "An observation, not a support level: each enabled user's calendar exists from the start "
        "(SPEC 3.1); a new Radicale user has none until a client makes one.", False),
}


def reason_for(feature: str) -> Reason | None:
    """The reason recorded for ``feature``: its own entry, else the nearest family above it."""
    if feature in REASONS:
        return REASONS[feature]
    name = feature
    while name:
        if f"{name}.*" in REASONS:
            return REASONS[f"{name}.*"]
        name = name.rpartition(".")[0]
    return None
