"""OpenAI ``chat.completion`` → Anthropic Messages answer, for the facade's ``/v1/messages``.

Content blocks come in the order Anthropic itself uses: thinking, then text,
then ``tool_use``. Tool-call arguments are parsed back into objects; ids are
made Anthropic-valid one to one (see :mod:`tool_ids`).
"""

from __future__ import annotations

from typing import Any

import orjson

from switchboard_translate.anthropic.stop_reasons import matched_stop_sequence, stop_reason_from_openai
from switchboard_translate.anthropic.tool_ids import tool_id_to_anthropic
from switchboard_translate.anthropic.usage import anthropic_usage_from_openai


def tool_input(arguments: Any) -> dict[str, Any]:
    """Tool-call arguments as the object Anthropic's ``tool_use.input`` must be.

    Arguments that are not a JSON object (a model may stop mid-call) are kept
    under ``"_raw"`` rather than dropped, so the client still sees them.
    """
    if isinstance(arguments, dict):
        return arguments
    if not arguments or not str(arguments).strip():
        return {}
    try:
        parsed = orjson.loads(arguments)
    except orjson.JSONDecodeError:
        return {"_raw": arguments}
    return parsed if isinstance(parsed, dict) else {"_raw": arguments}


def thinking_blocks_of(message: dict[str, Any]) -> list[dict[str, Any]]:
    """The assistant message's thinking blocks, or one built from ``reasoning_content`` (unsigned)."""
    blocks = message.get("thinking_blocks")
    if blocks:
        return [dict(block) for block in blocks]
    reasoning = message.get("reasoning_content")
    return [{"type": "thinking", "thinking": reasoning, "signature": ""}] if reasoning else []


def chat_completion_to_anthropic(completion: dict[str, Any], *, model: str | None = None) -> dict[str, Any]:
    """The Anthropic ``message`` for an OpenAI ``chat.completion`` (its first choice)."""
    choices = completion.get("choices") or [{}]
    choice = choices[0]
    matched = matched_stop_sequence(choice)
    message = choice.get("message") or {}
    content: list[dict[str, Any]] = thinking_blocks_of(message)
    text = message.get("content")
    if isinstance(text, list):
        text = "".join(part.get("text", "") for part in text)
    if text:
        content.append({"type": "text", "text": text})
    elif message.get("refusal"):
        content.append({"type": "text", "text": message["refusal"]})
    for call in message.get("tool_calls") or []:
        function = call.get("function") or {}
        content.append(
            {
                "type": "tool_use",
                "id": tool_id_to_anthropic(call.get("id", "")),
                "name": function.get("name", ""),
                "input": tool_input(function.get("arguments")),
            }
        )
    return {
        "id": completion.get("id", ""),
        "type": "message",
        "role": "assistant",
        "model": model or completion.get("model", ""),
        "content": content,
        "stop_reason": stop_reason_from_openai(choice.get("finish_reason"), stop_sequence=matched),
        "stop_sequence": matched if choice.get("finish_reason") == "stop" else None,
        "usage": anthropic_usage_from_openai(completion.get("usage")),
    }
