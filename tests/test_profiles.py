"""Issue 11, done-when 2: a client given only what a configuration profile holds discovers and syncs.

The profile is made for the test server's URL; python-caldav gets its
CalDAVUsername, CalDAVPassword and CalDAVPrincipalURL and nothing else.
"""

from __future__ import annotations

import plistlib

import caldav
import pytest

from server.profiles import mobileconfig
from tests.factories import ALICE, activity, soon, user, vevent

pytestmark = pytest.mark.e2e


@pytest.fixture
def profile_account(crm, server) -> dict:
    crm.load({"users": [user(ALICE, "Alice Archer")],
              "activities": [activity("a-1", ALICE, soon(2), title="Product demo"),
                             activity("a-2", ALICE, soon(4), title="Pricing call", type="call")]})
    password = crm.enable(ALICE, "profile-device-password")
    profile = plistlib.loads(mobileconfig(public_url=server.url + "/", email=ALICE, password=password,
                                          label="Alice's iPhone"))
    [account] = profile["PayloadContent"]
    return account


def _client(account: dict) -> caldav.DAVClient:
    return caldav.DAVClient(url=account["CalDAVPrincipalURL"], username=account["CalDAVUsername"],
                            password=account["CalDAVPassword"])


def test_client_with_only_the_profiles_credentials_and_principal_url_discovers_the_calendar(profile_account):
    calendars = _client(profile_account).principal().calendars()
    assert [c.get_display_name() for c in calendars] == [ALICE]
    titles = sorted(e.icalendar_component["SUMMARY"] for e in calendars[0].events())
    assert titles == ["Pricing call", "Product demo"]


def test_client_with_only_the_profile_syncs_by_token_and_gets_a_new_event(profile_account, crm):
    calendar = _client(profile_account).principal().calendars()[0]
    first = calendar.objects_by_sync_token(load_objects=True)
    assert len(list(first)) == 2
    crm.load({"activities": [activity("a-3", ALICE, soon(6), title="Contract signing")]})
    changed = calendar.objects_by_sync_token(sync_token=first.sync_token, load_objects=True)
    assert [o.icalendar_component["SUMMARY"] for o in changed] == ["Contract signing"]
    calendar.save_event(vevent("PROFILE-NEW-1", summary="Made on the phone"))
    assert any(a["uid"] == "PROFILE-NEW-1" for a in crm.export(ALICE)["activities"])
