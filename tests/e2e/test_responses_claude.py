"""The Responses API in front of Claude, driven by the official ``openai`` SDK: the model an answer names (as chat
and Anthropic Messages name it), Claude's thinking as a reasoning summary, its signed thinking carried to the next
turn, and a stream that fails midway.

One gateway for this module serves the fake OpenAI provider's models (``fake-*``) and the fake Anthropic API's
(``claude-*``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pytest

from tests.conftest import FAKE_PRICES, fake_models
from tests.fakes.anthropic_provider import FakeAnthropic
from tests.fakes.openai_provider import FakeOpenAI
from tests.harness import Gateway, start_gateway

WEATHER_TOOL: Any = {"type": "function", "name": "get_weather", "description": "Weather in a city.",
                     "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                                    "required": ["city"]}}
SUMMARY_EVENTS = ["response.output_item.added", "response.reasoning_summary_part.added",
                  "response.reasoning_summary_text.delta", "response.reasoning_summary_text.done",
                  "response.reasoning_summary_part.done", "response.output_item.done"]


@pytest.fixture(scope="module")
def fake_claude() -> Iterator[FakeAnthropic]:
    server = FakeAnthropic().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory, fake_openai: tuple[FakeOpenAI, str],
       fake_claude: FakeAnthropic) -> Iterator[Gateway]:
    def claude(name: str, model: str) -> dict[str, object]:
        return {"name": name, "deployments": [{"provider": "anthropic", "model": model, "api_base": fake_claude.url,
                                               "api_key": "sk-ant-fake-upstream", **FAKE_PRICES}]}
    models = fake_models(fake_openai[1]) + [claude("claude-good", "good"), claude("claude-thinking", "thinking"),
                                            claude("claude-thinking-tool", "thinking-tool"),
                                            claude("claude-stream-error", "stream-error")]
    gateway = start_gateway(tmp_path_factory.mktemp("responses-claude"), models)
    yield gateway
    gateway.stop()


@pytest.fixture(scope="module")
def key(gw: Gateway) -> str:
    return gw.create_key(key_alias="responses-claude", models=[], aliases={"my-claude": "claude-good"})


@pytest.fixture(scope="module")
def sdk(gw: Gateway, key: str) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(api_key=key, base_url=gw.base_url + "/v1", max_retries=0, timeout=20) as client:
        yield client


def test_every_api_names_the_model_asked_for(gw: Gateway, key: str, sdk: openai.OpenAI) -> None:
    """Claude answers as "claude-fake-good"; chat, Responses and Messages all name what the client asked for
    (the catalog name, or the key's alias of it), whole and streamed."""
    messages: Any = [{"role": "user", "content": "hi"}]
    for asked in ("claude-good", "my-claude"):
        assert sdk.chat.completions.create(model=asked, messages=messages).model == asked
        chunks = list(sdk.chat.completions.create(model=asked, messages=messages, stream=True))
        assert chunks and {chunk.model for chunk in chunks} == {asked}
        assert sdk.responses.create(model=asked, input="hi").model == asked
        with sdk.responses.stream(model=asked, input="hi") as stream:
            envelopes = [event.response for event in stream if hasattr(event, "response")]
        assert len(envelopes) == 3 and {envelope.model for envelope in envelopes} == {asked}
        with anthropic.Anthropic(api_key=key, base_url=gw.base_url, max_retries=0, timeout=20) as claude:
            assert claude.messages.create(model=asked, max_tokens=100, messages=messages).model == asked


@pytest.mark.parametrize("level", ["auto", "detailed", "concise"])
def test_claudes_thinking_is_the_reasoning_summary_asked_for(sdk: openai.OpenAI, level: Any) -> None:
    response = sdk.responses.create(model="claude-thinking", input="2+2?",
                                    reasoning={"effort": "medium", "summary": level})
    reasoning, message = response.output
    assert reasoning.type == "reasoning" and message.type == "message"
    assert [(part.type, part.text) for part in reasoning.summary] == [("summary_text", "Let me think step by step.")]
    assert response.output_text == "The answer is 4." and response.reasoning is not None
    assert response.reasoning.summary == level


def test_the_summary_streams_in_openais_order(sdk: openai.OpenAI) -> None:
    with sdk.responses.stream(model="claude-thinking", input="2+2?",
                              reasoning={"effort": "medium", "summary": "auto"}) as stream:
        events = list(stream)
        final = stream.get_final_response()
    names = [event.type for event in events]
    first, last = names.index("response.output_item.added"), names.index("response.output_item.done")
    summary_events = [name for name in names[first:last + 1] if name != "response.reasoning_summary_text.delta"]
    assert summary_events == [name for name in SUMMARY_EVENTS if name != "response.reasoning_summary_text.delta"]
    deltas = [e.delta for e in events if e.type == "response.reasoning_summary_text.delta"]
    assert len(deltas) > 1 and "".join(deltas) == "Let me think step by step."
    assert "response.reasoning_text.delta" not in names
    assert final.output[0].type == "reasoning" and final.output[0].summary[0].text == "Let me think step by step."
    assert final.output_text == "The answer is 4."


def test_without_a_summary_asked_for_thinking_stays_reasoning_text(sdk: openai.OpenAI) -> None:
    response = sdk.responses.create(model="claude-thinking", input="2+2?", reasoning={"effort": "medium"})
    reasoning = response.output[0]
    assert reasoning.type == "reasoning" and reasoning.summary == []
    assert reasoning.content is not None and reasoning.content[0].text == "Let me think step by step."
    assert reasoning.encrypted_content  # the signed block travels for the next turn all the same
    with sdk.responses.stream(model="claude-thinking", input="2+2?", reasoning={"effort": "medium"}) as stream:
        names = [event.type for event in stream]
    assert "response.reasoning_text.delta" in names and not [name for name in names if "summary" in name]


@pytest.mark.parametrize("streamed", [True, False])
def test_signed_thinking_comes_back_so_the_tool_turn_keeps_thinking_on(
        sdk: openai.OpenAI, fake_claude: FakeAnthropic, streamed: bool) -> None:
    """As Codex does: turn one calls a tool; turn two resends the output items with the tool's result. Claude takes
    the second turn with thinking on only if it begins with the signed thinking block it wrote (the fake checks the
    signature against the text, as Anthropic does)."""
    asked: Any = {"model": "claude-thinking-tool", "tools": [WEATHER_TOOL],
                  "reasoning": {"effort": "medium", "summary": "auto"}}
    conversation: list[Any] = [{"role": "user", "content": "weather in Paris?"}]
    if streamed:
        with sdk.responses.stream(input=conversation, **asked) as stream:
            first = stream.get_final_response()
    else:
        first = sdk.responses.create(input=conversation, **asked)
    reasoning, call = first.output
    assert reasoning.type == "reasoning" and reasoning.encrypted_content
    assert reasoning.summary[0].text == "I should call get_weather first." and call.type == "function_call"
    replay = [item.model_dump(exclude_none=True) for item in first.output]
    second = sdk.responses.create(input=[*conversation, *replay, {"type": "function_call_output",
                                                                  "call_id": call.call_id, "output": "Sunny"}],
                                  **asked)
    assert second.output_text == "The tool said: Sunny"
    sent = fake_claude.requests[-1].body
    assert sent["thinking"]["type"] == "enabled"  # not switched off for want of the signed block
    assistant = sent["messages"][1]
    assert assistant["role"] == "assistant"
    assert assistant["content"][0] == {"type": "thinking", "thinking": "I should call get_weather first.",
                                       "signature": fake_claude.sign("I should call get_weather first.")["signature"]}
    assert assistant["content"][1]["type"] == "tool_use" and assistant["content"][1]["id"] == call.call_id


def test_a_failed_claude_stream_keeps_the_text_so_far(sdk: openai.OpenAI) -> None:
    events = list(sdk.responses.create(model="claude-stream-error", input="hi", stream=True))
    failed = events[-1]
    assert failed.type == "response.failed" and failed.response.error is not None
    streamed = "".join(event.delta for event in events if event.type == "response.output_text.delta")
    assert streamed and failed.response.output_text == streamed
    assert [(item.type, item.status) for item in failed.response.output] == [("message", "incomplete")]


@pytest.mark.parametrize("streamed", [False, True])
def test_a_json_object_refusal_names_text_format(sdk: openai.OpenAI, streamed: bool) -> None:
    """Claude cannot be held to "any JSON object": the refusal a Responses client gets names the field it sent
    (text.format) and the syntax it would send instead, never chat's response_format."""
    with pytest.raises(openai.BadRequestError) as refused:
        sdk.responses.create(model="claude-good", input="a JSON object, please", stream=streamed,
                             text={"format": {"type": "json_object"}})
    error = refused.value.body
    assert isinstance(error, dict) and error["param"] == "text.format", error
    message = error["message"]
    assert 'text.format {"type": "json_object"}' in message
    assert 'text.format {"type": "json_schema", "name": "answer", "schema": {...}}' in message
    assert "leave text.format out" in message and "response_format" not in message and '"json_schema": {' not in message


def test_a_log_probabilities_refusal_names_top_logprobs_or_include(sdk: openai.OpenAI) -> None:
    """Claude has no log probabilities: the refusal names top_logprobs (or include, when the client asked with it
    alone) and says how to ask for none in Responses terms."""
    with pytest.raises(openai.BadRequestError) as refused:
        sdk.responses.create(model="claude-good", input="hi", top_logprobs=3)
    assert refused.value.param == "top_logprobs"
    message = refused.value.message
    assert 'leave out top_logprobs and the include entry "message.output_text.logprobs"' in message
    assert "set logprobs to false" not in message
    with pytest.raises(openai.BadRequestError) as refused:
        sdk.responses.create(model="claude-good", input="hi", include=["message.output_text.logprobs"])
    assert refused.value.param == "include"


def test_top_logprobs_zero_asks_for_nothing(sdk: openai.OpenAI) -> None:
    """``top_logprobs: 0`` without the include entry asks for no log probabilities, so Claude serves it."""
    assert sdk.responses.create(model="claude-good", input="hi", top_logprobs=0).output_text
