"""The Responses API in front of Gemini, driven by the official ``openai`` SDK: log probabilities as the Responses
API gives them.

One gateway for this module serves the fake Gemini API's models.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openai
import pytest

from tests.conftest import FAKE_PRICES
from tests.fakes.gemini_provider import TEST_API_KEY, FakeGemini
from tests.harness import Gateway, start_gateway

LOGPROBS = ["message.output_text.logprobs"]


@pytest.fixture(scope="module")
def fake_gemini() -> Iterator[FakeGemini]:
    server = FakeGemini()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory, fake_gemini: FakeGemini) -> Iterator[Gateway]:
    def gemini(name: str, model: str) -> dict[str, object]:
        return {"name": name, "deployments": [{"provider": "gemini", "model": model, "api_base": fake_gemini.base_url,
                                               "api_key": TEST_API_KEY, **FAKE_PRICES}]}
    models = [gemini("gemini-good", "gemini-2.5-flash-good")]
    gateway = start_gateway(tmp_path_factory.mktemp("responses-gemini"), models)
    yield gateway
    gateway.stop()


@pytest.fixture(scope="module")
def sdk(gw: Gateway) -> Iterator[openai.OpenAI]:
    key = gw.create_key(key_alias="responses-gemini", models=[])
    with openai.OpenAI(api_key=key, base_url=gw.base_url + "/v1", max_retries=0, timeout=20) as client:
        yield client


def generation_config(fake_gemini: FakeGemini) -> dict[str, Any]:
    config = fake_gemini.requests[-1].json().get("generationConfig") or {}
    assert isinstance(config, dict)
    return config


def test_log_probabilities_come_back_in_the_output_text(sdk: openai.OpenAI, fake_gemini: FakeGemini) -> None:
    """Asked with the include entry and top_logprobs, as OpenAI documents: Gemini is asked for them, and the
    output_text part carries one entry per token (its bytes, the top alternatives), covering the whole text."""
    response = sdk.responses.create(model="gemini-good", input="hi", top_logprobs=2, include=LOGPROBS)
    config = generation_config(fake_gemini)
    assert config["responseLogprobs"] is True and config["logprobs"] == 2
    [message] = response.output
    assert message.type == "message"
    [part] = message.content
    assert part.type == "output_text" and part.logprobs
    assert "".join(entry.token for entry in part.logprobs) == part.text == "Hello from fake Gemini."
    for entry in part.logprobs:
        assert entry.logprob < 0 and entry.bytes == list(entry.token.encode())
        assert len(entry.top_logprobs) == 2 and entry.top_logprobs[0].token == entry.token
    only_include = sdk.responses.create(model="gemini-good", input="hi", include=LOGPROBS)
    assert generation_config(fake_gemini)["responseLogprobs"] is True
    only_part = only_include.output[0].content[0]
    assert only_part.type == "output_text" and only_part.logprobs
    assert all(entry.top_logprobs == [] for entry in only_part.logprobs)


def test_log_probabilities_stream_with_their_text(sdk: openai.OpenAI) -> None:
    """Each response.output_text.delta carries its own tokens' log probabilities, .done and the final response the
    whole text's."""
    with sdk.responses.stream(model="gemini-good", input="hi", top_logprobs=1, include=LOGPROBS) as stream:
        events = list(stream)
        final = stream.get_final_response()
    deltas = [event for event in events if event.type == "response.output_text.delta"]
    assert len(deltas) > 1
    for delta in deltas:
        assert delta.logprobs and "".join(entry.token for entry in delta.logprobs) == delta.delta
        assert all(entry.top_logprobs and entry.top_logprobs[0].token == entry.token for entry in delta.logprobs)
    [done] = [event for event in events if event.type == "response.output_text.done"]
    streamed = [(entry.token, entry.logprob) for delta in deltas for entry in delta.logprobs]
    assert [(entry.token, entry.logprob) for entry in done.logprobs] == streamed
    part = final.output[0].content[0]
    assert part.type == "output_text" and part.logprobs is not None
    assert [(entry.token, entry.logprob) for entry in part.logprobs] == streamed


def test_without_asking_there_are_none(sdk: openai.OpenAI, fake_gemini: FakeGemini) -> None:
    response = sdk.responses.create(model="gemini-good", input="hi", top_logprobs=0)
    assert "responseLogprobs" not in generation_config(fake_gemini)
    part = response.output[0].content[0]
    assert part.type == "output_text" and part.logprobs == []

