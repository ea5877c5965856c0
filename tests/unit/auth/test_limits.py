"""The rate limiter's semantics, on both backends: in-process and Redis (same contract)."""

from __future__ import annotations

import asyncio

import pytest

from switchboard_auth.limits import Admitted, Denial, LimitCheck, Limiter, MemoryLimiter
from tests.unit.auth.limiters import Clock, rid


async def test_rpm_admits_exactly_n_then_denies_with_retry_after(limiter: Limiter) -> None:
    checks = [LimitCheck("key", "k1", rpm=3)]
    results = [await limiter.admit(checks, rid(), 0) for _ in range(5)]
    assert [isinstance(r, Admitted) for r in results] == [True, True, True, False, False]
    denial = results[3]
    assert isinstance(denial, Denial) and denial.limit_name == "rpm_limit" and denial.limit == 3
    assert 0 < denial.retry_after_seconds <= 60
    first = results[0]
    assert isinstance(first, Admitted)
    assert [(s.name, s.limit, s.remaining) for s in first.states] == [("requests", 3, 2)]


async def test_concurrent_admissions_never_exceed_the_limit(limiter: Limiter) -> None:
    checks = [LimitCheck("key", "k-conc", rpm=7)]
    results = await asyncio.gather(*(limiter.admit(checks, rid(), 0) for _ in range(40)))
    assert sum(isinstance(r, Admitted) for r in results) == 7


async def test_team_limit_is_shared_and_a_denial_counts_nowhere(limiter: Limiter) -> None:
    team = LimitCheck("team", "t1", rpm=3)
    a = [LimitCheck("key", "a", rpm=10), team]
    b = [LimitCheck("key", "b", rpm=1), team]
    assert isinstance(await limiter.admit(a, rid(), 0), Admitted)
    assert isinstance(await limiter.admit(b, rid(), 0), Admitted)
    denied_by_key = await limiter.admit(b, rid(), 0)
    assert isinstance(denied_by_key, Denial) and denied_by_key.scope == "key"
    # b's denial did not use the team's third slot:
    assert isinstance(await limiter.admit(a, rid(), 0), Admitted)
    denied_by_team = await limiter.admit(a, rid(), 0)
    assert isinstance(denied_by_team, Denial) and denied_by_team.scope == "team" and denied_by_team.limit == 3


async def test_tpm_counts_estimates_and_release_corrects_to_real_usage(limiter: Limiter) -> None:
    checks = [LimitCheck("key", "k-tpm", tpm=1000)]
    first = await limiter.admit(checks, "r1", 600)
    assert isinstance(first, Admitted)
    assert [(s.name, s.remaining) for s in first.states] == [("tokens", 400)]
    assert isinstance(await limiter.admit(checks, "r2", 600), Denial)
    # The request really used 100 tokens: 900 remain.
    await limiter.release([("key", "k-tpm")], "r1", first.tpm_window_start, 100 - 600)
    second = await limiter.admit(checks, "r3", 600)
    assert isinstance(second, Admitted) and second.states[0].remaining == 300


async def test_parallel_slots_are_held_until_released(limiter: Limiter) -> None:
    checks = [LimitCheck("key", "k-par", parallel=2)]
    one, two = await limiter.admit(checks, "p1", 0), await limiter.admit(checks, "p2", 0)
    assert isinstance(one, Admitted) and one.holds_parallel_slot and isinstance(two, Admitted)
    third = await limiter.admit(checks, "p3", 0)
    assert isinstance(third, Denial) and third.limit_name == "max_parallel_requests"
    await limiter.release([("key", "k-par")], "p1", one.tpm_window_start, 0)
    assert isinstance(await limiter.admit(checks, "p4", 0), Admitted)
    await limiter.release([("key", "k-par")], "p1", one.tpm_window_start, 0)  # idempotent
    assert isinstance(await limiter.admit(checks, "p5", 0), Denial)


async def test_memory_rpm_is_a_sliding_window() -> None:
    clock = Clock()
    limiter = MemoryLimiter(clock=clock)
    checks = [LimitCheck("key", "k", rpm=2)]
    assert isinstance(await limiter.admit(checks, rid(), 0), Admitted)
    clock.now += 30
    assert isinstance(await limiter.admit(checks, rid(), 0), Admitted)
    clock.now += 29  # crossed the minute edge of a fixed window, but 2 admissions in the last 60 s
    denial = await limiter.admit(checks, rid(), 0)
    assert isinstance(denial, Denial) and denial.retry_after_seconds == pytest.approx(1.0)
    clock.now += 1.01
    assert isinstance(await limiter.admit(checks, rid(), 0), Admitted)


async def test_memory_parallel_slot_expires_when_never_released() -> None:
    clock = Clock()
    limiter = MemoryLimiter(slot_ttl_seconds=10, clock=clock)
    checks = [LimitCheck("key", "k", parallel=1)]
    assert isinstance(await limiter.admit(checks, "lost", 0), Admitted)
    assert isinstance(await limiter.admit(checks, rid(), 0), Denial)
    clock.now += 10.5
    assert isinstance(await limiter.admit(checks, rid(), 0), Admitted)


async def test_memory_tpm_window_resets_each_minute() -> None:
    clock = Clock()
    limiter = MemoryLimiter(clock=clock)
    checks = [LimitCheck("key", "k", tpm=100)]
    assert isinstance(await limiter.admit(checks, rid(), 100), Admitted)
    denial = await limiter.admit(checks, rid(), 1)
    assert isinstance(denial, Denial) and denial.retry_after_seconds == pytest.approx(60)
    clock.now += 60
    assert isinstance(await limiter.admit(checks, rid(), 100), Admitted)
