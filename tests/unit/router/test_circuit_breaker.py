"""The circuit breaker's states on a controlled clock: closed, open (cooling down), half-open, closed."""

from __future__ import annotations

from switchboard_router.routing.health import HealthBoard


def test_opens_after_n_consecutive_failures_and_closes_by_itself() -> None:
    board = HealthBoard(cooldown_failures=3, cooldown_seconds=10)
    assert board.record_failure("d", now=0) is False
    assert board.record_failure("d", now=1) is False
    assert board.is_available("d", now=1)
    assert board.record_failure("d", now=2) is True
    assert not board.is_available("d", now=11.9)
    assert board.is_available("d", now=12.1)


def test_a_success_resets_the_count() -> None:
    board = HealthBoard(cooldown_failures=2, cooldown_seconds=10)
    board.record_failure("d", now=0)
    board.record_success("d", latency=0.1)
    assert board.record_failure("d", now=1) is False


def test_half_open_one_failure_reopens_one_success_closes() -> None:
    board = HealthBoard(cooldown_failures=3, cooldown_seconds=10)
    for t in range(3):
        board.record_failure("d", now=t)
    assert board.is_available("d", now=13)
    assert board.record_failure("d", now=13) is True, "back from cool-down, one failure is enough"
    assert not board.is_available("d", now=20)
    assert board.is_available("d", now=23.5)
    board.record_success("d", latency=0.1)
    assert board.record_failure("d", now=24) is False, "a success closed the breaker"


def test_zero_failures_setting_never_opens() -> None:
    board = HealthBoard(cooldown_failures=0, cooldown_seconds=10)
    assert not any(board.record_failure("d", now=t) for t in range(10))
