"""The gRPC metrics interceptor, on a real router and a real auth server on loopback.

The router talks to the fake OpenAI provider; every number asserted is read
back from the Prometheus registry the services export.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import orjson
import pytest

from switchboard.v1 import auth_pb2, auth_pb2_grpc, router_pb2, router_pb2_grpc
from switchboard_auth.cache import VerificationCache
from switchboard_auth.invalidation import InvalidationBus
from switchboard_auth.limits import MemoryLimiter
from switchboard_auth.servicer import AuthServicer
from switchboard_auth.store import KeyStore
from switchboard_common import metrics
from switchboard_common.database import default_sqlite_dsn, make_engine
from switchboard_common.grpc_server import GrpcService, start_server
from switchboard_router.catalog.config import parse_catalog
from switchboard_router.engine import Engine
from switchboard_router.route_metrics import observe_response
from tests.fakes.openai_provider import FakeOpenAI
from tests.router_servicer import FACADE, router_servicer


def sample(name: str, **labels: str) -> float:
    return metrics.REGISTRY.get_sample_value(name, labels) or 0.0


def tokens(deployment: str, direction: str) -> float:
    """The tokens counted for TEAM's calls through the facade (source http) on ``deployment``."""
    return sample("switchboard_tokens_total", model="obs-good", deployment=deployment, team=TEAM,
                  direction=direction, source="http")


def _catalog(api_base: str) -> dict[str, object]:
    def dep(model: str, **extra: object) -> dict[str, object]:
        return {"provider": "openai", "model": model, "api_base": api_base, "api_key": "sk-fake", **extra}
    return {
        "models": [
            {"name": "obs-good", "deployments": [dep("good")]},
            {"name": "obs-flaky", "deployments": [dep("flaky")]},
            {"name": "obs-error", "deployments": [dep("error")]},
            {"name": "obs-fallback", "fallbacks": ["obs-good"], "deployments": [dep("down")]},
            {"name": "obs-unreachable", "deployments": [
                {"provider": "openai", "model": "good", "api_base": "http://127.0.0.1:9/v1", "api_key": "x",
                 "timeouts": {"connect": 1}}]},
        ],
        "router_settings": {"max_attempts": 2, "backoff_initial_seconds": 0.01, "cooldown_failures": 2,
                            "cooldown_seconds": 60},
    }


@pytest.fixture
async def router(fake_openai: tuple[FakeOpenAI, str],
                 tmp_path: Path) -> AsyncIterator[tuple[router_pb2_grpc.RouterStub, Engine]]:
    engine = Engine(parse_catalog(_catalog(fake_openai[1])))
    metrics.observe_deployments(lambda: [(d.id, not engine.health.is_available(d.id))
                                         for e in engine.catalog.models.values() for d in e.deployments])
    name = router_pb2.DESCRIPTOR.services_by_name["Router"].full_name
    servicer, billing = await router_servicer(engine, tmp_path)
    service: GrpcService = await start_server(
        "127.0.0.1:0", lambda s: router_pb2_grpc.add_RouterServicer_to_server(servicer, s), [name],
        observe=observe_response)
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{service.port}")
    try:
        yield router_pb2_grpc.RouterStub(channel), engine
    finally:
        await channel.close()
        await service.stop(0)
        await engine.aclose()
        await billing.close(0.1)


#: The team the facade says pays for the calls below: token counters carry it as their ``team`` label.
TEAM = "obs-team"


def _request(model: str, text: str = "hello", stream: bool = False) -> router_pb2.CompleteRequest:
    body = {"model": model, "messages": [{"role": "user", "content": text}], "stream": stream}
    return router_pb2.CompleteRequest(request_id="req_obs", model=model, body=orjson.dumps(body),
                                      payer=router_pb2.Payer(key_id="key_obs", team_id=TEAM))


async def test_a_completion_counts_tokens_by_team_provider_time_and_the_rpc(
        router: tuple[router_pb2_grpc.RouterStub, Engine]) -> None:
    stub, engine = router
    deployment = engine.catalog.models["obs-good"].deployments[0].id
    tokens_in = tokens(deployment, "in")
    tokens_out = tokens(deployment, "out")
    handled = sample("switchboard_grpc_server_handled_total", service="router", method="Complete", code="OK")
    timed = sample("switchboard_provider_duration_seconds_count", provider="openai", deployment=deployment)

    reply = await stub.Complete(_request("obs-good"), metadata=FACADE)

    assert tokens(deployment, "in") \
        == tokens_in + reply.usage.prompt_tokens
    assert tokens(deployment, "out") \
        == tokens_out + reply.usage.completion_tokens
    assert reply.usage.completion_tokens > 0
    assert sample("switchboard_grpc_server_handled_total", service="router", method="Complete", code="OK") \
        == handled + 1
    assert sample("switchboard_provider_duration_seconds_count", provider="openai", deployment=deployment) \
        == timed + 1
    assert sample("switchboard_grpc_server_inflight", service="router", method="Complete") == 0


async def test_a_stream_records_time_to_first_byte_and_tokens(
        router: tuple[router_pb2_grpc.RouterStub, Engine]) -> None:
    stub, engine = router
    deployment = engine.catalog.models["obs-good"].deployments[0].id
    ttfb = sample("switchboard_provider_time_to_first_byte_seconds_count", provider="openai", deployment=deployment)
    out = tokens(deployment, "out")
    handled = sample("switchboard_grpc_server_handled_total", service="router", method="StreamComplete", code="OK")

    events = [e async for e in stub.StreamComplete(_request("obs-good", stream=True), metadata=FACADE)]

    end = events[-1].end
    assert sample("switchboard_provider_time_to_first_byte_seconds_count", provider="openai",
                  deployment=deployment) == ttfb + 1
    assert tokens(deployment, "out") \
        == out + end.usage.completion_tokens
    assert sample("switchboard_grpc_server_handled_total", service="router", method="StreamComplete",
                  code="OK") == handled + 1


async def test_retries_and_fallbacks_are_counted(router: tuple[router_pb2_grpc.RouterStub, Engine]) -> None:
    stub, _ = router
    retries = sample("switchboard_retries_total", model="obs-flaky")
    fallbacks = sample("switchboard_fallbacks_total", model="obs-fallback", served_model="obs-good")

    flaky = await stub.Complete(_request("obs-flaky", text="a prompt seen once"), metadata=FACADE)
    fell_back = await stub.Complete(_request("obs-fallback"), metadata=FACADE)

    assert flaky.route.attempts == 2
    assert sample("switchboard_retries_total", model="obs-flaky") == retries + 1
    assert fell_back.route.served_model == "obs-good"
    assert sample("switchboard_fallbacks_total", model="obs-fallback", served_model="obs-good") == fallbacks + 1


async def test_upstream_errors_and_cool_downs_are_counted(router: tuple[router_pb2_grpc.RouterStub, Engine]) -> None:
    stub, engine = router
    unreachable = engine.catalog.models["obs-unreachable"].deployments[0].id
    rejected = sample("switchboard_upstream_errors_total", provider="openai", kind="upstream")
    cooled = sample("switchboard_cooldowns_total", deployment=unreachable)
    failed = sample("switchboard_grpc_server_handled_total", service="router", method="Complete",
                    code="INVALID_ARGUMENT")
    assert sample("switchboard_deployment_cooling_down", deployment=unreachable) == 0

    with pytest.raises(grpc.aio.AioRpcError):
        await stub.Complete(_request("obs-error"), metadata=FACADE)
    with pytest.raises(grpc.aio.AioRpcError):
        await stub.Complete(_request("obs-unreachable"), metadata=FACADE)

    assert sample("switchboard_upstream_errors_total", provider="openai", kind="upstream") == rejected + 1
    assert sample("switchboard_grpc_server_handled_total", service="router", method="Complete",
                  code="INVALID_ARGUMENT") + sample("switchboard_grpc_server_handled_total", service="router",
                                                    method="Complete", code="UNKNOWN") > failed
    assert sample("switchboard_cooldowns_total", deployment=unreachable) == cooled + 1
    assert sample("switchboard_deployment_cooling_down", deployment=unreachable) == 1


async def test_refused_keys_are_counted_as_denials(tmp_path: Path) -> None:
    store = KeyStore(make_engine(default_sqlite_dsn(tmp_path, "auth.db")))
    await store.migrate()
    name = auth_pb2.DESCRIPTOR.services_by_name["Auth"].full_name
    bus = InvalidationBus()
    servicer = AuthServicer(store, "sk-master-x", "pepper", MemoryLimiter(60), bus, VerificationCache(bus, 5))
    service = await start_server(
        "127.0.0.1:0", lambda s: auth_pb2_grpc.add_AuthServicer_to_server(servicer, s), [name])
    denials = sample("switchboard_denials_total", service="auth", reason="authentication")
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{service.port}") as channel:
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await auth_pb2_grpc.AuthStub(channel).Authorize(auth_pb2.AuthorizeRequest(api_key="sk-unknown"))
    finally:
        await service.stop(0)
        await store.close()
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert sample("switchboard_denials_total", service="auth", reason="authentication") == denials + 1
    assert sample("switchboard_grpc_server_handled_total", service="auth", method="Authorize",
                  code="UNAUTHENTICATED") >= 1
