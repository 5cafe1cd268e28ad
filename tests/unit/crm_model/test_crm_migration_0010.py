"""Migration 0010: on PostgreSQL, activity writes take one position per owner and
statement (statement triggers with transition tables) instead of one per row, and
record the same change log rows as the row triggers did; down to 0009 the row
triggers are back. SQLite keeps its row triggers (the migration changes nothing there)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from crm_model.db import make_engine
from tests.unit.crm_model.migrating import execute as _sql
from tests.unit.crm_model.migrating import migrate as _migrate
from tests.unit.crm_model.migrating import rows as _rows

_COLUMNS = ("id, owner_id, type, title, starts_at, ends_at, all_day, floating, private, source, uid, href, "
            "created_at, updated_at")


def _insert(engine: Engine, owner: int, *ids: str) -> None:
    """One multi-row INSERT statement of activities ``ids`` for ``owner``."""
    rows = ", ".join(f"('{i}', {owner}, 'meeting', 'T {i}', '2026-03-02 10:00:00', '2026-03-02 11:00:00', "
                     f"false, false, false, 'crm', 'uid-{i}', '{i}.ics', '2026-03-01 00:00:00', "
                     "'2026-03-01 00:00:00')" for i in ids)
    _sql(engine, f"INSERT INTO activities ({_COLUMNS}) VALUES {rows}")


def _position(engine: Engine, user_id: int) -> int:
    return _rows(engine, f"SELECT sync_pos FROM users WHERE id = {user_id}")[0][0]


def _log_after(engine: Engine, user_id: int, position: int) -> list[tuple]:
    """(pos, activity_id, href) of ``user_id``'s change log after ``position``."""
    return _rows(engine, f"SELECT pos, activity_id, href FROM calendar_changes WHERE user_id = {user_id} "
                        f"AND pos > {position} ORDER BY pos, activity_id")


@pytest.fixture
def engine_at_0009(database_url: str) -> Iterator[Engine]:
    """A database at 0009 with Alice (1) and Bob (2)."""
    engine = make_engine(database_url)
    _migrate(engine, "0009")
    _sql(engine, "INSERT INTO users (id, email, name, timezone, caldav_enabled, sync_type, synced_types, "
                 "sync_pos, window_pos, credentials_version) VALUES "
                 "(1, 'alice@example.com', 'A', 'UTC', false, 'two-way', 'meeting,call', 0, 0, 0), "
                 "(2, 'bob@example.com', 'B', 'UTC', false, 'two-way', 'meeting,call', 0, 0, 0)")
    try:
        yield engine
    finally:
        engine.dispose()


def test_a_multi_row_insert_takes_one_position_after_the_upgrade_and_one_per_row_after_the_downgrade(
        engine_at_0009, database_url):
    engine = engine_at_0009
    per_row = database_url.startswith("sqlite")
    _insert(engine, 1, "a-1", "a-2", "a-3")
    assert _position(engine, 1) == 3

    _migrate(engine, "head")
    _insert(engine, 1, "a-4", "a-5", "a-6")
    assert _position(engine, 1) == (6 if per_row else 4)
    assert [row[1] for row in _log_after(engine, 1, 3)] == ["a-4", "a-5", "a-6"]
    expected = [("a-5", 5, 5), ("a-6", 6, 6)] if per_row else [("a-5", 4, 4), ("a-6", 4, 4)]
    assert _rows(engine, "SELECT id, change_pos, edited_pos FROM activities WHERE id IN ('a-5', 'a-6') "
                        "ORDER BY id") == expected

    _migrate(engine, "0009", down=True)
    before = _position(engine, 1)
    _insert(engine, 1, "a-7", "a-8")
    assert _position(engine, 1) == before + 2


@pytest.fixture
def at_head(engine_at_0009) -> Engine:
    """At the newest revision, Alice owning a-1 and a-2, Bob owning b-1."""
    _migrate(engine_at_0009, "head")
    _insert(engine_at_0009, 1, "a-1", "a-2")
    _insert(engine_at_0009, 2, "b-1")
    return engine_at_0009


def test_updating_two_activities_in_one_statement_logs_both(at_head, database_url):
    alice = _position(at_head, 1)

    _sql(at_head, "UPDATE activities SET title = 'Moved' WHERE owner_id = 1")

    logged = _log_after(at_head, 1, alice)
    assert sorted(row[1] for row in logged) == ["a-1", "a-2"]
    if database_url.startswith("postgresql"):  # one position for the statement
        assert _position(at_head, 1) == alice + 1
        assert _rows(at_head, "SELECT DISTINCT change_pos FROM activities WHERE owner_id = 1") == [(alice + 1,)]
    else:
        assert _position(at_head, 1) == alice + 2


def test_moving_an_activity_to_another_owner_logs_it_in_both_calendars(at_head):
    alice, bob = _position(at_head, 1), _position(at_head, 2)

    _sql(at_head, "UPDATE activities SET owner_id = 2, href = 'renamed.ics' WHERE id = 'a-1'")

    assert [row[1:] for row in _log_after(at_head, 1, alice)] == [("a-1", "a-1.ics")]
    assert [row[1:] for row in _log_after(at_head, 2, bob)] == [("a-1", "renamed.ics")]
    assert _rows(at_head, "SELECT change_pos, edited_pos FROM activities WHERE id = 'a-1'") == \
        [(_position(at_head, 2), _position(at_head, 2))]


def test_deleting_two_activities_in_one_statement_leaves_two_tombstones(at_head):
    alice = _position(at_head, 1)

    _sql(at_head, "DELETE FROM activities WHERE owner_id = 1")

    assert sorted(row[1:] for row in _log_after(at_head, 1, alice)) == [("a-1", "a-1.ics"), ("a-2", "a-2.ics")]


def test_writes_of_untracked_columns_record_nothing(at_head):
    alice, count = _position(at_head, 1), _rows(at_head, "SELECT count(*) FROM calendar_changes")[0][0]

    _sql(at_head, "UPDATE activities SET client_body = 'BEGIN:VCALENDAR', client_body_pos = change_pos, "
                  "updated_at = '2026-04-01 00:00:00' WHERE owner_id = 1")

    assert _position(at_head, 1) == alice
    assert _rows(at_head, "SELECT count(*) FROM calendar_changes")[0][0] == count


def test_on_postgresql_setting_a_value_it_already_has_records_nothing(at_head, database_url):
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite's row triggers fire on UPDATE OF the column, changed or not (0002)")
    alice = _position(at_head, 1)

    _sql(at_head, "UPDATE activities SET title = title WHERE owner_id = 1")

    assert _position(at_head, 1) == alice and _log_after(at_head, 1, alice) == []
