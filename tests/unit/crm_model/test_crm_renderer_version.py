"""ensure_renderer_version: a new renderer version moves every activity's
change_pos (one position per owner) and the change log, not membership (SPEC 2)."""

from __future__ import annotations

from sqlalchemy import select

from crm_model.db import make_engine, make_session_factory
from crm_model.models import RendererState, User
from crm_model.services import calendar as calendar_service
from crm_model.services import renderings as rendering_service
from tests.factories import ALICE, BOB, activity, soon, user

ALICE_ACTIVITIES = ["a-c1", "a-c2", "a-l1", "a-old"]
BOB_ACTIVITIES = ["b-c1", "b-plain"]


def _ensure(tracked, version: int, name: str = "ics") -> bool:
    with tracked.session() as session:
        return rendering_service.ensure_renderer_version(session, name=name, version=version)


def _stored(tracked, name: str = "ics") -> int | None:
    with tracked.session() as session:
        return session.scalar(select(RendererState.version).where(RendererState.name == name))


def _assert_all_touched_once(tracked, before, sync_before) -> None:
    after, sync_after = tracked.positions(), tracked.sync_positions()
    for email, activity_ids in ((ALICE, ALICE_ACTIVITIES), (BOB, BOB_ACTIVITIES)):
        position = sync_before[email] + 1
        assert sync_after[email] == position, email
        assert tracked.changes_after(email, sync_before[email]) == [(position, a) for a in activity_ids]
        for activity_id in activity_ids:
            assert after[activity_id] == (position, before[activity_id][1]), activity_id


def test_first_renderer_version_is_recorded_without_moving_any_position(tracked):
    before, sync_before, count_before = tracked.positions(), tracked.sync_positions(), tracked.change_count()

    assert _ensure(tracked, 1) is False  # an upgraded database: its ETags already name version 1

    assert tracked.positions() == before and tracked.sync_positions() == sync_before
    assert tracked.change_count() == count_before
    assert _stored(tracked) == 1


def test_bumped_renderer_version_touches_all_but_keeps_membership(tracked):
    _ensure(tracked, 1)
    before, sync_before, offered = tracked.positions(), tracked.sync_positions(), tracked.offered(ALICE)

    assert _ensure(tracked, 2) is True

    _assert_all_touched_once(tracked, before, sync_before)
    assert tracked.sync_positions()["carol@example.com"] == sync_before["carol@example.com"]
    assert tracked.offered(ALICE) == offered  # a-old stays outside


def test_same_renderer_version_again_changes_nothing(tracked):
    _ensure(tracked, 1)
    before, sync_before, count_before = tracked.positions(), tracked.sync_positions(), tracked.change_count()

    assert _ensure(tracked, 1) is False

    assert tracked.positions() == before
    assert tracked.sync_positions() == sync_before
    assert tracked.change_count() == count_before


def test_bumped_renderer_version_touches_every_activity_again(tracked):
    _ensure(tracked, 1)
    before, sync_before = tracked.positions(), tracked.sync_positions()

    assert _ensure(tracked, 2) is True

    _assert_all_touched_once(tracked, before, sync_before)
    assert _stored(tracked) == 2
    assert _ensure(tracked, 2) is False


def test_renderer_versions_are_kept_per_name(tracked):
    _ensure(tracked, 1)

    assert _ensure(tracked, 1, name="other") is False
    assert _ensure(tracked, 2, name="other") is True
    assert _ensure(tracked, 1) is False
    assert (_stored(tracked), _stored(tracked, "other")) == (1, 2)


def test_new_renderer_version_retires_cached_renderings(tracked):
    _ensure(tracked, 1)
    with tracked.session() as session:
        calendar_user = calendar_service.get_calendar_user(session, email=BOB)
        entries = calendar_service.list_offered_entries(session, user=calendar_user)
        rendering_service.store_renderings(session, [(e.activity_id, e.change_pos, "1", "TEXT") for e in entries])
    with tracked.session() as session:
        cached = calendar_service.list_offered_entries(session, user=calendar_user, variant="1")
        assert {e.body for e in cached} == {"TEXT"}

    _ensure(tracked, 2)

    with tracked.session() as session:
        assert {e.body for e in calendar_service.list_offered_entries(session, user=calendar_user, variant="1")} \
            == {None}


def test_first_renderer_version_without_activities_is_stored_and_touches_nothing(crm):
    crm.load({"users": [user(ALICE)]})
    engine = make_engine(crm.database_url)
    sessions = make_session_factory(engine)
    try:
        with sessions.begin() as session:
            assert rendering_service.ensure_renderer_version(session, name="ics", version=1) is False
        with sessions.begin() as session:
            assert session.scalar(select(RendererState.version)) == 1
            assert session.scalar(select(User.sync_pos)) == 0
        crm.load({"activities": [activity("a-1", ALICE, soon(1))]})
        with sessions.begin() as session:
            assert rendering_service.ensure_renderer_version(session, name="ics", version=1) is False
    finally:
        engine.dispose()
