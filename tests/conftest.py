"""Shared fixtures: a database per test (SQLite, and PostgreSQL when configured),
a real server on a free loopback port, and the real CLI.

Set CRM_CALDAV_TEST_DATABASE_URL=postgresql://user@host:port/db to run every
database test on PostgreSQL too; each test creates and drops its own database.
"""

from __future__ import annotations

import json
import os
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from crm_model.db import make_engine
from server.app import create_app, serving_limits
from server.cli import cli
from server.config import Settings
from server.http import make_server

POSTGRES_URL = os.environ.get("CRM_CALDAV_TEST_DATABASE_URL")


def pytest_report_header(config: Any) -> str:
    if POSTGRES_URL:
        return f"PostgreSQL tests: on ({make_url(POSTGRES_URL).render_as_string(hide_password=True)})"
    return "PostgreSQL tests: SKIPPED (set CRM_CALDAV_TEST_DATABASE_URL to run them)"


def _postgres_database() -> Iterator[str]:
    """A fresh PostgreSQL database for one test, dropped afterwards."""
    admin_url = make_url(POSTGRES_URL)
    name = f"crm_caldav_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin_url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"), {"n": name})
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database URL for one test: SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'crm.db'}"
        return
    if not POSTGRES_URL:
        pytest.skip("PostgreSQL not configured (CRM_CALDAV_TEST_DATABASE_URL)")
    yield from _postgres_database()


@dataclass
class Crm:
    """The CLI of one test database, run in-process through click's runner."""

    database_url: str
    env: dict[str, str] = field(default_factory=dict)

    def run(self, *args: str, input: str | None = None, expect: int = 0) -> Any:
        result = CliRunner().invoke(
            cli, list(args), input=input, env={"CRM_CALDAV_DB": self.database_url, **self.env},
            catch_exceptions=False,
        )
        assert result.exit_code == expect, (args, result.exit_code, result.output, result.stderr)
        return result

    def load(self, data: dict[str, Any]) -> None:
        self.run("import", "-", input=json.dumps(data))

    def export(self, owner: str | None = None) -> dict[str, Any]:
        args = ["export"] + (["--owner", owner] if owner else [])
        return json.loads(self.run(*args).stdout)

    def enable(self, email: str, password: str = "secret-pass") -> str:
        self.run("caldav", "enable", email, "--password-stdin", "--json", input=password + "\n")
        return password


@pytest.fixture
def crm(database_url: str) -> Crm:
    return Crm(database_url)


@dataclass
class RunningServer:
    """A real server on 127.0.0.1 and what tests need to talk to it."""

    url: str
    engine: Engine
    settings: Settings

    def client(self, login: str, password: str) -> httpx.Client:
        return httpx.Client(base_url=self.url, auth=(login, password), timeout=30)


def start_server(settings: Settings) -> tuple[RunningServer, Any]:
    engine = make_engine(settings.database_url, settings.database_limits)
    application = create_app(settings, engine)
    server = make_server("127.0.0.1", 0, application, serving_limits(settings))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return RunningServer(f"http://127.0.0.1:{server.server_address[1]}", engine, settings), server


@pytest.fixture
def server_settings(database_url: str) -> Settings:
    return Settings(database_url=database_url)


@pytest.fixture
def server(server_settings: Settings) -> Iterator[RunningServer]:
    running, http_server = start_server(server_settings)
    try:
        yield running
    finally:
        http_server.shutdown()
        http_server.server_close()
        running.engine.dispose()


def settings_with(settings: Settings, **changes: Any) -> Settings:
    return replace(settings, **changes)
