"""Fixtures shared by the whole suite: fake providers and a running gateway."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.openai_provider import FakeOpenAI
from tests.fakes.server import BackgroundServer
from tests.harness import Gateway, start_gateway
from tests.sdk_clients import close_sdk_clients  # noqa: F401  (autouse: every test's SDK clients are closed after it)


@pytest.fixture(scope="session")
def fake_openai() -> Iterator[tuple[FakeOpenAI, str]]:
    """The fake OpenAI provider and its base URL (``.../v1``)."""
    app = FakeOpenAI()
    server = BackgroundServer(app).start()
    yield app, server.url + "/v1"
    server.stop()


#: The fake provider's models are unknown to genai-prices: price them in the config (USD per million tokens).
FAKE_PRICES = {"input_cost_per_million": "2.5", "output_cost_per_million": "10"}


def fake_models(api_base: str) -> list[dict[str, object]]:
    """Public model names backed by the fake provider's behaviours."""
    def dep(model: str, **extra: object) -> dict[str, object]:
        return {"provider": "openai", "model": model, "api_base": api_base, "api_key": "sk-fake-upstream",
                "jurisdiction": "us", **FAKE_PRICES, **extra}
    return [
        {"name": "fake-good", "deployments": [dep("good")]},
        {"name": "fake-echo", "deployments": [dep("echo")]},
        {"name": "fake-embed", "deployments": [dep("embed")]},
        {"name": "fake-slow-first-byte", "deployments": [dep("slow")]},
        {"name": "fake-tool", "deployments": [dep("tool")]},
        {"name": "fake-error", "deployments": [dep("error")]},
        {"name": "fake-ratelimit", "deployments": [dep("ratelimit")]},
        {"name": "fake-flaky", "deployments": [dep("flaky")]},
        {"name": "fake-cut", "deployments": [dep("cut")]},
        {"name": "fake-drip", "deployments": [dep("drip")]},
        {"name": "fake-hang", "deployments": [dep("hang", timeouts={"first_byte": 1.5, "total": 3})]},
        {"name": "fake-unreachable", "deployments": [
            {"provider": "openai", "model": "good", "api_base": "http://127.0.0.1:9/v1", "api_key": "x",
             "timeouts": {"connect": 1}, **FAKE_PRICES}]},
        {"name": "fake-with-fallback", "fallbacks": ["fake-good"], "deployments": [dep("down")]},
    ]


@pytest.fixture(scope="session")
def gateway(tmp_path_factory: pytest.TempPathFactory, fake_openai: tuple[FakeOpenAI, str]) -> Iterator[Gateway]:
    """One gateway (four processes) for the whole session, backed by the fake provider."""
    tmp: Path = tmp_path_factory.mktemp("gateway")
    gw = start_gateway(tmp, fake_models(fake_openai[1]))
    yield gw
    gw.stop()
