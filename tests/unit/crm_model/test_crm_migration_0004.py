"""Migration 0004 upgrades a database that already holds data made at revision
0003 (and goes back down to 0003 and up again)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect

from crm_model.db import MIGRATIONS, make_engine, upgrade_schema
from tests.unit.crm_model.migrating import execute as _sql
from tests.unit.crm_model.migrating import migrate as _migrate
from tests.unit.crm_model.migrating import rows as _rows


def _head() -> str:
    """The newest revision (0004 or a later one that builds on it)."""
    return str(ScriptDirectory(str(MIGRATIONS)).get_current_head())


_USER = ("INSERT INTO users (id, email, name, timezone, caldav_enabled, sync_type, synced_types) "
         "VALUES ({id}, '{email}', '{name}', 'UTC', true, 'two-way', 'meeting,call')")
_ACTIVITY = ("INSERT INTO activities (id, owner_id, type, title, starts_at, ends_at, all_day, floating, private, "
             "source, uid, href, created_at, updated_at) VALUES ('{id}', {owner}, 'meeting', 'T {id}', "
             "'2026-03-01 10:00:00', '2026-03-01 11:00:00', false, false, false, 'crm', 'u-{id}', "
             "'u-{id}.ics', '2026-01-01 00:00:00', '2026-01-01 00:00:00')")


@pytest.fixture
def engine_at_0003(database_url: str) -> Iterator[Engine]:
    """A database at revision 0003 holding users, activities, participants and changes."""
    engine = make_engine(database_url)
    _migrate(engine, "0003")
    _sql(engine,
         _USER.format(id=1, email="alice@example.com", name="Alice"),
         _USER.format(id=2, email="bob@example.com", name="Bob"),
         "INSERT INTO contacts (id, name, email) VALUES ('c-1', 'Kenji', 'kenji@example.jp')",
         *(_ACTIVITY.format(id=f"a-{i}", owner=1) for i in range(3)),
         _ACTIVITY.format(id="b-0", owner=2),
         "INSERT INTO participants (activity_id, position, contact_id) VALUES ('a-1', 0, 'c-1')",
         "UPDATE activities SET title = 'edited' WHERE id = 'a-2'")
    try:
        yield engine
    finally:
        engine.dispose()


def test_upgrade_from_0003_keeps_data_and_sets_edited_pos_to_change_pos(engine_at_0003):
    before = _rows(engine_at_0003, "SELECT id, change_pos FROM activities ORDER BY id")
    changes_before = _rows(engine_at_0003, "SELECT user_id, pos, activity_id FROM calendar_changes ORDER BY id")

    upgrade_schema(engine_at_0003)

    after = _rows(engine_at_0003, "SELECT id, change_pos, edited_pos, client_body, client_body_pos "
                                  "FROM activities ORDER BY id")
    assert after == [(activity_id, pos, pos, None, None) for activity_id, pos in before]
    assert all(pos > 0 for _, pos in before)
    assert _rows(engine_at_0003, "SELECT user_id, pos, activity_id FROM calendar_changes ORDER BY id") \
        == changes_before
    assert _rows(engine_at_0003, "SELECT version_num FROM alembic_version") == [(_head(),)]
    assert _rows(engine_at_0003, "SELECT count(*) FROM renderer_state") == [(0,)]


def test_upgraded_database_tracks_owner_and_contact_changes(engine_at_0003):
    upgrade_schema(engine_at_0003)
    before = dict(_rows(engine_at_0003, "SELECT id, change_pos FROM activities"))

    _sql(engine_at_0003, "UPDATE users SET name = 'Alice A' WHERE id = 1",
         "UPDATE contacts SET email = 'k@example.jp' WHERE id = 'c-1'")

    after = dict(_rows(engine_at_0003, "SELECT id, change_pos FROM activities"))
    # Alice was at 5: the rename is position 6 for all her activities, the contact 7 for a-1 only
    assert _rows(engine_at_0003, "SELECT sync_pos FROM users ORDER BY id") == [(7,), (1,)]
    assert after == {**before, "a-0": 6, "a-1": 7, "a-2": 6}
    assert _rows(engine_at_0003, "SELECT pos, activity_id FROM calendar_changes WHERE user_id = 1 AND pos > 5 "
                                 "ORDER BY pos, activity_id") == [(6, "a-0"), (6, "a-1"), (6, "a-2"), (7, "a-1")]
    assert _rows(engine_at_0003, "SELECT id, edited_pos FROM activities ORDER BY id") == \
        [("a-0", 1), ("a-1", 4), ("a-2", 5), ("b-0", 1)]


def test_change_log_index_is_no_longer_unique_after_upgrade(engine_at_0003):
    upgrade_schema(engine_at_0003)

    indexes = {index["name"]: index for index in inspect(engine_at_0003).get_indexes("calendar_changes")}
    assert not indexes["ix_calendar_changes_user_pos"]["unique"]
    assert indexes["ix_calendar_changes_user_pos"]["column_names"] == ["user_id", "pos"]


def test_downgrade_to_0003_and_upgrade_again_keeps_tracking(engine_at_0003):
    upgrade_schema(engine_at_0003)
    _sql(engine_at_0003, "UPDATE users SET name = 'Alice A' WHERE id = 1")  # many rows at one position

    _migrate(engine_at_0003, "0003", down=True)
    assert _rows(engine_at_0003, "SELECT version_num FROM alembic_version") == [("0003",)]
    columns = {column["name"] for column in inspect(engine_at_0003).get_columns("activities")}
    assert not {"edited_pos", "client_body", "client_body_pos"} & columns
    assert not inspect(engine_at_0003).has_table("renderer_state")
    _sql(engine_at_0003, "UPDATE activities SET title = 'at 0003' WHERE id = 'b-0'")  # 0002 triggers work

    upgrade_schema(engine_at_0003)
    _sql(engine_at_0003, "UPDATE activities SET title = 'at 0004' WHERE id = 'a-0'")
    assert _rows(engine_at_0003, "SELECT change_pos, edited_pos FROM activities WHERE id = 'a-0'") == [(7, 7)]
    assert _rows(engine_at_0003, "SELECT change_pos, edited_pos FROM activities WHERE id = 'b-0'") == [(2, 2)]
