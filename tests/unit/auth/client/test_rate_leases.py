"""Rate-limit leases of the auth client (as a facade or the router holds them) against a real auth gRPC server."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from switchboard.v1 import auth_pb2, auth_pb2_grpc, common_pb2
from switchboard_auth.cache import VerificationCache
from switchboard_auth.client import Admitted, AuthClient
from switchboard_auth.client.releases import Releaser
from switchboard_auth.invalidation import InvalidationBus
from switchboard_auth.limits import MemoryLimiter
from switchboard_auth.servicer import AuthServicer
from switchboard_auth.store import KeyStore
from switchboard_common.database import default_sqlite_dsn, make_engine
from switchboard_common.errors import ServiceError

MASTER = "sk-master-unit"
Facades = Callable[[], Awaitable[AuthClient]]
ADMIN = auth_pb2.AdminCaller(api_key=MASTER)


class Auth:
    def __init__(self, stub: auth_pb2_grpc.AuthStub, limiter: MemoryLimiter, address: str) -> None:
        self.stub, self.limiter, self.address = stub, limiter, address
        self.authorize_calls = 0

    def requests_counted(self, scope: str, owner_id: str) -> tuple[int, int]:
        """(per-request admissions, leased records) in the scope's RPM log."""
        counters = self.limiter._counters.get((scope, owner_id))
        if counters is None:
            return 0, 0
        return len(counters.admissions), sum(r.count for r in counters.leased.values())

    def tokens_counted(self, key_id: str) -> int:
        counters = self.limiter._counters.get(("key", key_id))
        return sum(counters.tokens.values()) if counters is not None else 0


class CountingAuth(AuthServicer):
    counter: Auth | None = None

    async def Authorize(self, request, context):  # type: ignore[no-untyped-def]
        assert self.counter is not None
        self.counter.authorize_calls += 1
        return await super().Authorize(request, context)


@pytest.fixture
async def auth(tmp_path: Path) -> AsyncIterator[Auth]:
    store = KeyStore(make_engine(default_sqlite_dsn(tmp_path, "auth.db")))
    await store.migrate()
    bus = InvalidationBus()
    limiter = MemoryLimiter()
    servicer = CountingAuth(store, MASTER, "pepper", limiter, bus, VerificationCache(bus))
    server = grpc.aio.server()
    auth_pb2_grpc.add_AuthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    handle = Auth(auth_pb2_grpc.AuthStub(channel), limiter, f"127.0.0.1:{port}")
    servicer.counter = handle
    yield handle
    bus.end_streams()
    await channel.close()
    await server.stop(0)
    await store.close()


@pytest.fixture
async def facades(auth: Auth, tmp_path: Path) -> AsyncIterator[Facades]:
    """Starts auth clients (key cache live), as facades hold them, on the auth server; stops them after the test."""
    started: list[tuple[AuthClient, grpc.aio.Channel]] = []

    async def start() -> AuthClient:
        channel = grpc.aio.insecure_channel(auth.address)
        gateway = AuthClient(channel)
        await gateway.keycache.start()
        for _ in range(200):
            if gateway.keycache.live:
                break
            await asyncio.sleep(0.01)
        assert gateway.keycache.live
        started.append((gateway, channel))
        return gateway

    yield start
    for gateway, channel in started:
        await gateway.keycache.stop()
        await gateway.releaser.drain(2)
        await channel.close()


async def new_key(auth: Auth, team_id: str = "", **limits: int) -> auth_pb2.CreateKeyResponse:
    spec = auth_pb2.KeySpec(key_alias="k-" + secrets.token_hex(3), limits=auth_pb2.Limits(**limits),
                            team_id=team_id)
    return await auth.stub.CreateKey(auth_pb2.CreateKeyRequest(caller=ADMIN, spec=spec))  # type: ignore[no-any-return]


@dataclass
class Call:
    """One request to admit: its prompt estimate, and what admitting it took."""

    tokens: int
    admitted: Admitted | None = None

    @property
    def authorization(self) -> auth_pb2.AuthorizeResponse | None:
        return self.admitted.authorization if self.admitted is not None else None

    def headers(self) -> dict[str, str]:
        assert self.admitted is not None
        return self.admitted.rate_limit_headers()


def new_call(tokens: int = 10) -> Call:
    return Call(tokens)


async def authorize(client: AuthClient, api_key: str, call: Call) -> None:
    call.admitted = await client.admit(api_key, model="m", request_id="req_" + secrets.token_hex(6),
                                       estimated_tokens=call.tokens)


async def eventually(condition: Callable[[], bool], timeout: float = 2.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def test_after_its_first_request_a_key_is_admitted_under_a_lease(auth: Auth, facades: Facades) -> None:
    gw = await facades()
    key = await new_key(auth, rpm_limit=1000)
    remaining = []
    for _ in range(10):
        call = new_call()
        await authorize(gw, key.key, call)
        headers = call.headers()
        assert headers["x-ratelimit-limit-requests"] == "1000"
        assert headers["x-ratelimit-reset-requests"].endswith("s")
        remaining.append(int(headers["x-ratelimit-remaining-requests"]))
    assert auth.authorize_calls == 1
    assert remaining == list(range(999, 989, -1))
    # The asking request, and the lease's 16 records (1000 // 20 = 50 allowed, 16 asked first).
    assert auth.requests_counted("key", key.info.key_id) == (1, 16)
    # Retired (here: the key changed), the lease keeps its 9 used records and gives the 7 others back.
    await auth.stub.UpdateKey(auth_pb2.UpdateKeyRequest(caller=ADMIN, key=key.info.key_id,
                                                        spec=auth_pb2.KeySpec(key_alias="renamed"),
                                                        update_fields=["key_alias"]))
    await eventually(lambda: auth.requests_counted("key", key.info.key_id) == (1, 9))


async def test_at_shutdown_the_unused_part_of_every_lease_goes_back(auth: Auth, facades: Facades) -> None:
    gw = await facades()
    key = await new_key(auth, rpm_limit=1000, tpm_limit=1_000_000)
    for _ in range(3):
        await authorize(gw, key.key, new_call(tokens=100))
    assert auth.authorize_calls == 1 and auth.requests_counted("key", key.info.key_id) == (1, 16)
    assert auth.tokens_counted(key.info.key_id) == 100 + 1600
    await gw.keycache.stop()  # what the facade's shutdown does first; the releaser drains last
    await gw.releaser.drain(2)
    assert auth.requests_counted("key", key.info.key_id) == (1, 2)
    assert auth.tokens_counted(key.info.key_id) == 300


async def test_a_key_with_a_small_or_parallel_limit_is_admitted_per_request(auth: Auth, facades: Facades) -> None:
    gw = await facades()
    small = await new_key(auth, rpm_limit=30)
    parallel = await new_key(auth, rpm_limit=1000, max_parallel_requests=100)
    for key in (small, parallel):
        before = auth.authorize_calls
        for _ in range(5):
            call = new_call()
            await authorize(gw, key.key, call)
            gw.release(call.admitted)
        assert auth.authorize_calls - before == 5
    assert auth.requests_counted("key", small.info.key_id) == (5, 0)
    with pytest.raises(ServiceError) as info:
        for _ in range(26):
            await authorize(gw, small.key, new_call())
    assert info.value.error.code == "rpm_limit_exceeded"
    assert auth.requests_counted("key", small.info.key_id) == (30, 0)


async def test_tpm_estimates_are_corrected_to_real_usage_and_unused_tokens_come_back(
        auth: Auth, facades: Facades) -> None:
    gw = await facades()
    key = await new_key(auth, tpm_limit=100_000)
    calls = [new_call(tokens=500) for _ in range(6)]
    for call in calls:
        await authorize(gw, key.key, call)
    assert auth.authorize_calls == 1
    # 500 for the asking request, and a lease of 5000 tokens (100000 // 20) of which 2500 are in use.
    assert auth.tokens_counted(key.info.key_id) == 500 + 5000
    assert calls[1].admitted is not None and calls[1].admitted.leased is not None
    assert calls[1].headers()["x-ratelimit-remaining-tokens"] == str(100_000 - 500 - 500)
    for call in calls:
        gw.release(call.admitted, common_pb2.Usage(total_tokens=50))
    # Each request really used 50 tokens: the corrections (-450 each) reach auth, summed, in the background.
    await eventually(lambda: auth.tokens_counted(key.info.key_id) == 500 + 5000 - 6 * 450)
    gw.keycache.apply(auth_pb2.Invalidation(key_ids=[key.info.key_id]))  # retires the lease
    await eventually(lambda: auth.tokens_counted(key.info.key_id) == 6 * 50)


async def test_revocation_stops_a_leasing_key_at_once(auth: Auth, facades: Facades) -> None:
    gw = await facades()
    key = await new_key(auth, rpm_limit=1000)
    for _ in range(3):
        await authorize(gw, key.key, new_call())
    assert auth.authorize_calls == 1 and auth.requests_counted("key", key.info.key_id) == (1, 16)
    started = asyncio.get_running_loop().time()
    await auth.stub.DeleteKeys(auth_pb2.DeleteKeysRequest(caller=ADMIN, keys=[key.info.key_id]))
    while True:
        try:
            await authorize(gw, key.key, new_call())
        except ServiceError as err:
            assert err.error.code == "key_revoked"
            break
        assert asyncio.get_running_loop().time() - started < 1.0, "a revoked key is still admitted"
        await asyncio.sleep(0.005)
    await eventually(lambda: auth.requests_counted("key", key.info.key_id)[1] <= 3)


async def test_a_refusal_while_this_facade_holds_team_units_returns_them_and_asks_again(
        auth: Auth, facades: Facades) -> None:
    gw = await facades()
    await auth.stub.CreateTeam(auth_pb2.TeamRequest(caller=ADMIN, spec=auth_pb2.TeamSpec(
        team_id="t-return", limits=auth_pb2.Limits(rpm_limit=40))))
    a = await new_key(auth, team_id="t-return")
    b = await new_key(auth, team_id="t-return")
    await authorize(gw, a.key, new_call())  # and a lease of 2 team units, never used
    assert auth.requests_counted("team", "t-return") == (1, 2)
    admitted_b = 0
    with pytest.raises(ServiceError) as info:
        for _ in range(50):
            await authorize(gw, b.key, new_call())
            admitted_b += 1
    assert info.value.error.code == "rpm_limit_exceeded"
    assert admitted_b == 39  # every unit of the team's 40 went to a request: none was left idle in a lease


async def test_a_request_too_big_for_the_lease_is_never_refused_for_its_unused_tokens(
        auth: Auth, facades: Facades) -> None:
    gw = await facades()
    key = await new_key(auth, tpm_limit=20_000)
    await authorize(gw, key.key, new_call(tokens=300))  # and a lease of 1000 tokens (20000 // 20)
    assert auth.tokens_counted(key.info.key_id) == 1300
    big = new_call(tokens=18_900)  # fits only once the lease's tokens are back: 300 + 18900 <= 20000
    await authorize(gw, key.key, big)
    assert big.authorization is not None and big.authorization.admission.counted_tokens == 18_900
    assert auth.tokens_counted(key.info.key_id) == 300 + 18_900


async def test_two_facades_never_admit_more_than_the_limit(auth: Auth, facades: Facades) -> None:
    gateways = [await facades(), await facades()]
    key = await new_key(auth, rpm_limit=200)

    async def attempt(i: int) -> bool:
        try:
            await authorize(gateways[i % 2], key.key, new_call())
            return True
        except ServiceError as err:
            assert err.error.code == "rpm_limit_exceeded"
            return False

    warm = [await attempt(0), await attempt(1)]  # each facade has verified the key (and holds a lease)
    outcomes = warm + await asyncio.gather(*(attempt(i) for i in range(400)))
    per_request, _ = auth.requests_counted("key", key.info.key_id)
    assert sum(outcomes) <= 200
    assert sum(outcomes) >= 200 - 2 * (200 // 20)  # at most one lease per facade may be left over
    assert per_request < sum(outcomes)  # some were admitted under leases


class RecordingAuth:
    """Stands in for auth's stub: keeps each ReleaseBatch it is sent."""

    def __init__(self) -> None:
        self.batches: list[auth_pb2.ReleaseBatchRequest] = []

    async def ReleaseBatch(self, request: auth_pb2.ReleaseBatchRequest, **_: object) -> auth_pb2.ReleaseBatchResponse:
        self.batches.append(request)
        return auth_pb2.ReleaseBatchResponse()


async def test_corrections_are_summed_per_key_team_and_window_and_slots_stay_per_request() -> None:
    recording = RecordingAuth()
    releaser = Releaser(recording, 1.0)  # type: ignore[arg-type]  # the one call it makes is recorded

    def release(rid: str, key: str, counted: int, actual: int | None, window: int = 60, slot: bool = False) -> None:
        answer = auth_pb2.AuthorizeResponse(admission=auth_pb2.Admission(
            request_id=rid, key_id=key, team_id="t", counted_tokens=counted, tpm_window_start=window,
            holds_parallel_slot=slot))
        answer.rate_limits.add(name="tokens", limit=1000)
        releaser.release(answer, common_pb2.Usage(total_tokens=actual) if actual is not None else None)

    release("r1", "a", 100, 10)
    release("r2", "a", 100, 30)
    releaser.correct("a", "t", 60, 100, -1)  # a leased admission whose real count is unknown: the estimate stands
    release("r4", "a", 100, 5, window=120)
    release("r5", "b", 50, 50)
    release("r6", "a", 100, 1, slot=True)
    release("r7", "c", 80, None)  # ended without usage: counted as none
    rpm_only = auth_pb2.AuthorizeResponse(admission=auth_pb2.Admission(request_id="r8", key_id="a"))
    rpm_only.rate_limits.add(name="requests", limit=1000)
    releaser.release(rpm_only, common_pb2.Usage(total_tokens=5))  # nothing to give back
    await releaser.drain(2)
    assert len(recording.batches) == 1
    assert [(r.admission.request_id, r.admission.key_id, r.admission.tpm_window_start, r.admission.counted_tokens,
             r.actual_tokens) for r in recording.batches[0].releases] == [
        ("r6", "a", 60, 100, 1),
        ("", "a", 60, 300, 140),
        ("", "a", 120, 100, 5),
        # b's estimate was right: nothing to send
        ("", "c", 60, 80, 0),
    ]


async def test_an_authorize_carries_the_waiting_corrections_of_its_key_and_team() -> None:
    releaser = Releaser(RecordingAuth(), 1.0)  # type: ignore[arg-type]  # nothing is sent in this test
    releaser.correct("a", "t", 60, 100, 40)
    releaser.correct("b", "t", 60, 100, 90)
    releaser.correct("c", "", 60, 100, 70)
    assert [(r.admission.key_id, r.actual_tokens) for r in releaser.take_corrections("a", "t")] == [
        ("a", 40), ("b", 90)]
    assert releaser.take_corrections("a", "t") == []
    assert [(r.admission.key_id, r.actual_tokens) for r in releaser.take_corrections("c", "")] == [("c", 70)]


async def test_tpm_is_overshot_by_at_most_one_request_when_requests_come_back_to_back(
        auth: Auth, facades: Facades) -> None:
    """Each admission sees the real token counts of the requests before it (their corrections travel with it), so
    a burst of ~90-token requests on a 150 TPM key gets two through, not five."""
    gw = await facades()
    key = await new_key(auth, tpm_limit=150)
    admitted = 0
    for _ in range(5):
        call = new_call(tokens=20)  # the prompt estimate; the answer makes it 90 in all
        try:
            await authorize(gw, key.key, call)
        except ServiceError as err:
            assert err.error.code == "tpm_limit_exceeded"
            continue
        admitted += 1
        gw.release(call.admitted, common_pb2.Usage(prompt_tokens=20, completion_tokens=70, total_tokens=90))
    assert admitted == 2
    await gw.releaser.drain(2)
    assert auth.tokens_counted(key.info.key_id) == 180  # one request past the limit at most


async def test_a_leased_admission_counts_its_real_tokens_against_the_lease_at_once(
        auth: Auth, facades: Facades) -> None:
    gw = await facades()
    key = await new_key(auth, tpm_limit=40_000)  # leases of up to 2,000 tokens (a twentieth)
    first = new_call(tokens=100)
    await authorize(gw, key.key, first)  # asks for a lease
    used = 0
    while True:
        call = new_call(tokens=100)
        await authorize(gw, key.key, call)
        if not call.admitted.leased:
            break
        used += 1
        gw.release(call.admitted, common_pb2.Usage(total_tokens=500))  # each really took 500 tokens
    assert used <= 2_000 // 500, "the lease stops once its slice of real tokens is spent"
