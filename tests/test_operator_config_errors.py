"""Issue 12, "Errors and settings": an operator's mistake in a setting is one line on
stderr and a non-zero exit, never a traceback, and nothing changes.

The first cases run the installed `crm-caldav` console script in a subprocess (what an
operator types); the others use click's runner in-process, which runs the same command
functions and reports an uncaught exception as ``result.exception``.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from server import config
from server.cli import cli
from tests.conftest import Crm
from tests.factories import ALICE, activity, soon, user

CRM_CALDAV = str(Path(sys.executable).with_name("crm-caldav"))
README = Path(__file__).parents[1] / "README.md"


def _run_script(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """The real console script, with only PATH and ``env`` in its environment."""
    return subprocess.run([CRM_CALDAV, *args], cwd=cwd, capture_output=True, text=True, timeout=60,
                          env={"PATH": str(Path(sys.executable).parent), **env})


def _run(*args: str, env: dict[str, str] | None = None, input: str | None = None) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of the command run by click's runner; a traceback fails the test."""
    result = CliRunner().invoke(cli, list(args), env=env or {}, input=input)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exc_info
    return result.exit_code, result.stdout, result.stderr


def _one_error_line(code: int, stderr: str) -> str:
    """The single 'Error: ...' line of a failed command (no traceback, nothing else)."""
    assert code != 0, stderr
    assert "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), stderr
    return lines[0]


def test_a_mysql_url_is_one_line_naming_the_supported_databases_and_not_the_password(tmp_path):
    result = _run_script("caldav", "status", env={"CRM_CALDAV_DB": "mysql://crm:s3cret@db.example.com/crm"},
                         cwd=tmp_path)
    line = _one_error_line(result.returncode, result.stderr)
    assert line.startswith("Error: CRM_CALDAV_DB: mysql databases are not supported")
    assert "postgresql+psycopg://" in line and "sqlite:///" in line and "s3cret" not in line
    assert list(tmp_path.iterdir()) == []  # no SQLite file made on the side


@pytest.mark.parametrize(("url", "expected"), [
    ("not a url", "CRM_CALDAV_DB: not a database URL"),
    ("oracle://scott:tiger@db/orcl", "CRM_CALDAV_DB: oracle databases are not supported"),
    ("postgresql+psycopg2://crm:s3cret@db/crm", "CRM_CALDAV_DB: the driver of postgresql+psycopg2 is not installed"),
    ("postgresql+nosuchdriver://crm@db/crm", "CRM_CALDAV_DB: unknown driver 'postgresql+nosuchdriver'"),
])
def test_an_unusable_database_url_is_one_line_naming_the_setting(url, expected):
    code, _, stderr = _run("caldav", "status", env={"CRM_CALDAV_DB": url})
    line = _one_error_line(code, stderr)
    assert line.startswith(f"Error: {expected}") and "s3cret" not in line


def test_a_database_that_is_down_is_one_line_for_every_command():
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {"CRM_CALDAV_DB": f"postgresql+psycopg://crm:s3cret@127.0.0.1:{port}/crm"}
    for args in (["caldav", "status"], ["export"], ["explain", ALICE, "a-1"], ["caldav", "enable", ALICE]):
        line = _one_error_line(*_run(*args, env=env)[::2])
        assert line.startswith("Error: cannot open the database: ") and "s3cret" not in line, args


def test_a_misspelt_setting_in_the_config_file_is_refused_naming_the_line_and_the_nearest_name(tmp_path):
    settings = tmp_path / "crm-caldav.env"
    settings.write_text("# production\nCRM_CALDAV_PUBLIC_URL=https://cal.example.com/\nCRM_CALDAV_INITAL_CAP=500\n")
    result = _run_script("--config", str(settings), "caldav", "status",
                         env={"CRM_CALDAV_DB": f"sqlite:///{tmp_path / 'crm.db'}"}, cwd=tmp_path)
    line = _one_error_line(result.returncode, result.stderr)
    assert line == (f"Error: {settings}:3: CRM_CALDAV_INITAL_CAP is not a setting "
                    "(did you mean CRM_CALDAV_INITIAL_CAP?)")


def test_a_config_name_without_the_prefix_is_refused_suggesting_the_full_name(tmp_path):
    settings = tmp_path / "crm-caldav.env"
    settings.write_text("PUBLIC_URL=https://cal.example.com/\n")
    line = _one_error_line(*_run("--config", str(settings), "caldav", "status")[::2])
    assert line == f"Error: {settings}:1: PUBLIC_URL is not a setting (did you mean CRM_CALDAV_PUBLIC_URL?)"


def test_a_config_name_far_from_every_setting_is_refused_without_a_guess(tmp_path):
    settings = tmp_path / "crm-caldav.env"
    settings.write_text("CRM_CALDAV_FAVOURITE_COLOUR=blue\n")
    line = _one_error_line(*_run("--config", str(settings), "caldav", "status")[::2])
    assert line == f"Error: {settings}:1: CRM_CALDAV_FAVOURITE_COLOUR is not a setting"


@pytest.mark.parametrize(("content", "expected"), [
    ("CRM_CALDAV_DB=sqlite:///x.db\n".encode("utf-16"), "not UTF-8 text"),
    (b"CRM_CALDAV_DB sqlite:///x.db\n", ":1: expected CRM_CALDAV_NAME=value"),
    (None, "cannot read configuration file"),
])
def test_an_unreadable_or_malformed_config_file_is_one_line_naming_it(tmp_path, content, expected):
    settings = tmp_path / "crm-caldav.env"
    if content is not None:
        settings.write_bytes(content)
    line = _one_error_line(*_run("--config", str(settings), "caldav", "status")[::2])
    assert str(settings) in line and expected in line


@pytest.mark.parametrize(("name", "value", "expected"), [
    ("CRM_CALDAV_INITIAL_CAP", "lots", "CRM_CALDAV_INITIAL_CAP: not a whole number: 'lots'"),
    ("CRM_CALDAV_LOG_LEVEL", "loud", "CRM_CALDAV_LOG_LEVEL: must be one of debug, info, warning, error, critical"),
    ("CRM_CALDAV_MAX_EVENT_BYTES", "10", "CRM_CALDAV_MAX_EVENT_BYTES: must be at least 1024"),
])
def test_a_bad_setting_value_is_one_line_naming_the_setting(tmp_path, name, value, expected):
    line = _one_error_line(*_run("caldav", "status", env={name: value,
                                                           "CRM_CALDAV_DB": f"sqlite:///{tmp_path / 'crm.db'}"})[::2])
    assert line.startswith(f"Error: {expected}")


def test_a_bad_value_in_the_config_file_names_its_line(tmp_path):
    settings = tmp_path / "crm-caldav.env"
    settings.write_text("CRM_CALDAV_DB=mysql://crm:s3cret@db/crm\nCRM_CALDAV_INITIAL_CAP=lots\n")
    line = _one_error_line(*_run("--config", str(settings), "caldav", "status")[::2])
    assert line.startswith(f"Error: {settings}:1: CRM_CALDAV_DB: mysql databases are not supported")
    env = {"CRM_CALDAV_DB": f"sqlite:///{tmp_path / 'crm.db'}"}  # the environment wins over line 1
    line = _one_error_line(*_run("--config", str(settings), "caldav", "status", env=env)[::2])
    assert line == f"Error: {settings}:2: CRM_CALDAV_INITIAL_CAP: not a whole number: 'lots'"


def test_an_unknown_variable_in_the_environment_is_one_warning_line_and_the_command_runs(tmp_path):
    env = {"CRM_CALDAV_DB": f"sqlite:///{tmp_path / 'crm.db'}", "CRM_CALDAV_LOGLEVEL": "debug",
           "CRM_CALDAV_TEST_DATABASE_URL": "postgresql://elsewhere/test"}
    result = _run_script("caldav", "status", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [
        "Warning: CRM_CALDAV_LOGLEVEL in the environment is not a setting; ignored "
        "(did you mean CRM_CALDAV_LOG_LEVEL?)",  # and nothing about the test suite's own variable
        "no users in the CRM yet: load them with crm-caldav import FILE"]


def test_a_port_out_of_range_is_a_usage_error_not_a_traceback():
    code, _, stderr = _run("serve", "--port", "99999", env={"CRM_CALDAV_DB": "sqlite://"})
    assert code == 2 and "Traceback" not in stderr  # click's usage error: the usage, then one Error line
    assert stderr.strip().splitlines()[-1] == (
        "Error: Invalid value for '--port': 99999 is not in the range 0<=x<=65535.")


@pytest.fixture
def typed(crm):
    """Alice, enabled, with meetings and a task in the CRM."""
    crm.load({"users": [user(ALICE)], "activities": [
        activity("m-1", ALICE, soon(1)), activity("t-1", ALICE, soon(2), type="task")]})
    crm.enable(ALICE)
    return crm


def test_unknown_activity_types_are_refused_listing_the_known_ones_and_nothing_changes(typed):
    before = json.loads(typed.run("caldav", "status", ALICE, "--json").stdout)
    result = typed.run("caldav", "settings", ALICE, "--types", "meeting,foo", expect=1)
    line = _one_error_line(result.exit_code, result.stderr)
    assert line == "Error: --types: unknown activity type foo; known types: call, meeting, task"
    assert json.loads(typed.run("caldav", "status", ALICE, "--json").stdout) == before  # window not restarted


def test_a_type_the_crm_has_is_accepted_in_any_letter_case(typed):
    typed.run("caldav", "settings", ALICE, "--types", "Meeting,TASK")
    assert json.loads(typed.run("caldav", "status", ALICE, "--json").stdout)["synced_types"] == ["meeting", "task"]


def test_every_name_the_config_module_reads_is_in_its_one_list_and_in_the_readme():
    source = Path(config.__file__).read_text()
    named = set(re.findall(r'"(CRM_CALDAV_[A-Z_]+)"', source))
    assert named == set(config.SETTING_NAMES) | set(config.TEST_VARIABLES)
    readme = README.read_text()
    assert [n for n in config.SETTING_NAMES if f"| `{n}` |" not in readme] == []


def test_the_test_suite_variables_are_the_ones_the_tests_read():
    tests = "\n".join(p.read_text() for p in Path(__file__).parent.rglob("*.py"))
    used = set(re.findall(r'environ(?:\.get)?\(\s*"(CRM_CALDAV_[A-Z_]+)"', tests))
    assert used <= set(config.TEST_VARIABLES) | set(config.SETTING_NAMES), used
    assert config.environment_warnings(dict.fromkeys(config.TEST_VARIABLES, "1")) == []


@pytest.mark.parametrize("args", [["caldav", "enable", ALICE], ["caldav", "password", "add", ALICE, "--label", "iPad"]],
                         ids=["enable", "password-add"])
def test_a_bad_public_url_is_one_line_before_any_password_is_made(crm, args):
    crm.load({"users": [user(ALICE)]})
    bad = Crm(crm.database_url, env={"CRM_CALDAV_PUBLIC_URL": "caldav.example.com"})
    result = bad.run(*args, expect=1)
    assert _one_error_line(result.exit_code, result.stderr) == (
        "Error: CRM_CALDAV_PUBLIC_URL: must be an absolute http(s) URL such as https://caldav.example.com/, "
        "not 'caldav.example.com'")
    assert json.loads(crm.run("caldav", "status", ALICE, "--json").stdout)["enabled"] is False
    assert json.loads(crm.run("caldav", "password", "list", ALICE, "--json").stdout) == []


def test_serve_with_a_bad_public_url_is_one_line_and_serves_nothing(tmp_path):
    result = _run_script("serve", "--port", "0", "--create-database",
                         env={"CRM_CALDAV_DB": f"sqlite:///{tmp_path / 'crm.db'}", "CRM_CALDAV_PUBLIC_URL": "ftp://x"},
                         cwd=tmp_path)
    assert _one_error_line(result.returncode, result.stderr) == (
        "Error: CRM_CALDAV_PUBLIC_URL: must be an absolute http(s) URL such as https://caldav.example.com/, "
        "not 'ftp://x'")
    assert not (tmp_path / "crm.db").exists()


def test_an_export_that_cannot_be_written_is_one_line(crm, tmp_path):
    crm.load({"users": [user(ALICE)], "activities": [activity("a-1", ALICE, soon())]})
    with open("/dev/full", "w") as full:
        result = subprocess.run([CRM_CALDAV, "export"], stdout=full, stderr=subprocess.PIPE, text=True, timeout=60,
                                cwd=tmp_path, env={"PATH": str(Path(sys.executable).parent),
                                                   "CRM_CALDAV_DB": crm.database_url})
    expected = "Error: cannot write the export: No space left on device"
    assert _one_error_line(result.returncode, result.stderr) == expected


def test_status_of_an_empty_crm_says_there_are_no_users(tmp_path):
    result = _run_script("caldav", "status", env={"CRM_CALDAV_DB": f"sqlite:///{tmp_path / 'crm.db'}"}, cwd=tmp_path)
    assert result.returncode == 0
    assert result.stderr.strip() == "no users in the CRM yet: load them with crm-caldav import FILE"
