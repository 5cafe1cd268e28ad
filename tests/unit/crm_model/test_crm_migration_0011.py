"""Migration 0011: on PostgreSQL, participants written in the transaction that
already moved their activity (inserted or edited it) leave it where it stands;
participants of an activity this transaction did not move still move it. SQLite's
row triggers move the activity for every participant row, as before."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from tests.factories import ALICE

_ACTIVITY = ("INSERT INTO activities (id, owner_id, type, title, starts_at, ends_at, all_day, floating, private, "
             "source, uid, href, created_at, updated_at) SELECT 'a-new', id, 'meeting', 'New', "
             "'2030-03-02 10:00:00', '2030-03-02 11:00:00', false, false, false, 'crm', 'uid-new', 'new.ics', "
             "'2026-03-01 00:00:00', '2026-03-01 00:00:00' FROM users WHERE email = :owner")
_GUESTS = ("INSERT INTO participants (activity_id, position, email) VALUES "
           "(:activity, 90, 'one@example.org'), (:activity, 91, 'two@example.org')")


@pytest.fixture
def on_postgresql(tracked):
    if tracked.engine.dialect.name != "postgresql":
        pytest.skip("SQLite keeps its row triggers: every participant row moves the activity there")
    return tracked


def _in_one_transaction(tracked, *statements: tuple[str, dict]) -> None:
    with tracked.engine.begin() as connection:
        for statement, params in statements:
            connection.execute(text(statement), params)


def test_participants_of_an_activity_inserted_in_the_same_transaction_leave_it_at_its_first_position(
        on_postgresql):
    before = on_postgresql.sync_pos(ALICE)

    _in_one_transaction(on_postgresql, (_ACTIVITY, {"owner": ALICE}), (_GUESTS, {"activity": "a-new"}))

    log = on_postgresql.changes_after(ALICE, before)
    assert [activity for _, activity in log] == ["a-new"]
    assert on_postgresql.positions()["a-new"] == (log[0][0], log[0][0])
    assert on_postgresql.scalar("SELECT count(*) FROM participants WHERE activity_id = 'a-new'") == 2


def test_participants_of_an_activity_edited_in_the_same_transaction_leave_it_at_the_edit(on_postgresql):
    before = on_postgresql.sync_pos(ALICE)

    _in_one_transaction(on_postgresql, ("UPDATE activities SET title = 'Edited' WHERE id = 'a-c2'", {}),
                        (_GUESTS, {"activity": "a-c2"}))

    log = on_postgresql.changes_after(ALICE, before)
    assert [activity for _, activity in log] == ["a-c2"]
    assert on_postgresql.positions()["a-c2"] == (log[0][0], log[0][0])


def test_participants_after_an_untracked_write_in_the_same_transaction_still_move_the_activity(on_postgresql):
    before = on_postgresql.sync_pos(ALICE)

    _in_one_transaction(on_postgresql, ("UPDATE activities SET updated_at = updated_at WHERE id = 'a-c2'", {}),
                        (_GUESTS, {"activity": "a-c2"}))

    assert [activity for _, activity in on_postgresql.changes_after(ALICE, before)] == ["a-c2"]
    change_pos, edited_pos = on_postgresql.positions()["a-c2"]
    assert change_pos == edited_pos > before


def test_participants_written_by_a_later_transaction_move_the_activity_again(on_postgresql):
    _in_one_transaction(on_postgresql, (_ACTIVITY, {"owner": ALICE}))
    created = on_postgresql.positions()["a-new"]

    _in_one_transaction(on_postgresql, (_GUESTS, {"activity": "a-new"}))

    moved = on_postgresql.positions()["a-new"]
    assert moved[0] == moved[1] > created[1]
    assert [activity for _, activity in on_postgresql.changes_after(ALICE, created[1])] == ["a-new"]
