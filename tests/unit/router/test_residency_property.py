"""Property: over random catalogs, keys, requested tiers and jurisdictions and failure patterns, the router never
calls a deployment outside the request's allowed set (privacy tier and jurisdictions), retries and fallbacks
included; an ask the key does not allow is refused, and when nothing qualifies it answers with a policy error
naming the tier, or the jurisdictions that could serve the model, and calls nobody. The models it lists for a
key are exactly those a request of that key succeeds with.

The router runs for real (PrivacyGuard over Engine, the real OpenAI adapter, retries, fallbacks,
cool-downs); only the network is replaced by an upstream pool that records which deployment each
request reached and answers with the failure pattern drawn for it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from switchboard.v1 import router_pb2
from switchboard_common.errors import Kind, ServiceError
from switchboard_router.catalog.config import parse_catalog
from switchboard_router.deployment import Timeouts
from switchboard_router.engine import Engine, StreamChunks
from switchboard_router.privacy_guard import PrivacyGuard
from switchboard_router.providers.base import UpstreamRequest
from switchboard_router.upstream_http import Answer, TransportError

JURISDICTIONS = ("ca", "us", "eu")
OUTCOMES = ("ok", "500", "429", "connect", "context", "400")


@dataclass
class Scenario:
    tiers: list[str]
    models: list[dict[str, Any]]
    behaviours: dict[str, list[str]]
    pinned: str
    requested: str
    #: The key's allowed jurisdictions, and those the request asks for.
    jurisdictions: list[str]
    asked: list[str]
    model: str
    stream: bool


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    tiers = [f"tier{i}" for i in range(draw(st.integers(1, 4)))]
    model_count = draw(st.integers(1, 4))
    names = [f"m{i}" for i in range(model_count)]
    models = []
    behaviours: dict[str, list[str]] = {}
    for name in names:
        others = [n for n in names if n != name]
        deployments = []
        for j in range(draw(st.integers(1, 4))):
            host = f"{name}-d{j}"
            behaviours[host] = draw(st.lists(st.sampled_from(OUTCOMES), min_size=1, max_size=3))
            deployments.append({
                "id": host, "provider": "openai", "model": "upstream", "api_key": "sk-test",
                "api_base": f"http://{host}.invalid/v1",
                "privacy_tier": draw(st.sampled_from(tiers)),
                "jurisdiction": draw(st.sampled_from(JURISDICTIONS)),
                "weight": draw(st.sampled_from([1, 2, 5])),
            })
        models.append({
            "name": name, "deployments": deployments,
            "strategy": draw(st.sampled_from(["weighted_random", "least_inflight", "lowest_latency"])),
            "fallbacks": draw(st.lists(st.sampled_from(others), unique=True, max_size=2)) if others else [],
            "context_window_fallbacks": draw(st.lists(st.sampled_from(others), unique=True, max_size=1))
            if others else [],
        })
    tier_choice = st.sampled_from(["", *tiers])
    return Scenario(
        tiers=tiers, models=models, behaviours=behaviours,
        pinned=draw(st.one_of(tier_choice, st.just("no-such-tier"))),
        requested=draw(tier_choice),
        jurisdictions=draw(st.lists(st.sampled_from(JURISDICTIONS), unique=True, max_size=2)),
        asked=draw(st.lists(st.sampled_from(JURISDICTIONS), unique=True, max_size=2)),
        model=draw(st.sampled_from(names)),
        stream=draw(st.booleans()),
    )


class OneShotStream:
    """A streamed (not pre-read) response body, as a socket would deliver it."""

    def __init__(self, answer: Answer) -> None:
        self.status = answer.status
        self.answer = answer
        self.pending = [answer.body]

    def headers(self) -> dict[str, str]:
        return self.answer.headers()

    async def read(self) -> bytes:
        return b"".join(self.pending)

    async def next_chunk(self) -> bytes:
        return self.pending.pop(0) if self.pending else b""

    def close(self) -> None:
        self.pending = []


def json_answer(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Answer:
    return Answer(status, orjson.dumps(body), {"content-type": "application/json", **(headers or {})})


@dataclass
class RecordingNetwork:
    """Answers each deployment's calls with its drawn outcomes (cycled) and records every call."""

    behaviours: dict[str, list[str]]
    calls: list[str] = field(default_factory=list)

    def handle(self, request: UpstreamRequest) -> Answer:
        host = (urlsplit(request.url).hostname or "").removesuffix(".invalid")
        outcomes = self.behaviours[host]
        outcome = outcomes[sum(1 for c in self.calls if c == host) % len(outcomes)]
        self.calls.append(host)
        if outcome == "connect":
            raise TransportError("refused")
        if outcome == "500":
            return json_answer(500, {"error": {"message": "boom", "type": "server_error"}})
        if outcome == "429":
            return json_answer(429, {"error": {"message": "slow down", "type": "requests"}},
                               headers={"Retry-After": "0"})
        if outcome == "context":
            return json_answer(400, {"error": {"message": "maximum context length is 10 tokens",
                                               "type": "invalid_request_error",
                                               "code": "context_length_exceeded"}})
        if outcome == "400":
            return json_answer(400, {"error": {"message": "bad", "type": "invalid_request_error"}})
        if orjson.loads(request.content).get("stream"):
            chunk = {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "upstream",
                     "choices": [{"index": 0, "delta": {"content": host}, "finish_reason": "stop"}]}
            return Answer(200, b"data: " + orjson.dumps(chunk) + b"\n\ndata: [DONE]\n\n",
                          {"content-type": "text/event-stream"})
        return json_answer(200, {
            "id": "c", "object": "chat.completion", "created": 0, "model": "upstream",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": host}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        })


@dataclass(eq=False)
class NetworkPool:
    """A deployment's HTTP pool on the recording network instead of sockets."""

    network: RecordingNetwork

    async def fetch(self, request: UpstreamRequest, within: float | None = None) -> Answer:
        return self.network.handle(request)

    async def open_stream(self, request: UpstreamRequest) -> OneShotStream:
        return OneShotStream(self.network.handle(request))

    async def aclose(self) -> None:
        pass


def network_engine(catalog: Any, network: RecordingNetwork) -> Engine:
    """The real engine with its HTTP pools on the recording network."""

    def pool(timeouts: Timeouts, max_connections: int) -> NetworkPool:
        return NetworkPool(network)

    return Engine(catalog, pool_factory=pool)


def expected_tier(scenario: Scenario) -> str | None:
    """The tier the request must be served at, or None when the guard must refuse it."""
    tiers, pinned, requested = scenario.tiers, scenario.pinned, scenario.requested
    if pinned and pinned not in tiers:
        return None
    if pinned and requested and tiers.index(requested) > tiers.index(pinned):
        return None
    return requested or pinned


def expected_places(scenario: Scenario) -> list[str] | None:
    """The jurisdictions the request may be served in (empty: any), or None when the ask must be refused."""
    if scenario.asked and scenario.jurisdictions and not set(scenario.asked) <= set(scenario.jurisdictions):
        return None
    return scenario.asked or scenario.jurisdictions


def tier_ok(scenario: Scenario, d: dict[str, Any], tier: str) -> bool:
    return not tier or scenario.tiers.index(d["privacy_tier"]) <= scenario.tiers.index(tier)


def allowed_hosts(scenario: Scenario, tier: str, places: list[str]) -> set[str]:
    return {d["id"] for model in scenario.models for d in model["deployments"]
            if tier_ok(scenario, d, tier) and (not places or d["jurisdiction"] in places)}


async def run(scenario: Scenario, network: RecordingNetwork) -> str | ServiceError:
    catalog = parse_catalog({
        "privacy_tiers": scenario.tiers, "models": scenario.models,
        "router_settings": {"max_attempts": 3, "backoff_initial_seconds": 0, "backoff_max_seconds": 0,
                            "cooldown_failures": 2, "cooldown_seconds": 60},
    })
    engine = network_engine(catalog, network)
    guard = PrivacyGuard(engine)
    constraints = router_pb2.RoutingConstraints(privacy_tier=scenario.pinned, jurisdictions=scenario.jurisdictions,
                                                requested_privacy_tier=scenario.requested,
                                                requested_jurisdictions=scenario.asked)
    body = {"model": scenario.model, "messages": [{"role": "user", "content": "hi"}]}
    try:
        prepared = guard.prepare(body, constraints)
        if not scenario.stream:
            result = await guard.complete(scenario.model, prepared)
            return str(result.route.deployment.id)
        served = ""
        async for item in guard.stream(scenario.model, prepared, False):
            if isinstance(item, StreamChunks):
                served = orjson.loads(item.chunks[0])["choices"][0]["delta"]["content"]
        return served
    except ServiceError as err:
        return err
    finally:
        await engine.aclose()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_no_call_ever_reaches_a_deployment_outside_the_allowed_set(scenario: Scenario) -> None:
    network = RecordingNetwork(scenario.behaviours)
    outcome = asyncio.run(run(scenario, network))
    tier, places = expected_tier(scenario), expected_places(scenario)
    if tier is None or places is None:
        assert isinstance(outcome, ServiceError) and outcome.kind == Kind.ERROR_KIND_INVALID_REQUEST
        if tier is not None:
            assert outcome.error.code == "jurisdiction_not_allowed"
            assert all(j in outcome.message for j in scenario.jurisdictions)
        assert network.calls == []
        return
    allowed = allowed_hosts(scenario, tier, places)
    assert set(network.calls) <= allowed, (network.calls, allowed)
    if isinstance(outcome, str):
        assert outcome in allowed
        return
    chain = {scenario.model, *next(m for m in scenario.models if m["name"] == scenario.model)["fallbacks"]}
    in_chain = [d for m in scenario.models if m["name"] in chain for d in m["deployments"]]
    if not {d["id"] for d in in_chain} & allowed:
        assert outcome.kind == Kind.ERROR_KIND_POLICY
        assert network.calls == []
        could = {d["jurisdiction"] for d in in_chain if tier_ok(scenario, d, tier)}
        if places and could:
            assert outcome.error.code == "jurisdiction_unavailable"
            assert f"It can be served in: {', '.join(sorted(could))}." in outcome.message
        else:
            assert outcome.error.code == "privacy_tier_unavailable"
            if tier:
                assert repr(tier) in outcome.message
    else:
        assert network.calls, "a permitted deployment existed but the router gave up without calling it"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_the_models_listed_for_a_key_are_those_its_requests_succeed_with(scenario: Scenario) -> None:
    """With every provider answering, a model is listed (ListModels' reachable set) exactly when a request of the
    key for it is served; the deployments listed with it are the ones allowed to serve it."""
    scenario.behaviours = {host: ["ok"] for host in scenario.behaviours}
    catalog = parse_catalog({"privacy_tiers": scenario.tiers, "models": scenario.models})
    engine = network_engine(catalog, RecordingNetwork(scenario.behaviours))
    constraints = router_pb2.RoutingConstraints(privacy_tier=scenario.pinned, jurisdictions=scenario.jurisdictions,
                                                requested_privacy_tier=scenario.requested,
                                                requested_jurisdictions=scenario.asked)
    try:
        resolved = PrivacyGuard(engine).resolve(constraints)
    except ServiceError:
        assert expected_tier(scenario) is None or expected_places(scenario) is None
        return
    listed = engine.reachable_models(resolved)
    for model in scenario.models:
        outcome = asyncio.run(run(replace(scenario, model=model["name"], stream=False),
                                  RecordingNetwork(scenario.behaviours)))
        assert (model["name"] in listed) == isinstance(outcome, str), (model["name"], outcome)
        permitted_ids = {d.id for d in engine.permitted_deployments(model["name"], resolved)}
        assert permitted_ids <= allowed_hosts(scenario, resolved.privacy_tier, list(resolved.jurisdictions))
