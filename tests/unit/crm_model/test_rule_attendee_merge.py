"""SPEC 3.5 "Participants" and 3.6 "One-way attendee deletion", on an in-memory SQLite CRM.

ATTENDEE addresses are matched case-insensitively to contacts and leads, unknown
ones are kept as bare e-mail participants, the organizer's own ATTENDEE is not a
participant, and removing an ATTENDEE on a client never removes a participant.
No server: crm_model.services on a schema built by the migrations.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from crm_model.db import make_engine, make_session_factory, upgrade_schema
from crm_model.models import Activity, Contact, Lead, User
from crm_model.records import AttendeeDraft
from crm_model.services import calendar as calendar_service
from crm_model.services import participants as participant_service
from crm_model.services import users as user_service
from storage_plugin import from_ical, rules

OWNER = "alice@example.com"
T0 = datetime(2025, 3, 18, 10, tzinfo=UTC)


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    """One in-memory database for the module, built by the migrations (upgrade_schema)."""
    engine = make_engine("sqlite://")
    upgrade_schema(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """A CRM with Alice, contact c-1, lead l-1 and Alice's activity a-1; rolled back after the test."""
    session = make_session_factory(engine)()
    session.begin()
    session.add_all([
        User(email=OWNER, name="Alice", timezone="Europe/Berlin", caldav_enabled=True),
        Contact(id="c-1", name="Kenji Sato", email="kenji@example.jp"),
        Lead(id="l-1", name="Ana Ruiz", email="ana@example.com"),
    ])
    session.flush()
    owner_id = session.query(User.id).filter_by(email=OWNER).scalar()
    session.add(Activity(id="a-1", owner_id=owner_id, title="Review", starts_at=T0, ends_at=T0,
                         uid="a-1", href="a-1.ics", created_at=T0, updated_at=T0, participants=[]))
    session.flush()
    try:
        yield session
    finally:
        session.rollback()
        session.close()


def _merge(session: Session, *addresses: str) -> Activity:
    activity = session.get(Activity, "a-1")
    attendees = [AttendeeDraft(email=a, name=f"CN of {a}") for a in addresses]
    participant_service.merge_client_attendees(session, activity, attendees, organizer=OWNER)
    session.flush()
    return activity


def _shown(activity: Activity) -> list[tuple[str | None, str | None, str]]:
    """(contact id, lead id, address) of each participant, in order."""
    return [(p.contact_id, p.lead_id, participant_service.participant_address(p))
            for p in activity.participants]


def test_attendee_is_matched_to_a_contact_case_insensitively(session):
    activity = _merge(session, "KENJI@Example.JP")
    assert _shown(activity) == [("c-1", None, "kenji@example.jp")]
    assert activity.participants[0].email == "kenji@example.jp"  # the contact's address, not the client's case


def test_attendee_is_matched_to_a_lead_case_insensitively(session):
    assert _shown(_merge(session, "Ana@EXAMPLE.com")) == [(None, "l-1", "ana@example.com")]


def test_unknown_attendee_is_kept_as_a_bare_email_participant(session):
    activity = _merge(session, "guest@else.example")
    assert _shown(activity) == [(None, None, "guest@else.example")]
    assert activity.participants[0].name == "CN of guest@else.example"


def test_organizers_own_attendee_is_not_a_participant(session):
    assert _shown(_merge(session, "Alice@Example.COM", "kenji@example.jp")) == [("c-1", None, "kenji@example.jp")]


def test_same_address_twice_is_one_participant(session):
    assert len(_merge(session, "kenji@example.jp", "KENJI@example.jp", " kenji@example.jp ").participants) == 1


def test_removing_an_attendee_on_the_client_never_removes_the_participant(session):
    _merge(session, "kenji@example.jp", "guest@else.example")
    assert _shown(_merge(session)) == [("c-1", None, "kenji@example.jp"), (None, None, "guest@else.example")]
    assert len(_merge(session, "guest@else.example").participants) == 2


def test_attendee_added_on_the_client_becomes_a_participant_after_the_kept_ones(session):
    _merge(session, "kenji@example.jp")
    activity = _merge(session, "ana@example.com")
    assert _shown(activity) == [("c-1", None, "kenji@example.jp"), (None, "l-1", "ana@example.com")]
    assert [p.position for p in activity.participants] == [0, 1]


def _put(session: Session, *attendee_lines: str) -> list[str]:
    """One client PUT through read_event and apply_calendar_edit; the stored participants' addresses."""
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//test//EN", "BEGIN:VEVENT", "UID:put-1",
             "DTSTAMP:20250301T000000Z", "DTSTART:20250318T100000Z", "DTEND:20250318T110000Z",
             "SUMMARY:Review", f"ORGANIZER:mailto:{OWNER}", *attendee_lines, "END:VEVENT", "END:VCALENDAR"]
    reading = from_ical.read_event("\r\n".join(lines) + "\r\n", default_timezone="Europe/Berlin",
                                   recurrence=rules.RECURRENCE_REJECT)
    user = user_service.get_user_record(session, email=OWNER)
    stored, _old = calendar_service.apply_calendar_edit(
        session, user=user, href="put-1.ics", draft=reading.draft, now=T0)
    return [p.email for p in stored.participants]


def test_client_puts_add_participants_and_never_remove_them(session):
    assert _put(session, f"ATTENDEE;ROLE=CHAIR:mailto:{OWNER}", "ATTENDEE:mailto:Kenji@example.jp",
                "ATTENDEE;CN=Guest:mailto:guest@else.example") == ["kenji@example.jp", "guest@else.example"]
    assert _put(session, "ATTENDEE:mailto:guest@else.example") == ["kenji@example.jp", "guest@else.example"]
    assert _put(session) == ["kenji@example.jp", "guest@else.example"]
