"""Prompt-cache breakpoints: where the gateway places ``cache_control`` marks, and what it keeps of the client's."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from switchboard_translate.anthropic import chat_request_to_anthropic
from switchboard_translate.prompt_cache import (
    MAX_BREAKPOINTS,
    count_breakpoints,
    minimum_cacheable_tokens,
    with_breakpoints,
)
from tests.fakes.anthropic_provider import validate, validate_cache_marks

EPHEMERAL = {"type": "ephemeral"}
HEADERS = {"x-api-key": "k", "anthropic-version": "2023-06-01"}
MODEL = "claude-sonnet-4-5-20250929"
LONG = "Rules of the house. " * 300  # ~6,000 characters: 1,500 estimated tokens, over every minimum of 1,024
TOOL = {"type": "function", "function": {"name": "read_file", "description": LONG,
                                          "parameters": {"type": "object", "properties": {}}}}


def agent_conversation(turns: int) -> dict[str, Any]:
    """A Cursor agent conversation: rules, a request, then ``turns`` tool rounds, the last one's results new."""
    messages: list[dict[str, Any]] = [{"role": "system", "content": LONG}, {"role": "user", "content": "Fix it"}]
    for n in range(turns):
        call = {"id": f"call_{n}", "type": "function", "function": {"name": "read_file", "arguments": "{}"}}
        messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        messages.append({"role": "tool", "tool_call_id": f"call_{n}", "content": f"file {n}\n" + "x = 1\n" * 50})
    return {"model": "claude", "messages": messages, "tools": [TOOL]}


def marked_messages(body: dict[str, Any]) -> list[int]:
    return [i for i, m in enumerate(body["messages"]) if m.get("cache_control")]


def test_a_ten_turn_agent_conversation_gets_four_marks_on_its_stable_prefix() -> None:
    body = agent_conversation(10)
    out = with_breakpoints(body, model=MODEL, auto=True)
    # The last two assistant turns before the newest tool results, then the system prompt and the tools.
    assert marked_messages(out) == [0, 18, 20]
    assert out["tools"][0]["cache_control"] == EPHEMERAL
    assert count_breakpoints(out) == MAX_BREAKPOINTS
    assert "cache_control" not in out["messages"][21], "the newest input is not part of the stable prefix"
    assert body == agent_conversation(10), "the caller's body is left as it was"


def test_nothing_is_marked_when_the_prefix_is_too_short_to_cache() -> None:
    body = {"model": "m", "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
                                       {"role": "assistant", "content": "Hello"}, {"role": "user", "content": "?"}]}
    assert with_breakpoints(body, model=MODEL, auto=True) is body


def test_the_minimum_follows_the_model_family() -> None:
    assert minimum_cacheable_tokens("claude-sonnet-4-5-20250929") == 1024
    assert minimum_cacheable_tokens("claude-haiku-4-5") == 4096
    assert minimum_cacheable_tokens("us.anthropic.claude-3-5-haiku-20241022-v1:0") == 2048
    assert minimum_cacheable_tokens("claude-opus-4-5@20251101") == 4096
    # ~1,500 estimated tokens of system prompt: cacheable for Sonnet 4.5, not for Haiku 4.5.
    body = {"model": "m", "messages": [{"role": "system", "content": LONG}, {"role": "user", "content": "Hi"}]}
    assert marked_messages(with_breakpoints(body, model="claude-sonnet-4-5", auto=True)) == [0]
    assert with_breakpoints(body, model="claude-haiku-4-5", auto=True) is body


def test_client_marks_are_kept_and_not_duplicated() -> None:
    body = agent_conversation(3)
    body["messages"][0] = {"role": "system", "content": [{"type": "text", "text": LONG, "cache_control": EPHEMERAL}]}
    out = with_breakpoints(body, model=MODEL, auto=True)
    assert out["messages"][0] == body["messages"][0], "the system prompt's own mark stays where the client put it"
    assert marked_messages(out) == [4, 6]
    assert count_breakpoints(out) == MAX_BREAKPOINTS


def test_more_client_marks_than_the_provider_takes_drops_the_earliest() -> None:
    messages = [{"role": "user", "content": [{"type": "text", "text": f"part {n}", "cache_control": EPHEMERAL}]}
                for n in range(6)]
    out = with_breakpoints({"model": "m", "messages": messages}, model=MODEL, auto=False)
    assert [bool(m["content"][0].get("cache_control")) for m in out["messages"]] == [False] * 2 + [True] * 4
    assert all(m["content"][0].get("cache_control") for m in messages), "the caller's body is left as it was"


def test_off_places_nothing() -> None:
    body = agent_conversation(10)
    assert with_breakpoints(body, model=MODEL, auto=False) is body


def test_translation_puts_the_marks_on_the_last_block_of_each_message() -> None:
    out = chat_request_to_anthropic(with_breakpoints(agent_conversation(10), model=MODEL, auto=True), model=MODEL)
    validate(HEADERS, out)
    assert out["system"] == [{"type": "text", "text": LONG, "cache_control": EPHEMERAL}]
    assert out["tools"][0]["cache_control"] == EPHEMERAL
    marked = [(m["role"], block["type"]) for m in out["messages"] for block in m["content"] if "cache_control" in block]
    assert marked == [("assistant", "tool_use"), ("assistant", "tool_use")]
    assert out["messages"][-1]["content"][-1].get("cache_control") is None


# -- properties ---------------------------------------------------------------------------------------------------

_text = st.one_of(st.just(""), st.just("short"), st.just(LONG[:1500]), st.just(LONG))
_mark = st.one_of(st.none(), st.just(EPHEMERAL))


@st.composite
def _message(draw: st.DrawFn, n: int) -> dict[str, Any]:
    role = draw(st.sampled_from(["system", "user", "user", "assistant", "assistant", "tool"]))
    message: dict[str, Any] = {"role": role}
    if role == "user" and draw(st.booleans()):
        parts = draw(st.lists(st.builds(lambda t, m: {"type": "text", "text": t, **({"cache_control": m} if m else {})},
                                        _text, _mark), min_size=1, max_size=3))
        message["content"] = parts
    else:
        message["content"] = draw(_text)
    if role == "assistant" and draw(st.booleans()):
        message["tool_calls"] = [{"id": f"call_{n}", "type": "function",
                                  "function": {"name": "read_file", "arguments": "{}"}}]
        message["content"] = draw(st.one_of(st.none(), _text))
    if role == "tool":
        message["tool_call_id"] = f"call_{n}"
    mark = draw(_mark)
    if mark:
        message["cache_control"] = mark
    return message


@st.composite
def chat_bodies(draw: st.DrawFn) -> dict[str, Any]:
    size = draw(st.integers(min_value=1, max_value=14))
    messages = [draw(_message(n)) for n in range(size)]
    tools = [{**TOOL, **({"cache_control": EPHEMERAL} if draw(st.booleans()) else {})}
             for _ in range(draw(st.integers(min_value=0, max_value=2)))]
    body: dict[str, Any] = {"model": "claude", "messages": messages}
    if tools:
        body["tools"] = tools
    return body


def _marks(body: dict[str, Any]) -> list[tuple[str, int, int]]:
    spots = [("tool", i, -1) for i, t in enumerate(body.get("tools") or []) if t.get("cache_control")]
    for i, message in enumerate(body["messages"]):
        if message.get("cache_control"):
            spots.append(("message", i, -1))
        if isinstance(message.get("content"), list):
            spots += [("part", i, j) for j, p in enumerate(message["content"]) if p.get("cache_control")]
    return spots


@settings(max_examples=300, deadline=None)
@given(chat_bodies(), st.sampled_from(["claude-sonnet-4-5", "claude-haiku-4-5", "claude-3-5-haiku"]))
def test_placement_properties(body: dict[str, Any], model: str) -> None:
    original = copy.deepcopy(body)
    out = with_breakpoints(body, model=model, auto=True)
    assert body == original, "the input is never changed"
    # Never more than the provider's limit.
    assert count_breakpoints(out) <= MAX_BREAKPOINTS
    # Idempotent.
    assert with_breakpoints(out, model=model, auto=True) == out
    client = set(_marks(body))
    added = [spot for spot in _marks(out) if spot not in client]
    if count_breakpoints(body) <= MAX_BREAKPOINTS:
        assert client <= set(_marks(out)), "the client's marks are all kept when they fit"
    newest_input = max((i for i, m in enumerate(body["messages"]) if m["role"] in ("user", "tool")), default=-1)
    for kind, i, _ in added:
        assert kind in ("tool", "message")
        if kind == "message":
            message = out["messages"][i]
            # Always on the stable prefix: the system prompt, or a turn before the newest input.
            assert message["role"] == "system" or i < newest_input
            # Never on an empty message.
            assert (message.get("content") or "").strip() or message.get("tool_calls")
    # As the provider receives it: at most four marks, none on an empty or thinking block.
    validate_cache_marks(chat_request_to_anthropic(out, model=model))
