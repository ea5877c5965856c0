"""The auth client's key cache against a real auth gRPC server on loopback: pushed invalidation, going dark."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from switchboard.v1 import auth_pb2, auth_pb2_grpc
from switchboard_auth.cache import VerificationCache
from switchboard_auth.client.keycache import KeyCache
from switchboard_auth.invalidation import InvalidationBus
from switchboard_auth.limits import MemoryLimiter
from switchboard_auth.servicer import AuthServicer
from switchboard_auth.store import KeyStore
from switchboard_common.database import default_sqlite_dsn, make_engine

MASTER = "sk-master-unit"
ADMIN = auth_pb2.AdminCaller(api_key=MASTER)


class Auth:
    def __init__(self, server: grpc.aio.Server, stub: auth_pb2_grpc.AuthStub, bus: InvalidationBus) -> None:
        self.server, self.stub, self.bus = server, stub, bus


@pytest.fixture
async def auth(tmp_path: Path) -> AsyncIterator[Auth]:
    store = KeyStore(make_engine(default_sqlite_dsn(tmp_path, "auth.db")))
    await store.migrate()
    bus = InvalidationBus()
    servicer = AuthServicer(store, MASTER, "pepper", MemoryLimiter(), bus, VerificationCache(bus))
    server = grpc.aio.server()
    auth_pb2_grpc.add_AuthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    yield Auth(server, auth_pb2_grpc.AuthStub(channel), bus)
    bus.end_streams()
    await channel.close()
    await server.stop(0)
    await store.close()


async def eventually(condition, timeout: float = 2.0) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def live_cache(auth: Auth) -> KeyCache:
    cache = KeyCache(auth.stub, ttl_seconds=30)
    await cache.start()
    await eventually(lambda: cache._live)
    return cache


async def verified(auth: Auth, cache: KeyCache, key: str) -> auth_pb2.KeyContext:
    generation = cache.generation
    response = await auth.stub.Authorize(auth_pb2.AuthorizeRequest(api_key=key, verify_only=True))
    cache.store(key, response.key, generation)
    return response.key


async def test_a_verified_key_is_served_until_a_change_is_pushed(auth: Auth) -> None:
    cache = await live_cache(auth)
    created = await auth.stub.CreateKey(auth_pb2.CreateKeyRequest(caller=ADMIN, spec=auth_pb2.KeySpec(key_alias="a")))
    assert cache.lookup(created.key, admission_needed=True) is None
    await verified(auth, cache, created.key)
    hit = cache.lookup(created.key, admission_needed=True)
    assert hit is not None and hit.key_id == created.info.key_id
    assert cache.lookup(created.key + "x", admission_needed=True) is None
    await auth.stub.SetKeyBlocked(auth_pb2.SetBlockedRequest(caller=ADMIN, key=created.info.key_id, blocked=True))
    await eventually(lambda: cache.lookup(created.key, admission_needed=True) is None)
    await cache.stop()


async def test_a_team_change_drops_its_keys(auth: Auth) -> None:
    cache = await live_cache(auth)
    await auth.stub.CreateTeam(auth_pb2.TeamRequest(caller=ADMIN, spec=auth_pb2.TeamSpec(team_id="t")))
    created = await auth.stub.CreateKey(auth_pb2.CreateKeyRequest(caller=ADMIN, spec=auth_pb2.KeySpec(team_id="t")))
    await verified(auth, cache, created.key)
    assert cache.lookup(created.key, admission_needed=True) is not None
    await auth.stub.UpdateTeam(auth_pb2.TeamRequest(caller=ADMIN, spec=auth_pb2.TeamSpec(team_id="t", blocked=True),
                                                    update_fields=["blocked"]))
    await eventually(lambda: cache.lookup(created.key, admission_needed=True) is None)
    await cache.stop()


async def test_a_key_with_rate_limits_always_goes_to_auth_for_admission(auth: Auth) -> None:
    cache = await live_cache(auth)
    spec = auth_pb2.KeySpec(limits=auth_pb2.Limits(rpm_limit=5))
    created = await auth.stub.CreateKey(auth_pb2.CreateKeyRequest(caller=ADMIN, spec=spec))
    await verified(auth, cache, created.key)
    assert cache.lookup(created.key, admission_needed=True) is None
    assert cache.lookup(created.key, admission_needed=False) is not None
    await cache.stop()


async def test_a_verification_racing_with_a_change_is_not_stored(auth: Auth) -> None:
    cache = await live_cache(auth)
    created = await auth.stub.CreateKey(auth_pb2.CreateKeyRequest(caller=ADMIN, spec=auth_pb2.KeySpec()))
    generation = cache.generation
    response = await auth.stub.Authorize(auth_pb2.AuthorizeRequest(api_key=created.key, verify_only=True))
    await auth.stub.DeleteKeys(auth_pb2.DeleteKeysRequest(caller=ADMIN, keys=[created.info.key_id]))
    await eventually(lambda: cache.generation != generation)
    cache.store(created.key, response.key, generation)
    assert cache.lookup(created.key, admission_needed=False) is None
    await cache.stop()


async def test_the_cache_goes_dark_when_the_stream_breaks(auth: Auth) -> None:
    cache = await live_cache(auth)
    created = await auth.stub.CreateKey(auth_pb2.CreateKeyRequest(caller=ADMIN, spec=auth_pb2.KeySpec()))
    await verified(auth, cache, created.key)
    assert cache.lookup(created.key, admission_needed=True) is not None
    auth.bus.end_streams()
    await eventually(lambda: not cache._live)
    assert cache.lookup(created.key, admission_needed=True) is None
    await eventually(lambda: cache._live)  # reconnected, but empty: nothing stale survives the gap
    assert cache.lookup(created.key, admission_needed=True) is None
    await cache.stop()
