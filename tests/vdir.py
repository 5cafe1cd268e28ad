"""Driving the real vdirsyncer command against a running server."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

VDIRSYNCER = shutil.which("vdirsyncer") or str(Path(sys.executable).with_name("vdirsyncer"))


def run(config: Path, *args: str) -> str:
    result = subprocess.run([VDIRSYNCER, "-c", str(config), *args], capture_output=True, text=True,
                            timeout=120, input="")
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout + result.stderr


def setup_pair(tmp_path: Path, calendar_url: str, login: str, password: str) -> tuple[Path, Path]:
    """Write a config pairing the calendar with a local folder; discover and first sync."""
    local, config = tmp_path / "local", tmp_path / "config"
    config.write_text(f"""
[general]
status_path = "{tmp_path / 'status'}"

[pair crm]
a = "crm_remote"
b = "crm_local"
collections = null
conflict_resolution = "a wins"

[storage crm_remote]
type = "caldav"
url = "{calendar_url}"
username = "{login}"
password = "{password}"

[storage crm_local]
type = "filesystem"
path = "{local}"
fileext = ".ics"
""")
    local.mkdir()
    run(config, "discover")
    run(config, "sync")
    return config, local


def local_events(local: Path) -> dict[str, str]:
    """UID -> file text of every event in the local folder."""
    found = {}
    for path in local.glob("*.ics"):
        text = path.read_text()
        uid = next(line[4:] for line in text.splitlines() if line.startswith("UID:"))
        found[uid] = text
    return found
