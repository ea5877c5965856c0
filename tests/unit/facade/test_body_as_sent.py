"""The client's bytes cross to the router as they are only when they are the canonical chat body.

A chat body already in the canonical shape (what the OpenAI SDKs and Cursor's Ask mode send) is not
serialised again for the router: the facade sends the bytes it received. The rule that makes this safe is
that the router, parsing those bytes, gets exactly the body the facade would have sent. These tests hold it
over every published Cursor shape, and show the shapes that must be rewritten are rewritten.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest

from benchmarks.agent_conversation import agent_turn_bodies
from switchboard_facade.http_input import Incoming
from switchboard_facade.routes.chat import AZURE_CHAT, CURSOR_CHAT, OPENAI_CHAT, ChatEndpoint

FIXTURES = sorted((Path(__file__).parents[2] / "fixtures" / "cursor").glob("*.json"))


def _incoming(raw: bytes, deployment: str = "") -> Incoming:
    return Incoming("req_1", {}, raw, {"deployment": deployment} if deployment else None)


def _parse(endpoint: ChatEndpoint, body: dict[str, Any], deployment: str = "") -> tuple[bytes, Any]:
    raw = orjson.dumps(body)
    return raw, endpoint.parse(orjson.loads(raw), _incoming(raw, deployment))


@pytest.mark.parametrize("fixture", FIXTURES, ids=[f.stem for f in FIXTURES])
@pytest.mark.parametrize("endpoint", [OPENAI_CHAT, CURSOR_CHAT], ids=["v1", "cursor"])
def test_shapes_that_need_rewriting_are_never_sent_as_they_came(fixture: Path, endpoint: ChatEndpoint) -> None:
    raw, parsed = _parse(endpoint, json.loads(fixture.read_text())["request"])
    # Every published Cursor shape here needs rewriting: a fresh parse of its bytes is not the canonical body.
    assert orjson.loads(raw) != parsed.body
    assert not parsed.as_sent


def test_a_cursor_agent_conversation_goes_as_sent_every_turn() -> None:
    """The benchmark's agent conversation (growing turns, tool calls and results, the same prefix each turn)."""
    bodies = agent_turn_bodies("bench-model", "conv-1", turns=10, last_turn_bytes=100_000)
    for raw in bodies:
        parsed = CURSOR_CHAT.parse(orjson.loads(raw), _incoming(raw))
        assert parsed.as_sent
        # What the router parses from the client's bytes is what the facade would have serialised.
        assert orjson.loads(raw) == parsed.body == orjson.loads(orjson.dumps(parsed.body))


def test_canonical_bodies_go_as_sent_and_other_shapes_are_rewritten() -> None:
    messages = [{"role": "system", "content": "rules"}, {"role": "user", "content": "x" * 100_000},
                {"role": "assistant", "content": None,
                 "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "read", "arguments": "{}"}}]},
                {"role": "tool", "tool_call_id": "c1", "content": "file"}]
    tools = [{"type": "function", "function": {"name": "read", "parameters": {"type": "object"}}}]
    canonical = {"model": "m", "stream": True, "messages": messages, "tools": tools, "tool_choice": "auto"}
    assert _parse(CURSOR_CHAT, canonical)[1].as_sent
    assert _parse(OPENAI_CHAT, canonical)[1].as_sent
    rewritten = [
        {**canonical, "messages": [{"role": "developer", "content": "rules"}, *messages[1:]]},  # developer → system
        {**canonical, "tools": [{"type": "function", "name": "read", "parameters": {}}]},  # flat tool → nested
        {"model": "m", "input": "hi", "instructions": "be brief"},  # Responses-shaped, as Cursor's Agent sends
        {**canonical, "messages": [*messages, {"role": "assistant", "content": ""}]},  # empty turn dropped
        {**canonical, "tools": [], "parallel_tool_calls": True},  # tool settings without tools dropped
    ]
    for body in rewritten:
        raw, parsed = _parse(CURSOR_CHAT, body)
        assert not parsed.as_sent, body
        assert orjson.loads(raw) != parsed.body
    # Azure's path names the model: the body is changed, so it is serialised.
    assert not _parse(AZURE_CHAT, canonical, deployment="gpt-4o")[1].as_sent
