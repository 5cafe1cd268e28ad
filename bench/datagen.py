"""Deterministic benchmark data: one CRM with a bench user and four other users.

The same `Event` objects feed all three servers: `crm_json_*` renders them in the
`crm-caldav import` format, `event_ics` as the VCALENDAR we write into the peers'
storage, so UIDs, hrefs and content are shared.
"""
from __future__ import annotations

import datetime as dt
import random
import uuid
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

import icalendar

BENCH_USER = "bench@example.com"
BENCH_PASSWORD = "benchpass"
OTHER_USERS = [
    ("anna.admin@example.com", "Anna Admin", "Europe/Berlin"),
    ("bob.sales@example.com", "Bob Sales", "America/New_York"),
    ("kenji.sato@example.com", "Kenji Sato", "Asia/Tokyo"),
    ("uma.ops@example.com", "Uma Ops", "UTC"),
]
# Weights: a European-led team with US and Japanese customers.
TIMEZONES = [("Europe/Berlin", 35), ("America/New_York", 30), ("Asia/Tokyo", 15), ("UTC", 20)]
DURATIONS_MIN = [15, 30, 30, 45, 60, 60, 60, 90, 120]
ALARM_SHARE = 0.85  # "a 15-min alarm on most"

FIRST = ["Anna", "Bert", "Carla", "David", "Elif", "Farid", "Greta", "Hiro", "Ines", "Jonas",
         "Keiko", "Lars", "Maria", "Nils", "Olga", "Pedro", "Quinn", "Rosa", "Sven", "Yuki"]
LAST = ["Schmidt", "Miller", "Tanaka", "Garcia", "Novak", "Jensen", "Rossi", "Dubois",
        "Kowalski", "Okafor", "Suzuki", "Brown", "Weber", "Lopez", "Ito", "Fischer"]
COMPANIES = ["Zillum", "Acme Logistics", "Nordwind GmbH", "Sakura Trading", "Bluefin Labs",
             "Hudson Retail", "Kite Analytics", "Oakridge Partners", "Rheinland Bau",
             "Fujiyama Foods", "Brightline Media", "Cobalt Health"]
TOPICS = ["renewal", "pricing", "onboarding", "Q3 forecast", "contract draft", "integration",
          "support escalation", "product demo", "expansion", "security review", "invoice"]
MEETING_TITLES = ["Quarterly review with {c}", "{t} workshop – {c}", "Kick-off: {c} {t}",
                  "Lunch with {p} ({c})", "Demo for {c}", "{c}: steering committee"]
CALL_TITLES = ["Call {p} re {t}", "Follow-up call: {c}", "Intro call with {p}",
               "{c} – {t} call"]
LOCATIONS = ["Customer HQ, Hauptstraße 5, 10115 Berlin, Germany",
             "Meeting room 3.14, 5th Avenue 350, New York, NY 10118",
             "Tokyo office, 2-7-2 Marunouchi, Chiyoda-ku",
             "https://zoom.us/j/{n}", "Microsoft Teams", "Café Einstein, Unter den Linden 42",
             "Phone", "", "Room Alster (2nd floor)"]
SENTENCES = ["Agenda: pricing, renewal terms and the open support tickets.",
             "Bring the signed NDA and the latest forecast sheet.",
             "{p} asked for a short recap of the integration roadmap; prepare 3 slides.",
             "Last time we agreed to revisit the discount after the pilot phase.",
             "Dial-in: +49 30 1234567, PIN 4711#.",
             "Decision makers: CFO and head of IT; legal may join for the last 15 minutes.",
             "Follow up on invoice #{n} (overdue since last month).",
             "Notes from the previous call are in the CRM under 'Opportunities'.",
             "Check whether the Japanese subsidiary needs a separate contract."]


@dataclass
class Event:
    """One CRM activity, the unit shared by all servers."""
    id: str
    owner: str
    type: str
    title: str
    start: dt.datetime          # aware, in `tzid`
    end: dt.datetime
    tzid: str
    location: str
    description: str
    reminder_minutes: int | None
    participants: list[dict]    # CRM form: {"contact": id} | {"lead": id} | {"email": a}
    attendees: list[tuple[str, str]]  # (name, email) for the iCalendar form
    uid: str

    @property
    def href(self) -> str:
        return f"{self.uid}.ics"


@dataclass
class Dataset:
    n: int
    today: dt.date
    bench_events: list[Event]
    other_events: list[Event]
    contacts: list[dict]
    leads: list[dict]
    _ics_cache: dict = field(default_factory=dict, repr=False)

    def overlapping(self, start: dt.datetime, end: dt.datetime) -> int:
        """Number of bench events overlapping [start, end) (RFC 4791 9.9)."""
        return sum(1 for e in self.bench_events if e.start < end and e.end > start)


def _person(rng: random.Random) -> str:
    return f"{rng.choice(FIRST)} {rng.choice(LAST)}"


def _fill(rng: random.Random, template: str) -> str:
    return template.format(c=rng.choice(COMPANIES), t=rng.choice(TOPICS), p=_person(rng),
                           n=rng.randint(10000000, 99999999))


def _uid(rng: random.Random) -> str:
    # Apple-style upper-case UUID, derived from the seeded RNG so runs are repeatable.
    return str(uuid.UUID(int=rng.getrandbits(128), version=4)).upper()


def _people(rng: random.Random, n_contacts: int, n_leads: int) -> tuple[list[dict], list[dict]]:
    def make(prefix, i):
        name = _person(rng)
        domain = rng.choice(COMPANIES).lower().replace(" ", "-") + ".example"
        return {"id": f"{prefix}-{i}", "name": name,
                "email": f"{name.split()[0].lower()}.{i}@{domain}"}
    return ([make("c", i) for i in range(n_contacts)], [make("l", i) for i in range(n_leads)])


def _event(rng, idx, owner, today, contacts, leads) -> Event:
    tzid = rng.choices([t for t, _ in TIMEZONES], [w for _, w in TIMEZONES])[0]
    tz = ZoneInfo(tzid)
    # Spread starts from 3 months back to ~2 years ahead, in local office hours.
    day = today + dt.timedelta(days=rng.randint(-90, 730))
    start = dt.datetime(day.year, day.month, day.day, rng.randint(8, 17),
                        rng.choice([0, 15, 30, 45]), tzinfo=tz)
    end = start + dt.timedelta(minutes=rng.choice(DURATIONS_MIN))
    kind = "meeting" if rng.random() < 0.7 else "call"
    title = _fill(rng, rng.choice(MEETING_TITLES if kind == "meeting" else CALL_TITLES))
    participants, attendees = [], []
    for _ in range(rng.randint(0, 4)):
        r = rng.random()
        if r < 0.6:
            c = rng.choice(contacts)
            ref = {"contact": c["id"]}
        elif r < 0.85:
            c = rng.choice(leads)
            ref = {"lead": c["id"]}
        else:
            name = _person(rng)
            c = {"name": name, "email": f"{name.replace(' ', '.').lower()}@guest.example"}
            ref = {"email": c["email"]}
        if ref not in participants:
            participants.append(ref)
            attendees.append((c["name"], c["email"]))
    description = " ".join(_fill(rng, s) for s in rng.sample(SENTENCES, rng.randint(1, 5)))
    return Event(
        id=f"a-{owner.split('@')[0]}-{idx}", owner=owner, type=kind, title=title,
        start=start, end=end, tzid=tzid, location=_fill(rng, rng.choice(LOCATIONS)),
        description=description,
        reminder_minutes=15 if rng.random() < ALARM_SHARE else None,
        participants=participants, attendees=attendees, uid=_uid(rng))


def generate(n: int, seed: int = 20261121, today: dt.date | None = None) -> Dataset:
    """N bench events plus N activities for each of 4 other users (5N in the CRM)."""
    today = today or dt.date.today()
    rng = random.Random(f"{seed}-{n}")
    contacts, leads = _people(rng, max(200, n // 10), max(100, n // 20))
    bench = [_event(rng, i, BENCH_USER, today, contacts, leads) for i in range(n)]
    others = [_event(rng, i, email, today, contacts, leads)
              for email, _, _ in OTHER_USERS for i in range(n)]
    return Dataset(n, today, bench, others, contacts, leads)


# --- CRM JSON (ours) ------------------------------------------------------------

def crm_users() -> dict:
    users = [{"email": BENCH_USER, "name": "Bench User", "timezone": "Europe/Berlin"}]
    users += [{"email": e, "name": nm, "timezone": tz} for e, nm, tz in OTHER_USERS]
    return {"users": users}


def crm_activity(e: Event) -> dict:
    return {
        "id": e.id, "owner": e.owner, "type": e.type, "title": e.title,
        "start": e.start.isoformat(), "end": e.end.isoformat(), "all_day": False,
        "location": e.location, "description": e.description, "private": False,
        "reminder_minutes": e.reminder_minutes, "participants": e.participants,
        "uid": e.uid, "href": e.href,
    }


def crm_activity_chunks(ds: Dataset, chunk: int):
    """Yield import documents of at most `chunk` activities; people go in the first."""
    events = ds.bench_events + ds.other_events
    for i in range(0, len(events), chunk):
        doc = {"activities": [crm_activity(e) for e in events[i:i + chunk]]}
        if i == 0:
            doc = {"contacts": ds.contacts, "leads": ds.leads, **doc}
        yield doc


# --- iCalendar (peers) ----------------------------------------------------------

_VTIMEZONES: dict[str, icalendar.Timezone] = {}
PRODID = "-//crm-caldav bench//EN"


def _vtimezone(tzid: str, today: dt.date) -> icalendar.Timezone:
    if tzid not in _VTIMEZONES:
        _VTIMEZONES[tzid] = icalendar.Timezone.from_tzid(
            tzid, first_date=today - dt.timedelta(days=400), last_date=today + dt.timedelta(days=1200))
    return _VTIMEZONES[tzid]


def event_ics(e: Event, today: dt.date, dtstamp: dt.datetime, title: str | None = None) -> bytes:
    """The VCALENDAR the peers store for `e` (title override used by the S2 edit)."""
    cal = icalendar.Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    if e.tzid != "UTC":
        cal.add_component(_vtimezone(e.tzid, today))
    ev = icalendar.Event()
    ev.add("uid", e.uid)
    ev.add("dtstamp", dtstamp)
    if e.tzid == "UTC":
        ev.add("dtstart", e.start.astimezone(dt.UTC))
        ev.add("dtend", e.end.astimezone(dt.UTC))
    else:
        # Naive local time + TZID parameter: the form clients send.
        ev.add("dtstart", e.start.replace(tzinfo=None), parameters={"TZID": e.tzid})
        ev.add("dtend", e.end.replace(tzinfo=None), parameters={"TZID": e.tzid})
    ev.add("summary", title or e.title)
    if e.location:
        ev.add("location", e.location)
    ev.add("description", e.description)
    ev.add("organizer", f"mailto:{e.owner}", parameters={"CN": "Bench User"})
    for name, email in e.attendees:
        ev.add("attendee", f"mailto:{email}", parameters={
            "CN": name, "CUTYPE": "INDIVIDUAL", "PARTSTAT": "NEEDS-ACTION",
            "ROLE": "REQ-PARTICIPANT"})
    if e.reminder_minutes is not None:
        alarm = icalendar.Alarm()
        alarm.add("action", "DISPLAY")
        alarm.add("description", "Reminder")
        alarm.add("trigger", dt.timedelta(minutes=-e.reminder_minutes))
        ev.add_component(alarm)
    cal.add_component(ev)
    return cal.to_ical()


def peer_files(ds: Dataset) -> list[tuple[str, bytes]]:
    """(href, ics) for every bench event, computed once per dataset."""
    if "files" not in ds._ics_cache:
        stamp = dt.datetime.combine(ds.today, dt.time(6, 0), dt.UTC)
        ds._ics_cache["files"] = [(e.href, event_ics(e, ds.today, stamp)) for e in ds.bench_events]
    return ds._ics_cache["files"]
