"""The login throttle counts failures in the shared database: every process sees the same count."""
from __future__ import annotations

from adapters.throttle import LoginThrottle


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_five_failures_block_the_login_for_the_window_across_throttles(runtime):
    clock = Clock()
    one, other = (LoginThrottle(runtime.writer, clock=clock) for _ in range(2))  # two worker processes
    for i in range(5):
        assert one.retry_after("Bob", "10.0.0.1") == 0
        (one if i % 2 else other).failed("bob", "10.0.0.1")
    assert other.retry_after("BOB", "10.0.0.2") == 901
    assert one.retry_after("alice", "10.0.0.1") == 0  # the address has 5 of its 20
    clock.now += 600
    assert one.retry_after("bob", "10.0.0.3") == 301
    clock.now += 301
    assert one.retry_after("bob", "10.0.0.3") == 0


def test_twenty_failures_from_one_address_block_it_and_success_clears_the_login(runtime):
    clock = Clock()
    throttle = LoginThrottle(runtime.writer, clock=clock)
    for i in range(20):
        throttle.failed(f"user{i}", "10.9.9.9")
    assert throttle.retry_after("someone", "10.9.9.9") > 0
    assert throttle.retry_after("someone", "10.9.9.8") == 0
    throttle.failed("carol", "10.0.0.1")
    throttle.succeeded("carol")
    for _ in range(4):
        throttle.failed("carol", "10.0.0.1")
    assert throttle.retry_after("carol", "10.0.0.1") == 0  # 4 since the success
