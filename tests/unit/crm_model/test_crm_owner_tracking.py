"""An owner's name, e-mail and time zone are in every served event (ORGANIZER,
floating times): changing them moves change_pos (ETag) and the change log of
every activity the user owns, but not edited_pos, so calendar membership
(SPEC 3.2) stays as it was (migration 0004)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from crm_model.models import User
from crm_model.services.explain import explain_activity
from tests.factories import ALICE, BOB

CAROL = "carol@example.com"
ALICE_ACTIVITIES = {"a-old", "a-c2", "a-c1", "a-l1"}
BOB_ACTIVITIES = {"b-c1", "b-plain"}


def _orm_set(**values: str) -> Callable:
    def change(tracked, email: str) -> None:
        with tracked.session() as session:
            owner = session.query(User).filter_by(email=email).one()
            for name, value in values.items():
                setattr(owner, name, value)
    return change


def _sql_set(column: str, value: str) -> Callable:
    def change(tracked, email: str) -> None:
        assert tracked.sql(f"UPDATE users SET {column} = :v WHERE email = :e", v=value, e=email) == 1
    return change


OWNER_CHANGES = {
    "orm rename": _orm_set(name="Alice Zimmermann"),
    "sql rename": _sql_set("name", "Alice Zimmermann"),
    "orm time zone": _orm_set(timezone="Asia/Tokyo"),
    "sql time zone": _sql_set("timezone", "America/New_York"),
    "sql e-mail": _sql_set("email", "alice.adams@example.com"),
    "orm name and time zone at once": _orm_set(name="A. Adams", timezone="Asia/Tokyo"),
}


@pytest.mark.parametrize("how", OWNER_CHANGES)
def test_owner_change_moves_change_pos_and_change_log_of_every_owned_activity(tracked, how):
    before, sync_before, count_before = tracked.positions(), tracked.sync_positions(), tracked.change_count()

    OWNER_CHANGES[how](tracked, ALICE)

    after, sync_after = tracked.positions(), tracked.sync_positions()
    email = "alice.adams@example.com" if how == "sql e-mail" else ALICE
    new_position = sync_before[ALICE] + 1  # one position for the whole statement
    assert sync_after[email] == new_position
    for activity_id in ALICE_ACTIVITIES:
        assert after[activity_id] == (new_position, before[activity_id][1]), activity_id  # edited_pos kept
    assert tracked.changes_after(email, sync_before[ALICE]) == sorted(
        (new_position, activity_id) for activity_id in ALICE_ACTIVITIES)
    # nobody else's calendar moved
    assert {a: after[a] for a in BOB_ACTIVITIES} == {a: before[a] for a in BOB_ACTIVITIES}
    assert sync_after[BOB] == sync_before[BOB]
    assert tracked.change_count() == count_before + len(ALICE_ACTIVITIES)


@pytest.mark.parametrize("how", ["orm rename", "sql rename", "sql time zone"])
def test_owner_change_does_not_pull_an_activity_outside_the_initial_window_into_the_calendar(tracked, how):
    offered_before = tracked.offered(ALICE)
    assert "a-old" not in offered_before and {"a-c2", "a-c1", "a-l1"} <= offered_before

    OWNER_CHANGES[how](tracked, ALICE)

    assert tracked.offered(ALICE) == offered_before
    with tracked.session() as session:
        assert not explain_activity(session, email=ALICE, activity_id="a-old").on_calendar


def test_crm_edit_of_an_activity_outside_the_window_still_puts_it_on_the_calendar(tracked):
    OWNER_CHANGES["sql rename"](tracked, ALICE)
    sync_before = tracked.sync_pos(ALICE)

    tracked.sql("UPDATE activities SET title = 'Moved to next week' WHERE id = 'a-old'")

    assert tracked.positions()["a-old"] == (sync_before + 1, sync_before + 1)
    assert "a-old" in tracked.offered(ALICE)
    with tracked.session() as session:
        assert explain_activity(session, email=ALICE, activity_id="a-old").on_calendar


def test_participant_edit_of_an_activity_outside_the_window_puts_it_on_the_calendar(tracked):
    tracked.sql("INSERT INTO participants (activity_id, position, email) VALUES ('a-old', 0, 'x@y.example')")

    position = tracked.sync_pos(ALICE)
    assert tracked.positions()["a-old"] == (position, position)
    assert "a-old" in tracked.offered(ALICE)


@pytest.mark.parametrize("statement", [
    "UPDATE users SET name = name",
    "UPDATE users SET name = 'Alice Adams', email = 'alice@example.com', timezone = 'Europe/Berlin' "
    "WHERE email = 'alice@example.com'",
])
def test_setting_owner_values_to_the_same_values_changes_nothing(tracked, statement):
    before, sync_before, count_before = tracked.positions(), tracked.sync_positions(), tracked.change_count()

    tracked.sql(statement)
    _orm_set(name="Alice Adams", timezone="Europe/Berlin")(tracked, ALICE)

    assert tracked.positions() == before
    assert tracked.sync_positions() == sync_before
    assert tracked.change_count() == count_before


def test_renaming_a_user_without_activities_moves_no_position(tracked):
    sync_before, count_before = tracked.sync_positions(), tracked.change_count()

    tracked.sql("UPDATE users SET name = 'Carol C' WHERE email = :e", e=CAROL)

    assert tracked.sync_positions() == sync_before
    assert tracked.change_count() == count_before


def test_writing_tracking_columns_fires_no_trigger(tracked):
    before, sync_before, count_before = tracked.positions(), tracked.sync_positions(), tracked.change_count()

    tracked.sql("UPDATE activities SET change_pos = change_pos, edited_pos = edited_pos, "
                "client_body = 'BEGIN:VCALENDAR', client_body_pos = change_pos")
    tracked.sql("UPDATE users SET sync_pos = sync_pos, window_pos = window_pos, last_sync_at = NULL")

    assert tracked.positions() == before
    assert tracked.sync_positions() == sync_before
    assert tracked.change_count() == count_before


def test_activity_and_participant_writes_set_change_pos_and_edited_pos_to_one_position(tracked):
    tracked.sql("UPDATE activities SET location = 'Room 4' WHERE id = 'a-c2'")
    assert tracked.positions()["a-c2"] == (tracked.sync_pos(ALICE),) * 2

    tracked.sql("DELETE FROM participants WHERE activity_id = 'b-c1'")
    assert tracked.positions()["b-c1"] == (tracked.sync_pos(BOB),) * 2

    with tracked.session() as session:
        owner_id = session.query(User.id).filter_by(email=BOB).scalar()
    tracked.sql("UPDATE activities SET owner_id = :o WHERE id = 'a-c2'", o=owner_id)
    assert tracked.positions()["a-c2"] == (tracked.sync_pos(BOB),) * 2
