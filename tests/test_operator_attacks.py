"""Issue 12's entry points as an attacker and a careless operator use them.

- A client cannot forge or break log lines through what it controls (the path,
  decoded from %0A; the login name) in text or JSON format.
- Anonymous /health requests (and /metrics scrapes) arriving while a database
  read runs share it: a flood holds at most one connection per process.
- A worker killed and replaced keeps its counts in /metrics' sums.
- --config files as editors and shells write them (CRLF, a byte-order mark,
  quotes, ``export``, a name twice) and odd import files give one clear line.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from sqlalchemy import event

from crm_model.db import make_engine, make_session_factory
from server import config
from server.cli import cli
from server.health import Health
from server.metrics import ActiveDevices
from server.request_log import one_line
from tests.factories import ALICE, user
from tests.serving import serving_script
from tests.test_health_metrics import samples, scrape_until
from tests.test_operator_logs import TIME, serving
from tests.test_serve_workers import _children, _wait_for

FORGED = "2026-01-01T00:00:00.000Z INFO crm_caldav.request: GET /forged 200"
# Decoded by the server into a line feed, a CR LF, NEL and U+2028 before the forged text.
FORGING_PATHS = ["/x%0A" + FORGED, "/x%0D%0A" + FORGED, "/x%C2%85" + FORGED, "/x%E2%80%A8" + FORGED]


@pytest.mark.parametrize(("text", "logged"), [
    ("GET /a 200", "GET /a 200"),
    ("GET /x\nFAKE", "GET /x\\x0aFAKE"),
    ("a\r\nb\tc\x1b[31m", "a\\x0d\\x0ab\\x09c\\x1b[31m"),
    ("a\x85b\u2028c\u2029d\x7f", "a\\x85b\\u2028c\\u2029d\\x7f"),
    ("Zoë 東京", "Zoë 東京"),
])
def test_one_line_writes_control_characters_and_line_separators_as_escapes(text, logged):
    assert one_line(text) == logged


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_a_client_cannot_forge_a_log_line_through_the_path_or_the_login_name(database_url, crm, tmp_path,
                                                                            log_format):
    crm.load({"users": [user(ALICE)]})
    with serving(database_url, tmp_path, CRM_CALDAV_LOG_FORMAT=log_format) as (url, log):
        with httpx.Client(base_url=url, timeout=30) as client:
            statuses = [client.get(path).status_code for path in FORGING_PATHS]
        with httpx.Client(base_url=url, timeout=30, auth=(f"evil\n{FORGED}\u2028@x.com", "pw")) as stranger:
            statuses.append(stranger.request("PROPFIND", f"/{ALICE}/crm/").status_code)
    assert all(400 <= status < 500 for status in statuses), statuses
    lines = [line for line in log if not line.startswith("Serving CalDAV on ") and "waitress.queue" not in line]
    assert not [line for line in lines if "\x85" in line or "\u2028" in line or "\r" in line]
    if log_format == "json":
        records = [json.loads(line) for line in lines]  # every line is one whole object
        messages = [record["message"] for record in records]
        assert sum(record["logger"] == "crm_caldav.request" for record in records) == len(statuses)
        assert [record["path"] for record in records if record.get("method") == "GET"] == [
            "/x\n" + FORGED, "/x\r\n" + FORGED, "/x\x85" + FORGED, "/x\u2028" + FORGED]
    else:
        assert all(re.match(rf"{TIME} [A-Z]+ [\w.]+: ", line) for line in lines), lines
        messages = lines
        assert sum(" crm_caldav.request: " in line for line in lines) == len(statuses)
    assert not [line for line in lines if line.startswith(FORGED)]
    # The login name is the part before the first colon, lower-cased: "evil\n2026-01-01t00".
    escaped_login = "evil\n2026-01-01t00" if log_format == "json" else "evil\\x0a2026-01-01t00"
    assert [message for message in messages if f"Failed login for {escaped_login} from " in message], messages


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_a_path_or_login_name_of_tens_of_kilobytes_is_cut_before_journald_would_split_its_line(
        database_url, crm, tmp_path, log_format):
    crm.load({"users": [user(ALICE)]})
    with serving(database_url, tmp_path, CRM_CALDAV_LOG_FORMAT=log_format) as (url, log):
        with httpx.Client(base_url=url, timeout=30) as client:
            assert client.get("/" + "p" * 40_000).status_code == 401
        with httpx.Client(base_url=url, timeout=30, auth=("l" * 40_000 + "@x.com", "pw")) as stranger:
            assert stranger.request("PROPFIND", f"/{ALICE}/crm/").status_code == 401
    assert max(len(line) for line in log) < 10_000
    assert "/" + "p" * 1999 + "... (38,001 more characters)" in "\n".join(log)
    assert "more characters)" in next(line for line in log if "Failed login for lll" in line)


def test_a_forwarded_address_or_path_with_spaces_cannot_pose_as_other_fields_of_a_request_line(database_url, crm,
                                                                                              tmp_path):
    crm.load({"users": [user(ALICE)]})
    with serving(database_url, tmp_path) as (url, log):  # 127.0.0.1, the default trusted proxy, is the client
        with httpx.Client(base_url=url, timeout=30) as client:
            assert client.get("/a", headers={"X-Forwarded-For": "1.2.3.4 user=admin"}).status_code == 401
            assert client.get("/b%20401%200.1%20ms%200%20B%20user=admin").status_code == 401
    requests = [line.split(" crm_caldav.request: ", 1)[1] for line in log if " crm_caldav.request: " in line]
    assert requests[0].startswith('GET /a 401 ') and ' from="1.2.3.4 user=admin" ' in requests[0]
    assert requests[1].startswith('GET "/b 401 0.1 ms 0 B user=admin" 401 ')
    fields = requests[1].removeprefix('GET "/b 401 0.1 ms 0 B user=admin" 401 ')
    assert " user=" not in fields and " from=127.0.0.1 " in fields


def _health(read_sessions):
    health = Health(read_sessions)
    return health.problem, lambda: health._shared.waiting, "EXISTS"


def _active_devices(read_sessions):
    devices = ActiveDevices(read_sessions)
    return (lambda: [sample.value for metric in devices.collect() for sample in metric.samples],
            lambda: devices._count.waiting, "COUNT(")


@pytest.mark.parametrize(("what", "answer"), [(_health, None), (_active_devices, [0])], ids=["health", "devices"])
def test_anonymous_requests_arriving_during_a_database_read_share_it(database_url, crm, what, answer):
    crm.load({"users": [user(ALICE)]})
    engine = make_engine(database_url)
    call, waiting, marker = what(make_session_factory(engine, write=False))
    reads: list[str] = []
    entered, release = threading.Event(), threading.Event()

    @event.listens_for(engine, "before_cursor_execute")
    def _count(_connection, _cursor, statement, *_args) -> None:
        if marker in statement.upper():
            reads.append(statement)
            entered.set()
            release.wait(30)  # the first read stays under way until every other request has joined it

    results: list[object] = []
    first = threading.Thread(target=lambda: results.append(call()))
    first.start()
    assert entered.wait(30)
    others = [threading.Thread(target=lambda: results.append(call())) for _ in range(7)]
    for thread in others:
        thread.start()
    deadline = time.monotonic() + 30
    while waiting() < len(others) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert waiting() == len(others)
    release.set()
    for thread in [first, *others]:
        thread.join(30)
    assert results == [answer] * 8 and len(reads) == 1
    assert call() == answer and len(reads) == 2  # a request after the read ended gets a fresh one
    engine.dispose()


@pytest.mark.parametrize(("content", "expected"), [
    (b"CRM_CALDAV_INITIAL_CAP=5\r\nCRM_CALDAV_LOG_LEVEL=debug\r\n", {"initial_cap": 5, "log_level": "debug"}),
    (b"CRM_CALDAV_INITIAL_CAP = 5\n", {"initial_cap": 5}),
    (b"CRM_CALDAV_INITIAL_CAP='5'\nCRM_CALDAV_PUBLIC_URL=\"https://cal.example.com/\"\n",
     {"initial_cap": 5, "public_url": "https://cal.example.com/"}),
])
def test_a_config_file_reads_crlf_lines_spaces_around_equals_and_one_pair_of_quotes(tmp_path, content, expected):
    settings = tmp_path / "crm-caldav.env"
    settings.write_bytes(content)
    loaded = config.load_settings(settings, environ={})
    assert {name: getattr(loaded, name) for name in expected} == expected


@pytest.mark.parametrize(("content", "expected"), [
    ("\ufeffCRM_CALDAV_INITIAL_CAP=5\n".encode(), ": starts with a byte-order mark; save it as UTF-8 without one"),
    (b"export CRM_CALDAV_INITIAL_CAP=5\n", ":1: write CRM_CALDAV_INITIAL_CAP=value without 'export'"),
    (b"CRM_CALDAV_INITIAL_CAP=5\n# later\nCRM_CALDAV_INITIAL_CAP=7\n",
     ":3: CRM_CALDAV_INITIAL_CAP is set again (first on line 1); keep one"),
    (b'CRM_CALDAV_INITIAL_CAP=""5""\n', ":1: CRM_CALDAV_INITIAL_CAP: not a whole number: '\"5\"'"),
])
def test_a_config_line_systemd_would_read_otherwise_is_one_line_naming_it(tmp_path, content, expected):
    settings = tmp_path / "crm-caldav.env"
    settings.write_bytes(content)
    with pytest.raises(config.ConfigError) as refused:
        config.load_settings(settings, environ={})
    assert str(refused.value).startswith(f"{settings}{expected}"), refused.value


@pytest.mark.parametrize(("name", "value", "expected"), [
    ("CRM_CALDAV_WINDOW_MONTHS_BACK", "99999999", "must be at most 1,200"),  # was: year -8331307 is out of range
    ("CRM_CALDAV_INITIAL_CAP", "9" * 23, "must be at most 2,000,000"),  # was: too large for a SQLite INTEGER
    ("CRM_CALDAV_DB_LOCK_TIMEOUT_SECONDS", "99999999999", "must be at most 2,000,000"),  # PostgreSQL refused it
    ("CRM_CALDAV_MAX_EVENT_BYTES", str((1 << 30) + 1), "must be at most 1,073,741,824"),
])
def test_an_absurdly_large_setting_is_one_line_naming_its_largest_value(crm, name, value, expected):
    crm.load({"users": [user(ALICE)]})
    result = CliRunner().invoke(cli, ["caldav", "preview", ALICE],
                                env={"CRM_CALDAV_DB": crm.database_url, name: value})
    assert isinstance(result.exception, SystemExit) and result.exit_code == 1, result.exc_info
    assert result.stderr.strip().splitlines() == [f"Error: {name}: {expected}"]


def test_serve_refuses_a_trusted_proxy_that_is_not_an_address_in_one_line(database_url, tmp_path):
    """Waitress compares the value with the peer's address: a host name would trust no one, silently."""
    result = subprocess.run([str(Path(sys.executable).with_name("crm-caldav")), "serve", "--port", "0"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=60,
                            env={"CRM_CALDAV_DB": database_url, "CRM_CALDAV_TRUSTED_PROXY": "proxy.internal",
                                 "PATH": str(Path(sys.executable).parent)})
    assert result.returncode == 1 and result.stderr.strip().splitlines() == [
        "Error: CRM_CALDAV_TRUSTED_PROXY: must be one IP address (such as 127.0.0.1), '*' or empty, "
        "not 'proxy.internal'"]


def test_a_config_file_that_never_ends_is_refused_after_a_bounded_read():
    with pytest.raises(config.ConfigError) as refused:
        config.load_settings("/dev/zero", environ={})
    assert str(refused.value) == "/dev/zero: over 100,000 characters; not a file of NAME=value lines"


def test_an_empty_environment_variable_does_not_override_the_config_files_database(tmp_path):
    settings = tmp_path / "crm-caldav.env"
    settings.write_text(f"CRM_CALDAV_DB=sqlite:///{tmp_path / 'crm.db'}\nCRM_CALDAV_INITIAL_CAP=5\n")
    loaded = config.load_settings(settings, environ={"CRM_CALDAV_DB": "", "CRM_CALDAV_INITIAL_CAP": "7"})
    assert (loaded.database_url, loaded.initial_cap) == (f"sqlite:///{tmp_path / 'crm.db'}", 7)
    assert config.load_settings(None, environ={"CRM_CALDAV_TRUSTED_PROXY": ""}).trusted_proxy is None


@pytest.mark.parametrize(("content", "expected"), [
    (b"", "the file is empty"),
    (b" \n", "the file is empty"),
    ('{"users": []}'.encode("utf-16-le"), "UTF-16 or UTF-32 text; save the file as UTF-8"),
    ('{"users": []}'.encode("utf-32-le"), "UTF-16 or UTF-32 text; save the file as UTF-8"),
    (b'{"users": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "JSON nested too deeply to be a CRM document"),
])
def test_an_empty_unmarked_utf16_or_endlessly_nested_import_file_is_one_line_naming_it(crm, tmp_path, content,
                                                                                       expected):
    path = tmp_path / "crm.json"
    path.write_bytes(content)
    result = crm.run("import", str(path), expect=1)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Error: {path}: {expected}"), lines


def test_import_of_an_endless_device_is_one_line_not_a_read_without_end(crm):
    result = crm.run("import", "/dev/zero", expect=1)
    assert result.stderr.strip().splitlines() == [
        "Error: /dev/zero: a device, not a file; give a CRM JSON file (or - for standard input)"]


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_metrics_directory_that_does_not_exist_is_one_line_before_any_process_serves(database_url, tmp_path,
                                                                                      workers):
    missing = tmp_path / "no-such-directory"
    result = subprocess.run([str(Path(sys.executable).with_name("crm-caldav")), "serve", "--port", "0",
                             "--workers", workers, "--create-database"], cwd=tmp_path, capture_output=True,
                            text=True, timeout=60,
                            env={"CRM_CALDAV_DB": database_url, "PROMETHEUS_MULTIPROC_DIR": str(missing),
                                 "PATH": str(Path(sys.executable).parent)})
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        f"Error: PROMETHEUS_MULTIPROC_DIR: {missing} is not a directory this user can write; "
        "create it (systemd: RuntimeDirectory=) or unset the variable")


def test_counts_of_a_killed_worker_stay_in_the_metrics_after_it_is_replaced(database_url, crm, tmp_path):
    crm.load({"users": [user(ALICE)]})
    refused = ("crm_caldav_requests_total", (("method", "GET"), ("status", "401")))
    with serving_script(tmp_path, "--workers", "2", env={"CRM_CALDAV_DB": database_url}) as (process, _, url):
        workers = _wait_for(lambda: _children(process.pid) if len(_children(process.pid)) == 2 else None)
        with httpx.Client(base_url=url, timeout=30) as client:
            assert _wait_for(lambda: client.get("/health").status_code == 200)
            assert [client.get("/nope").status_code for _ in range(6)] == [401] * 6
            assert scrape_until(client, lambda values: values.get(refused) == 6).get(refused) == 6
            victim = min(workers)
            os.kill(victim, signal.SIGKILL)
            assert _wait_for(lambda: (c := _children(process.pid)) and len(c) == 2 and victim not in c)
            assert [client.get("/nope").status_code for _ in range(2)] == [401] * 2
            assert scrape_until(client, lambda values: values.get(refused) == 8).get(refused) == 8
            assert samples(client.get("/metrics").text).get(refused) == 8

@pytest.mark.parametrize("command", [["serve", "--port", "0"], ["caldav", "status"]])
def test_a_database_port_that_is_not_a_number_is_one_line_for_serve_and_the_commands(tmp_path, command):
    result = subprocess.run([str(Path(sys.executable).with_name("crm-caldav")), *command], cwd=tmp_path,
                            capture_output=True, text=True, timeout=60,
                            env={"CRM_CALDAV_DB": "postgresql+psycopg://crm:s3cret@db.internal:abc/crm",
                                 "PATH": str(Path(sys.executable).parent)})
    assert result.returncode == 1 and result.stderr.strip().splitlines() == [
        "Error: CRM_CALDAV_DB: the port is not a number; use sqlite:///PATH or "
        "postgresql+psycopg://USER@HOST/DATABASE"]
