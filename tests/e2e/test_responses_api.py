"""The OpenAI Responses API (``POST /v1/responses``) on the gateway, driven by the official ``openai`` SDK."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from tests.fakes.openai_provider import FakeOpenAI
from tests.harness import Gateway

WEATHER_TOOL: Any = {"type": "function", "name": "get_weather", "description": "Weather in a city.",
                     "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                                    "required": ["city"]}}


@pytest.fixture(scope="module")
def sdk(gateway: Gateway) -> Iterator[openai.OpenAI]:
    key = gateway.create_key(key_alias="responses-tests", models=[])
    with openai.OpenAI(api_key=key, base_url=gateway.base_url + "/v1", max_retries=0, timeout=20) as client:
        yield client


def usage_row(gateway: Gateway, request_id: str, timeout: float = 10) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for row in httpx.get(f"{gateway.base_url}/spend/logs", headers=gateway.admin(), timeout=5).json():
            if row["request_id"] == request_id:
                return dict(row)
        time.sleep(0.1)
    raise AssertionError(f"no usage row for {request_id}")


def last_upstream_body(fake_openai: tuple[FakeOpenAI, str], model: str) -> dict[str, Any]:
    return next(r.body for r in reversed(fake_openai[0].requests) if r.body.get("model") == model)


def test_whole_response_with_text_and_usage_is_billed(gateway: Gateway, sdk: openai.OpenAI) -> None:
    raw = sdk.responses.with_raw_response.create(model="fake-good", input="hi", instructions="Be brief.")
    response = raw.parse()
    request_id = raw.headers["x-request-id"]
    assert response.object == "response" and response.status == "completed"
    assert response.id == "resp_" + request_id.removeprefix("req_")
    assert response.output_text == "Hello from the fake provider."
    assert response.output[0].type == "message" and response.output[0].role == "assistant"
    assert response.usage is not None and response.usage.input_tokens > 0 and response.usage.output_tokens > 0
    assert response.instructions == "Be brief." and response.store is False
    row = usage_row(gateway, request_id)
    assert row["status"] == "success" and row["model"] == "fake-good" and row["stream"] is False
    assert (row["prompt_tokens"], row["completion_tokens"]) == (response.usage.input_tokens,
                                                                response.usage.output_tokens)


def test_streamed_response_with_the_stream_helper(gateway: Gateway, sdk: openai.OpenAI) -> None:
    with sdk.responses.stream(model="fake-good", input="hi") as stream:
        events = list(stream)
        final = stream.get_final_response()
    names = [event.type for event in events]
    assert names[:2] == ["response.created", "response.in_progress"] and names[-1] == "response.completed"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    deltas = [event.delta for event in events if event.type == "response.output_text.delta"]
    assert len(deltas) > 1 and "".join(deltas) == "Hello from the fake provider."
    assert final.output_text == "Hello from the fake provider."
    assert final.usage is not None and final.usage.input_tokens > 0 and final.usage.output_tokens > 0


def test_streamed_response_with_create_stream_true_is_billed(gateway: Gateway, sdk: openai.OpenAI) -> None:
    raw = sdk.responses.with_raw_response.create(model="fake-echo", input="say this back", stream=True)
    events = list(raw.parse())
    completed = events[-1]
    assert completed.type == "response.completed"
    assert completed.response.output_text == "say this back"
    usage = completed.response.usage
    row = usage_row(gateway, raw.headers["x-request-id"])
    assert row["stream"] is True and row["status"] == "success" and row["usage_reported_by_provider"] is True
    assert usage is not None and (row["prompt_tokens"], row["completion_tokens"]) == (usage.input_tokens,
                                                                                       usage.output_tokens)


def test_function_tools_whole_and_streamed(sdk: openai.OpenAI) -> None:
    response = sdk.responses.create(model="fake-tool", input="weather in Paris?", tools=[WEATHER_TOOL])
    [call] = response.output
    assert call.type == "function_call"
    assert (call.name, call.arguments, call.call_id) == ("get_weather", '{"city": "Paris"}', "call_fake_1")
    with sdk.responses.stream(model="fake-tool", input="weather in Paris?", tools=[WEATHER_TOOL]) as stream:
        events = list(stream)
        final = stream.get_final_response()
    argument_deltas = "".join(e.delta for e in events if e.type == "response.function_call_arguments.delta")
    assert argument_deltas == '{"city": "Paris"}'
    [streamed] = final.output
    assert streamed.type == "function_call" and streamed.arguments == '{"city": "Paris"}'


def test_function_call_output_round_trip(sdk: openai.OpenAI, fake_openai: tuple[FakeOpenAI, str]) -> None:
    response = sdk.responses.create(model="fake-echo", tools=[WEATHER_TOOL], input=[
        {"role": "user", "content": "weather in Paris?"},
        {"type": "function_call", "call_id": "call_fake_1", "name": "get_weather", "arguments": '{"city": "Paris"}'},
        {"type": "function_call_output", "call_id": "call_fake_1", "output": "Sunny"},
        {"role": "user", "content": "and tomorrow?"},
    ])
    assert response.output_text == "and tomorrow?"
    messages = last_upstream_body(fake_openai, "echo")["messages"]
    assert messages[1]["tool_calls"][0]["id"] == "call_fake_1"
    assert messages[2] == {"role": "tool", "tool_call_id": "call_fake_1", "content": "Sunny"}


def test_previous_response_id_is_refused_clearly(sdk: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        sdk.responses.create(model="fake-good", input="continue", previous_response_id="resp_abc")
    assert info.value.param == "previous_response_id" and "input" in info.value.message
    # A stored prompt template and a background response need state on the server too: refused, not dropped.
    with pytest.raises(openai.BadRequestError) as info:
        sdk.responses.create(model="fake-good", input="hi", prompt={"id": "pmpt_1", "variables": {"x": "y"}})
    assert info.value.param == "prompt" and "instructions" in info.value.message
    with pytest.raises(openai.BadRequestError) as info:
        sdk.responses.create(model="fake-good", input="hi", background=True)
    assert info.value.param == "background"
    assert sdk.responses.create(model="fake-good", input="hi", background=False).status == "completed"


def test_errors_are_openai_error_json(gateway: Gateway) -> None:
    with openai.OpenAI(api_key="sk-wrong", base_url=gateway.base_url + "/v1", max_retries=0) as bad, \
            pytest.raises(openai.AuthenticationError):
        bad.responses.create(model="fake-good", input="hi")
    response = httpx.post(f"{gateway.base_url}/v1/responses", json={"model": "fake-good"}, timeout=10,
                          headers={"Authorization": "Bearer sk-anything"})
    assert response.status_code == 400 and response.json()["error"]["param"] == "input"


def test_a_stream_cut_by_the_provider_ends_with_response_failed(gateway: Gateway, sdk: openai.OpenAI) -> None:
    raw = sdk.responses.with_raw_response.create(model="fake-cut", input="hi", stream=True)
    events = list(raw.parse())
    assert events[0].type == "response.created"
    failed = events[-1]
    assert failed.type == "response.failed" and failed.response.status == "failed"
    assert failed.response.error is not None and failed.response.error.message
    # What was streamed before the cut is in the failed response: the message so far, incomplete.
    streamed = "".join(event.delta for event in events if event.type == "response.output_text.delta")
    assert streamed and "Hello from the fake provider.".startswith(streamed)
    [message] = failed.response.output
    assert message.type == "message" and message.status == "incomplete"
    assert failed.response.output_text == streamed
    assert message.id == next(e.item.id for e in events if e.type == "response.output_item.added")
    row = usage_row(gateway, raw.headers["x-request-id"])
    assert row["status"] == "error" and row["stream"] is True


@pytest.mark.parametrize("asked", ["fake-good", "my-good"])
def test_chat_and_responses_name_the_model_asked_for(gateway: Gateway, asked: str) -> None:
    """The fake answers as OpenAI does, with its own id ("good"); every answer names the model the client asked
    for — a catalog name or the key's alias of it — whole and streamed; the header tells what served."""
    key = gateway.create_key(key_alias=f"model-names-{asked}", models=[], aliases={"my-good": "fake-good"})
    with openai.OpenAI(api_key=key, base_url=gateway.base_url + "/v1", max_retries=0, timeout=20) as client:
        chat = client.chat.completions.with_raw_response.create(
            model=asked, messages=[{"role": "user", "content": "hi"}])
        assert chat.parse().model == asked and chat.headers["x-switchboard-model"] == "fake-good"
        chunks = list(client.chat.completions.create(model=asked, messages=[{"role": "user", "content": "hi"}],
                                                     stream=True, stream_options={"include_usage": True}))
        assert len(chunks) > 2 and {chunk.model for chunk in chunks} == {asked}
        response = client.responses.with_raw_response.create(model=asked, input="hi")
        assert response.parse().model == asked and response.headers["x-switchboard-model"] == "fake-good"
        with client.responses.stream(model=asked, input="hi") as stream:
            envelopes = [event.response for event in stream if hasattr(event, "response")]
        assert len(envelopes) == 3 and {envelope.model for envelope in envelopes} == {asked}


def test_an_answer_a_fallback_served_names_the_model_asked_for(sdk: openai.OpenAI) -> None:
    """fake-with-fallback's deployment is down and fake-good serves: the header says so, the answers do not."""
    chat = sdk.chat.completions.with_raw_response.create(model="fake-with-fallback",
                                                         messages=[{"role": "user", "content": "hi"}])
    assert chat.headers["x-switchboard-model"] == "fake-good" and chat.parse().model == "fake-with-fallback"
    response = sdk.responses.with_raw_response.create(model="fake-with-fallback", input="hi")
    assert response.headers["x-switchboard-model"] == "fake-good"
    assert response.parse().model == "fake-with-fallback"
