"""Issue 2, done-when 2: python-caldav discovers, lists, creates, edits and deletes."""

from __future__ import annotations

import caldav
import pytest

from tests.factories import ALICE, BOB, activity, soon, user, vevent

pytestmark = pytest.mark.e2e


@pytest.fixture
def alice(crm, server):
    crm.load({
        "users": [user(ALICE, "Alice Archer"), user(BOB)],
        "activities": [
            activity("a-1", ALICE, soon(2), title="Product demo"),
            activity("a-2", ALICE, soon(5), title="Pricing call", type="call"),
            activity("b-1", BOB, soon(3), title="Bob's meeting"),
        ],
    })
    password = crm.enable(ALICE)
    return caldav.DAVClient(url=server.url, username=ALICE, password=password)


def test_discovers_calendar_named_after_email_through_well_known(alice):
    calendars = alice.principal().calendars()
    assert [c.get_display_name() for c in calendars] == [ALICE]
    assert str(calendars[0].url).endswith(f"/{ALICE}/crm/")


def test_lists_only_the_users_activities(alice):
    calendar = alice.principal().calendars()[0]
    titles = sorted(e.icalendar_component["SUMMARY"] for e in calendar.events())
    assert titles == ["Pricing call", "Product demo"]


def test_create_edit_delete_reach_the_crm(alice, crm):
    calendar = alice.principal().calendars()[0]
    event = calendar.save_event(vevent("NEW-EVENT-1", summary="Lunch with Kenji"))
    created = [a for a in crm.export(ALICE)["activities"] if a["uid"] == "NEW-EVENT-1"]
    assert len(created) == 1 and created[0]["source"] == "caldav"
    assert created[0]["title"] == "Lunch with Kenji" and created[0]["href"] == "NEW-EVENT-1.ics"

    event.load()
    event.icalendar_component["SUMMARY"] = "Lunch with Kenji and Ana"
    event.save()
    edited = [a for a in crm.export(ALICE)["activities"] if a["uid"] == "NEW-EVENT-1"]
    assert edited[0]["title"] == "Lunch with Kenji and Ana"

    event.delete()
    assert not [a for a in crm.export(ALICE)["activities"] if a["uid"] == "NEW-EVENT-1"]
