"""Change fan-out across auth replicas over Redis pub/sub, and the replica's cache following it."""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from switchboard.v1 import auth_pb2
from switchboard_auth.cache import VerificationCache
from switchboard_auth.invalidation import END_OF_STREAM, RedisInvalidationBus
from switchboard_auth.models import VirtualKey

REDIS_URL = os.environ.get("SWITCHBOARD_TEST_REDIS_URL", "")
pytestmark = pytest.mark.skipif(not REDIS_URL, reason="SWITCHBOARD_TEST_REDIS_URL is not set "
                                "(e.g. redis://127.0.0.1:6379/0)")


@pytest.fixture
async def buses() -> AsyncIterator[tuple[RedisInvalidationBus, RedisInvalidationBus]]:
    channel = f"sbtest:{secrets.token_hex(6)}:auth:changes"
    one = RedisInvalidationBus(aioredis.from_url(REDIS_URL), channel)
    two = RedisInvalidationBus(aioredis.from_url(REDIS_URL), channel)
    await one.start()
    await two.start()
    yield one, two
    for bus in (one, two):
        await bus.close()
        await bus.client.aclose()


async def next_change(queue: asyncio.Queue[auth_pb2.Invalidation]) -> auth_pb2.Invalidation:
    return await asyncio.wait_for(queue.get(), 2)


async def test_a_change_published_on_one_replica_reaches_the_other(
        buses: tuple[RedisInvalidationBus, RedisInvalidationBus]) -> None:
    one, two = buses
    assert one.healthy and two.healthy
    watcher = two.subscribe()
    cache = VerificationCache(two)
    key = VirtualKey(key_id="key_a", key_hash="h", last_four="abcd", team_id="t1")
    cache.put("digest", key, None, two.generation)
    assert cache.get("digest") is not None
    await one.publish(auth_pb2.Invalidation(team_ids=["t1"]))
    change = await next_change(watcher)
    assert list(change.team_ids) == ["t1"]
    assert cache.get("digest") is None


async def test_a_verification_read_before_a_change_is_not_cached(
        buses: tuple[RedisInvalidationBus, RedisInvalidationBus]) -> None:
    one, two = buses
    cache = VerificationCache(two)
    watcher = two.subscribe()
    generation = two.generation
    await one.publish(auth_pb2.Invalidation(key_ids=["key_b"]))
    await next_change(watcher)
    cache.put("digest", VirtualKey(key_id="key_b", key_hash="h", last_four="abcd"), None, generation)
    assert cache.get("digest") is None


async def test_ending_streams_reaches_every_watcher(buses: tuple[RedisInvalidationBus, RedisInvalidationBus]) -> None:
    _, two = buses
    watchers = [two.subscribe(), two.subscribe()]
    two.end_streams()
    for watcher in watchers:
        assert await next_change(watcher) is END_OF_STREAM
