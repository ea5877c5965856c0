"""Cursor's request bodies, as one canonical Chat Completions request.

Cursor posts to ``<base>/chat/completions`` with bodies of several shapes:

- Ask/Plan mode: a chat body (``messages``) whose ``tools`` mix nested chat
  function tools with flat Responses-style ones;
- Agent mode: a Responses API body (``input``, ``instructions``, flat and
  ``custom`` tools, ``reasoning``, ``text``, ``max_output_tokens``...) that
  still expects Chat Completions back;
- bodies with Anthropic-style tools (``input_schema``) and ``tool_use`` /
  ``tool_result`` blocks inside ``messages``.

:func:`normalize_chat_request` accepts all of them (and plain chat bodies from
any other client) and returns one canonical chat body plus what the output side
must remember. The output fixes live in :mod:`.cursor_output`;
:func:`split_thinking_suffix` resolves ``<model>-thinking`` names.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from switchboard_rules.model_names import THINKING_SUFFIX, split_thinking_suffix

from .chat_messages import convert_parts, last_cache_mark, normalize_messages, parts_text
from .cursor_output import CursorResponseFixer
from .errors import InvalidRequest
from .responses_request import (
    PASS_THROUGH,
    STATEFUL_OR_UNSUPPORTED,
    input_to_messages,
    responses_fields,
    stream_options,
)
from .tool_defs import normalize_tool_choice, normalize_tools

__all__ = [
    "THINKING_SUFFIX",
    "CursorResponseFixer",
    "NormalizedRequest",
    "SourceShape",
    "apply_thinking_suffix",
    "normalize_chat_request",
    "split_thinking_suffix",
]

DEFAULT_THINKING_EFFORT = "medium"
# Keys of a chat body that other dialects use; translated or dropped instead of forwarded.
_TRANSLATED_IN_CHAT = ("system", "reasoning", "max_output_tokens", "text", "instructions", *STATEFUL_OR_UNSUPPORTED)
_CHAT_TOOL_KEYS = ("tools", "tool_choice")


class SourceShape(enum.StrEnum):
    """Which published body shape a request arrived in (for logs and metrics)."""

    CHAT = "chat"
    CHAT_MIXED_TOOLS = "chat_mixed_tools"
    CHAT_ANTHROPIC_BLOCKS = "chat_anthropic_blocks"
    RESPONSES = "responses"


@dataclass(slots=True)
class NormalizedRequest:
    """A canonical chat request and what answering it needs to remember."""

    body: dict[str, Any]
    custom_tools: set[str] = field(default_factory=set)
    source_shape: SourceShape = SourceShape.CHAT
    dropped_fields: list[str] = field(default_factory=list)

    @property
    def sent_by_cursor(self) -> bool:
        """Whether the body's shape alone says Cursor sent it: a Responses-shaped body posted to a chat
        completions endpoint is Cursor's Agent mode (no other client sends one there), whatever base URL it was
        given (``/v1`` included), so its answer needs Cursor's tool-call framing."""
        return self.source_shape is SourceShape.RESPONSES


def normalize_chat_request(body: object) -> NormalizedRequest:
    """One canonical Chat Completions body from any shape Cursor or an SDK sends.

    Raises :class:`InvalidRequest` (with the offending ``param``) for bodies that
    are neither chat- nor Responses-shaped.
    """
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.", None)
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequest("'model' is required: name the model to use, as a string.", "model")
    has_messages, has_input = body.get("messages") is not None, body.get("input") is not None
    if has_messages and has_input:
        raise InvalidRequest("Send either 'messages' (Chat Completions) or 'input' (Responses API), not both.", "input")
    if has_input:
        return _from_responses(body)
    if has_messages:
        return _from_chat(body)
    raise InvalidRequest(
        "The body has neither 'messages' nor 'input': send 'messages' as an array of "
        '{"role", "content"} objects (Chat Completions) or \'input\' (Responses API).',
        "messages",
    )


def _from_chat(body: dict[str, Any]) -> NormalizedRequest:
    messages, saw_blocks = normalize_messages(body["messages"])
    chat: dict[str, Any] = {
        k: v for k, v in body.items() if k not in ("messages", *_CHAT_TOOL_KEYS, *_TRANSLATED_IN_CHAT)
    }
    dropped: list[str] = []
    for key in ("instructions", "system"):
        # Anthropic-style top-level ``system`` and Responses-style ``instructions`` lead the conversation.
        preamble = _preamble_text(body.get(key), key)
        if preamble:
            system: dict[str, Any] = {"role": "system", "content": preamble}
            mark = last_cache_mark(body.get(key))
            if mark:
                system["cache_control"] = mark
            messages.insert(0, system)
    chat["messages"] = messages
    responses_fields(body, chat, dropped)
    tool_set = normalize_tools(body.get("tools"))
    _set_tools(chat, body, tool_set.tools)
    if not messages:
        raise InvalidRequest("'messages' is empty: send at least one message.", "messages")
    shape = SourceShape.CHAT
    if saw_blocks:
        shape = SourceShape.CHAT_ANTHROPIC_BLOCKS
    elif tool_set.non_chat_shapes:
        shape = SourceShape.CHAT_MIXED_TOOLS
    return NormalizedRequest(chat, tool_set.custom_tools, shape, dropped)


def _preamble_text(value: object, key: str) -> str:
    if value is None or isinstance(value, str):
        return value or ""
    if isinstance(value, list):
        return parts_text(convert_parts(value, key))
    raise InvalidRequest(f"'{key}' must be a string or an array of text blocks.", key)


def _from_responses(body: dict[str, Any]) -> NormalizedRequest:
    chat: dict[str, Any] = {k: body[k] for k in PASS_THROUGH if k in body}
    messages = input_to_messages(body["input"])
    instructions = body.get("instructions")
    if instructions is not None:
        if not isinstance(instructions, str):
            raise InvalidRequest("'instructions' must be a string.", "instructions")
        if instructions:
            messages.insert(0, {"role": "system", "content": instructions})
    if not messages:
        raise InvalidRequest("'input' is empty: send at least one message.", "input")
    chat["messages"] = messages
    dropped: list[str] = []
    responses_fields(body, chat, dropped)
    stream_options(body, chat)
    tool_set = normalize_tools(body.get("tools"))
    _set_tools(chat, body, tool_set.tools)
    return NormalizedRequest(chat, tool_set.custom_tools, SourceShape.RESPONSES, dropped)


def _set_tools(chat: dict[str, Any], body: dict[str, Any], tools: list[dict[str, Any]]) -> None:
    if tools:
        chat["tools"] = tools
        choice = normalize_tool_choice(body.get("tool_choice"))
        if choice is not None:
            chat["tool_choice"] = choice
    else:
        # Providers reject tool_choice and parallel_tool_calls in a request without tools: a plain choice is
        # dropped, a malformed one or one naming a tool is the client's error.
        choice = normalize_tool_choice(body.get("tool_choice"))
        if isinstance(choice, dict) and choice.get("type") == "function":
            name = choice["function"]["name"]
            raise InvalidRequest(f"'tool_choice' names the tool {name!r}, but the request defines no tools: "
                                 "add it to 'tools', or leave tool_choice out.", "tool_choice")
        chat.pop("parallel_tool_calls", None)


def apply_thinking_suffix(body: dict[str, Any], served: Callable[[str], bool]) -> dict[str, Any]:
    """``body`` with a ``-thinking`` model resolved: base model, reasoning on (``medium`` unless given)."""
    model = body.get("model")
    if not isinstance(model, str):
        return body
    base, thinking = split_thinking_suffix(model, served)
    if not thinking:
        return body
    resolved = dict(body)
    resolved["model"] = base
    if not resolved.get("reasoning_effort"):
        resolved["reasoning_effort"] = DEFAULT_THINKING_EFFORT
    return resolved
