"""``--workers N``: forked server processes on one listening socket, restarted when one dies.

Layer: server.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import time
from collections.abc import Callable
from typing import Any

logger = logging.getLogger(__name__)
EARLY_EXIT_SECONDS = 5.0  # a process that fails on its own this soon after its start is not restarted


def supervise(serve: Callable[[], None], workers: int) -> None:
    """Run ``serve`` in ``workers`` forked processes until SIGINT / SIGTERM reaches this one.

    A process that dies is replaced, unless it exited on its own (not killed by
    a signal) within EARLY_EXIT_SECONDS of its start: that is a broken
    configuration or database, so all of them stop and this function exits
    with status 1.
    """
    started: dict[int, float] = {}
    stopping = False

    def stop(_signum: int, _frame: Any) -> None:
        nonlocal stopping
        stopping = True
        for pid in started:
            _signal(pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for _ in range(workers):
        pid = _fork(serve)
        started[pid] = time.monotonic()
    failed = False
    while started:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        began = started.pop(pid, None)
        if began is None or stopping:
            continue
        logger.error("Server process %d ended (%s)", pid, _describe(status))
        if not os.WIFSIGNALED(status) and time.monotonic() - began < EARLY_EXIT_SECONDS:
            failed = True
            stop(signal.SIGTERM, None)
            continue
        started[_fork(serve)] = time.monotonic()
    if failed:
        sys.exit(1)


def _fork(serve: Callable[[], None]) -> int:
    pid = os.fork()
    if pid:
        return pid
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the parent, which stops us
    # Not the supervisor's handler: a SIGTERM while the application is being built must end
    # this process, not make it stop its siblings as if it were the supervisor.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    status = 0
    try:
        serve()
    except BaseException:  # noqa: BLE001 - the process ends either way; say why
        logger.exception("Server process failed")
        status = 1
    finally:
        logging.shutdown()
        os._exit(status)


def _signal(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass


def _describe(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"signal {os.WTERMSIG(status)}"
    return f"exit status {os.WEXITSTATUS(status)}"
