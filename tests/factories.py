"""Small builders of CRM import documents and iCalendar bodies for tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ALICE = "alice@example.com"
BOB = "bob@example.com"
IOS_REQUESTS = Path(__file__).parent / "fixtures" / "ios-requests"


def user(email: str, name: str = "", timezone_name: str = "UTC") -> dict[str, Any]:
    return {"email": email, "name": name or email.split("@")[0].title(), "timezone": timezone_name}


def activity(activity_id: str, owner: str, start: datetime, **fields: Any) -> dict[str, Any]:
    data = {
        "id": activity_id, "owner": owner, "type": "meeting", "title": f"Meeting {activity_id}",
        "start": start.isoformat(), "end": (start + timedelta(hours=1)).isoformat(),
        "all_day": False, "location": None, "description": None, "private": False,
        "reminder_minutes": 15, "participants": [],
    }
    data.update(fields)
    return data


def soon(days: int = 3, hour: int = 10) -> datetime:
    base = datetime.now(UTC).replace(hour=hour, minute=0, second=0, microsecond=0)
    return base + timedelta(days=days)


def vevent(uid: str, start: str = "20261125T100000Z", end: str = "20261125T110000Z",
           summary: str = "Client meeting", extra: str = "") -> str:
    lines = [
        "BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//test//EN", "BEGIN:VEVENT",
        f"UID:{uid}", "DTSTAMP:20261120T100000Z", f"DTSTART:{start}", f"DTEND:{end}",
        f"SUMMARY:{summary}",
    ]
    lines += [line for line in extra.split("\n") if line]
    lines += ["END:VEVENT", "END:VCALENDAR"]
    return "\r\n".join(lines) + "\r\n"
