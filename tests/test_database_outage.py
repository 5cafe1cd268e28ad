"""SPEC 6: a database that is down gets 503 + Retry-After, no partial write, and recovery.

PostgreSQL only: the outage is made by refusing new connections and ending the
server's existing ones, which is what a restart looks like to the server.
"""

from __future__ import annotations

import pytest

from tests.database_outages import refused_connections
from tests.factories import ALICE, activity, soon, user, vevent

pytestmark = pytest.mark.e2e


def test_outage_answers_503_and_the_server_recovers(database_url, crm, server):
    if not database_url.startswith("postgresql"):
        pytest.skip("outage simulation needs PostgreSQL")
    crm.load({"users": [user(ALICE)], "activities": [activity("a-1", ALICE, soon(1))]})
    password = crm.enable(ALICE)
    with server.client(ALICE, password) as phone:
        assert phone.request("PROPFIND", f"/{ALICE}/crm/", headers={"Depth": "0"}).status_code == 207
        with refused_connections(database_url):
            down_read = phone.request("PROPFIND", f"/{ALICE}/crm/", headers={"Depth": "0"})
            down_write = phone.put(f"/{ALICE}/crm/OUT-1.ics", content=vevent("OUT-1"))
        for response in (down_read, down_write):
            assert response.status_code == 503 and response.headers["Retry-After"] == "5"
        assert phone.request("PROPFIND", f"/{ALICE}/crm/", headers={"Depth": "0"}).status_code == 207
        assert phone.put(f"/{ALICE}/crm/OUT-2.ics", content=vevent("OUT-2")).status_code == 201
    uids = {a["uid"] for a in crm.export(ALICE)["activities"]}
    assert "OUT-1" not in uids and "OUT-2" in uids
