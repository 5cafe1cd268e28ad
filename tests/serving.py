"""The installed `crm-caldav serve` in a subprocess, for tests of what an operator starts."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

CRM_CALDAV = str(Path(sys.executable).with_name("crm-caldav"))
STARTED = re.compile(r"Serving CalDAV on (http://\S+/)")


def script_environment(env: dict[str, str]) -> dict[str, str]:
    """``env`` with only the PATH the console script needs besides."""
    return {"PATH": str(Path(sys.executable).parent), **env}


@contextmanager
def serving_script(folder: Path, *args: str, env: dict[str, str]) -> Iterator[tuple[subprocess.Popen, str, str]]:
    """(process, startup line, bound URL) of `crm-caldav serve --port 0 ARGS` started in ``folder``
    with only ``env`` (and PATH); stopped by SIGTERM at the end, which it must answer with exit 0."""
    process = subprocess.Popen([CRM_CALDAV, "serve", "--port", "0", *args], cwd=folder,
                               env=script_environment(env), text=True, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
    try:
        assert process.stderr is not None
        before = []
        for line in process.stderr:
            if match := STARTED.search(line):
                threading.Thread(target=process.stderr.read, daemon=True).start()  # keep the pipe drained
                yield process, line.rstrip("\n"), match.group(1)
                break
            before.append(line)
        else:
            raise AssertionError(f"serve did not start (exit {process.wait()}): {before}")
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
