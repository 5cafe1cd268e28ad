"""Failed-login throttling that never sleeps: budgets per account and per client address.

Each account (the normalised login) and each client address has a budget of
``free_failures`` failed logins. Past it, the key is blocked for 1 s, then 2,
4, ... up to ``backoff_max`` seconds after each further failure; while either
key of a request is blocked, the request is refused at once with 429 and
Retry-After, before any password is checked, so a blocked guess costs the
server a dictionary lookup and the attacker gets no answer about the password.
A key's failures are forgotten after ``backoff_max`` quiet seconds; a correct
password clears the address's record (not the account's: an attacker must not
regain budget whenever the real user logs in). After a failure, checks
running at the same time count against the budget, so parallel guesses get
no more checks.

State is per process (with ``--workers N`` an attacker's budget is N times
larger; the backoff still caps it to a few guesses a minute).

Layer: server.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

MAX_KEYS = 100_000  # records kept before the forgotten ones are pruned


@dataclass
class _Record:
    failures: int = 0
    last_failure: float = 0.0
    blocked_until: float = 0.0
    pending: int = 0  # password checks admitted and not yet settled


class LoginThrottle:
    """Per-account and per-address failed-login budgets with exponential backoff."""

    def __init__(self, *, free_failures: int = 5, backoff_max: float = 900,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._free = free_failures
        self._backoff_max = backoff_max
        self._clock = clock
        self._records: dict[tuple[str, str], _Record] = {}
        self._lock = threading.Lock()

    def retry_after(self, account: str, address: str) -> int | None:
        """Whole seconds until this account and address may try again; None when neither is blocked."""
        now = self._clock()
        with self._lock:
            blocked_until = max((record.blocked_until for record in self._current(account, address, now)),
                                default=0.0)
        return math.ceil(blocked_until - now) if blocked_until > now else None

    def admit(self, account: str, address: str) -> int | None:
        """Reserve one password check: None when admitted, else the seconds to wait (as retry_after).

        Once a key has failed, concurrent checks count against its budget while
        they run, so parallel guesses get no more checks than the budget leaves
        (at least one at a time); before any failure, a device's parallel first
        requests are all admitted (the request threads bound that burst).
        Every admitted check must be settled.
        """
        now = self._clock()
        with self._lock:
            if len(self._records) >= MAX_KEYS:
                self._prune(now)
            records = [self._record(key, now) for key in (("account", account), ("address", address))]
            blocked_until = max(record.blocked_until for record in records)
            if blocked_until > now:
                return math.ceil(blocked_until - now)
            if any(record.failures and record.pending >= max(1, self._free - record.failures) for record in records):
                return 1  # a key that has failed: no more checks at once than its budget leaves
            for record in records:
                record.pending += 1
        return None

    def settle(self, account: str, address: str, *, succeeded: bool | None) -> None:
        """End an admitted check: True (correct password), False (a failure), None (not decided)."""
        now = self._clock()
        with self._lock:
            for key in (("account", account), ("address", address)):
                record = self._record(key, now)
                record.pending = max(0, record.pending - 1)
                if succeeded is False:
                    record.failures += 1
                    record.last_failure = now
                    beyond = record.failures - self._free
                    if beyond > 0:
                        record.blocked_until = now + min(self._backoff_max, 2.0 ** min(beyond - 1, 32))
            if succeeded:
                self._records.pop(("address", address), None)

    def _record(self, key: tuple[str, str], now: float) -> _Record:
        record = self._records.get(key)
        if record is None:
            record = self._records[key] = _Record()
        elif now - record.last_failure > self._backoff_max and record.pending == 0:
            record.failures, record.blocked_until = 0, 0.0
        return record

    def _current(self, account: str, address: str, now: float) -> list[_Record]:
        records = [self._records.get(("account", account)), self._records.get(("address", address))]
        return [r for r in records if r is not None and now - r.last_failure <= self._backoff_max]

    def _prune(self, now: float) -> None:
        for key in [k for k, r in self._records.items()
                    if now - r.last_failure > self._backoff_max and r.blocked_until <= now and not r.pending]:
            del self._records[key]
        if len(self._records) >= MAX_KEYS:  # a flood from very many addresses: start over
            self._records.clear()
