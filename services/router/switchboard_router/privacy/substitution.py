"""Rewrite every scanned text field of a chat request through one text transform.

Which fields are scanned: message ``content`` (a string or the ``text`` of text parts),
assistant ``refusal`` / ``reasoning_content``, tool-call and legacy function-call ``arguments``,
and tool results (``role: tool`` / ``function`` content). Arguments and tool results that are
JSON are decoded, rewritten inside their string values and keys, and re-encoded, so the result
stays valid JSON and values written with JSON escapes are still found. A field is re-encoded
only when something in it changed; otherwise the original string is kept byte for byte.

The input body is never mutated: changed containers are copied, unchanged ones are shared.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

TextTransform = Callable[[str], str]

_TEXT_PART_TYPES = frozenset({"text", "input_text", "output_text"})
_TOOL_ROLES = frozenset({"tool", "function"})


def _walk_json(value: Any, transform: TextTransform) -> Any:
    if isinstance(value, str):
        return transform(value)
    if isinstance(value, list):
        return [_walk_json(item, transform) for item in value]
    if isinstance(value, dict):
        return {transform(key): _walk_json(item, transform) for key, item in value.items()}
    return value


def transform_json_text(text: str, transform: TextTransform) -> str:
    """Rewrite inside the string values of a JSON document; plain text if it is not JSON."""
    stripped = text.lstrip()
    if stripped[:1] in ("{", "[", '"'):
        try:
            decoded = json.loads(text)
        except ValueError:
            return transform(text)
        rewritten = _walk_json(decoded, transform)
        if rewritten == decoded:
            return text
        return json.dumps(rewritten, ensure_ascii=False)
    return transform(text)


def _transform_content(content: Any, transform: TextTransform) -> Any:
    if isinstance(content, str):
        return transform(content)
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, dict) and part.get("type") in _TEXT_PART_TYPES and isinstance(part.get("text"), str):
                new_text = transform(part["text"])
                if new_text != part["text"]:
                    part = {**part, "text": new_text}
            parts.append(part)
        return parts
    return content


def _transform_call(call: Any, transform: TextTransform) -> Any:
    """A tool call ``{"function": {"arguments": "<json>"}}`` or a legacy ``function_call``."""
    if not isinstance(call, dict):
        return call
    function = call.get("function") if "function" in call else call
    if not isinstance(function, dict) or not isinstance(function.get("arguments"), str):
        return call
    arguments = transform_json_text(function["arguments"], transform)
    if arguments == function["arguments"]:
        return call
    new_function = {**function, "arguments": arguments}
    return {**call, "function": new_function} if "function" in call else new_function


def _transform_message(message: Any, transform: TextTransform) -> Any:
    if not isinstance(message, dict):
        return message
    changed: dict[str, Any] = {}
    content = message.get("content")
    if message.get("role") in _TOOL_ROLES:
        def json_transform(text: str) -> str:
            return transform_json_text(text, transform)

        new_content = _transform_content(content, json_transform)
    else:
        new_content = _transform_content(content, transform)
    if new_content is not content:
        changed["content"] = new_content
    for field in ("refusal", "reasoning_content"):
        if isinstance(message.get(field), str):
            changed[field] = transform(message[field])
    if isinstance(message.get("tool_calls"), list):
        changed["tool_calls"] = [_transform_call(call, transform) for call in message["tool_calls"]]
    if isinstance(message.get("function_call"), dict):
        changed["function_call"] = _transform_call(message["function_call"], transform)
    return {**message, **changed} if changed else message


def transform_request(body: dict[str, Any], transform: TextTransform) -> dict[str, Any]:
    """A new request body whose scanned fields went through ``transform``; ``body`` is untouched."""
    messages = body.get("messages")
    if not isinstance(messages, list):
        return dict(body)
    return {**body, "messages": [_transform_message(message, transform) for message in messages]}


def iter_strings(value: Any) -> Iterator[str]:
    """Every string anywhere in a JSON-like value (keys included), depth first."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str):
                yield key
            yield from iter_strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from iter_strings(item)
