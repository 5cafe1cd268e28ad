"""keep_client_text: a client's own text is served only for the revision it
was sent for; any later change, by whichever program, retires it (SPEC 3.7, 3.10)."""

from __future__ import annotations

import pytest

from crm_model.models import Activity, User
from crm_model.services import calendar as calendar_service
from crm_model.services import renderings as rendering_service
from tests.factories import ALICE

CLIENT_TEXT = "BEGIN:VCALENDAR\r\nX-APPLE-THING:a,b,c\r\nEND:VCALENDAR\r\n"


def _record(tracked, activity_id: str):
    with tracked.session() as session:
        calendar_user = calendar_service.get_calendar_user(session, email=ALICE)
        (record,) = calendar_service.get_offered_by_ids(session, user=calendar_user, ids=[activity_id])
        return record


def _keep(tracked, activity_id: str, change_pos: int, text: str | None = CLIENT_TEXT) -> None:
    with tracked.session() as session:
        rendering_service.keep_client_text(session, activity_id=activity_id, change_pos=change_pos, text=text)


def test_kept_client_text_is_served_as_verbatim_text_of_that_revision(tracked):
    before = tracked.positions()
    record = _record(tracked, "a-c1")
    assert record.verbatim_text is None

    _keep(tracked, "a-c1", record.change_pos)

    kept = _record(tracked, "a-c1")
    assert kept.verbatim_text == CLIENT_TEXT
    assert kept.change_pos == record.change_pos
    assert tracked.positions() == before  # keeping it is no change


def test_client_text_for_a_position_the_activity_no_longer_has_is_not_kept(tracked):
    record = _record(tracked, "a-c1")

    _keep(tracked, "a-c1", record.change_pos - 1)

    assert _record(tracked, "a-c1").verbatim_text is None


def test_keeping_none_forgets_the_client_text(tracked):
    record = _record(tracked, "a-c1")
    _keep(tracked, "a-c1", record.change_pos)

    _keep(tracked, "a-c1", record.change_pos, None)

    assert _record(tracked, "a-c1").verbatim_text is None


def _crm_edit(tracked) -> None:
    with tracked.session() as session:
        session.get(Activity, "a-c1").title = "Renamed in the CRM"


def _owner_rename(tracked) -> None:
    with tracked.session() as session:
        session.query(User).filter_by(email=ALICE).one().name = "Alice Zimmermann"


INVALIDATIONS = {
    "crm edit": _crm_edit,
    "owner rename": _owner_rename,
    "owner rename by sql": lambda t: t.sql("UPDATE users SET name = 'A. Z.' WHERE email = :e", e=ALICE),
    "direct sql update": lambda t: t.sql("UPDATE activities SET description = 'by another program' "
                                         "WHERE id = 'a-c1'"),
    "participant removed by sql": lambda t: t.sql("DELETE FROM participants WHERE activity_id = 'a-c1' "
                                                  "AND contact_id IS NULL"),
    "contact rename": lambda t: t.sql("UPDATE contacts SET name = 'K. Sato' WHERE id = 'c-1'"),
    "new renderer version": lambda t: (_ensure(t, 1), _ensure(t, 7)),
}


def _ensure(tracked, version: int) -> None:
    with tracked.session() as session:
        rendering_service.ensure_renderer_version(session, name="ics", version=version)


@pytest.mark.parametrize("how", INVALIDATIONS)
def test_client_text_is_gone_after_a_later_change(tracked, how):
    record = _record(tracked, "a-c1")
    _keep(tracked, "a-c1", record.change_pos)

    INVALIDATIONS[how](tracked)

    changed = _record(tracked, "a-c1")
    assert changed.change_pos > record.change_pos
    assert changed.verbatim_text is None
