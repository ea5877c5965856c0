"""Rate-limit leases in the limiter, on both backends: what is granted, counted, and given back."""

from __future__ import annotations

import asyncio
import secrets

import pytest
import redis.asyncio as aioredis

from switchboard_auth.limits import (
    Admitted,
    Denial,
    LeaseAsk,
    LeaseGrant,
    LeaseReturn,
    LimitCheck,
    Limiter,
    MemoryLimiter,
)
from switchboard_auth.redis_limits import RedisLimiter
from tests.unit.auth.limiters import REDIS_URL, Clock, rid


def ask(requests: int = 1000, tokens: int = 0, min_tokens: int = 0, use_seconds: float = 10.0) -> LeaseAsk:
    return LeaseAsk("rlease_" + secrets.token_hex(8), requests, tokens, min_tokens, use_seconds)


async def leased(limiter: Limiter, checks: list[LimitCheck], prompt: int = 0, **wanted: float) -> LeaseGrant | None:
    """The lease granted with one admission of a request estimated at ``prompt`` tokens."""
    admitted = await limiter.admit(checks, rid(), prompt, ask(**wanted))  # type: ignore[arg-type]
    assert isinstance(admitted, Admitted)
    return admitted.lease


def returned(grant: LeaseGrant, key_id: str, used: int = 0, tokens_used: int = 0,
             team_id: str = "") -> LeaseReturn:
    owners = {"key": key_id, "team": team_id}
    return LeaseReturn(grant.lease_id, [(s, owners[s]) for s in grant.request_scopes], grant.requests, used,
                       [(s, owners[s]) for s in grant.token_scopes], grant.tokens, tokens_used,
                       grant.tpm_window_start)


async def admissions_left(limiter: Limiter, checks: list[LimitCheck]) -> int:
    """How many more requests the limit admits now (each one counted)."""
    count = 0
    while isinstance(await limiter.admit(checks, rid(), 0), Admitted):
        count += 1
        assert count < 10_000
    return count


async def test_a_lease_takes_at_most_a_twentieth_of_the_limit_and_is_counted(limiter: Limiter) -> None:
    checks = [LimitCheck("key", "k-grant", rpm=200)]
    grant = await leased(limiter, checks)
    assert grant is not None and grant.requests == 10 and grant.request_scopes == ("key",)
    assert grant.tokens == 0 and grant.token_scopes == () and grant.use_seconds == pytest.approx(10)
    # The asking request and the ten leased ones are in the log: 189 more fit, not one more.
    assert await admissions_left(limiter, checks) == 189


async def test_no_lease_when_the_share_is_below_two_requests(limiter: Limiter) -> None:
    assert await leased(limiter, [LimitCheck("key", "k-small", rpm=39)]) is None  # 39 // 20 == 1
    assert await leased(limiter, [LimitCheck("key", "k-40", rpm=40)]) is not None
    # Nearly full: a quarter of what is free.
    checks = [LimitCheck("key", "k-full", rpm=200)]
    for _ in range(190):
        assert isinstance(await limiter.admit(checks, rid(), 0), Admitted)
    grant = await leased(limiter, checks)  # 9 free after the asking request: 9 // 4 == 2
    assert grant is not None and grant.requests == 2
    assert await leased(limiter, checks) is None  # 6 free after this asking request: 6 // 4 == 1
    assert await admissions_left(limiter, checks) == 6


async def test_no_lease_for_a_key_with_a_parallel_limit_or_no_rate_limit(limiter: Limiter) -> None:
    assert await leased(limiter, [LimitCheck("key", "k-par", rpm=1000, parallel=5)]) is None
    assert await leased(limiter, [LimitCheck("key", "k-par2", rpm=1000), LimitCheck("team", "t-par", parallel=5)]) \
        is None


async def test_a_return_keeps_the_used_requests_and_frees_the_rest_once(limiter: Limiter) -> None:
    checks = [LimitCheck("key", "k-return", rpm=200)]
    grant = await leased(limiter, checks)
    assert grant is not None and grant.requests == 10
    await limiter.return_lease(returned(grant, "k-return", used=3))
    await limiter.return_lease(returned(grant, "k-return", used=3))  # idempotent
    assert await admissions_left(limiter, checks) == 200 - 1 - 3


async def test_team_and_key_share_one_lease(limiter: Limiter) -> None:
    checks = [LimitCheck("key", "k-team", rpm=1000), LimitCheck("team", "t-lease", rpm=100)]
    grant = await leased(limiter, checks)
    assert grant is not None and grant.requests == 5 and grant.request_scopes == ("key", "team")
    await limiter.return_lease(returned(grant, "k-team", used=2, team_id="t-lease"))
    other_key = [LimitCheck("key", "k-team-2", rpm=1000), LimitCheck("team", "t-lease", rpm=100)]
    assert await admissions_left(limiter, other_key) == 100 - 1 - 2


async def test_tpm_lease_counts_tokens_and_returns_the_unused_ones(limiter: Limiter) -> None:
    checks = [LimitCheck("key", "k-tpm", tpm=100_000)]
    admitted = await limiter.admit(checks, rid(), 500, ask(requests=100, tokens=50_000, min_tokens=1000))
    assert isinstance(admitted, Admitted) and admitted.lease is not None
    grant = admitted.lease
    assert grant.tokens == 5000 and grant.token_scopes == ("key",) and grant.request_scopes == ()
    assert grant.requests == 100 and grant.tpm_window_start == admitted.tpm_window_start
    assert grant.use_seconds <= 60
    assert [(s.name, s.remaining) for s in admitted.states] == [("tokens", 100_000 - 500)]  # before the lease
    probe = await limiter.admit(checks, rid(), 0)
    assert isinstance(probe, Admitted) and probe.states[0].remaining == 100_000 - 500 - 5000
    await limiter.return_lease(returned(grant, "k-tpm", used=4, tokens_used=1200))
    await limiter.return_lease(returned(grant, "k-tpm", used=4, tokens_used=1200))  # taken back once
    probe = await limiter.admit(checks, rid(), 0)
    assert isinstance(probe, Admitted) and probe.states[0].remaining == 100_000 - 500 - 1200


async def test_no_tpm_lease_below_min_tokens(limiter: Limiter) -> None:
    checks = [LimitCheck("key", "k-tpm-small", tpm=10_000, rpm=1000)]  # 10000 // 20 == 500 tokens at most
    assert await leased(limiter, checks, requests=100, tokens=0) is None  # at least 2 tokens
    assert await leased(limiter, checks, requests=100, tokens=5000, min_tokens=600) is None
    grant = await leased(limiter, checks, requests=100, tokens=5000, min_tokens=400)
    assert grant is not None and grant.tokens == 500 and grant.requests == 50
    assert grant.request_scopes == ("key",) and grant.token_scopes == ("key",)


async def test_leases_of_many_callers_never_exceed_the_limit(limiter: Limiter) -> None:
    """Callers keep asking and spending their leases whole (never returning): the total stays within RPM."""
    checks = [LimitCheck("key", "k-many", rpm=500), LimitCheck("team", "t-many", rpm=300)]

    async def caller() -> int:
        admitted = 0
        while True:
            result = await limiter.admit(checks, rid(), 0, ask(requests=64))
            if isinstance(result, Denial):
                return admitted
            admitted += 1 + (result.lease.requests if result.lease is not None else 0)
            await asyncio.sleep(0)

    totals = await asyncio.gather(*(caller() for _ in range(6)))
    assert sum(totals) == 300


async def test_memory_leased_requests_stay_in_the_log_60s_after_use() -> None:
    clock = Clock()
    limiter = MemoryLimiter(clock=clock)
    checks = [LimitCheck("key", "k", rpm=40)]
    kept = await leased(limiter, checks, use_seconds=10)  # never returned
    assert kept is not None and kept.requests == 2 and kept.recorded_at == pytest.approx(clock.now + 10)
    clock.now += 1
    early = await leased(limiter, checks, use_seconds=10)  # 37 free after the asking request: 2 more
    assert early is not None and early.requests == 2
    clock.now += 1
    await limiter.return_lease(returned(early, "k", used=1))  # used once, returned at t0 + 2
    # At t0 + 61.5 the two asking requests (t0, t0 + 1) are gone; the used record of `early` (restamped
    # to t0 + 2) and both records of `kept` (stamped t0 + 10) are not.
    clock.now += 59.5
    assert await admissions_left(limiter, checks) == 40 - 3
    clock.now += 1  # t0 + 62.5: early's use is gone
    assert await admissions_left(limiter, checks) == 1
    clock.now += 70  # every record of those leases is out of the window (the admissions above too)
    assert await admissions_left(limiter, checks) == 40


async def test_memory_tpm_lease_ends_with_its_window() -> None:
    clock = Clock()
    limiter = MemoryLimiter(clock=clock)
    clock.now += 55
    checks = [LimitCheck("key", "k", tpm=100_000)]
    grant = await leased(limiter, checks, tokens=5000, min_tokens=10, use_seconds=30)
    assert grant is not None and grant.use_seconds == pytest.approx(5)
    assert await leased(limiter, [LimitCheck("key", "r", rpm=100)], use_seconds=30) is not None  # RPM only: 30 s


async def test_redis_lease_records_are_named_and_a_return_removes_only_the_unused() -> None:
    if not REDIS_URL:
        pytest.skip("SWITCHBOARD_TEST_REDIS_URL is not set (e.g. redis://127.0.0.1:6379/0)")
    client = aioredis.from_url(REDIS_URL)
    prefix = f"sbtest:{secrets.token_hex(6)}:"
    limiter = RedisLimiter(client, prefix)
    try:
        grant = await leased(limiter, [LimitCheck("key", "k", rpm=100)], use_seconds=20)
        assert grant is not None and grant.requests == 5
        log = f"{prefix}rl:key:k:rpm"
        members = await client.zrange(log, 0, -1, withscores=True)
        leased_records = [(m.decode(), s) for m, s in members if b"#" in m]
        assert sorted(m for m, _ in leased_records) == [f"{grant.lease_id}#{i}" for i in range(5)]
        assert all(s == pytest.approx(grant.recorded_at) for _, s in leased_records)
        assert await client.ttl(log) >= 20 + 60
        await limiter.return_lease(returned(grant, "k", used=2))
        members = await client.zrange(log, 0, -1, withscores=True)
        kept = {m.decode(): s for m, s in members if b"#" in m}
        assert sorted(kept) == [f"{grant.lease_id}#0", f"{grant.lease_id}#1"]
        assert all(s < grant.recorded_at - 15 for s in kept.values())  # restamped to the return time
    finally:
        keys = [k async for k in client.scan_iter(match=prefix + "*")]
        if keys:
            await client.delete(*keys)
        await limiter.close()
