"""Participant writes of any program are tracked (migration 0005: on PostgreSQL once per
statement, so that one statement of thousands of rows costs linear time), and the
activities they touch are exactly the ones recorded."""

from __future__ import annotations

from tests.factories import ALICE

_MANY = ("INSERT INTO participants (activity_id, position, email) VALUES "
         + ", ".join(f"('a-c2', {10 + i}, 'guest{i}@example.org')" for i in range(50)))


def test_one_statement_inserting_many_participants_moves_the_activity_and_logs_it(tracked):
    before, sync_before = tracked.positions(), tracked.sync_pos(ALICE)

    assert tracked.sql(_MANY) == 50

    sync_after = tracked.sync_pos(ALICE)
    assert sync_after > sync_before
    assert tracked.positions()["a-c2"] == (sync_after, sync_after)
    assert {activity for _, activity in tracked.changes_after(ALICE, sync_before)} == {"a-c2"}
    assert {a: p for a, p in tracked.positions().items() if a != "a-c2"} == \
        {a: p for a, p in before.items() if a != "a-c2"}


def test_updating_participants_of_two_activities_in_one_statement_touches_both(tracked):
    before = tracked.sync_pos(ALICE)

    assert tracked.sql("UPDATE participants SET position = position + 1 "
                       "WHERE activity_id IN ('a-c1', 'a-l1')") == 3

    assert {a for _, a in tracked.changes_after(ALICE, before)} == {"a-c1", "a-l1"}
    positions = tracked.positions()
    assert positions["a-c1"][1] > before and positions["a-l1"][1] > before


def test_deleting_participants_of_two_activities_in_one_statement_touches_both(tracked):
    before = tracked.sync_pos(ALICE)

    assert tracked.sql("DELETE FROM participants WHERE activity_id IN ('a-c1', 'a-c2')") == 3

    assert {a for _, a in tracked.changes_after(ALICE, before)} == {"a-c1", "a-c2"}
    positions = tracked.positions()
    assert positions["a-c1"][1] > before and positions["a-c2"][1] > before
