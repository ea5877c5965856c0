"""The ``limiter`` fixture: every limiter test runs on the in-process limiter and on Redis."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from switchboard_auth.limits import Limiter, MemoryLimiter
from switchboard_auth.redis_limits import RedisLimiter
from tests.unit.auth.limiters import REDIS_URL


@pytest.fixture(params=["memory", "redis"])
async def limiter(request: pytest.FixtureRequest) -> AsyncIterator[Limiter]:
    if request.param == "memory":
        yield MemoryLimiter(slot_ttl_seconds=30)
        return
    if not REDIS_URL:
        pytest.skip("SWITCHBOARD_TEST_REDIS_URL is not set (e.g. redis://127.0.0.1:6379/0)")
    client = aioredis.from_url(REDIS_URL)
    prefix = f"sbtest:{secrets.token_hex(6)}:"
    limiter = RedisLimiter(client, prefix, slot_ttl_seconds=30)
    yield limiter
    keys = [k async for k in client.scan_iter(match=prefix + "*")]
    if keys:
        await client.delete(*keys)
    await limiter.close()
