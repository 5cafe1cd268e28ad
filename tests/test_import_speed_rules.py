"""The rules a fast `crm-caldav import` keeps (issue 12): change positions taken once per
owner and statement on PostgreSQL (migration 0010) with every activity still in the
change log, a progress bar only on a terminal, and one line for a file that is not UTF-8."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from sqlalchemy import text

from crm_model.db import make_engine
from tests.factories import ALICE, BOB, activity, soon, user

N = 1200  # over the progress bar's threshold (server.cli_transfer.PROGRESS_MIN_ACTIVITIES)


def _document(n: int = N) -> dict[str, Any]:
    return {
        "users": [user(ALICE), user(BOB)],
        "contacts": [{"id": "c-1", "name": "Kenji Sato", "email": "kenji@example.jp"}],
        "activities": [activity(f"a-{i}", (ALICE, BOB)[i % 2], soon(1 + i % 300),
                                participants=[{"contact": "c-1"}, {"email": f"guest{i}@example.org"}][: i % 3])
                       for i in range(n)],
    }


def _scalar(database_url: str, statement: str) -> Any:
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            return connection.execute(text(statement)).scalar()
    finally:
        engine.dispose()


def test_a_large_import_logs_every_activity_with_few_positions_on_postgresql(crm, database_url):
    crm.load({"users": [user(ALICE), user(BOB)]})

    crm.load(_document())

    logged = _scalar(database_url, "SELECT count(DISTINCT activity_id) FROM calendar_changes")
    assert logged == N
    positions = _scalar(database_url, "SELECT sum(sync_pos) FROM users")
    if database_url.startswith("postgresql"):
        # Two statements (activities, then participants), one position per owner each.
        assert positions == 2 * 2
    else:  # SQLite's row triggers: one per activity and per participant row
        assert positions == N + sum(i % 3 for i in range(N))
    # Each activity's ETag position is one its owner's change log holds.
    assert _scalar(database_url, "SELECT count(*) FROM activities a WHERE NOT EXISTS (SELECT 1 FROM "
                                 "calendar_changes c WHERE c.activity_id = a.id AND c.pos = a.change_pos "
                                 "AND c.user_id = a.owner_id)") == 0


def test_a_reimport_changing_every_activity_logs_each_with_few_positions_on_postgresql(crm, database_url):
    document = _document()
    crm.load(document)
    before = _scalar(database_url, "SELECT sum(sync_pos) FROM users")
    last_logged = _scalar(database_url, "SELECT max(id) FROM calendar_changes")
    for item in document["activities"]:
        item["title"] += " (moved)"

    crm.load(document)

    assert {a["title"] for a in crm.export()["activities"]} == {f"Meeting a-{i} (moved)" for i in range(N)}
    after = _scalar(database_url, "SELECT sum(sync_pos) FROM users")
    assert after - before == (2 if database_url.startswith("postgresql") else N)  # per owner and statement
    assert _scalar(database_url, "SELECT count(DISTINCT activity_id) FROM calendar_changes "
                                 f"WHERE id > {last_logged}") == N


def test_a_utf16_file_is_refused_in_one_line(crm, tmp_path):
    path = tmp_path / "crm.json"
    path.write_text(json.dumps(_document(3)), encoding="utf-16")

    result = crm.run("import", str(path), expect=1)

    assert result.stderr.strip() == (f"Error: {path}: UTF-16 text; save the file as UTF-8 and import it again")
    assert crm.export()["activities"] == []


def test_a_latin1_file_is_refused_in_one_line_naming_the_byte(crm, tmp_path):
    path = tmp_path / "crm.json"
    path.write_bytes(json.dumps({"users": [user(ALICE, "Zoë")]}, ensure_ascii=False).encode("latin-1"))

    result = crm.run("import", str(path), expect=1)

    assert "not UTF-8 (byte 0xeb at offset" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_a_utf8_file_with_a_byte_order_mark_is_read(crm, tmp_path):
    path = tmp_path / "crm.json"
    path.write_text(json.dumps({"users": [user(ALICE, "Zoë")]}, ensure_ascii=False), encoding="utf-8-sig")

    crm.run("import", str(path))

    assert crm.export()["users"][0]["name"] == "Zoë"


def _import_process(database_url: str, path: Path, stderr: Any) -> subprocess.Popen[bytes]:
    return subprocess.Popen([str(Path(sys.executable).parent / "crm-caldav"), "import", str(path)],
                            env={**os.environ, "CRM_CALDAV_DB": database_url, "COLUMNS": "100"},
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr)


def test_no_progress_bar_when_standard_error_is_not_a_terminal(database_url, tmp_path):
    path = tmp_path / "crm.json"
    path.write_text(json.dumps(_document()))

    process = _import_process(database_url, path, subprocess.PIPE)
    _, stderr = process.communicate(timeout=300)

    assert process.returncode == 0
    assert stderr.decode().splitlines() == [f"imported 2 users, 1 contacts, 0 leads; activities: {N} created, "
                                            "0 updated, 0 deleted"]


def test_a_progress_bar_on_a_terminal(database_url, tmp_path):
    path = tmp_path / "crm.json"
    path.write_text(json.dumps(_document()))
    controller, terminal = pty.openpty()
    try:
        process = _import_process(database_url, path, terminal)
        os.close(terminal)
        shown = _read_until_exit(controller, process)
    finally:
        os.close(controller)

    assert process.returncode == 0
    assert f"importing {N:,} activities" in shown and "100%" in shown
    assert shown.rstrip().endswith("0 updated, 0 deleted")


def _read_until_exit(controller: int, process: subprocess.Popen[bytes], timeout: float = 300) -> str:
    """Everything the process wrote to the terminal, read until it exits (or the deadline)."""
    deadline = time.monotonic() + timeout
    chunks = []
    while time.monotonic() < deadline:
        try:
            chunk = os.read(controller, 4096)
        except OSError:  # the terminal closed: the process is gone
            break
        if not chunk:
            break
        chunks.append(chunk)
    process.wait(timeout=max(1.0, deadline - time.monotonic()))
    return b"".join(chunks).decode(errors="replace")
