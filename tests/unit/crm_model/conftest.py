"""Fixtures of the crm_model change-tracking tests: a small loaded CRM and a
handle to read its positions and change log (SQLite, and PostgreSQL when
CRM_CALDAV_TEST_DATABASE_URL is set: see tests/conftest.py ``database_url``)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from crm_model.db import make_engine, make_session_factory
from crm_model.services import calendar as calendar_service
from tests.factories import ALICE, BOB, activity, soon, user

CAROL = "carol@example.com"  # a user without activities


def crm_document() -> dict[str, Any]:
    """Alice owns an old activity (before the initial window) and three linked ones;
    Bob shares contact c-1 with her."""
    return {
        "users": [user(ALICE, "Alice Adams", "Europe/Berlin"), user(BOB, "Bob Brown"), user(CAROL)],
        "contacts": [{"id": "c-1", "name": "Kenji Sato", "email": "kenji@example.jp"},
                     {"id": "c-2", "name": "Mia Meyer", "email": "mia@example.de"}],
        "leads": [{"id": "l-1", "name": "Ana Ruiz", "email": "ana@example.com"}],
        "activities": [
            activity("a-old", ALICE, soon(-90)),
            activity("a-c2", ALICE, soon(2), participants=[{"contact": "c-2"}]),
            activity("a-c1", ALICE, soon(3), participants=[{"contact": "c-1"},
                                                           {"email": "guest@else.example"}]),
            activity("a-l1", ALICE, soon(4), participants=[{"lead": "l-1"}]),
            activity("b-c1", BOB, soon(3), participants=[{"contact": "c-1"}]),
            activity("b-plain", BOB, soon(5)),
        ],
    }


class TrackedCrm:
    """Reads and writes of one test database, each in a transaction of its own."""

    def __init__(self, url: str) -> None:
        self.engine = make_engine(url)
        self.sessions = make_session_factory(self.engine)

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self.sessions.begin() as session:
            yield session

    def sql(self, statement: str, **params: Any) -> int:
        """Run one statement as another program would; returns its row count."""
        with self.engine.begin() as connection:
            return connection.execute(text(statement), params).rowcount

    def scalar(self, statement: str, **params: Any) -> Any:
        with self.engine.begin() as connection:
            return connection.execute(text(statement), params).scalar()

    def positions(self) -> dict[str, tuple[int, int]]:
        """activity id -> (change_pos, edited_pos)."""
        with self.engine.begin() as connection:
            rows = connection.execute(text("SELECT id, change_pos, edited_pos FROM activities"))
            return {row.id: (row.change_pos, row.edited_pos) for row in rows}

    def hrefs(self) -> dict[str, str]:
        """activity id -> href."""
        with self.engine.begin() as connection:
            return dict(connection.execute(text("SELECT id, href FROM activities")).all())

    def sync_pos(self, email: str) -> int:
        return self.scalar("SELECT sync_pos FROM users WHERE email = :e", e=email)

    def sync_positions(self) -> dict[str, int]:
        with self.engine.begin() as connection:
            return dict(connection.execute(text("SELECT email, sync_pos FROM users")).all())

    def changes_after(self, email: str, position: int) -> list[tuple[int, str]]:
        """(pos, activity_id) rows of ``email``'s change log after ``position``."""
        with self.engine.begin() as connection:
            return [tuple(row) for row in connection.execute(text(
                "SELECT c.pos, c.activity_id FROM calendar_changes c JOIN users u ON u.id = c.user_id "
                "WHERE u.email = :e AND c.pos > :p ORDER BY c.pos, c.activity_id"), {"e": email, "p": position})]

    def change_count(self) -> int:
        return self.scalar("SELECT count(*) FROM calendar_changes")

    def offered(self, email: str) -> set[str]:
        """Activity ids on ``email``'s calendar (calendar_service.list_offered_hrefs)."""
        by_href = {href: activity_id for activity_id, href in self.hrefs().items()}
        with self.session() as session:
            calendar_user = calendar_service.get_calendar_user(session, email=email)
            return {by_href[h] for h in calendar_service.list_offered_hrefs(session, user=calendar_user)}


@pytest.fixture
def tracked(crm) -> Iterator[TrackedCrm]:
    """The CRM of ``crm_document`` with CalDAV enabled for Alice and Bob."""
    crm.load(crm_document())
    crm.enable(ALICE)
    crm.enable(BOB)
    handle = TrackedCrm(crm.database_url)
    yield handle
    handle.engine.dispose()
