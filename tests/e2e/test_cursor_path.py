"""Cursor's bodies through the real gateway: every published shape reaches the provider as one canonical chat
request, and the answers come back as Chat Completions Cursor can read."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fakes.openai_provider import FakeOpenAI
from tests.harness import Gateway

FIXTURES = sorted((Path(__file__).parent.parent / "fixtures" / "cursor").glob("*.json"))


@pytest.fixture(scope="module")
def key(gateway: Gateway) -> str:
    return gateway.create_key(key_alias="cursor-tests")


def post(gateway: Gateway, key: str, body: dict[str, Any], path: str = "/cursor/chat/completions") -> httpx.Response:
    return httpx.post(gateway.base_url + path, json=body, headers={"Authorization": f"Bearer {key}"}, timeout=20)


@pytest.mark.parametrize("fixture", FIXTURES, ids=[f.stem for f in FIXTURES])
def test_every_published_cursor_shape_is_served(gateway: Gateway, key: str, fixture: Path,
                                                fake_openai: tuple[FakeOpenAI, str]) -> None:
    case = json.loads(fixture.read_text())
    body = copy.deepcopy(case["request"])
    body["model"] = "fake-echo"
    body.pop("stream", None)
    body.pop("stream_options", None)
    before = len(fake_openai[0].requests)
    response = post(gateway, key, body)
    assert response.status_code == 200, response.text
    completion = response.json()
    assert completion["object"] == "chat.completion"
    sent = fake_openai[0].requests[before].body
    expected = copy.deepcopy(case["expected"]["body"])
    for name in ("model", "stream", "stream_options"):
        expected.pop(name, None)
        sent.pop(name, None)
    for message in expected["messages"]:
        message.pop("reasoning_content", None)  # OpenAI refuses it on history; the openai flavour drops it
    if "max_tokens" in expected:  # OpenAI's name for it (its reasoning models refuse the deprecated one)
        expected["max_completion_tokens"] = expected.pop("max_tokens")
    assert sent == expected, "the provider must receive exactly the canonical chat body"


def test_agent_mode_stream_comes_back_as_chat_completion_chunks(gateway: Gateway, key: str) -> None:
    body = {"model": "fake-good", "input": [{"type": "message", "role": "user", "content": "hi"}],
            "instructions": "be brief", "stream": True, "stream_options": {"include_usage": True},
            "reasoning": {"effort": "low", "summary": "auto"}, "store": False,
            "include": ["reasoning.encrypted_content"]}
    with httpx.stream("POST", gateway.base_url + "/cursor/chat/completions", json=body,
                      headers={"Authorization": f"Bearer {key}"}, timeout=20) as response:
        assert response.status_code == 200
        events = [e for e in b"".join(response.iter_raw()).decode().split("\n\n") if e]
    assert events[-1] == "data: [DONE]"
    chunks = [json.loads(e[len("data: "):]) for e in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"]) == \
        "Hello from the fake provider."
    assert chunks[-1]["usage"]["total_tokens"] > 0


def test_streamed_tool_calls_carry_the_function_name_in_every_delta(gateway: Gateway, key: str) -> None:
    body = {"model": "fake-tool", "stream": True, "messages": [{"role": "user", "content": "weather?"}],
            "tools": [{"type": "function", "name": "get_weather", "parameters": {"type": "object"}}]}
    with httpx.stream("POST", gateway.base_url + "/cursor/chat/completions", json=body,
                      headers={"Authorization": f"Bearer {key}"}, timeout=20) as response:
        events = [e for e in b"".join(response.iter_raw()).decode().split("\n\n") if e and e != "data: [DONE]"]
    calls = [tc for e in events for c in json.loads(e[6:])["choices"] for tc in c["delta"].get("tool_calls") or []]
    assert len(calls) >= 2
    assert all(tc["function"]["name"] == "get_weather" for tc in calls)
    assert "".join(tc["function"].get("arguments") or "" for tc in calls) == '{"city": "Paris"}'


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/chat/completions"])
def test_cursors_agent_body_gets_cursors_tool_call_framing_on_the_plain_chat_path(
        gateway: Gateway, key: str, path: str) -> None:
    """Some guides give Cursor the base URL ``<gateway>/v1``: its Agent-mode body (Responses-shaped, which only
    Cursor sends to a chat endpoint) is then answered as on ``/cursor``, every tool-call delta carrying the id
    and name Cursor's agent reads."""
    body = {"model": "fake-tool", "stream": True, "input": [{"type": "message", "role": "user", "content": "weather?"}],
            "tools": [{"type": "function", "name": "get_weather", "parameters": {"type": "object"}}]}
    with httpx.stream("POST", gateway.base_url + path, json=body,
                      headers={"Authorization": f"Bearer {key}"}, timeout=20) as response:
        assert response.status_code == 200
        events = [e for e in b"".join(response.iter_raw()).decode().split("\n\n") if e and e != "data: [DONE]"]
    calls = [tc for e in events for c in json.loads(e[6:])["choices"] for tc in c["delta"].get("tool_calls") or []]
    assert len(calls) >= 2
    assert all(tc["function"]["name"] == "get_weather" and tc["id"] == calls[0]["id"] for tc in calls)
    assert "".join(tc["function"].get("arguments") or "" for tc in calls) == '{"city": "Paris"}'


def test_thinking_suffix_resolves_to_the_base_model_with_reasoning_on(
        gateway: Gateway, key: str, fake_openai: tuple[FakeOpenAI, str]) -> None:
    before = len(fake_openai[0].requests)
    response = post(gateway, key, {"model": "fake-echo-thinking", "messages": [{"role": "user", "content": "hm"}]})
    assert response.status_code == 200, response.text
    assert response.headers["x-switchboard-model"] == "fake-echo"
    sent = fake_openai[0].requests[before].body
    assert sent["model"] == "echo" and sent["reasoning_effort"] == "medium"


def test_assistant_turns_with_null_content_do_not_break_the_call(gateway: Gateway, key: str) -> None:
    body = {"model": "fake-echo", "messages": [
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": None},
        {"role": "user", "content": "second"}]}
    response = post(gateway, key, body)
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"] == "second"


def test_a_body_that_is_neither_chat_nor_responses_is_a_clear_400(gateway: Gateway, key: str) -> None:
    response = post(gateway, key, {"model": "fake-good", "prompt": "old completions API"})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["param"] == "messages" and "input" in error["message"]
