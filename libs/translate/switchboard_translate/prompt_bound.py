"""The most tokens an OpenAI chat body's prompt can be, without a tokenizer: what a budget hold counts.

A hold must never be smaller than the request can cost, and should not be much
larger: a loose bound refuses requests the budget could pay for. The bytes of
the whole JSON body bound the prompt (a token is never shorter than a byte of
text) but count every key, quote and id of the envelope — several times the
prompt of a short chat. This bound counts only what a model reads:

- the text of every message (content, its parts, tool results, tool calls'
  names and arguments, reasoning sent back), in UTF-8 bytes;
- the JSON of the tool definitions and of a structured-output schema;
- a fixed allowance per message and per request for the role markers and
  formatting a provider adds, and one for the system prompt a provider adds when
  tools are present (Anthropic's is several hundred tokens);
- per image, a fixed allowance (no provider counts an image above about 1,600
  tokens), whatever its URL or base64 size; other binary parts (files, audio) by
  their bytes.

Every figure is at least what OpenAI, Anthropic, Gemini and Bedrock count for the
same prompt; a body this code does not understand is bounded by its own size (plus
those allowances).
"""

from __future__ import annotations

from typing import Any

import orjson

#: Role markers and separators a provider adds around one message.
PER_MESSAGE = 8
#: A request's own framing (reply priming, the model's turn start).
PER_REQUEST = 16
#: The system prompt providers add to describe tools (Anthropic: up to about 700 tokens).
WITH_TOOLS = 1_000
#: One image, at the most any provider counts it.
PER_IMAGE = 2_000
_TEXT_KEYS = ("content", "reasoning_content", "refusal", "name")


def prompt_tokens_bound(body: dict[str, Any], body_bytes: int) -> int:
    """An upper bound of the prompt tokens of a chat body (``body_bytes``: its serialized size, the fallback)."""
    messages = body.get("messages")
    if not isinstance(messages, list):
        return body_bytes
    hidden = PER_REQUEST + (WITH_TOOLS if body.get("tools") else 0)
    try:
        total = hidden + sum(PER_MESSAGE + _message(m) for m in messages)
        if body.get("tools"):
            total += len(orjson.dumps(body["tools"]))
        for key in ("response_format", "functions", "tool_choice"):
            if body.get(key) is not None:
                total += len(orjson.dumps(body[key]))
    except (TypeError, ValueError, orjson.JSONEncodeError):
        return body_bytes + hidden
    # The body's own size bounds its text too (images aside): the smaller of the two bounds holds.
    return min(total, body_bytes + hidden + PER_IMAGE * _images(messages))


def _message(message: Any) -> int:
    if not isinstance(message, dict):
        return len(orjson.dumps(message))
    total = 0
    for key in _TEXT_KEYS:
        total += _content(message.get(key))
    for call in message.get("tool_calls") or ():
        total += len(orjson.dumps(call)) if isinstance(call, dict) else 0
    for block in message.get("thinking_blocks") or ():
        total += len(orjson.dumps(block))
    return total


def _content(value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, str):
        return len(value.encode())
    if isinstance(value, list):
        return sum(_part(part) for part in value)
    return len(orjson.dumps(value))


def _part(part: Any) -> int:
    if isinstance(part, str):
        return len(part.encode())
    if not isinstance(part, dict):
        return len(orjson.dumps(part))
    kind = part.get("type")
    if kind in ("image_url", "image", "input_image"):
        return PER_IMAGE
    if kind == "text":
        return len(str(part.get("text") or "").encode())
    return len(orjson.dumps(part))


def _images(messages: list[Any]) -> int:
    count = 0
    for message in messages:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list):
            count += sum(1 for p in content if isinstance(p, dict) and p.get("type") in
                         ("image_url", "image", "input_image"))
    return count
