"""Issue 11: admin accounts (`crm-caldav admin add`) live apart from CalDAV users:
a CalDAV app password never opens the admin login, and an unknown e-mail costs
the same hash check as a known one."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy.orm import Session

from crm_model.db import make_engine, make_session_factory
from crm_model.errors import ConflictError, InvalidDataError
from crm_model.services import admins as admin_service
from crm_model.services import passwords
from tests.factories import ALICE, user

BOSS = "boss@example.com"
BOSS_PASSWORD = "a long admin password"


@pytest.fixture
def session(crm) -> Iterator[Session]:
    crm.run("caldav", "status")  # creates the schema
    engine = make_engine(crm.database_url)
    try:
        with make_session_factory(engine).begin() as session:
            yield session
    finally:
        engine.dispose()


def test_admin_add_reads_the_password_from_standard_input(crm, session):
    result = crm.run("admin", "add", "Boss@Example.com", "--password-stdin", input=BOSS_PASSWORD + "\n")

    assert "password" not in result.stdout  # nothing generated, nothing printed
    assert admin_service.verify_admin(session, email=BOSS, password=BOSS_PASSWORD).email == BOSS
    assert admin_service.verify_admin(session, email=BOSS, password="a wrong password!") is None
    assert [a.email for a in admin_service.list_admins(session)] == [BOSS]


def test_admin_add_without_a_password_generates_and_prints_one(crm, session):
    result = crm.run("admin", "add", BOSS)

    password = re.search(r"password: (\S+)", result.stdout).group(1)
    assert admin_service.verify_admin(session, email=BOSS, password=password) is not None


def test_admin_add_refuses_an_existing_admin_and_a_short_password(crm):
    crm.run("admin", "add", BOSS, input=BOSS_PASSWORD)

    assert "exists already" in crm.run("admin", "add", BOSS, input=BOSS_PASSWORD, expect=1).stderr
    assert "12 to" in crm.run("admin", "add", "other@example.com", input="short", expect=1).stderr
    assert "no password" in crm.run("admin", "add", "x@example.com", "--password-stdin", input="", expect=1).stderr


def test_caldav_app_password_never_opens_the_admin_login(crm, session):
    crm.load({"users": [user(ALICE)]})
    app_password = crm.enable(ALICE, "alice-app-password")
    crm.run("admin", "add", ALICE, input="alice's admin password")

    assert admin_service.verify_admin(session, email=ALICE, password=app_password) is None
    assert admin_service.verify_admin(session, email=ALICE, password="alice's admin password") is not None


def test_caldav_user_without_an_admin_account_cannot_log_in_as_admin(crm, session):
    crm.load({"users": [user(ALICE)]})
    app_password = crm.enable(ALICE, "alice-app-password")

    assert admin_service.verify_admin(session, email=ALICE, password=app_password) is None


def test_unknown_admin_email_costs_one_hash_check_like_a_known_one(crm, session, monkeypatch):
    admin_service.add_admin(session, email=BOSS, password=BOSS_PASSWORD, now=datetime.now(UTC))
    checks: list[str] = []
    real = passwords.HASHER

    class CountingHasher:
        @staticmethod
        def verify(secret: str, hashed: str) -> bool:
            checks.append(secret)
            return bool(real.verify(secret, hashed))

    monkeypatch.setattr(passwords, "HASHER", CountingHasher)
    admin_service.verify_admin(session, email="nobody@example.com", password="guess-guess-guess")
    admin_service.verify_admin(session, email=BOSS, password="guess-guess-guess")

    assert checks == ["guess-guess-guess", "guess-guess-guess"]


def test_add_admin_refuses_bad_input_in_the_service(session):
    now = datetime.now(UTC)
    admin_service.add_admin(session, email=BOSS, password=BOSS_PASSWORD, now=now)

    with pytest.raises(ConflictError):
        admin_service.add_admin(session, email=BOSS.upper(), password=BOSS_PASSWORD, now=now)
    with pytest.raises(InvalidDataError):
        admin_service.add_admin(session, email="not-an-address", password=BOSS_PASSWORD, now=now)
