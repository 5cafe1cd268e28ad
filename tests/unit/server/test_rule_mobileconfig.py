"""Issue 11, done-when 2: the configuration profile parses with plistlib and holds exactly the CalDAV keys."""

from __future__ import annotations

import plistlib
import uuid

import pytest

from server.profiles import CONTENT_TYPE, mobileconfig

ACCOUNT_KEYS = {
    "CalDAVAccountDescription", "CalDAVHostName", "CalDAVPort", "CalDAVUseSSL", "CalDAVPrincipalURL",
    "CalDAVUsername", "CalDAVPassword",
}
PAYLOAD_KEYS = {"PayloadType", "PayloadIdentifier", "PayloadUUID", "PayloadVersion", "PayloadDisplayName"}


def _parse(public_url: str) -> dict:
    return plistlib.loads(mobileconfig(public_url=public_url, email="patriciab@zillum.com",
                                       password="s3cret-app-password", label="Patricia's iPhone"))


def test_profile_holds_one_caldav_payload_with_exactly_the_caldav_and_payload_keys():
    profile = _parse("https://cal.example.com/")
    assert profile["PayloadType"] == "Configuration" and profile["PayloadVersion"] == 1
    assert set(profile) == {"PayloadContent", "PayloadDisplayName", "PayloadDescription", "PayloadIdentifier",
                            "PayloadType", "PayloadUUID", "PayloadVersion"}
    [account] = profile["PayloadContent"]
    assert set(account) == ACCOUNT_KEYS | PAYLOAD_KEYS
    assert account["PayloadType"] == "com.apple.caldav.account" and account["PayloadVersion"] == 1
    assert account["PayloadIdentifier"].startswith(profile["PayloadIdentifier"])
    uuid.UUID(account["PayloadUUID"]), uuid.UUID(profile["PayloadUUID"])
    assert account["PayloadUUID"] != profile["PayloadUUID"]


def test_profile_values_come_from_the_https_public_url_and_the_device_password():
    [account] = _parse("https://cal.example.com/")["PayloadContent"]
    assert {k: account[k] for k in ACCOUNT_KEYS} == {
        "CalDAVAccountDescription": "CRM calendar (patriciab@zillum.com)",
        "CalDAVHostName": "cal.example.com",
        "CalDAVPort": 443,
        "CalDAVUseSSL": True,
        "CalDAVPrincipalURL": "https://cal.example.com/patriciab@zillum.com/",
        "CalDAVUsername": "patriciab@zillum.com",
        "CalDAVPassword": "s3cret-app-password",
    }


def test_profile_takes_port_plain_http_and_path_prefix_from_the_public_url():
    [account] = _parse("http://10.0.0.5:5232/caldav")["PayloadContent"]
    assert (account["CalDAVHostName"], account["CalDAVPort"], account["CalDAVUseSSL"]) == ("10.0.0.5", 5232, False)
    assert account["CalDAVPrincipalURL"] == "http://10.0.0.5:5232/caldav/patriciab@zillum.com/"


def test_profile_port_is_an_integer_and_ssl_a_boolean_in_the_plist():
    text = mobileconfig(public_url="https://cal.example.com:8443/", email="a@b.example", password="p",
                        label="x").decode()
    assert "<key>CalDAVPort</key>\n\t\t\t<integer>8443</integer>" in text
    assert "<key>CalDAVUseSSL</key>\n\t\t\t<true/>" in text


def test_each_profile_has_new_uuids_so_two_devices_install_side_by_side():
    first, second = _parse("https://cal.example.com/"), _parse("https://cal.example.com/")
    assert first["PayloadUUID"] != second["PayloadUUID"]
    assert first["PayloadIdentifier"] != second["PayloadIdentifier"]


def test_profile_refuses_a_public_url_that_is_not_absolute_http():
    with pytest.raises(ValueError, match="public URL"):
        mobileconfig(public_url="cal.example.com", email="a@b.example", password="p", label="x")


def test_profile_content_type_is_apples():
    assert CONTENT_TYPE == "application/x-apple-aspen-config"
