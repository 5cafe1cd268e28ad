"""Issue 9: SQLite and PostgreSQL store exactly the same values.

An export holding the longest and strangest values the limits accept (column
lengths, characters outside the BMP, tabs and line breaks, years at the edges of
1900..2200 in zones far from UTC, reminders of a year, a thousand participants)
imports into the other database unchanged, both ways; and values over a limit are
refused by import on both databases alike, naming the place, with nothing
imported (crm_model.services.field_limits). The cross-database half needs
CRM_CALDAV_TEST_DATABASE_URL.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import POSTGRES_URL, Crm, _postgres_database
from tests.factories import ALICE, BOB, user

WIDE = "\U0001F4DE\U00020000é"  # two non-BMP characters and a BMP one: 3 characters
EAST, WEST = "Pacific/Kiritimati", "Pacific/Pago_Pago"  # UTC+14 and UTC-11


def _fill(length: int, suffix: str = "") -> str:
    """``length`` characters of mixed width, ending in ``suffix``."""
    body = (WIDE * length)[:length - len(suffix)]
    return body + suffix


def edge_document() -> dict[str, Any]:
    """Every String(n) column an import fills at its length, and the edge dates and numbers."""
    long_email = f"{'p' * 308}@example.com"  # 320 characters
    participants: list[dict[str, Any]] = [{"contact": "c" * 64}, {"lead": "l" * 64},
                                          {"email": long_email, "name": _fill(200)}]
    participants += [{"email": f"guest{i}@example.com", "name": f"Guest {WIDE} {i}"} for i in range(1000)]
    edge = {"owner": ALICE, "type": "t" * 32, "all_day": False, "private": True,
            "location": _fill(5000, "\tend"), "description": f"line one\nline two\t{WIDE * 2000}"}
    return {
        "users": [{**user(f"{'u' * 308}@example.com", _fill(200), EAST)}, user(ALICE, _fill(200), EAST),
                  user(BOB, "Bob", WEST)],
        "contacts": [{"id": "c" * 64, "name": _fill(200), "email": f"{'c' * 308}@example.com"}],
        "leads": [{"id": "l" * 64, "name": _fill(200), "email": f"{'l' * 308}@example.com"}],
        "activities": [
            {**edge, "id": "a" * 64, "title": _fill(500), "start": "2201-01-01T12:00:00+14:00",
             "end": "2201-01-01T14:00:00+14:00", "reminder_minutes": 527040, "participants": participants,
             "uid": _fill(255), "href": "h" * 251 + ".ics"},
            {**edge, "id": "first", "owner": BOB, "title": WIDE, "start": "1899-12-31T13:00:00-11:00",
             "end": "1899-12-31T14:00:00-11:00", "reminder_minutes": -527040, "participants": []},
            {**edge, "id": "last-day", "owner": BOB, "title": "", "start": "2200-12-31", "end": "2201-01-01",
             "all_day": True, "reminder_minutes": 0, "participants": []},
        ],
    }


def _comparable(export: dict[str, Any]) -> dict[str, Any]:
    """An export without what an import sets itself (its time, and the CalDAV state)."""
    for item in export["activities"]:
        item.pop("created_at"), item.pop("updated_at")
    for item in export["users"]:
        item.pop("caldav")
    return export


@pytest.fixture
def sqlite_crm(tmp_path: Path) -> Crm:
    return Crm(f"sqlite:///{tmp_path / 'edge.db'}")


@pytest.fixture
def postgres_crm() -> Iterator[Crm]:
    if not POSTGRES_URL:
        pytest.skip("PostgreSQL not configured (CRM_CALDAV_TEST_DATABASE_URL)")
    yield from (Crm(url) for url in _postgres_database())


@pytest.mark.postgres
@pytest.mark.parametrize("direction", ["SQLite to PostgreSQL", "PostgreSQL to SQLite"])
def test_the_longest_and_strangest_accepted_values_move_between_databases_unchanged(
        sqlite_crm, postgres_crm, direction):
    source, target = (sqlite_crm, postgres_crm) if direction.startswith("SQLite") else (postgres_crm, sqlite_crm)
    source.load(edge_document())
    exported = source.export()
    assert len(exported["activities"]) == 3

    target.run("import", "-", input=json.dumps(exported))

    assert _comparable(target.export()) == _comparable(exported)


def test_the_edge_document_is_stored_as_given(crm):
    crm.load(edge_document())
    by_id = {a["id"]: a for a in crm.export()["activities"]}
    assert by_id["a" * 64]["title"] == _fill(500) and len(by_id["a" * 64]["participants"]) == 1003
    assert datetime.fromisoformat(by_id["first"]["start"]) == datetime(1900, 1, 1, tzinfo=UTC)
    assert by_id["last-day"]["end"] == "2201-01-01"


# what is over a limit -> (a change of the edge document, the place the refusal names)
OVER = {
    "title of 501": (lambda d: d["activities"][0].update(title=_fill(501)), "activities[0].title: 501 characters"),
    "uid of 256": (lambda d: d["activities"][0].update(uid=_fill(256)), "activities[0].uid: 256"),
    "href of 256": (lambda d: d["activities"][0].update(href="h" * 252 + ".ics"), "activities[0].href: 256"),
    "type of 33": (lambda d: d["activities"][1].update(type="t" * 33), "activities[1].type: 33"),
    "participant e-mail of 321": (lambda d: d["activities"][0]["participants"][2].update(
        email="p" + d["activities"][0]["participants"][2]["email"]), "participants[2].email: 321"),
    "participant name of 201": (lambda d: d["activities"][0]["participants"][2].update(name=_fill(201)),
                                "participants[2].name: 201"),
    "contact name of 201": (lambda d: d["contacts"][0].update(name=_fill(201)), "contacts[0].name: 201"),
    "lead id of 65": (lambda d: d["leads"][0].update(id="l" * 65), "leads[0].id: 65"),
    "user name of 201": (lambda d: d["users"][1].update(name=_fill(201)), "users[1].name: 201"),
    "NUL in a description": (lambda d: d["activities"][2].update(description="a\x00b"),
                             "activities[2].description: contains the control character U+0000"),
    "lone surrogate in a title": (lambda d: d["activities"][2].update(title="a\ud800b"), "U+D800"),
    "start in 1899 (UTC)": (lambda d: d["activities"][1].update(start="1899-12-31T12:59:59-11:00"),
                            "activities[1].start: out of range"),
    "end in 2201 (UTC)": (lambda d: d["activities"][2].update(end="2201-01-02"), "activities[2].end: out of range"),
    "year 1 in a far zone": (lambda d: d["activities"][0].update(start="0001-01-01T00:00:00+14:00"),
                             "activities[0].start: out of range"),
    "reminder of 366 days and a minute": (lambda d: d["activities"][1].update(reminder_minutes=527041),
                                          "activities[1].reminder_minutes"),
    "reminder beyond a 32-bit integer": (lambda d: d["activities"][1].update(reminder_minutes=2**40),
                                         "activities[1].reminder_minutes"),
}


@pytest.mark.parametrize("case", OVER)
def test_import_refuses_a_value_over_a_limit_naming_the_place_and_imports_nothing(crm, case):
    crm.load({"users": [user(ALICE)]})
    before = crm.export()
    document = edge_document()
    change, place = OVER[case]
    change(document)

    result = crm.run("import", "-", input=json.dumps(document), expect=1)

    assert place in result.stderr
    assert crm.export() == before
