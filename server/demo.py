"""A realistic demo CRM for `crm-caldav serve --demo` (deterministic for a given day).

Layer: server.
"""

from __future__ import annotations

import random
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

DEMO_ADMIN = "admin@zillum.com"  # an admin page login made by `serve --demo`
DEMO_USERS = [
    ("patriciab@zillum.com", "Patricia Boyle", "Asia/Tokyo"),
    ("marco.rossi@zillum.com", "Marco Rossi", "Europe/Rome"),
    ("dana.king@zillum.com", "Dana King", "America/New_York"),
]
_FIRST = ["Kenji", "Ana", "Liam", "Sofia", "Noah", "Mia", "Ravi", "Chloe", "Omar", "Hana",
          "Lucas", "Emma", "Yuki", "Diego", "Sara", "Jonas", "Aisha", "Tom", "Nina", "Ivan"]
_LAST = ["Sato", "Ruiz", "Walsh", "Conti", "Meyer", "Nakamura", "Patel", "Dubois", "Haddad", "Kim"]
_COMPANIES = ["Acme", "Globex", "Initech", "Umbrella", "Hooli", "Vandelay", "Stark", "Wayne"]
_MEETINGS = ["Product demo", "Quarterly review", "Contract negotiation", "Kick-off", "Onboarding",
             "Renewal discussion", "Pricing workshop", "Technical deep dive"]
_CALLS = ["Follow-up call", "Discovery call", "Check-in call", "Reference call"]


def demo_data(today: date, seed: int = 7) -> dict[str, Any]:
    """Users, contacts, leads and ~300 activities around ``today`` in the import format."""
    rng = random.Random(seed)
    contacts = [_person(rng, f"c-{i}", i) for i in range(1, 25)]
    leads = [_person(rng, f"l-{i}", i + 40) for i in range(1, 13)]
    activities: list[dict[str, Any]] = []
    for owner, _, zone in DEMO_USERS:
        for _ in range(100):
            activities.append(_activity(rng, owner, ZoneInfo(zone), today, contacts, leads, len(activities) + 1))
    return {
        "users": [{"email": e, "name": n, "timezone": z} for e, n, z in DEMO_USERS],
        "contacts": contacts,
        "leads": leads,
        "activities": activities,
    }


def _person(rng: random.Random, person_id: str, index: int) -> dict[str, str]:
    first, last = _FIRST[index % len(_FIRST)], _LAST[(index * 7) % len(_LAST)]
    company = rng.choice(_COMPANIES).lower()
    return {"id": person_id, "name": f"{first} {last}", "email": f"{first.lower()}.{last.lower()}@{company}.example"}


def _activity(rng: random.Random, owner: str, zone: ZoneInfo, today: date,
              contacts: list[dict[str, str]], leads: list[dict[str, str]], number: int) -> dict[str, Any]:
    day = today + timedelta(days=rng.randint(-45, 90))
    is_call = rng.random() < 0.35
    start = datetime.combine(day, time(rng.choice([8, 9, 10, 11, 13, 14, 15, 16]), rng.choice([0, 30])), zone)
    minutes = 30 if is_call else rng.choice([30, 60, 90])
    people = [{"contact": c["id"]} for c in rng.sample(contacts, rng.randint(0, 2))]
    people += [{"lead": lead["id"]} for lead in rng.sample(leads, rng.randint(0, 1))]
    company = rng.choice(_COMPANIES)
    return {
        "id": f"a-{number}", "owner": owner, "type": "call" if is_call else "meeting",
        "title": f"{rng.choice(_CALLS if is_call else _MEETINGS)} with {company}",
        "start": start.isoformat(), "end": (start + timedelta(minutes=minutes)).isoformat(),
        "all_day": False, "location": None if is_call else f"{company} office",
        "description": "Agenda: goals, open questions, next steps." if rng.random() < 0.5 else None,
        "private": rng.random() < 0.05, "reminder_minutes": rng.choice([None, 10, 15, 30]),
        "participants": people,
    }
