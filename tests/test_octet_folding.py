"""Issue 10 "folding inside a UTF-8 character", against a real server on SQLite and PostgreSQL:
RFC 5545 3.1 folds at octets, so a PUT whose DESCRIPTION is folded between the two octets of
"ü" is stored (it got 400 "not UTF-8 text"), and the verbatim round trip still holds.

`crm-caldav import` takes CRM JSON only (server/cli.py), no iCalendar: PUT is the one
iCalendar text path.
"""

from __future__ import annotations

import pytest

from tests import dav
from tests.factories import ALICE, user, vevent

pytestmark = pytest.mark.e2e
CAL = f"/{ALICE}/crm/"
GREETING = "Grüße aus München: 3 € für den Kaffee"


def _split_fold_body(uid: str) -> bytes:
    """An event whose DESCRIPTION is folded between 0xC3 and 0xBC ("ü"), and inside "€" with LF + tab."""
    body = vevent(uid, extra=f"DESCRIPTION:{GREETING}").encode("utf-8")
    body = body.replace("ü".encode(), b"\xc3\r\n \xbc", 1)
    return body.replace("€".encode(), b"\xe2\x82\n\t\xac", 1)


def _moved(body: bytes) -> bytes:
    """``body`` with each fold moved to just before the character it split."""
    return body.replace(b"\xc3\r\n \xbc", b"\r\n \xc3\xbc").replace(b"\xe2\x82\n\t\xac", b"\n\t\xe2\x82\xac")


@pytest.fixture
def client(crm, server):
    crm.load({"users": [user(ALICE, timezone_name="Europe/Berlin")]})
    password = crm.enable(ALICE)
    with server.client(ALICE, password) as http:
        yield http


def _description(crm, uid: str) -> str | None:
    return next(a for a in crm.export()["activities"] if a["uid"] == uid)["description"]


def test_put_folded_inside_a_character_is_stored_with_the_whole_text(client, crm):
    body = _split_fold_body("fold-1")
    put = client.put(f"{CAL}fold-1.ics", content=body)
    assert put.status_code == 201, put.text
    assert _description(crm, "fold-1") == GREETING


def test_put_folded_inside_a_character_serves_the_clients_octets_with_the_fold_moved(client, crm):
    body = _split_fold_body("fold-2")
    put = client.put(f"{CAL}fold-2.ics", content=body)
    assert put.status_code == 201 and "ETag" not in put.headers  # not the very bytes sent: fetch them
    get = client.get(f"{CAL}fold-2.ics")
    assert get.content == _moved(body) and get.headers["ETag"]
    multiget = dav.parse(dav.request(client, "REPORT", CAL, dav.multiget_body([f"{CAL}fold-2.ics"])))
    served = multiget.responses[f"{CAL}fold-2.ics"]
    assert served["etag"] == get.headers["ETag"]
    assert served["calendar_data"] == _moved(body).decode("utf-8").replace("\r\n", "\n")  # XML reads CRLF as LF


def test_served_version_put_back_is_kept_byte_for_byte_with_a_strong_etag(client, crm):
    client.put(f"{CAL}fold-3.ics", content=_split_fold_body("fold-3"))
    fetched = client.get(f"{CAL}fold-3.ics")
    again = client.put(f"{CAL}fold-3.ics", content=fetched.content, headers={"If-Match": fetched.headers["ETag"]})
    assert again.status_code == 204 and again.headers.get("ETag")
    get = client.get(f"{CAL}fold-3.ics")
    assert get.content == fetched.content and get.headers["ETag"] == again.headers["ETag"]


def test_put_not_utf8_once_unfolded_is_refused_and_nothing_is_stored(client, crm):
    body = vevent("latin-1", extra="DESCRIPTION:Gr\u00fc\u00dfe").encode("latin-1")
    put = client.put(f"{CAL}latin-1.ics", content=body)
    assert put.status_code == 400 and "not UTF-8" in put.text
    assert [a for a in crm.export()["activities"] if a["uid"] == "latin-1"] == []
