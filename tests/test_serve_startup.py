"""Issue 12, "Startup and settings": `crm-caldav serve` names its database (never its
password) and public URL when it starts, and a production server refuses to start on a
new, empty SQLite file unless told to create it.

Every case runs the installed console script in a subprocess, in a folder of its own,
with only PATH and the variables given in its environment.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import make_url

from server.cli import _startup_line
from server.config import Settings
from tests.factories import ALICE, user
from tests.serving import CRM_CALDAV, script_environment, serving_script

pytestmark = pytest.mark.e2e


def _command(*args: str) -> list[str]:
    return [CRM_CALDAV, "serve", "--port", "0", *args]


@contextmanager
def _serving(folder: Path, *args: str, env: dict[str, str]) -> Iterator[tuple[str, str]]:
    """(startup line, bound URL) of a server started in ``folder``; stopped by SIGTERM (exit 0) at the end."""
    with serving_script(folder, *args, env=env) as (_, line, bound):
        yield line, bound


def _refused(folder: Path, *args: str, env: dict[str, str]) -> str:
    """The one error line of a `serve` that must not start."""
    result = subprocess.run(_command(*args), cwd=folder, env=script_environment(env), capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    return lines[0]


def _answers(url: str) -> bool:
    return httpx.request("OPTIONS", url, timeout=30).status_code == 200


def test_startup_line_names_the_database_without_its_password_and_the_public_url(database_url, crm, tmp_path):
    crm.load({"users": [user(ALICE)]})  # an existing database
    url = make_url(database_url)
    given = url.set(password="s3cret") if url.get_backend_name() == "postgresql" else url
    env = {"CRM_CALDAV_DB": given.render_as_string(hide_password=False),
           "CRM_CALDAV_PUBLIC_URL": "https://cal.example.com/"}
    with _serving(tmp_path, "--workers", "2", env=env) as (line, bound):
        assert _answers(bound)
    shown = given.render_as_string(hide_password=True)
    assert line == (f"Serving CalDAV on {bound} with 2 processes; database {shown}; "
                    "public URL https://cal.example.com/ (Ctrl-C to stop)")
    assert "s3cret" not in line and ("***" in line) == (url.get_backend_name() == "postgresql")


def test_without_settings_the_line_names_the_default_file_and_the_bound_address_saying_so(tmp_path):
    with _serving(tmp_path, env={}) as (line, bound):  # a developer's server: creates its file
        assert _answers(bound)
    assert line == (f"Serving CalDAV on {bound}; database sqlite:///{tmp_path / 'crm-caldav.db'} "
                    "(the default: CRM_CALDAV_DB is not set); "
                    f"public URL {bound} (the bound address: CRM_CALDAV_PUBLIC_URL is not set) (Ctrl-C to stop)")
    assert (tmp_path / "crm-caldav.db").exists()


@pytest.mark.parametrize(("args", "env", "reasons"), [
    (["--workers", "4"], {}, "--workers 4; CRM_CALDAV_DB is not set"),
    (["--host", "0.0.0.0"], {}, "--host 0.0.0.0; CRM_CALDAV_DB is not set"),
    ([], {"CRM_CALDAV_PUBLIC_URL": "https://cal.example.com/", "CRM_CALDAV_DB": "sqlite:///crm.db"},
     "CRM_CALDAV_PUBLIC_URL is set"),
], ids=["workers", "host", "public-url"])
def test_a_production_serve_refuses_a_new_sqlite_file_and_creates_nothing(tmp_path, args, env, reasons):
    line = _refused(tmp_path, *args, env=env)
    name = "crm.db" if env else "crm-caldav.db"
    assert line == (f"Error: refusing to serve a new SQLite file {tmp_path / name} in production ({reasons}): "
                    "set CRM_CALDAV_DB to your database (postgresql+psycopg://USER@HOST/DATABASE), "
                    "or pass --create-database to create it")
    assert list(tmp_path.iterdir()) == []


def test_a_production_serve_refuses_an_in_memory_database(tmp_path):
    line = _refused(tmp_path, "--workers", "2", env={"CRM_CALDAV_DB": "sqlite://"})
    assert line.startswith("Error: refusing to serve an in-memory SQLite database in production (--workers 2)")


def test_create_database_lets_a_production_serve_start_on_a_new_sqlite_file(tmp_path):
    env = {"CRM_CALDAV_PUBLIC_URL": "https://cal.example.com/"}
    with _serving(tmp_path, "--create-database", env=env) as (_, bound):
        assert _answers(bound)
    assert (tmp_path / "crm-caldav.db").exists()


def test_demo_implies_create_database(tmp_path):
    with _serving(tmp_path, "--demo", env={"CRM_CALDAV_PUBLIC_URL": "https://cal.example.com/"}) as (_, bound):
        assert _answers(bound)
    assert (tmp_path / "crm-caldav.db").exists()


def test_an_existing_sqlite_file_is_served_in_production(crm, tmp_path):
    if not crm.database_url.startswith("sqlite"):
        pytest.skip("a SQLite case")
    crm.load({"users": [user(ALICE)]})
    env = {"CRM_CALDAV_DB": crm.database_url, "CRM_CALDAV_PUBLIC_URL": "https://cal.example.com/"}
    with _serving(tmp_path, env=env) as (_, bound):
        assert _answers(bound)


def test_the_line_counts_the_processes_and_brackets_an_ipv6_address():
    settings = Settings(database_url="postgresql+psycopg://crm:s3cret@db/crm", public_url="https://cal.example.com/")
    assert _startup_line(settings, "::1", 5232, 4) == (
        "Serving CalDAV on http://[::1]:5232/ with 4 processes; database postgresql+psycopg://crm:***@db/crm; "
        "public URL https://cal.example.com/ (Ctrl-C to stop)")
