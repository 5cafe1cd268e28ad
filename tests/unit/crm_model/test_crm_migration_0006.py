"""Migration 0006 makes UID and href unique per owner on a database that
already holds data (rows, positions, participants, renderings and tracking
kept), and goes back down when no two calendars share a UID or href."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from crm_model.db import make_engine, upgrade_schema
from tests.unit.crm_model.test_crm_migration_0004 import _ACTIVITY, _USER, _migrate, _rows, _sql

_ROWS = {
    "activities": "SELECT id, owner_id, uid, href, change_pos, edited_pos, title FROM activities ORDER BY id",
    "participants": "SELECT id, activity_id, position, contact_id, email FROM participants ORDER BY id",
    "activity_renderings": "SELECT activity_id, change_pos, body FROM activity_renderings ORDER BY activity_id",
    "calendar_changes": "SELECT user_id, pos, activity_id, href FROM calendar_changes ORDER BY id",
    "users": "SELECT id, sync_pos FROM users ORDER BY id",
}


@pytest.fixture
def engine_at_0005(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    _migrate(engine, "0005")
    _sql(engine,
         _USER.format(id=1, email="alice@example.com", name="Alice"),
         _USER.format(id=2, email="bob@example.com", name="Bob"),
         "INSERT INTO contacts (id, name, email) VALUES ('c-1', 'Kenji', 'kenji@example.jp')",
         *(_ACTIVITY.format(id=f"a-{i}", owner=1) for i in range(3)),
         _ACTIVITY.format(id="b-0", owner=2),
         "INSERT INTO participants (activity_id, position, contact_id) VALUES ('a-1', 0, 'c-1')",
         "INSERT INTO participants (activity_id, position, email) VALUES ('a-1', 1, 'guest@else.example')",
         "INSERT INTO activity_renderings (activity_id, change_pos, variant, body) "
         "SELECT id, change_pos, 'v', 'BEGIN:VCALENDAR' FROM activities WHERE id = 'a-2'",
         "UPDATE activities SET title = 'edited' WHERE id = 'a-2'")
    try:
        yield engine
    finally:
        engine.dispose()


def _snapshot(engine: Engine) -> dict[str, list[tuple]]:
    return {table: _rows(engine, statement) for table, statement in _ROWS.items()}


def test_upgrade_keeps_every_row_position_participant_and_rendering(engine_at_0005):
    before = _snapshot(engine_at_0005)

    upgrade_schema(engine_at_0005)

    assert _snapshot(engine_at_0005) == before
    assert len(before["participants"]) == 2 and len(before["activity_renderings"]) == 1


def test_upgraded_database_allows_a_shared_uid_in_two_calendars_only(engine_at_0005):
    upgrade_schema(engine_at_0005)

    _sql(engine_at_0005, "INSERT INTO activities (id, owner_id, type, title, starts_at, ends_at, all_day, floating, "
                         "private, source, uid, href, created_at, updated_at) SELECT 'b-copy', 2, type, title, "
                         "starts_at, ends_at, all_day, floating, private, source, uid, href, created_at, updated_at "
                         "FROM activities WHERE id = 'a-0'")
    owners = _rows(engine_at_0005, "SELECT owner_id FROM activities WHERE uid = 'u-a-0' ORDER BY owner_id")
    assert owners == [(1,), (2,)]
    for column, value in (("uid", "u-a-1"), ("href", "u-a-1.ics")):
        with pytest.raises(IntegrityError):
            _sql(engine_at_0005, f"UPDATE activities SET {column} = '{value}' WHERE id = 'a-0'")


def test_upgraded_database_still_tracks_activity_and_participant_writes(engine_at_0005):
    upgrade_schema(engine_at_0005)
    position = _rows(engine_at_0005, "SELECT sync_pos FROM users WHERE id = 1")[0][0]

    _sql(engine_at_0005, "UPDATE activities SET title = 'after 0006' WHERE id = 'a-0'",
         "INSERT INTO participants (activity_id, position, email) VALUES ('a-2', 0, 'new@else.example')",
         "DELETE FROM activities WHERE id = 'a-1'")

    changes = _rows(engine_at_0005, f"SELECT activity_id FROM calendar_changes WHERE user_id = 1 AND pos > {position} "
                                    "ORDER BY pos")
    assert changes == [("a-0",), ("a-2",), ("a-1",)]
    assert _rows(engine_at_0005, "SELECT count(*) FROM participants WHERE activity_id = 'a-1'") == [(0,)]
    edited = _rows(engine_at_0005, "SELECT change_pos, edited_pos FROM activities WHERE id IN ('a-0', 'a-2') "
                                   "ORDER BY id")
    assert all(change == edit > position for change, edit in edited)


def test_downgrade_restores_server_wide_uniqueness_unless_calendars_share_a_uid(engine_at_0005):
    upgrade_schema(engine_at_0005)
    before = _snapshot(engine_at_0005)

    _migrate(engine_at_0005, "0005", down=True)
    assert _snapshot(engine_at_0005) == before
    with pytest.raises(IntegrityError):
        _sql(engine_at_0005, "UPDATE activities SET uid = 'u-b-0' WHERE id = 'a-0'")

    upgrade_schema(engine_at_0005)
    _sql(engine_at_0005, "UPDATE activities SET uid = 'u-b-0', href = 'u-b-0.ics' WHERE id = 'a-0'")
    with pytest.raises(RuntimeError, match="several calendars hold the uid 'u-b-0'"):
        _migrate(engine_at_0005, "0005", down=True)
