"""SPEC 3.2: all-day activities are compared with the initial window as dates
in the user's time zone, at its start, at its optional end (enable date) and
for the cap; `explain` says so in the same terms."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from crm_model.records import WindowPolicy
from crm_model.services import explain as explain_service
from crm_model.services import users as user_service
from tests.factories import activity, user
from tests.unit.crm_model.conftest import TrackedCrm

NEW_YORK = "ny@example.com"  # UTC-4 in May and June
TOKYO = "tokyo@example.com"  # UTC+9
DEFAULT_POLICY = WindowPolicy()


def _all_day(activity_id: str, owner: str, day: date) -> dict[str, Any]:
    data = activity(activity_id, owner, datetime(2026, 1, 1, tzinfo=UTC), all_day=True)
    data.update(start=day.isoformat(), end=(day + timedelta(days=1)).isoformat())
    return data


def _timed(activity_id: str, owner: str, start: datetime) -> dict[str, Any]:
    return activity(activity_id, owner, start)


@pytest.fixture
def crm_db(crm) -> Iterator[TrackedCrm]:
    crm.load({
        "users": [user(NEW_YORK, timezone_name="America/New_York"), user(TOKYO, timezone_name="Asia/Tokyo")],
        "activities": [
            _all_day("ny-day-before", NEW_YORK, date(2026, 4, 30)),
            _all_day("ny-first-day", NEW_YORK, date(2026, 5, 1)),
            _timed("ny-late-evening-before", NEW_YORK, datetime(2026, 5, 1, 3, 59, tzinfo=UTC)),  # Apr 30, 23:59
            _timed("ny-first-midnight", NEW_YORK, datetime(2026, 5, 1, 4, 0, tzinfo=UTC)),  # May 1, 00:00
            _all_day("ny-enable-day", NEW_YORK, date(2026, 6, 15)),
            _all_day("ny-day-after-enable", NEW_YORK, date(2026, 6, 16)),
            _all_day("tokyo-day-before", TOKYO, date(2026, 4, 30)),
            _all_day("tokyo-first-day", TOKYO, date(2026, 5, 1)),
            _all_day("tokyo-enable-day", TOKYO, date(2026, 6, 16)),
            _all_day("tokyo-day-after-enable", TOKYO, date(2026, 6, 17)),
        ],
    })
    handle = TrackedCrm(crm.database_url)
    yield handle
    handle.engine.dispose()


def _enable(db: TrackedCrm, email: str, now: datetime, policy: WindowPolicy = DEFAULT_POLICY) -> set[str]:
    with db.session() as session:
        user_service.enable_caldav(session, email=email, password="pw", now=now, policy=policy)
    return db.offered(email)


def test_all_day_activity_on_the_first_day_is_in_the_window_west_of_utc(crm_db):
    offered = _enable(crm_db, NEW_YORK, datetime(2026, 6, 15, 12, 0, tzinfo=UTC))

    assert {"ny-first-day", "ny-first-midnight"} <= offered
    assert not {"ny-day-before", "ny-late-evening-before"} & offered


def test_all_day_activity_on_the_day_before_stays_out_east_of_utc(crm_db):
    offered = _enable(crm_db, TOKYO, datetime(2026, 6, 15, 12, 0, tzinfo=UTC))

    assert "tokyo-first-day" in offered and "tokyo-day-before" not in offered


def test_window_ending_at_enable_compares_all_day_activities_with_the_local_enable_date(crm_db):
    policy = WindowPolicy(end_at_enable=True)
    # 22:00 on June 15 in New York is already June 16 in UTC
    ny = _enable(crm_db, NEW_YORK, datetime(2026, 6, 16, 2, 0, tzinfo=UTC), policy)
    # 05:00 on June 16 in Tokyo is still June 15 in UTC
    tokyo = _enable(crm_db, TOKYO, datetime(2026, 6, 15, 20, 0, tzinfo=UTC), policy)

    assert "ny-enable-day" in ny and "ny-day-after-enable" not in ny
    assert "tokyo-enable-day" in tokyo and "tokyo-day-after-enable" not in tokyo


def test_cap_keeps_an_all_day_activity_that_begins_at_local_midnight_before_later_timed_ones(crm):
    crm.load({"users": [user(TOKYO, timezone_name="Asia/Tokyo")], "activities": [
        _timed("morning-may-1", TOKYO, datetime(2026, 5, 1, 1, 0, tzinfo=UTC)),  # May 1, 10:00 Tokyo
        _all_day("all-day-may-2", TOKYO, date(2026, 5, 2)),  # begins May 1, 15:00 UTC
        _timed("morning-may-2", TOKYO, datetime(2026, 5, 1, 23, 0, tzinfo=UTC)),  # May 2, 08:00 Tokyo
    ]})
    db = TrackedCrm(crm.database_url)
    try:
        offered = _enable(db, TOKYO, datetime(2026, 6, 15, 12, 0, tzinfo=UTC), WindowPolicy(cap=2))
    finally:
        db.engine.dispose()

    assert offered == {"morning-may-1", "all-day-may-2"}


def test_explain_names_the_local_first_day_for_an_all_day_activity_before_the_window(crm_db):
    _enable(crm_db, NEW_YORK, datetime(2026, 6, 15, 12, 0, tzinfo=UTC))
    with crm_db.session() as session:
        before = explain_service.explain_activity(session, email=NEW_YORK, activity_id="ny-day-before")
        first = explain_service.explain_activity(session, email=NEW_YORK, activity_id="ny-first-day")

    assert not before.on_calendar
    assert "all-day activity on 2026-04-30" in before.sentence
    assert "begins on 2026-05-01 (America/New_York)" in before.sentence
    assert first.on_calendar and "initial window" in first.sentence


def test_explain_names_the_local_enable_date_for_an_all_day_activity_after_the_window(crm_db):
    _enable(crm_db, NEW_YORK, datetime(2026, 6, 16, 2, 0, tzinfo=UTC), WindowPolicy(end_at_enable=True))
    with crm_db.session() as session:
        after = explain_service.explain_activity(session, email=NEW_YORK, activity_id="ny-day-after-enable")

    assert not after.on_calendar
    assert "starts after the initial window, which ends on the enable date 2026-06-15" in after.sentence
