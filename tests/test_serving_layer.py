"""The embedded server faces a network: framing, slow or idle connections and login floods.

Each test starts the real server (waitress, as `crm-caldav serve` runs it) and
talks to it over raw sockets where httpx would hide the framing.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import httpx
import pytest

from tests import dav
from tests.conftest import RunningServer, settings_with, start_server
from tests.factories import ALICE, BOB, activity, soon, user, vevent

pytestmark = pytest.mark.e2e
CAL = f"/{ALICE}/crm/"
POLL = dav.body("04a-propfind-calendar-ctag.xml")


@pytest.fixture
def users(crm):
    crm.load({"users": [user(ALICE), user(BOB)],
              "activities": [activity("A1", ALICE, soon()), activity("A2", ALICE, soon(4))]})
    return {ALICE: crm.enable(ALICE, "alice-pass"), BOB: crm.enable(BOB, "bob-pass")}


@contextmanager
def running(settings) -> Iterator[RunningServer]:
    server, http_server = start_server(settings)
    try:
        yield server
    finally:
        http_server.shutdown()
        server.engine.dispose()


def _address(server: RunningServer) -> tuple[str, int]:
    host, port = server.url.removeprefix("http://").split(":")
    return host, int(port)


def _exchange(server: RunningServer, data: bytes, *, half_close: bool = True, timeout: float = 10) -> bytes:
    """Send raw bytes, optionally close our side, and read until the server closes (or times out)."""
    with socket.create_connection(_address(server), timeout=timeout) as sock:
        sock.sendall(data)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
            if not half_close and b"\r\n\r\n" in received:
                break
        return received


def _basic(login: str, password: str) -> bytes:
    import base64

    return b"Basic " + base64.b64encode(f"{login}:{password}".encode())


def _chunked(body: bytes, size: int = 100) -> bytes:
    pieces = [body[i:i + size] for i in range(0, len(body), size)]
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"


def _poll_ok(server: RunningServer, password: str) -> bool:
    with server.client(ALICE, password) as client:
        return dav.request(client, "PROPFIND", CAL, POLL, depth="0").status_code == 207


def test_a_chunked_put_is_stored_whole(server, users, crm) -> None:
    body = vevent("CHUNKED-1", summary="Sent in chunks").encode()
    head = (f"PUT {CAL}CHUNKED-1.ics HTTP/1.1\r\nHost: x\r\nContent-Type: text/calendar\r\n"
            "Transfer-Encoding: chunked\r\nAuthorization: ").encode() + _basic(ALICE, users[ALICE]) + b"\r\n\r\n"
    answer = _exchange(server, head + _chunked(body))
    assert answer.startswith(b"HTTP/1.1 201"), answer[:200]
    titles = {a["title"] for a in crm.export(owner=ALICE)["activities"]}
    assert "Sent in chunks" in titles


def test_a_chunked_report_is_answered_in_full(server, users) -> None:
    body = dav.body("04b-sync-collection-initial.xml").encode()
    head = (f"REPORT {CAL} HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\nDepth: 1\r\n"
            "Transfer-Encoding: chunked\r\nAuthorization: ").encode() + _basic(ALICE, users[ALICE]) + b"\r\n\r\n"
    answer = _exchange(server, head + _chunked(body, size=7))
    assert answer.startswith(b"HTTP/1.1 207"), answer[:200]
    assert answer.count(b"<D:response>") + answer.count(b"<response>") >= 2, answer[:600]


def test_a_body_shorter_than_its_content_length_is_refused_and_not_stored(server, users, crm) -> None:
    before = crm.export()
    body = vevent("SHORT-1").encode()
    head = (f"PUT {CAL}SHORT-1.ics HTTP/1.1\r\nHost: x\r\nContent-Type: text/calendar\r\n"
            f"Content-Length: {len(body) + 100}\r\nAuthorization: ").encode() + _basic(ALICE, users[ALICE])
    answer = _exchange(server, head + b"\r\n\r\n" + body)
    assert answer.startswith(b"HTTP/1.1 400"), answer[:200]
    assert crm.export() == before


def test_two_different_content_lengths_are_refused(server, users, crm) -> None:
    before = crm.export()
    body = vevent("TWICE-1").encode()
    head = (f"PUT {CAL}TWICE-1.ics HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n"
            f"Content-Length: {len(body) - 5}\r\nAuthorization: ").encode() + _basic(ALICE, users[ALICE])
    answer = _exchange(server, head + b"\r\n\r\n" + body)
    assert answer.startswith(b"HTTP/1.1 400"), answer[:200]
    assert crm.export() == before


def test_half_open_and_trickling_connections_hold_no_request_thread(server_settings, users) -> None:
    settings = settings_with(server_settings)
    with running(settings) as server, ExitStack() as stack:
        held = 8 * 6  # six times the request threads
        for number in range(held):
            sock = stack.enter_context(socket.create_connection(_address(server)))
            if number % 2:
                sock.sendall(b"PROPFIND / HTTP/1.1\r\nHost: x\r\n")  # headers never finished
            else:
                sock.sendall(f"PUT {CAL}slow.ics HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\nBEGIN"
                             .encode())  # a body that trickles
        assert all(_poll_ok(server, users[ALICE]) for _ in range(5))


def test_a_silent_connection_is_closed_after_the_idle_timeout(server_settings, users) -> None:
    with running(settings_with(server_settings, idle_timeout_seconds=1)) as server:
        with socket.create_connection(_address(server), timeout=20) as sock:
            sock.sendall(b"PROPFIND / HTTP/1.1\r\nHost: x\r\n")
            received = b""
            while chunk := sock.recv(65536):  # until the server closes, long before our 20 s timeout
                received += chunk
        assert received.startswith(b"HTTP/1.1 400"), received


def test_wrong_passwords_past_the_budget_get_429_with_retry_after(server_settings, users) -> None:
    with running(settings_with(server_settings, login_free_failures=3)) as server:
        with server.client(ALICE, "wrong") as client:
            statuses = [dav.request(client, "PROPFIND", CAL, POLL, depth="0").status_code for _ in range(3)]
            blocked = dav.request(client, "PROPFIND", CAL, POLL, depth="0")
            assert blocked.status_code == 401
            blocked = dav.request(client, "PROPFIND", CAL, POLL, depth="0")
        assert statuses == [401, 401, 401]
        assert blocked.status_code == 429
        assert int(blocked.headers["Retry-After"]) >= 1


def test_a_blocked_account_refuses_even_the_right_password_without_checking_it(server_settings, users) -> None:
    with running(settings_with(server_settings, login_free_failures=1)) as server:
        attacker = {"X-Forwarded-For": "203.0.113.9"}
        with httpx.Client(base_url=server.url, auth=(ALICE, "guess"), headers=attacker) as client:
            for _ in range(2):
                client.request("PROPFIND", CAL, content=POLL, headers={"Depth": "0"})
        with httpx.Client(base_url=server.url, auth=(ALICE, users[ALICE]),
                          headers={"X-Forwarded-For": "198.51.100.4"}) as client:
            assert client.request("PROPFIND", CAL, content=POLL, headers={"Depth": "0"}).status_code == 429


def test_a_flood_on_one_account_leaves_other_accounts_and_addresses_alone(server_settings, users) -> None:
    with running(settings_with(server_settings, login_free_failures=2)) as server:
        with httpx.Client(base_url=server.url, auth=(ALICE, "guess"),
                          headers={"X-Forwarded-For": "203.0.113.9"}) as client:
            codes = {client.request("PROPFIND", CAL, content=POLL, headers={"Depth": "0"}).status_code
                     for _ in range(20)}
        assert codes == {401, 429}
        with httpx.Client(base_url=server.url, auth=(BOB, users[BOB]),
                          headers={"X-Forwarded-For": "198.51.100.4"}) as client:
            answer = client.request("PROPFIND", f"/{BOB}/crm/", content=POLL, headers={"Depth": "0"})
        assert answer.status_code == 207


def test_requests_without_credentials_are_not_counted_as_failed_logins(server_settings, users) -> None:
    with running(settings_with(server_settings, login_free_failures=1)) as server:
        with httpx.Client(base_url=server.url) as client:
            codes = {client.request("PROPFIND", CAL, content=POLL, headers={"Depth": "0"}).status_code
                     for _ in range(10)}
        assert codes == {401}
        assert _poll_ok(server, users[ALICE])
