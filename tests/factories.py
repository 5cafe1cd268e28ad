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


# --- REPORT bodies for whole-calendar checks (issue 9: no event can break a calendar) ---

_CALDAV_HEAD = '<?xml version="1.0" encoding="utf-8"?>\n'
_RANGE = '<C:time-range start="{start}" end="{end}"/>'


def sync_body(token: str = "", data: bool = True) -> str:
    """A sync-collection asking for ETags (and the event texts with ``data``)."""
    prop = "<D:getetag/>" + ("<C:calendar-data/>" if data else "")
    return (f'{_CALDAV_HEAD}<D:sync-collection xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">'
            f"<D:sync-token>{token}</D:sync-token><D:sync-level>1</D:sync-level>"
            f"<D:prop>{prop}</D:prop></D:sync-collection>")


def query_body(start: str = "19000101T000000Z", end: str = "22010101T000000Z", *, expand: bool = False,
               summary: str | None = None) -> str:
    """A calendar-query of VEVENTs in [start, end) with their texts; ``expand`` asks for
    expanded data, ``summary`` adds a SUMMARY text-match (both answered by Radicale)."""
    data = f'<C:calendar-data><C:expand start="{start}" end="{end}"/></C:calendar-data>' if expand \
        else "<C:calendar-data/>"
    match = (f'<C:prop-filter name="SUMMARY"><C:text-match>{summary}</C:text-match></C:prop-filter>'
             if summary is not None else "")
    return (f'{_CALDAV_HEAD}<C:calendar-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">'
            f"<D:prop><D:getetag/>{data}</D:prop><C:filter><C:comp-filter name=\"VCALENDAR\">"
            f'<C:comp-filter name="VEVENT">{_RANGE.format(start=start, end=end)}{match}'
            "</C:comp-filter></C:comp-filter></C:filter></C:calendar-query>")


def free_busy_body(start: str = "19000101T000000Z", end: str = "22010101T000000Z") -> str:
    """A free-busy-query over [start, end) (RFC 4791 7.10)."""
    return (f'{_CALDAV_HEAD}<C:free-busy-query xmlns:C="urn:ietf:params:xml:ns:caldav">'
            f"{_RANGE.format(start=start, end=end)}</C:free-busy-query>")
