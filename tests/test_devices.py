"""Issue 11: per-device app passwords (`caldav password add/list/revoke`). Each
records its last use; revoking one fails it at once over CalDAV, also within
the login cache period, and never affects the user's other devices."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from crm_model.db import make_engine, make_session_factory
from crm_model.errors import NotFoundError
from crm_model.services import devices as device_service
from tests import dav
from tests.conftest import Crm
from tests.factories import ALICE, BOB, activity, soon, user

CAL = f"/{ALICE}/crm/"
IPHONE = "Patricia's iPhone"


def _sync(client, token: str = "") -> dav.Multistatus:
    name = "04-sync-collection.xml" if token else "04b-sync-collection-initial.xml"
    return dav.parse(dav.request(client, "REPORT", CAL, dav.body(name, SYNC_TOKEN=token)))


def _add(crm: Crm, email: str, label: str) -> str:
    return json.loads(crm.run("caldav", "password", "add", email, "--label", label, "--json").stdout)["password"]


def _devices(crm: Crm, email: str = ALICE) -> dict[str, dict]:
    return {d["label"]: d for d in json.loads(crm.run("caldav", "password", "list", email, "--json").stdout)}


@pytest.fixture
def alice(crm: Crm) -> str:
    """Alice with three meetings, CalDAV enabled; her first device's password."""
    crm.load({"users": [user(ALICE), user(BOB)],
              "activities": [activity(f"m-{i}", ALICE, soon(i + 1)) for i in range(3)]})
    return crm.enable(ALICE)


def test_cli_adds_lists_and_revokes_devices_by_label_and_by_id(alice, crm):
    added = json.loads(crm.run("caldav", "password", "add", ALICE, "--label", IPHONE, "--json").stdout)
    crm.run("caldav", "password", "add", ALICE, "--label", "Laptop")

    devices = _devices(crm)
    assert list(devices) == ["first device", IPHONE, "Laptop"]
    assert added["login"] == ALICE and added["device"]["id"] == devices[IPHONE]["id"]
    assert all(d["revoked_at"] is None and d["last_used_at"] is None for d in devices.values())
    assert added["password"] not in crm.run("caldav", "password", "list", ALICE).stdout  # shown once only

    crm.run("caldav", "password", "revoke", ALICE, IPHONE)
    crm.run("caldav", "password", "revoke", ALICE, str(devices["Laptop"]["id"]))

    after = _devices(crm)
    assert after[IPHONE]["revoked_at"] and after["Laptop"]["revoked_at"]
    assert after["first device"]["revoked_at"] is None
    assert "revoked" in crm.run("caldav", "password", "list", ALICE).stdout


def test_cli_refuses_unknown_device_duplicate_label_and_unknown_user(alice, crm):
    crm.run("caldav", "password", "add", ALICE, "--label", IPHONE)

    assert "no device" in crm.run("caldav", "password", "revoke", ALICE, "Nokia", expect=1).stderr
    assert "already has" in crm.run("caldav", "password", "add", ALICE, "--label", IPHONE, expect=1).stderr
    assert "no user" in crm.run("caldav", "password", "list", "nobody@example.com", expect=1).stderr
    assert "no device" in crm.run("caldav", "password", "revoke", BOB, "first device", expect=1).stderr


def test_revoked_password_gets_401_at_once_even_right_after_a_cached_login(alice, crm, server):
    iphone_password = _add(crm, ALICE, IPHONE)
    with server.client(ALICE, iphone_password) as iphone:
        assert _sync(iphone).hrefs(200)  # the login is now in the server's cache

        crm.run("caldav", "password", "revoke", ALICE, IPHONE)

        response = dav.request(iphone, "REPORT", CAL, dav.body("04b-sync-collection-initial.xml"))
        assert response.status_code == 401
        assert dav.request(iphone, "PROPFIND", CAL, dav.body("04a-propfind-calendar-ctag.xml"),
                           depth="0").status_code == 401


def test_other_device_of_the_same_user_keeps_syncing_after_a_revocation(alice, crm, server):
    iphone_password = _add(crm, ALICE, IPHONE)
    with server.client(ALICE, alice) as laptop, server.client(ALICE, iphone_password) as iphone:
        token = _sync(laptop).sync_token
        _sync(iphone)

        crm.run("caldav", "password", "revoke", ALICE, IPHONE)
        crm.load({"activities": [activity("m-new", ALICE, soon(5))]})

        changed = _sync(laptop, token)
        assert len(changed.hrefs(200)) == 1
        assert _sync(laptop, changed.sync_token).hrefs() == set()


def test_last_use_is_recorded_with_the_user_agent_and_the_address(alice, crm, server):
    with server.client(ALICE, alice) as phone:
        _sync(phone)

    first = _devices(crm)["first device"]
    assert first["last_used_at"] is not None
    assert first["last_user_agent"] == dav.IOS_HEADERS["User-Agent"]
    assert first["last_address"] == "127.0.0.1"
    listing = crm.run("caldav", "password", "list", ALICE).stdout
    assert "dataaccessd" in listing and "127.0.0.1" in listing


def test_new_device_password_opens_caldav_alongside_the_first(alice, crm, server):
    iphone_password = _add(crm, ALICE, IPHONE)

    with server.client(ALICE, iphone_password) as iphone, server.client(ALICE, alice) as laptop:
        assert _sync(iphone).hrefs(200) == _sync(laptop).hrefs(200)
    assert _devices(crm)[IPHONE]["last_used_at"] is not None


@pytest.fixture
def decoy(alice: str, crm: Crm) -> dict[str, int]:
    """Alice's "Laptop" and a device labelled with the Laptop's id: the ids of both and of the first device."""
    _add(crm, ALICE, "Laptop")
    laptop = _devices(crm)["Laptop"]["id"]
    _add(crm, ALICE, str(laptop))
    devices = _devices(crm)
    return {"first": devices["first device"]["id"], "laptop": laptop, "decoy": devices[str(laptop)]["id"]}


def _revoked(crm: Crm) -> set[int]:
    return {d["id"] for d in _devices(crm).values() if d["revoked_at"]}


def test_hash_or_id_prefix_revokes_by_id_even_when_a_label_is_that_number(decoy, crm):
    crm.run("caldav", "password", "revoke", ALICE, f"#{decoy['laptop']}")
    assert _revoked(crm) == {decoy["laptop"]}

    crm.run("caldav", "password", "revoke", ALICE, f"id:{decoy['decoy']}")
    assert _revoked(crm) == {decoy["laptop"], decoy["decoy"]}
    assert "no device with the id" in crm.run("caldav", "password", "revoke", ALICE, "#999999", expect=1).stderr


def test_bare_number_is_the_label_of_an_active_device_first_and_only_then_an_id(decoy, crm):
    number = str(decoy["laptop"])

    crm.run("caldav", "password", "revoke", ALICE, number)
    assert _revoked(crm) == {decoy["decoy"]}  # the device labelled with the number, not the Laptop

    crm.run("caldav", "password", "revoke", ALICE, number)  # no active device has that label now
    assert _revoked(crm) == {decoy["decoy"], decoy["laptop"]}
    assert "LABEL-or-ID" in crm.run("caldav", "password", "revoke", "--help").stdout


def test_revoke_by_device_id_as_the_admin_page_does_never_reads_the_id_as_a_label(decoy, crm):
    engine = make_engine(crm.database_url)
    now = datetime.now(UTC)
    try:
        with make_session_factory(engine).begin() as session:
            revoked = device_service.revoke_device(session, email=ALICE, device_id=decoy["laptop"], now=now)
            assert revoked.label == "Laptop"
            with pytest.raises(ValueError):
                device_service.revoke_device(session, email=ALICE, label="Laptop", device_id=decoy["laptop"],
                                             now=now)
            with pytest.raises(NotFoundError):
                device_service.revoke_device(session, email=BOB, device_id=decoy["first"], now=now)
    finally:
        engine.dispose()
    assert _revoked(crm) == {decoy["laptop"]}
