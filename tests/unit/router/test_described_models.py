"""DescribeModels: every configured model, live or not, each deployment with its state and the reason it is not
live — through the router's gRPC servicer, as the dashboard's client package calls it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from switchboard.v1 import router_pb2, router_pb2_grpc
from switchboard_common.grpc_server import start_server
from switchboard_router.catalog.config import parse_catalog
from switchboard_router.catalog.probe import drop_if_not_alone
from switchboard_router.client import RouterClient, RoutingConstraints
from switchboard_router.engine import Engine
from tests.router_servicer import FACADE, router_servicer

CATALOG = {
    "models": [
        {"name": "ready", "fallbacks": ["offline"], "deployments": [
            {"provider": "openai", "model": "gpt-x", "api_base": "http://127.0.0.1:9/v1", "api_key": "sk-x",
             "jurisdiction": "us", "context_window": 128000, "max_output_tokens": 4096},
            {"id": "ready-eu", "provider": "mistral", "model": "mistral-large", "api_key": "sk-y",
             "jurisdiction": "eu", "privacy_tier": "managed_regional_cloud"}]},
        {"name": "offline", "deployments": [
            {"provider": "anthropic", "model": "claude-x", "api_key": "${SB_TEST_SURELY_UNSET_KEY}"}]},
        {"name": "demo", "deployments": [{"provider": "demo", "model": "demo", "only_if_alone": True}]},
    ],
    "router_settings": {"cooldown_failures": 1, "cooldown_seconds": 60},
}


@pytest.fixture
async def router(tmp_path: Path) -> AsyncIterator[tuple[RouterClient, Engine]]:
    engine = Engine(drop_if_not_alone(parse_catalog(CATALOG)))
    servicer, billing = await router_servicer(engine, tmp_path)
    name = router_pb2.DESCRIPTOR.services_by_name["Router"].full_name
    service = await start_server("127.0.0.1:0", lambda s: router_pb2_grpc.add_RouterServicer_to_server(servicer, s),
                                 [name])
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{service.port}")
    try:
        yield RouterClient(channel, metadata=FACADE, exchange_streams=0), engine
    finally:
        await channel.close()
        await service.stop(0)
        await engine.aclose()
        await billing.close(0.1)


def states(model: Any) -> dict[str, tuple[str, str]]:
    return {d.deployment_id: (d.state, d.reason) for d in model.deployments}


async def test_every_configured_model_with_each_deployments_state_and_reason(router: Any) -> None:
    client, engine = router
    engine.health.record_failure("ready-eu")  # one failure cools it down (cooldown_failures: 1)
    described = {m.name: m for m in (await client.describe_models()).models}
    assert list(described) == ["ready", "offline", "demo"]

    ready = described["ready"]
    assert ready.live and list(ready.fallbacks) == ["offline"]
    assert states(ready)["ready/0"] == ("live", "")
    state, reason = states(ready)["ready-eu"]
    assert state == "cooling_down" and "failures" in reason
    eu = next(d for d in ready.deployments if d.deployment_id == "ready-eu")
    assert eu.cooldown_until_ms > 0 and eu.jurisdiction == "eu" and eu.privacy_tier == "managed_regional_cloud"
    first = ready.deployments[0]
    assert (first.context_window, first.max_output_tokens, first.provider, first.upstream_model) == (
        128000, 4096, "openai", "gpt-x")

    offline = described["offline"]
    assert not offline.live
    state, reason = states(offline)["offline/0"]
    assert state == "unavailable" and "SB_TEST_SURELY_UNSET_KEY" in reason
    assert states(described["demo"])["demo/0"][0] == "unavailable", "the demo steps aside while others are live"
    assert "steps aside" in states(described["demo"])["demo/0"][1]

    listed = [m.name for m in (await client.list_models()).models]
    assert listed == ["ready"], "ListModels still lists only what is live"


async def test_a_callers_model_list_limits_what_is_described(router: Any) -> None:
    client, _ = router
    described = await client.describe_models(RoutingConstraints(allowed_models=["offline"]))
    assert [m.name for m in described.models] == ["offline"]


async def test_deployments_outside_the_callers_jurisdictions_are_marked_excluded(router: Any) -> None:
    client, _ = router
    described = await client.describe_models(RoutingConstraints(allowed_models=["ready"], jurisdictions=["eu"]))
    ready, = described.models
    assert states(ready)["ready-eu"][0] == "live"
    state, reason = states(ready)["ready/0"]
    assert state == "excluded" and "jurisdictions" in reason
