"""What a serving process keeps in memory: modules it never needs stay unimported (issue 13).

Layer: tests.
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys
from pathlib import Path

from alembic.config import Config
from alembic.script import ScriptDirectory

from crm_model.db import MIGRATIONS, head_revision
from server.http import limit_malloc_arenas
from tests import dav
from tests.factories import ALICE, activity, soon, user

ROOT = Path(__file__).resolve().parent.parent
ADMIN_ONLY = ("jinja2", "segno", "cryptography")  # the admin page's: about 9.5 MiB resident
MIGRATIONS_ONLY = ("alembic", "mako")  # schema upgrades': about 9 MiB resident

# Run in a fresh interpreter: the test process itself has imported everything already.
SERVE_POLL_THEN_ADMIN = """
import json, sys, threading, httpx
from server.app import create_app, serving_limits
from server.config import Settings
from server.http import make_server

url, login, password, poll = sys.argv[1:5]
settings = Settings(database_url=url)
server = make_server("127.0.0.1", 0, create_app(settings), serving_limits(settings))
threading.Thread(target=server.serve_forever, daemon=True).start()
base = f"http://127.0.0.1:{server.server_address[1]}"

def loaded():
    return sorted({name.split(".")[0] for name in sys.modules})

try:
    with httpx.Client(base_url=base, auth=(login, password), timeout=30) as client:
        polled = client.request("PROPFIND", f"/{login}/crm/", content=poll, headers={"Depth": "0"})
        after_poll = loaded()
        admin = client.get("/admin/login")
    print(json.dumps({"poll": polled.status_code, "after_poll": after_poll,
                      "admin": admin.status_code, "after_admin": loaded()}))
finally:
    server.shutdown()
"""


def test_head_revision_read_from_the_migration_files_is_alembics_head():
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    assert head_revision() == ScriptDirectory.from_config(config).get_current_head()


def test_serving_process_imports_admin_and_migration_modules_only_when_needed(crm, database_url):
    crm.load({"users": [user(ALICE)], "activities": [activity("A1", ALICE, soon())]})
    password = crm.enable(ALICE)
    result = subprocess.run([sys.executable, "-c", SERVE_POLL_THEN_ADMIN, database_url, ALICE, password,
                             dav.body("04a-propfind-calendar-ctag.xml")],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["poll"] == 207
    assert not set(ADMIN_ONLY + MIGRATIONS_ONLY) & set(seen["after_poll"])
    assert seen["admin"] == 200  # the first admin request builds the page
    assert set(ADMIN_ONLY) <= set(seen["after_admin"])


def test_malloc_arenas_are_limited_on_glibc_unless_the_operator_set_them(monkeypatch):
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    assert limit_malloc_arenas() == (platform.libc_ver()[0] == "glibc")
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert limit_malloc_arenas() is False  # glibc read the operator's value at start-up
