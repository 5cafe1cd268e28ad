"""Helpers of `crm-caldav import`: reading the file, and the progress bar.

Layer: server.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import IO, Any

import click

# Files with fewer activities import in about a second: no bar for them.
PROGRESS_MIN_ACTIVITIES = 1000
_BYTE_ORDER_MARKS = {b"\xff\xfe": "UTF-16", b"\xfe\xff": "UTF-16"}


def read_json_file(file: IO[bytes]) -> Any:
    """The JSON document of ``file`` (UTF-8, with or without a byte-order mark; RFC 8259 8.1).

    Raises:
        click.ClickException: one line for a device such as /dev/zero, a file that is empty, not UTF-8 (naming UTF-16
            when its byte-order mark or its NUL bytes say so), not JSON or nested without end.
    """
    name = getattr(file, "name", "-")
    if _endless_device(file):
        raise click.ClickException(f"{name}: a device, not a file; give a CRM JSON file (or - for standard input)")
    raw = file.read()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        found = next((f"{encoding} text" for mark, encoding in _BYTE_ORDER_MARKS.items() if raw.startswith(mark)),
                     f"not UTF-8 (byte 0x{raw[error.start]:02x} at offset {error.start})")
        raise click.ClickException(f"{name}: {found}; save the file as UTF-8 and import it again") from None
    if not text.strip():
        raise click.ClickException(f"{name}: the file is empty; give a CRM JSON document")
    if "\x00" in text[:4]:  # JSON text starts with ASCII: NULs there are UTF-16/32 without a mark (RFC 4627 3)
        raise click.ClickException(f"{name}: UTF-16 or UTF-32 text; save the file as UTF-8 and import it again")
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise click.ClickException(f"{name}: not JSON (line {error.lineno}: {error.msg})") from None
    except RecursionError:  # [[[[... a thousand levels deep: no CRM document nests beyond four
        raise click.ClickException(f"{name}: JSON nested too deeply to be a CRM document") from None


def _endless_device(file: IO[bytes]) -> bool:
    """A character device other than a terminal (/dev/zero, /dev/urandom): reading it would never end.

    Pipes, regular files and a terminal (standard input typed by hand) are read as usual.
    """
    try:
        descriptor = file.fileno()
    except (AttributeError, OSError, ValueError):  # an in-memory stream (tests, click's runner)
        return False
    return stat.S_ISCHR(os.fstat(descriptor).st_mode) and not os.isatty(descriptor)


@contextmanager
def import_progress(activities: int) -> Iterator[Callable[[int], None] | None]:
    """A progress callback drawing click's bar on standard error, or None.

    The bar is drawn only when standard error is a terminal and the file holds at
    least PROGRESS_MIN_ACTIVITIES activities: logs and pipes get no bar characters.
    Its length is twice ``activities``: each is counted when checked and when written.
    """
    if activities < PROGRESS_MIN_ACTIVITIES or not sys.stderr.isatty():
        yield None
        return
    with click.progressbar(length=2 * activities, label=f"importing {activities:,} activities",
                           file=sys.stderr, show_pos=False, show_percent=True, show_eta=True) as bar:
        yield bar.update
