"""Linked contacts' and leads' names and e-mails are in served events (ATTENDEE):
changing them moves change_pos and the change log of exactly the linked
activities, each in its owner's sequence, and never edited_pos (migration 0004)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from crm_model.models import Contact, Lead
from tests.factories import ALICE, BOB


def _orm(model: type, record_id: str, **values: str) -> Callable:
    def change(tracked) -> None:
        with tracked.session() as session:
            record = session.get(model, record_id)
            for name, value in values.items():
                setattr(record, name, value)
    return change


def _sql(statement: str) -> Callable:
    def change(tracked) -> None:
        assert tracked.sql(statement) == 1
    return change


# what changes -> (activities it must touch, by owner)
PARTY_CHANGES = {
    "orm contact rename": (_orm(Contact, "c-1", name="Kenji Satō"), {ALICE: {"a-c1"}, BOB: {"b-c1"}}),
    "sql contact rename": (_sql("UPDATE contacts SET name = 'K. Sato' WHERE id = 'c-1'"),
                           {ALICE: {"a-c1"}, BOB: {"b-c1"}}),
    "sql contact e-mail": (_sql("UPDATE contacts SET email = 'mia@example.com' WHERE id = 'c-2'"),
                           {ALICE: {"a-c2"}}),
    "orm lead rename": (_orm(Lead, "l-1", name="Ana Ruiz Gómez"), {ALICE: {"a-l1"}}),
    "sql lead e-mail": (_sql("UPDATE leads SET email = 'ana.ruiz@example.com' WHERE id = 'l-1'"),
                        {ALICE: {"a-l1"}}),
}


@pytest.mark.parametrize("how", PARTY_CHANGES)
def test_party_change_touches_exactly_the_linked_activities_in_their_owners_sequences(tracked, how):
    change, expected = PARTY_CHANGES[how]
    before, sync_before, count_before = tracked.positions(), tracked.sync_positions(), tracked.change_count()

    change(tracked)

    after, sync_after = tracked.positions(), tracked.sync_positions()
    touched = set().union(*expected.values())
    for email, activity_ids in expected.items():
        assert sync_after[email] == sync_before[email] + 1, email
        assert tracked.changes_after(email, sync_before[email]) == sorted(
            (sync_after[email], activity_id) for activity_id in activity_ids)
        for activity_id in activity_ids:
            assert after[activity_id] == (sync_after[email], before[activity_id][1]), activity_id
    assert {a: p for a, p in after.items() if a not in touched} == \
        {a: p for a, p in before.items() if a not in touched}
    assert {e: p for e, p in sync_after.items() if e not in expected} == \
        {e: p for e, p in sync_before.items() if e not in expected}
    assert tracked.change_count() == count_before + len(touched)


def test_party_change_does_not_pull_an_activity_into_the_calendar(tracked):
    tracked.sql("INSERT INTO contacts (id, name, email) VALUES ('c-9', 'Old Friend', 'old@example.com')")
    tracked.sql("INSERT INTO participants (activity_id, position, contact_id) VALUES ('a-old', 0, 'c-9')")
    tracked.sql("UPDATE activities SET edited_pos = 0 WHERE id = 'a-old'")  # as if linked before T
    assert "a-old" not in tracked.offered(ALICE)
    change_pos = tracked.positions()["a-old"][0]

    tracked.sql("UPDATE contacts SET name = 'New Friend' WHERE id = 'c-9'")

    assert tracked.positions()["a-old"] == (change_pos + 1, 0)
    assert "a-old" not in tracked.offered(ALICE)


def test_renaming_several_contacts_in_one_statement_touches_each_linked_activity(tracked):
    sync_before = tracked.sync_positions()

    tracked.sql("UPDATE contacts SET name = name || ' (ex)'")

    alice = tracked.changes_after(ALICE, sync_before[ALICE])
    assert sorted({activity_id for _, activity_id in alice}) == ["a-c1", "a-c2"]
    assert [activity_id for _, activity_id in tracked.changes_after(BOB, sync_before[BOB])] == ["b-c1"]
    positions = tracked.positions()
    assert positions["a-c1"][0] > sync_before[ALICE] and positions["a-c2"][0] > sync_before[ALICE]
    assert positions["a-l1"][0] <= sync_before[ALICE]


@pytest.mark.parametrize("statement", [
    "UPDATE contacts SET name = name, email = email",
    "UPDATE leads SET name = 'Ana Ruiz' WHERE id = 'l-1'",
])
def test_setting_party_values_to_the_same_values_changes_nothing(tracked, statement):
    before, sync_before, count_before = tracked.positions(), tracked.sync_positions(), tracked.change_count()

    tracked.sql(statement)

    assert tracked.positions() == before
    assert tracked.sync_positions() == sync_before
    assert tracked.change_count() == count_before
