"""The failed-login throttle's rules, on a fake clock (server.throttle)."""

from __future__ import annotations

from server.throttle import LoginThrottle


def _fail(throttle: LoginThrottle, account: str, address: str) -> None:
    assert throttle.admit(account, address) is None
    throttle.settle(account, address, succeeded=False)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _throttle(clock: Clock, free: int = 5, backoff_max: float = 900) -> LoginThrottle:
    return LoginThrottle(free_failures=free, backoff_max=backoff_max, clock=clock)


def test_failures_within_the_free_budget_block_nothing() -> None:
    clock = Clock()
    throttle = _throttle(clock)
    for _ in range(5):
        _fail(throttle, "alice@example.com", "203.0.113.1")
    assert throttle.retry_after("alice@example.com", "203.0.113.1") is None


def test_each_failure_past_the_budget_doubles_the_wait() -> None:
    clock = Clock()
    throttle = _throttle(clock)
    waits = []
    for _ in range(9):
        _fail(throttle, "alice@example.com", "203.0.113.1")
        wait = throttle.retry_after("alice@example.com", "203.0.113.1")
        waits.append(wait)
        clock.now += wait or 0
    assert waits == [None] * 5 + [1, 2, 4, 8]


def test_the_wait_never_exceeds_the_maximum() -> None:
    clock = Clock()
    throttle = _throttle(clock, free=1, backoff_max=60)
    waits = []
    for _ in range(12):
        _fail(throttle, "alice@example.com", "203.0.113.1")
        waits.append(throttle.retry_after("alice@example.com", "203.0.113.1") or 0)
        clock.now += waits[-1]
    assert max(waits) == 60


def test_a_blocked_account_is_blocked_from_every_address() -> None:
    clock = Clock()
    throttle = _throttle(clock, free=2)
    for number in range(3):
        _fail(throttle, "alice@example.com", f"203.0.113.{number}")
    assert throttle.retry_after("alice@example.com", "198.51.100.7") == 1


def test_a_blocked_address_is_blocked_for_every_account() -> None:
    clock = Clock()
    throttle = _throttle(clock, free=2)
    for number in range(3):
        _fail(throttle, f"user{number}@example.com", "203.0.113.1")
    assert throttle.retry_after("bob@example.com", "203.0.113.1") == 1


def test_other_accounts_and_addresses_are_unaffected() -> None:
    clock = Clock()
    throttle = _throttle(clock, free=1)
    for _ in range(6):
        _fail(throttle, "alice@example.com", "203.0.113.1")
        clock.now += throttle.retry_after("alice@example.com", "203.0.113.1") or 0
    _fail(throttle, "alice@example.com", "203.0.113.1")
    assert throttle.retry_after("alice@example.com", "203.0.113.1") is not None
    assert throttle.retry_after("bob@example.com", "198.51.100.7") is None


def test_the_block_ends_when_its_wait_is_over() -> None:
    clock = Clock()
    throttle = _throttle(clock, free=1)
    _fail(throttle, "alice@example.com", "203.0.113.1")
    _fail(throttle, "alice@example.com", "203.0.113.1")
    clock.now += 1.0
    assert throttle.retry_after("alice@example.com", "203.0.113.1") is None


def test_failures_are_forgotten_after_a_quiet_period() -> None:
    clock = Clock()
    throttle = _throttle(clock, free=2, backoff_max=60)
    for _ in range(2):
        _fail(throttle, "alice@example.com", "203.0.113.1")
    clock.now += 61
    _fail(throttle, "alice@example.com", "203.0.113.1")
    assert throttle.retry_after("alice@example.com", "203.0.113.1") is None


def test_a_correct_password_clears_the_address_but_not_the_account() -> None:
    clock = Clock()
    throttle = _throttle(clock, free=2)
    for _ in range(2):
        _fail(throttle, "alice@example.com", "203.0.113.1")
    assert throttle.admit("carol@example.com", "203.0.113.1") is None
    throttle.settle("carol@example.com", "203.0.113.1", succeeded=True)
    _fail(throttle, "alice@example.com", "198.51.100.2")
    assert throttle.retry_after("bob@example.com", "203.0.113.1") is None
    assert throttle.retry_after("alice@example.com", "198.51.100.7") == 1


def test_after_a_failure_parallel_checks_get_no_more_than_the_budget_leaves() -> None:
    clock = Clock()
    throttle = _throttle(clock, free=3)
    _fail(throttle, "alice@example.com", "203.0.113.99")
    admitted = [throttle.admit("alice@example.com", f"203.0.113.{n}") is None for n in range(10)]
    assert admitted.count(True) == 2


def test_parallel_first_logins_are_all_admitted() -> None:
    clock = Clock()
    throttle = _throttle(clock, free=3)
    assert all(throttle.admit("alice@example.com", "203.0.113.1") is None for _ in range(20))


def test_past_the_budget_one_check_at_a_time() -> None:
    clock = Clock()
    throttle = _throttle(clock, free=2)
    for _ in range(2):
        _fail(throttle, "alice@example.com", "203.0.113.1")
    assert throttle.admit("alice@example.com", "203.0.113.1") is None
    assert throttle.admit("alice@example.com", "203.0.113.2") == 1


def test_an_undecided_check_counts_as_no_failure() -> None:
    clock = Clock()
    throttle = _throttle(clock, free=1)
    for _ in range(5):
        assert throttle.admit("alice@example.com", "203.0.113.1") is None
        throttle.settle("alice@example.com", "203.0.113.1", succeeded=None)
    assert throttle.retry_after("alice@example.com", "203.0.113.1") is None
