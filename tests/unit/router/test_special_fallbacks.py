"""Context-window (and content-policy) fallbacks as LiteLLM configs write them, through the real engine and guard.

LiteLLM configs often list the same model in ``fallbacks`` and ``context_window_fallbacks``; a fallback the key's
privacy tier rules out is never called, and then the client hears the provider's own error.
"""

from __future__ import annotations

import asyncio
from typing import Any

from switchboard.v1 import router_pb2
from switchboard_common.errors import ServiceError
from switchboard_router.catalog.config import parse_catalog
from switchboard_router.privacy_guard import PrivacyGuard
from tests.unit.router.test_residency_property import RecordingNetwork, network_engine

TIERS = ["zero_retention", "standard"]


def deployment(host: str, tier: str = "zero_retention") -> dict[str, Any]:
    return {"id": host, "provider": "openai", "model": "upstream", "api_key": "sk-test",
            "api_base": f"http://{host}.invalid/v1", "privacy_tier": tier, "jurisdiction": "ca"}


async def serve(models: list[dict[str, Any]], behaviours: dict[str, list[str]], model: str,
                tier: str = "") -> tuple[str | ServiceError, list[str]]:
    catalog = parse_catalog({"privacy_tiers": TIERS, "models": models,
                             "router_settings": {"max_attempts": 2, "backoff_initial_seconds": 0,
                                                 "backoff_max_seconds": 0}})
    network = RecordingNetwork(behaviours)
    engine = network_engine(catalog, network)
    guard = PrivacyGuard(engine)
    try:
        prepared = guard.prepare({"model": model, "messages": [{"role": "user", "content": "hi"}]},
                                 router_pb2.RoutingConstraints(privacy_tier=tier))
        result = await guard.complete(model, prepared)
        return str(result.route.deployment.id), network.calls
    except ServiceError as err:
        return err, network.calls
    finally:
        await engine.aclose()


def test_a_context_window_fallback_also_listed_in_fallbacks_is_tried_next() -> None:
    models = [
        {"name": "small", "context_window_fallbacks": ["big"], "fallbacks": ["other", "big"],
         "deployments": [deployment("small-d")]},
        {"name": "other", "deployments": [deployment("other-d")]},
        {"name": "big", "deployments": [deployment("big-d")]},
    ]
    served, calls = asyncio.run(serve(models, {"small-d": ["context"], "other-d": ["ok"], "big-d": ["ok"]}, "small"))
    assert (served, calls) == ("big-d", ["small-d", "big-d"])


def test_several_context_window_fallbacks_are_tried_in_their_order() -> None:
    models = [
        {"name": "small", "context_window_fallbacks": ["mid", "big"], "deployments": [deployment("small-d")]},
        {"name": "mid", "deployments": [deployment("mid-d")]},
        {"name": "big", "deployments": [deployment("big-d")]},
    ]
    served, calls = asyncio.run(serve(models, {"small-d": ["context"], "mid-d": ["context"], "big-d": ["ok"]},
                                      "small"))
    assert (served, calls) == ("big-d", ["small-d", "mid-d", "big-d"])


def test_a_fallback_outside_the_keys_tier_leaves_the_providers_error() -> None:
    models = [
        {"name": "small", "context_window_fallbacks": ["public-big"], "deployments": [deployment("small-d")]},
        {"name": "public-big", "deployments": [deployment("public-d", "standard")]},
    ]
    served, calls = asyncio.run(serve(models, {"small-d": ["context"], "public-d": ["ok"]}, "small",
                                      tier="zero_retention"))
    assert isinstance(served, ServiceError) and calls == ["small-d"]
    assert served.error.code == "context_length_exceeded" and "public-big" not in served.message


def test_fallbacks_outside_the_keys_tier_add_no_retries_of_the_failing_deployment() -> None:
    models = [{"name": "flaky", "fallbacks": ["public-a", "public-b"], "deployments": [deployment("flaky-d")]},
              {"name": "public-a", "deployments": [deployment("public-a-d", "standard")]},
              {"name": "public-b", "deployments": [deployment("public-b-d", "standard")]}]
    served, calls = asyncio.run(serve(models, {"flaky-d": ["500"], "public-a-d": ["ok"], "public-b-d": ["ok"]},
                                      "flaky", tier="zero_retention"))
    assert isinstance(served, ServiceError) and calls == ["flaky-d", "flaky-d"]  # max_attempts 2, as without them
