"""Issue 10: UID and href are unique per calendar, not across the server
(RFC 4791 5.3.2.1). Two colleagues keep the same invitation, same UID and
same file name, in their own calendars; no answer names another calendar."""

from __future__ import annotations

import json

import pytest

from tests import dav
from tests.factories import ALICE, BOB, user, vevent

pytestmark = pytest.mark.e2e
INVITATION = "040000008200E00074C5B7101A82E008-shared-invitation"
FILE = f"{INVITATION}.ics"


def _put(client, owner: str, name: str, body: str, **headers: str):
    return client.put(f"/{owner}/crm/{name}", content=body.encode(),
                      headers={"Content-Type": "text/calendar", **headers})


@pytest.fixture
def colleagues(crm, server):
    crm.load({"users": [user(ALICE), user(BOB)]})
    alice = server.client(ALICE, crm.enable(ALICE, "alice-pass"))
    bob = server.client(BOB, crm.enable(BOB, "bob-pass"))
    with alice, bob:
        yield alice, bob


def test_two_colleagues_keep_the_same_invitation_in_their_own_calendars(colleagues, crm):
    alice, bob = colleagues
    assert _put(alice, ALICE, FILE, vevent(INVITATION, summary="Alice's copy"),
                **{"If-None-Match": "*"}).status_code == 201
    second = _put(bob, BOB, FILE, vevent(INVITATION, summary="Bob's copy"), **{"If-None-Match": "*"})

    assert second.status_code == 201, second.text
    assert "Alice's copy" in alice.get(f"/{ALICE}/crm/{FILE}").text
    assert "Bob's copy" in bob.get(f"/{BOB}/crm/{FILE}").text
    exported = {(a["owner"], a["uid"], a["href"]) for a in crm.export()["activities"]}
    assert exported == {(ALICE, INVITATION, FILE), (BOB, INVITATION, FILE)}


def test_each_colleague_edits_and_deletes_only_their_own_copy(colleagues):
    alice, bob = colleagues
    _put(alice, ALICE, FILE, vevent(INVITATION, summary="Alice's copy"))
    _put(bob, BOB, FILE, vevent(INVITATION, summary="Bob's copy"))

    assert _put(bob, BOB, FILE, vevent(INVITATION, summary="Bob moved it")).status_code == 204
    assert bob.delete(f"/{BOB}/crm/{FILE}").status_code in (200, 204)

    assert "Alice's copy" in alice.get(f"/{ALICE}/crm/{FILE}").text
    assert bob.get(f"/{BOB}/crm/{FILE}").status_code == 404
    initial = dav.parse(dav.request(alice, "REPORT", f"/{ALICE}/crm/", dav.body("04b-sync-collection-initial.xml")))
    assert initial.hrefs(200) == {f"/{ALICE}/crm/{FILE}"}


def test_a_uid_used_twice_in_one_calendar_is_refused_without_naming_other_calendars(colleagues):
    alice, bob = colleagues
    _put(alice, ALICE, FILE, vevent(INVITATION, summary="Confidential board meeting"))
    _put(bob, BOB, FILE, vevent(INVITATION))

    again = _put(bob, BOB, "other-name.ics", vevent(INVITATION))

    assert again.status_code == 409 and "no-uid-conflict" in again.text
    assert "this calendar" in again.text
    for secret in (ALICE, "alice", "Confidential", "another calendar"):
        assert secret not in again.text


def test_an_import_of_an_export_keeps_shared_invitations(colleagues, crm):
    alice, bob = colleagues
    _put(alice, ALICE, FILE, vevent(INVITATION))
    _put(bob, BOB, FILE, vevent(INVITATION))
    exported = crm.export()
    crm.load({"deleted_activities": [a["id"] for a in exported["activities"]]})

    crm.load({"users": exported["users"], "activities": exported["activities"]})  # created anew

    again = {(a["id"], a["owner"], a["uid"], a["href"]) for a in crm.export()["activities"]}
    assert again == {(a["id"], a["owner"], INVITATION, FILE) for a in exported["activities"]}
    assert len(again) == 2


def test_an_import_refuses_a_uid_taken_in_the_same_calendar_only(colleagues, crm):
    alice, _ = colleagues
    _put(alice, ALICE, FILE, vevent(INVITATION))
    for_bob = {"id": "bob-1", "owner": BOB, "title": "Same UID, other calendar", "uid": INVITATION,
               "start": "2026-11-25T10:00:00+00:00", "end": "2026-11-25T11:00:00+00:00"}
    crm.load({"activities": [for_bob]})

    refused = crm.run("import", "-", expect=1, input=json.dumps({"activities": [
        {**for_bob, "id": "alice-2", "owner": ALICE, "href": "elsewhere.ics"}]}))
    assert "activities[0].uid: already used by activity" in refused.stderr
