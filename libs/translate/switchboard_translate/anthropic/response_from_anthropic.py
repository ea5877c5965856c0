"""Anthropic Messages answer → OpenAI ``chat.completion``.

Text blocks join into ``message.content``; ``tool_use`` blocks become
``tool_calls`` (arguments as a JSON string, ids kept); thinking becomes
``reasoning_content``, and the thinking blocks themselves (with their
signatures) travel in ``thinking_blocks`` so that a client may send them back
on the next turn, as extended thinking with tools requires.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from switchboard_translate.anthropic.stop_reasons import finish_reason_from_anthropic
from switchboard_translate.anthropic.usage import openai_usage_from_anthropic


def tool_call_from_block(block: dict[str, Any], index: int | None = None) -> dict[str, Any]:
    """One OpenAI tool call for one Anthropic ``tool_use`` block."""
    call: dict[str, Any] = {
        "id": block["id"],
        "type": "function",
        "function": {"name": block["name"], "arguments": orjson.dumps(block.get("input") or {}).decode()},
    }
    if index is not None:
        call["index"] = index
    return call


def anthropic_message_to_chat_completion(
    message: dict[str, Any], *, model: str | None = None, created: int | None = None
) -> dict[str, Any]:
    """The ``chat.completion`` for an Anthropic ``message``; ``model`` overrides the reported model name."""
    texts: list[str] = []
    reasoning: list[str] = []
    thinking_blocks: list[dict[str, Any]] = []
    tool_calls: list[dict[str, Any]] = []
    for block in message.get("content") or []:
        kind = block.get("type")
        if kind == "text":
            texts.append(block.get("text", ""))
        elif kind == "tool_use":
            tool_calls.append(tool_call_from_block(block))
        elif kind == "thinking":
            reasoning.append(block.get("thinking", ""))
            thinking_blocks.append(block)
        elif kind == "redacted_thinking":
            thinking_blocks.append(block)
    reply: dict[str, Any] = {
        "role": "assistant",
        "content": "".join(texts) if texts or not tool_calls else None,
        "refusal": None,
    }
    if tool_calls:
        reply["tool_calls"] = tool_calls
    if reasoning:
        reply["reasoning_content"] = "".join(reasoning)
    if thinking_blocks:
        reply["thinking_blocks"] = thinking_blocks
    return {
        "id": message.get("id", ""),
        "object": "chat.completion",
        "created": created if created is not None else int(time.time()),
        "model": model or message.get("model", ""),
        "choices": [
            {
                "index": 0,
                "message": reply,
                "finish_reason": finish_reason_from_anthropic(message.get("stop_reason")) or "stop",
                "logprobs": None,
                **_stop_sequence_of(message),
            }
        ],
        "usage": openai_usage_from_anthropic(message.get("usage") or {}),
    }


def _stop_sequence_of(message: dict[str, Any]) -> dict[str, Any]:
    """``{"stop_reason": <sequence>}`` when a stop sequence ended the message (see stop_reasons), else nothing."""
    sequence = message.get("stop_sequence")
    return {"stop_reason": sequence} if message.get("stop_reason") == "stop_sequence" and sequence else {}
