"""Routing end to end: strategies, the circuit breaker, and the special fallbacks.

Two deployments of one public model point at the same fake provider; the
``x-switchboard-deployment`` header says which one served each request, so a
count of those headers shows what each strategy does.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import FAKE_PRICES
from tests.fakes.openai_provider import FakeOpenAI
from tests.fakes.server import BackgroundServer
from tests.harness import Gateway, start_gateway

COOLDOWN_SECONDS = 1.5


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    app = FakeOpenAI()
    server = BackgroundServer(app).start()
    app.api_base = server.url + "/v1"  # type: ignore[attr-defined]
    yield app
    server.stop()


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory, fake: FakeOpenAI) -> Iterator[Gateway]:
    base = fake.api_base  # type: ignore[attr-defined]

    def dep(model: str, dep_id: str, **extra: object) -> dict[str, object]:
        return {"id": dep_id, "provider": "openai", "model": model, "api_base": base, "api_key": "sk-fake",
                **FAKE_PRICES, **extra}

    models: list[dict[str, object]] = [
        {"name": "weighted", "strategy": "weighted_random",
         "deployments": [dep("good", "heavy", weight=4), dep("good", "light", weight=1)]},
        {"name": "least-busy", "strategy": "least_inflight",
         "deployments": [dep("slow-0.5", "busy/a"), dep("slow-0.5", "busy/b")]},
        {"name": "fastest", "strategy": "lowest_latency",
         "deployments": [dep("slow-0.3", "fastest/slow"), dep("good", "fastest/quick")]},
        {"name": "breaker", "deployments": [dep("toggle", "breaker/only")]},
        {"name": "small-context", "context_window_fallbacks": ["big-context"],
         "deployments": [dep("toolong", "small/0")]},
        {"name": "big-context", "deployments": [dep("good", "big/0")]},
        {"name": "no-context-fallback", "deployments": [dep("toolong", "nofb/0")]},
        {"name": "strict", "content_policy_fallbacks": ["lenient"], "deployments": [dep("filtered", "strict/0")]},
        {"name": "lenient", "deployments": [dep("good", "lenient/0")]},
        {"name": "down-streamed", "fallbacks": ["lenient"], "deployments": [dep("down", "down/0")]},
    ]
    tmp: Path = tmp_path_factory.mktemp("routing")
    gw = start_gateway(tmp, models, router_settings={
        "max_attempts": 2, "backoff_initial_seconds": 0.05, "cooldown_failures": 2,
        "cooldown_seconds": COOLDOWN_SECONDS})
    yield gw
    gw.stop()


@pytest.fixture(scope="module")
def key(gateway: Gateway) -> str:
    return gateway.create_key(key_alias="routing")


def chat(gateway: Gateway, key: str, model: str, *, stream: bool = False, content: str = "x") -> httpx.Response:
    body: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": content}]}
    if stream:
        body["stream"] = True
    return httpx.post(f"{gateway.base_url}/v1/chat/completions", json=body, timeout=20,
                      headers={"Authorization": f"Bearer {key}"})


def served_by(gateway: Gateway, key: str, model: str, times: int, parallel: int = 1) -> list[str]:
    def one(_: int) -> str:
        response = chat(gateway, key, model)
        assert response.status_code == 200, response.text
        return response.headers["x-switchboard-deployment"]

    with ThreadPoolExecutor(parallel) as pool:
        return list(pool.map(one, range(times)))


def deployment_health(gateway: Gateway, key: str, model: str) -> list[str]:
    listing = httpx.get(f"{gateway.base_url}/v1/models", headers={"Authorization": f"Bearer {key}"}).json()
    entry = next(m for m in listing["data"] if m["id"] == model)
    return [d["health"] for d in entry["switchboard"]["deployments"]]


def test_weighted_random_follows_the_weights(gateway: Gateway, key: str) -> None:
    counts = Counter(served_by(gateway, key, "weighted", 30))
    assert set(counts) == {"heavy", "light"}, counts
    # Weights 4:1 → about 24:6; heavy ≤ light would be a 4-standard-deviation event.
    assert counts["heavy"] > counts["light"], counts


def test_least_inflight_spreads_concurrent_requests_evenly(gateway: Gateway, key: str) -> None:
    # Four requests at once, each taking 0.5 s: the second goes where nothing is in flight, and so on.
    counts = Counter(served_by(gateway, key, "least-busy", 4, parallel=4))
    assert counts == {"busy/a": 2, "busy/b": 2}


def test_lowest_latency_tries_each_once_then_prefers_the_fast_one(gateway: Gateway, key: str) -> None:
    served = served_by(gateway, key, "fastest", 8)
    assert set(served[:2]) == {"fastest/slow", "fastest/quick"}, "an untried deployment is tried first"
    assert served[2:] == ["fastest/quick"] * 6


def test_circuit_breaker_cools_a_failing_deployment_down_and_brings_it_back(
        gateway: Gateway, key: str, fake: FakeOpenAI) -> None:
    fake.toggle_down = True
    try:
        first = chat(gateway, key, "breaker")
        assert first.status_code == 503 and first.json()["error"]["message"] == "The fake provider is overloaded."
        assert len(fake.calls("toggle")) == 2, "two failures (cooldown_failures) open the breaker"
        assert deployment_health(gateway, key, "breaker") == ["cooling_down"]

        cooling = chat(gateway, key, "breaker")
        assert cooling.status_code == 503
        error = cooling.json()["error"]
        assert error["code"] == "no_healthy_deployment" and "cooling down" in error["message"]
        assert 1 <= int(cooling.headers["retry-after"]) <= 2
        assert len(fake.calls("toggle")) == 2, "a cooling deployment is not called"
    finally:
        fake.toggle_down = False
    time.sleep(COOLDOWN_SECONDS + 0.1)
    assert deployment_health(gateway, key, "breaker") == ["healthy"]
    back = chat(gateway, key, "breaker")
    assert back.status_code == 200 and back.headers["x-switchboard-deployment"] == "breaker/only"


def test_context_window_error_falls_back_to_the_bigger_model(gateway: Gateway, key: str) -> None:
    response = chat(gateway, key, "small-context")
    assert response.status_code == 200, response.text
    assert response.headers["x-switchboard-deployment"] == "big/0"
    assert response.headers["x-switchboard-model"] == "big-context"


def test_context_window_error_falls_back_in_a_stream_too(gateway: Gateway, key: str) -> None:
    response = chat(gateway, key, "small-context", stream=True)
    assert response.status_code == 200 and response.headers["x-switchboard-deployment"] == "big/0"
    assert response.text.rstrip().endswith("data: [DONE]") and '"error"' not in response.text


def test_context_window_error_without_a_fallback_is_the_providers_400(gateway: Gateway, key: str) -> None:
    response = chat(gateway, key, "no-context-fallback")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "context_length_exceeded"


def test_content_policy_refusal_falls_back(gateway: Gateway, key: str) -> None:
    response = chat(gateway, key, "strict")
    assert response.status_code == 200, response.text
    assert response.headers["x-switchboard-deployment"] == "lenient/0"


def test_stream_failing_before_its_first_byte_falls_back_transparently(
        gateway: Gateway, key: str, fake: FakeOpenAI) -> None:
    before = len(fake.calls("down"))
    response = chat(gateway, key, "down-streamed", stream=True)
    assert response.status_code == 200 and response.headers["x-switchboard-deployment"] == "lenient/0"
    events = [line[6:] for line in response.text.split("\n") if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    text = "".join(c["delta"].get("content") or "" for e in events[:-1] for c in json.loads(e)["choices"])
    assert text == "Hello from the fake provider."
    assert len(fake.calls("down")) - before == 1
