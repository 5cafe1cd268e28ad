"""Migration 0007: the single app password of each user becomes a device named
"first device", and that password keeps opening the login after the upgrade
(and after going down to 0006 and up again)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, inspect, text

from crm_model.db import make_engine, make_session_factory, upgrade_schema
from crm_model.services import devices as device_service
from crm_model.services import users as user_service
from crm_model.services.passwords import hash_password
from tests.unit.crm_model.migrating import migrate as _migrate
from tests.unit.crm_model.migrating import rows as _rows

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def engine_at_0006(database_url: str) -> Iterator[Engine]:
    """A database at 0006: Alice enabled with the app password 'old-pass', Bob never enabled."""
    engine = make_engine(database_url)
    _migrate(engine, "0006")
    with engine.begin() as connection:
        for user_id, email, enabled in ((1, "alice@example.com", True), (2, "bob@example.com", False)):
            connection.execute(text(
                "INSERT INTO users (id, email, name, timezone, caldav_enabled, sync_type, synced_types) "
                "VALUES (:id, :email, 'N', 'UTC', :enabled, 'two-way', 'meeting,call')"),
                {"id": user_id, "email": email, "enabled": enabled})
        connection.execute(text(
            "INSERT INTO app_passwords (user_id, password_hash, created_at) VALUES (1, :hash, :created)"),
            {"hash": hash_password("old-pass"), "created": NOW.replace(tzinfo=None)})
    try:
        yield engine
    finally:
        engine.dispose()


def _login(engine: Engine, password: str) -> bool:
    with make_session_factory(engine).begin() as session:
        return user_service.verify_login(session, login="alice@example.com", password=password) is not None


def test_existing_password_becomes_first_device_and_still_logs_in(engine_at_0006):
    upgrade_schema(engine_at_0006)

    assert _login(engine_at_0006, "old-pass")
    assert not _login(engine_at_0006, "wrong-pass")
    with make_session_factory(engine_at_0006).begin() as session:
        devices = device_service.list_devices(session, email="alice@example.com")
        assert device_service.list_devices(session, email="bob@example.com") == []
    assert [(d.label, d.created_at, d.last_used_at, d.revoked_at) for d in devices] == \
        [("first device", NOW, None, None)]
    assert not inspect(engine_at_0006).has_table("app_passwords")
    assert inspect(engine_at_0006).has_table("admins")


def test_downgrade_to_0006_keeps_passwords_not_revoked_and_upgrade_again_works(engine_at_0006):
    upgrade_schema(engine_at_0006)
    with make_session_factory(engine_at_0006).begin() as session:
        device_service.add_device(session, email="alice@example.com", label="laptop", now=NOW)
        device_service.revoke_device(session, email="alice@example.com", label="laptop", now=NOW)

    _migrate(engine_at_0006, "0006", down=True)
    assert _rows(engine_at_0006, "SELECT user_id FROM app_passwords") == [(1,)]
    assert not inspect(engine_at_0006).has_table("devices")

    upgrade_schema(engine_at_0006)
    assert _login(engine_at_0006, "old-pass")
