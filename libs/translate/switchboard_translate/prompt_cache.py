"""Prompt-cache breakpoints (``cache_control`` marks) in an OpenAI chat body.

Anthropic (directly, on Bedrock as ``cachePoint`` blocks, on Vertex AI) caches a
prompt prefix only where the request marks one, at most four marks a request.
Clients that know this place the marks themselves, the Anthropic way, inside
their OpenAI bodies: ``cache_control`` on a content part, on a tool, or on a whole
message. Clients that cannot (Cursor) resend a long, mostly unchanged prefix on
every turn and pay full price for it.

:func:`with_breakpoints` does both jobs on the canonical chat body, before a
provider adapter translates it:

- it keeps every mark the client placed, dropping the earliest ones when there
  are more than the provider takes (the provider would refuse the request);
- with ``auto``, it adds marks where none are, up to the limit, on the stable
  prefix of the conversation, in this order of value:

  1. the last assistant message before the newest input (the user's new turn,
     or the tool results of an agent step): everything up to it is sent again,
     unchanged, next turn;
  2. the assistant message before that one, where the previous turn wrote its
     cache, so that this turn reads it even when more than twenty blocks came in
     between (Anthropic looks back only that far from a mark);
  3. the system prompt (the last system message), reused by every new conversation;
  4. the tool definitions (the last tool).

  A mark is placed only where the prefix up to it is long enough for the model to
  cache (:func:`minimum_cacheable_tokens`, estimated at four characters a token),
  never on an empty message, never where the client already put one, and never
  inside the newest input.

The function does not change the body it is given, and applying it to its own
output changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson

#: Anthropic's limit on cache marks in one request (Bedrock's cache points for Claude likewise).
MAX_BREAKPOINTS = 4
EPHEMERAL: dict[str, str] = {"type": "ephemeral"}
#: Characters per token when estimating a prefix's length.
CHARS_PER_TOKEN = 4
#: Anthropic's minimum cacheable prompt length by model family (first match wins); others take the default.
_MINIMUM_BY_FAMILY: tuple[tuple[str, int], ...] = (
    ("claude-opus-4-6", 4096),
    ("claude-opus-4-5", 4096),
    ("claude-haiku-4-5", 4096),
    ("claude-sonnet-4-6", 2048),
    ("claude-3-5-haiku", 2048),
    ("claude-3-haiku", 2048),
)
DEFAULT_MINIMUM_TOKENS = 1024

_CONVERSATION = ("user", "assistant", "tool", "function")
_INPUT = ("user", "tool", "function")


def minimum_cacheable_tokens(model: str) -> int:
    """The shortest prefix, in tokens, that ``model`` caches (Bedrock and Vertex ids included)."""
    at = model.find("claude")
    family = model[at:] if at >= 0 else model
    return next((tokens for prefix, tokens in _MINIMUM_BY_FAMILY if family.startswith(prefix)), DEFAULT_MINIMUM_TOKENS)


def with_breakpoints(body: dict[str, Any], *, model: str, auto: bool, limit: int = MAX_BREAKPOINTS) -> dict[str, Any]:
    """``body`` with at most ``limit`` cache marks: the client's, then (``auto``) the gateway's.

    Returns ``body`` itself when nothing changes, else a copy that shares every
    message, part and tool it did not have to change.
    """
    messages = body.get("messages") or []
    order = _prompt_order(messages)
    marks = list(_client_marks(body, order))
    if len(marks) > limit:
        return _without(body, marks[: len(marks) - limit])
    if not auto or len(marks) >= limit:
        return body
    # A mark on a message's last part is the mark at the end of that message.
    taken = {("message", i, -1) if kind == "part" and j == len(messages[i]["content"]) - 1 else (kind, i, j)
             for (kind, i, j), _ in marks}
    chosen = [spot for spot in _candidates(body, order, minimum_cacheable_tokens(model)) if spot not in taken]
    chosen = chosen[: limit - len(marks)]
    return _with(body, chosen) if chosen else body


def count_breakpoints(body: dict[str, Any]) -> int:
    """How many cache marks the body carries, counted as the provider will (one per marked block)."""
    return sum(1 for _ in _client_marks(body, _prompt_order(body.get("messages") or [])))


# A spot is where a mark sits: ("tool", i, -1), ("message", i, -1) for a whole message, ("part", i, j).
Spot = tuple[str, int, int]


def _prompt_order(messages: list[Any]) -> list[int]:
    """Message indices in the order the provider reads them: system first, then the conversation."""
    system: list[int] = []
    conversation: list[int] = []
    for i, message in enumerate(messages):
        if isinstance(message, dict):
            (conversation if message.get("role") in _CONVERSATION else system).append(i)
    return system + conversation


def _client_marks(body: dict[str, Any], order: list[int]) -> Iterator[tuple[Spot, Any]]:
    """Every mark in prompt order (tools, system, conversation); a message's own mark after its parts'."""
    for i, tool in enumerate(body.get("tools") or ()):
        if isinstance(tool, dict) and tool.get("cache_control"):
            yield ("tool", i, -1), tool["cache_control"]
    messages = body["messages"] if order else []
    for i in order:
        message = messages[i]
        content = message.get("content")
        last_marked = False
        if isinstance(content, list):
            for j, part in enumerate(content):
                if isinstance(part, dict) and part.get("cache_control"):
                    yield ("part", i, j), part["cache_control"]
                    last_marked = j == len(content) - 1
        if not last_marked and message.get("cache_control"):
            yield ("message", i, -1), message["cache_control"]


#: Characters counted for a part that is not text (an image: Anthropic counts ~1,500 tokens for a large one).
_OTHER_PART_CHARS = 1024


def _message_chars(message: dict[str, Any]) -> int:
    """The message's text length: content, and the names and arguments of its tool calls."""
    content = message.get("content")
    if isinstance(content, str):
        size = len(content)
    elif isinstance(content, list):
        size = sum(len(p.get("text") or "") if p.get("type") == "text" else _OTHER_PART_CHARS
                   for p in content if isinstance(p, dict))
    else:
        size = 0
    for call in message.get("tool_calls") or ():
        function = call.get("function") if isinstance(call, dict) else None
        if isinstance(function, dict):
            size += len(function.get("name") or "") + len(str(function.get("arguments") or ""))
    return size


def _carries_content(message: dict[str, Any]) -> bool:
    content = message.get("content")
    if isinstance(content, str):
        return bool(content.strip())
    if isinstance(content, list):
        return any(isinstance(p, dict) and (p.get("type") != "text" or p.get("text")) for p in content)
    return bool(message.get("tool_calls"))


def _candidates(body: dict[str, Any], order: list[int], minimum_tokens: int) -> list[Spot]:
    """The gateway's spots for marks, most valuable first, each on a prefix long enough to cache.

    The prefix up to a spot is what comes before it in prompt order (tools, system,
    conversation) and only grows along that order, so the first position at which
    it reaches the minimum decides for every spot, and counting stops there.
    """
    minimum_chars = minimum_tokens * CHARS_PER_TOKEN
    tools = body.get("tools") or []
    messages = body.get("messages") or []
    running = sum(len(orjson.dumps(t.get("function") or t.get("name"))) for t in tools if isinstance(t, dict))
    tools_qualify = running >= minimum_chars
    #: Position in ``order`` from which a message's prefix is long enough (past the end: none is).
    enough_from = len(order)
    for position, i in enumerate(order):
        running += _message_chars(messages[i])
        if running >= minimum_chars:
            enough_from = position
            break
    long_enough = set(order[enough_from:])
    newest_input = next((i for i in range(len(messages) - 1, -1, -1)
                         if isinstance(messages[i], dict) and messages[i].get("role") in _INPUT), -1)
    stable_ends = [i for i in range(newest_input - 1, -1, -1)
                   if isinstance(messages[i], dict) and messages[i].get("role") == "assistant"][:2]
    systems = [i for i in order if messages[i].get("role") not in _CONVERSATION]
    spots = [("message", i, -1) for i in stable_ends]
    if systems:
        spots.append(("message", systems[-1], -1))
    spots = [spot for spot in spots if spot[1] in long_enough and _carries_content(messages[spot[1]])]
    if tools and tools_qualify and isinstance(tools[-1], dict):
        spots.append(("tool", len(tools) - 1, -1))
    return spots


def _with(body: dict[str, Any], spots: list[Spot]) -> dict[str, Any]:
    out = dict(body)
    messages = list(body.get("messages") or [])
    tools = list(body.get("tools") or [])
    for kind, i, _ in spots:
        if kind == "tool":
            tools[i] = {**tools[i], "cache_control": dict(EPHEMERAL)}
        else:
            messages[i] = {**messages[i], "cache_control": dict(EPHEMERAL)}
    out["messages"] = messages
    if tools:
        out["tools"] = tools
    return out


def _without(body: dict[str, Any], marks: list[tuple[Spot, Any]]) -> dict[str, Any]:
    out = dict(body)
    messages = list(body.get("messages") or [])
    tools = list(body.get("tools") or [])
    for (kind, i, j), _ in marks:
        if kind == "tool":
            tools[i] = {k: v for k, v in tools[i].items() if k != "cache_control"}
        elif kind == "message":
            messages[i] = {k: v for k, v in messages[i].items() if k != "cache_control"}
        else:
            parts = list(messages[i]["content"])
            parts[j] = {k: v for k, v in parts[j].items() if k != "cache_control"}
            message = {**messages[i], "content": parts}
            if j == len(parts) - 1:
                message.pop("cache_control", None)  # the same block's mark, given twice
            messages[i] = message
    out["messages"] = messages
    if tools:
        out["tools"] = tools
    return out
