"""``reasoning_content`` on earlier assistant turns, per OpenAI-compatible flavour and deployment."""

from __future__ import annotations

from typing import Any

import orjson

from switchboard_router.deployment import Deployment
from switchboard_router.providers.openai_compat import OpenAICompatAdapter

HISTORY: dict[str, Any] = {
    "model": "m",
    "messages": [
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": None,
         "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "w", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
        {"role": "assistant", "content": "It is sunny."},
        {"role": "assistant", "content": "Earlier thought kept.", "reasoning_content": "mine"},
        {"role": "user", "content": "Thanks"},
    ],
}


def sent(provider: str, **extra: Any) -> list[dict[str, Any]]:
    deployment = Deployment(id="d", public_model="m", provider=provider, model="up", api_base="http://x/v1",
                            api_key="k", extra=extra)
    request = OpenAICompatAdapter(provider).build_request(deployment, HISTORY, stream=False)
    return list(orjson.loads(request.content)["messages"])


def reasoning(messages: list[dict[str, Any]]) -> list[Any]:
    return [m.get("reasoning_content", "<absent>") for m in messages if m["role"] == "assistant"]


def test_deepseek_gets_it_on_every_assistant_turn_and_keeps_existing_reasoning() -> None:
    assert reasoning(sent("deepseek")) == ["", "", "mine"]


def test_openai_and_azure_never_receive_reasoning_content() -> None:
    assert reasoning(sent("openai")) == ["<absent>", "<absent>", "<absent>"]
    assert reasoning(sent("azure")) == ["<absent>", "<absent>", "<absent>"]


def test_lenient_servers_are_sent_the_history_as_given() -> None:
    assert reasoning(sent("openai_compatible")) == ["<absent>", "<absent>", "mine"]


def test_a_deployment_can_ask_for_tool_call_turns_only() -> None:
    assert reasoning(sent("openai_compatible", reasoning_history="backfill_tool_calls")) == ["", "<absent>", "mine"]


def test_a_deployment_can_drop_the_field() -> None:
    assert reasoning(sent("openai_compatible", reasoning_history="drop")) == ["<absent>", "<absent>", "<absent>"]


def test_the_callers_body_is_not_changed() -> None:
    sent("deepseek")
    assert "reasoning_content" not in HISTORY["messages"][1]
