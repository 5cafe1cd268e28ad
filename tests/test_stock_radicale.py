"""Issue 8, done-when 5: our plugins load in a stock Radicale by module name, from its config file.

``python -m radicale --config FILE`` with ``[storage] type = storage_plugin``,
``[auth] type = server.auth`` and ``[rights] type = server.rights`` on a fresh
database; python-caldav discovers, lists, creates, edits and deletes.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import caldav
import pytest

from tests.conftest import Crm
from tests.factories import ALICE, BOB, activity, soon, user, vevent

pytestmark = pytest.mark.e2e
CONFIG = """[server]
hosts = 127.0.0.1:{port}

[auth]
type = server.auth
database_url = {url}

[rights]
type = server.rights
database_url = {url}

[storage]
type = storage_plugin
database_url = {url}

[web]
type = none

[logging]
level = info
"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def stock_radicale(database_url: str, tmp_path: Path) -> Iterator[str]:
    """A stock Radicale process serving our plugins; its URL."""
    port = _free_port()
    config = tmp_path / "radicale.conf"
    config.write_text(CONFIG.format(port=port, url=database_url))
    process = subprocess.Popen([sys.executable, "-m", "radicale", "--config", str(config)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                               cwd=Path(__file__).parents[1])
    try:
        assert process.stderr is not None
        for line in process.stderr:  # Radicale logs this line once it accepts connections
            if f"Listening on 127.0.0.1:{port}" in line or f"127.0.0.1:{port}" in line and "istening" in line:
                break
        else:
            pytest.fail("stock Radicale did not start")
        yield f"http://127.0.0.1:{port}/"
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_stock_radicale_with_our_plugins_syncs_with_python_caldav(database_url, stock_radicale):
    crm = Crm(database_url)
    crm.load({"users": [user(ALICE, "Alice Archer"), user(BOB)],
              "activities": [activity("a-1", ALICE, soon(2), title="Product demo"),
                             activity("b-1", BOB, soon(3), title="Bob's meeting")]})
    client = caldav.DAVClient(url=stock_radicale, username=ALICE, password=crm.enable(ALICE))
    calendars = client.principal().calendars()
    assert [c.get_display_name() for c in calendars] == [ALICE]
    calendar = calendars[0]
    assert [e.icalendar_component["SUMMARY"] for e in calendar.events()] == ["Product demo"]

    event = calendar.save_event(vevent("STOCK-1", summary="Lunch with Kenji"))
    assert [a["title"] for a in crm.export(ALICE)["activities"] if a["uid"] == "STOCK-1"] == ["Lunch with Kenji"]
    event.load()
    event.icalendar_component["SUMMARY"] = "Lunch with Kenji and Ana"
    event.save()
    assert [a["title"] for a in crm.export(ALICE)["activities"] if a["uid"] == "STOCK-1"] == [
        "Lunch with Kenji and Ana"]
    event.delete()
    assert not [a for a in crm.export(ALICE)["activities"] if a["uid"] == "STOCK-1"]
