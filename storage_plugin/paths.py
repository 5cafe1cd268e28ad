"""Our URL scheme: "/<login>/" is the principal and home, "/<login>/crm/" the one calendar.

Layer: storage_plugin (pure).
"""

from __future__ import annotations

CALENDAR_NAME = "crm"


def split(path: str) -> list[str]:
    """A sanitized Radicale path as its segments ("/a/crm/x.ics" -> ["a", "crm", "x.ics"])."""
    return [part for part in path.strip("/").split("/") if part]


def calendar_path(login: str) -> str:
    """The calendar collection's path without slashes, as Radicale keeps it."""
    return f"{login}/{CALENDAR_NAME}"
