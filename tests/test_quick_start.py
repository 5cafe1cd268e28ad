"""Issue 2, done-when 1: the README's demo command starts a server that prints working logins."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests import dav

pytestmark = pytest.mark.e2e
README = Path(__file__).parents[1] / "README.md"


def test_readme_quick_start_has_the_two_commands_ci_runs():
    text = README.read_text()
    assert "crm-caldav serve --demo" in text
    ci = (README.parent / ".ci" / "run").read_text()
    test_command = re.search(r"^\s*(python3 -m venv .*pytest)\s*$", text, re.M).group(1)
    assert test_command in ci


def test_demo_server_starts_and_prints_logins_that_work_for_caldav_and_the_admin_page(tmp_path):
    command = [str(Path(sys.executable).with_name("crm-caldav")), "serve", "--demo", "--port", "0"]
    process = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, env={"PATH": str(Path(sys.executable).parent)})
    try:
        logins, url, admin = [], None, None
        for line in process.stdout:
            if match := re.fullmatch(r"(\S+@\S+) (\S+)\n", line):
                logins.append(match.groups())
            if match := re.fullmatch(r"admin page \(/admin/\): (\S+@\S+) (\S+)\n", line):
                admin = match.groups()
            if match := re.search(r"Serving CalDAV on (http://\S+/)", line):
                url = match.group(1)
                break
        assert url and len(logins) >= 3 and (tmp_path / "crm-caldav.db").exists()
        email, password = logins[0]
        response = httpx.request("PROPFIND", f"{url}{email}/crm/", auth=(email, password),
                                 headers={"Depth": "1"}, timeout=30)
        assert response.status_code == 207 and len(dav.parse(response).hrefs(200)) > 50
        assert admin is not None
        with httpx.Client(base_url=url, timeout=30) as browser:
            form = browser.get("/admin/login").text
            csrf = re.search(r'name="csrf" value="([^"]+)"', form).group(1)
            answer = browser.post("/admin/login", data={"csrf": csrf, "email": admin[0], "password": admin[1]})
            assert answer.status_code == 303 and browser.get("/admin/").status_code == 200
    finally:
        process.terminate()
        process.wait(timeout=10)
