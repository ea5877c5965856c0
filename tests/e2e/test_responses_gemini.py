"""The Responses API in front of Gemini, driven by the official ``openai`` SDK: log probabilities as the Responses
API gives them, and Gemini's thought signatures carried from a tool call to the next turn.

One gateway for this module serves the fake Gemini API's models.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openai
import pytest

from tests.conftest import FAKE_PRICES
from tests.fakes.gemini_provider import TEST_API_KEY, THOUGHT_SIGNATURE, FakeGemini
from tests.harness import Gateway, start_gateway

WEATHER_TOOL: Any = {"type": "function", "name": "get_weather", "description": "Weather in a city.",
                     "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                                    "required": ["city"]}}
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
    models = [gemini("gemini-good", "gemini-2.5-flash-good"), gemini("gemini-tool", "gemini-2.5-flash-tool"),
              gemini("gemini-3-tool", "gemini-3-pro-tool")]
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


@pytest.mark.parametrize("model", ["gemini-3-tool", "gemini-tool"])
@pytest.mark.parametrize("streamed", [False, True])
def test_the_thought_signature_comes_back_with_its_call(sdk: openai.OpenAI, fake_gemini: FakeGemini, model: str,
                                                        streamed: bool) -> None:
    """As Codex does: turn one calls a tool; turn two resends the output items with the tool's result. Gemini gets
    its call back with the thought signature it gave it (not the placeholder that skips Gemini 3's check and
    loses its reasoning): a reasoning item carried it, as a function_call item has no field for it."""
    asked: Any = {"model": model, "tools": [WEATHER_TOOL]}
    conversation: list[Any] = [{"role": "user", "content": "weather in Paris?"}]
    if streamed:
        with sdk.responses.stream(input=conversation, **asked) as stream:
            first = stream.get_final_response()
    else:
        first = sdk.responses.create(input=conversation, **asked)
    [call] = [item for item in first.output if item.type == "function_call"]
    [reasoning] = [item for item in first.output if item.type == "reasoning"]
    assert reasoning.encrypted_content and call.name == "get_weather"
    assert [item.type for item in first.output].index("reasoning") < [item.type for item in first.output].index(
        "function_call"), "the signature's item comes before the call it goes with"
    replay = [item.model_dump(exclude_none=True) for item in first.output]
    second = sdk.responses.create(input=[*conversation, *replay, {"type": "function_call_output",
                                                                  "call_id": call.call_id, "output": "Sunny"}],
                                  **asked)
    assert second.output_text.startswith("The tools said: get_weather=")
    model_turn = fake_gemini.requests[-1].json()["contents"][1]
    assert model_turn["role"] == "model"
    [signed] = [part for part in model_turn["parts"] if "functionCall" in part]
    assert signed["thoughtSignature"] == THOUGHT_SIGNATURE


def test_a_signature_from_an_earlier_turn_stays_with_its_own_call(sdk: openai.OpenAI,
                                                                  fake_gemini: FakeGemini) -> None:
    """Gemini's call ids repeat from answer to answer (call_0): the second tool turn's call gets its own signature
    back, or none, never the first turn's."""
    asked: Any = {"model": "gemini-3-tool", "tools": [WEATHER_TOOL]}
    conversation: list[Any] = [{"role": "user", "content": "weather in Paris?"}]
    first = sdk.responses.create(input=conversation, **asked)
    [call] = [item for item in first.output if item.type == "function_call"]
    unsigned_replay = [item.model_dump(exclude_none=True) for item in first.output if item.type != "reasoning"]
    signed_replay = [item.model_dump(exclude_none=True) for item in first.output]
    result = {"type": "function_call_output", "call_id": call.call_id, "output": "Sunny"}
    # Turn one replayed with its signature, a second tool turn replayed without its reasoning item.
    history = [*conversation, *signed_replay, result, {"role": "user", "content": "and in Rome?"},
               *unsigned_replay, result]
    sdk.responses.create(input=history, **asked)
    contents = fake_gemini.requests[-1].json()["contents"]
    signatures = [part.get("thoughtSignature") for content in contents if content["role"] == "model"
                  for part in content["parts"] if "functionCall" in part]
    assert signatures == [THOUGHT_SIGNATURE, "skip_thought_signature_validator"]
