"""Issue 11, done-when 4: `crm-caldav caldav profile EMAIL --label L` makes a new device
password and writes an Apple configuration profile holding it to standard output.

The profile parses with plistlib, its com.apple.caldav.account payload points at
CRM_CALDAV_PUBLIC_URL, its password logs in over CalDAV, and the device is listed
and revoked like any other.
"""

from __future__ import annotations

import json
import plistlib
from dataclasses import replace
from typing import Any

import httpx

from tests import dav
from tests.conftest import Crm
from tests.factories import ALICE, activity, soon, user

ACCOUNT_KEYS = {"CalDAVAccountDescription", "CalDAVHostName", "CalDAVPort", "CalDAVUseSSL",
                "CalDAVPrincipalURL", "CalDAVUsername", "CalDAVPassword"}


def _crm_at(crm: Crm, public_url: str) -> Crm:
    """Alice with one meeting, CalDAV enabled, and the CLI told ``public_url``."""
    crm.load({"users": [user(ALICE)], "activities": [activity("m-1", ALICE, soon(1))]})
    crm.enable(ALICE)
    return replace(crm, env={"CRM_CALDAV_PUBLIC_URL": public_url})


def _account(crm: Crm, label: str = "iPhone") -> dict[str, Any]:
    profile = plistlib.loads(crm.run("caldav", "profile", ALICE, "--label", label).stdout_bytes)
    [account] = profile["PayloadContent"]
    return account


def _devices(crm: Crm) -> dict[str, dict[str, Any]]:
    return {d["label"]: d for d in json.loads(crm.run("caldav", "password", "list", ALICE, "--json").stdout)}


def test_profile_on_stdout_holds_the_caldav_payload_for_the_public_url(crm, server):
    account = _account(_crm_at(crm, server.url + "/"))

    assert ACCOUNT_KEYS <= set(account)
    assert account["PayloadType"] == "com.apple.caldav.account"
    assert account["CalDAVHostName"] == "127.0.0.1"
    assert account["CalDAVPort"] == int(server.url.rsplit(":", 1)[1])
    assert account["CalDAVUseSSL"] is False
    assert account["CalDAVPrincipalURL"] == f"{server.url}/{ALICE}/"
    assert account["CalDAVUsername"] == ALICE
    assert len(account["CalDAVPassword"]) >= 16


def test_profiles_password_logs_in_over_caldav_and_its_device_is_listed(crm, server):
    cli = _crm_at(crm, server.url + "/")
    account = _account(cli, label="Patricia's iPhone")

    with httpx.Client(auth=(account["CalDAVUsername"], account["CalDAVPassword"]), timeout=30) as phone:
        listing = dav.parse(dav.request(phone, "PROPFIND", f"{account['CalDAVPrincipalURL']}crm/",
                                        dav.body("04a-propfind-calendar-ctag.xml"), depth="0"))
    assert listing.hrefs(200) == {f"/{ALICE}/crm/"}
    device = _devices(cli)["Patricia's iPhone"]
    assert device["revoked_at"] is None and device["last_used_at"] is not None
    assert account["CalDAVPassword"] not in cli.run("caldav", "password", "list", ALICE).stdout


def test_https_public_url_gives_port_443_and_ssl(crm):
    account = _account(_crm_at(crm, "https://calendar.example.com/"))

    assert (account["CalDAVHostName"], account["CalDAVPort"], account["CalDAVUseSSL"]) == (
        "calendar.example.com", 443, True)
    assert account["CalDAVPrincipalURL"] == f"https://calendar.example.com/{ALICE}/"


def test_each_profile_is_a_new_device_and_a_taken_label_is_refused(crm):
    cli = _crm_at(crm, "https://calendar.example.com/")
    first, second = _account(cli, "iPhone"), _account(cli, "iPad")

    assert first["CalDAVPassword"] != second["CalDAVPassword"]
    assert list(_devices(cli)) == ["first device", "iPhone", "iPad"]
    refused = cli.run("caldav", "profile", ALICE, "--label", "iPhone", expect=1)
    assert "already has" in refused.stderr and refused.stdout_bytes == b""


def test_bad_public_url_or_unknown_user_writes_nothing_and_adds_no_device(crm):
    cli = _crm_at(crm, "calendar.example.com")

    bad_url = cli.run("caldav", "profile", ALICE, "--label", "iPhone", expect=1)
    assert "CRM_CALDAV_PUBLIC_URL" in bad_url.stderr and bad_url.stdout_bytes == b""
    assert list(_devices(cli)) == ["first device"]
    unknown = cli.run("caldav", "profile", "nobody@example.com", "--label", "iPhone", expect=1)
    assert "no user" in unknown.stderr and unknown.stdout_bytes == b""
