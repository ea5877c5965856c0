"""OpenAI Chat Completions request body → Anthropic Messages request body.

The two differ in shape more than in meaning:

- system and developer messages become the top-level ``system`` blocks;
- OpenAI's separate ``role: "tool"`` messages become ``tool_result`` blocks of
  one user message, placed before any other content of that message, because
  Anthropic wants every result of an assistant turn's ``tool_use`` blocks in the
  very next user message, ahead of any text;
- consecutive messages of one role are merged (Anthropic alternates roles);
- ``max_tokens`` is required by Anthropic, so a default is supplied.

What Claude cannot do is refused here, before anything is sent, rather than
dropped: several choices and log probabilities (see
:mod:`switchboard_translate.chat_params`) and ``response_format`` ``json_object``
(see :mod:`switchboard_translate.response_format`). Extended thinking follows
Claude's rule in :mod:`switchboard_translate.anthropic.thinking`.
"""

from __future__ import annotations

from typing import Any

import orjson

from switchboard_translate.anthropic.content import content_to_blocks
from switchboard_translate.anthropic.errors import TranslationError
from switchboard_translate.anthropic.thinking import claude_thinking_budget, drop_sampling_refused_with_thinking
from switchboard_translate.anthropic.tool_ids import tool_id_to_anthropic
from switchboard_translate.chat_params import CLAUDE
from switchboard_translate.response_format import JSON_OBJECT_ADVICE, response_format_type

#: Output budget when neither the request nor the deployment names one and the model is not known below.
DEFAULT_MAX_TOKENS = 4096
#: Output budgets by model-id prefix, first match wins. Every value is within that family's output limit;
#: they stay well under the limits because Anthropic counts ``max_tokens`` against output rate limits.
_MAX_TOKENS_BY_PREFIX: tuple[tuple[str, int], ...] = (
    ("claude-3-5-", 8192),
    ("claude-3-7-", 16384),
    ("claude-3-", 4096),
    ("claude-sonnet-4", 16384),
    ("claude-opus-4", 16384),
    ("claude-haiku-4", 16384),
)

def default_max_tokens_for(model: str) -> int:
    """The output budget used for ``model`` when a request names none (Anthropic requires one)."""
    # Bedrock's ids: ``anthropic.claude-…``, ``us.anthropic.claude-…`` (also at the end of an inference-profile ARN).
    bare = model.rsplit("/", 1)[-1].split("anthropic.", 1)[-1]
    return next((tokens for prefix, tokens in _MAX_TOKENS_BY_PREFIX if bare.startswith(prefix)), DEFAULT_MAX_TOKENS)


def chat_request_to_anthropic(
    body: dict[str, Any], *, model: str, default_max_tokens: int | None = None
) -> dict[str, Any]:
    """The Anthropic Messages body for an OpenAI chat body, addressed to the provider's ``model``.

    ``default_max_tokens`` (else :func:`default_max_tokens_for` the model)
    applies when the request names neither ``max_completion_tokens`` nor
    ``max_tokens``. ``stream`` is left to the caller.
    """
    refusal = CLAUDE.refusal(body)
    if refusal is not None:
        raise TranslationError(refusal.message, param=refusal.param)
    system, messages = _split_messages(body.get("messages") or [])
    out: dict[str, Any] = {"model": model, "messages": messages}
    if system:
        out["system"] = system
    out["max_tokens"] = (
        body.get("max_completion_tokens")
        or body.get("max_tokens")
        or default_max_tokens
        or default_max_tokens_for(model)
    )
    _copy_sampling(body, out)
    _copy_tools(body, out)
    _copy_reasoning(body, out)
    _copy_response_format(body, out)
    if body.get("user"):
        out["metadata"] = {"user_id": str(body["user"])}
    return out


def _split_messages(raw: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    system: list[dict[str, Any]] = []
    turns: list[dict[str, Any]] = []
    for i, message in enumerate(raw):
        role = message.get("role")
        where = f"messages[{i}]"
        if role in ("system", "developer"):
            blocks = _non_empty(content_to_blocks(message.get("content"), where=where))
            for block in blocks:
                if block["type"] != "text":
                    raise TranslationError(f"{where}: system messages may hold text only", param=where)
            system.extend(_marked(message, blocks))
        elif role == "user":
            _append(turns, "user", _marked(message, _non_empty(content_to_blocks(message.get("content"), where=where))))
        elif role == "assistant":
            _append(turns, "assistant", _marked(message, _assistant_blocks(message, where)))
        elif role in ("tool", "function"):
            _append_tool_result(turns, _marked(message, [_tool_result(message, where)])[0])
        else:
            raise TranslationError(f"{where}: unknown role {role!r}", param=where)
    return system, [turn for turn in turns if turn["content"]]


#: Blocks Anthropic refuses a ``cache_control`` on.
_UNCACHEABLE = frozenset({"thinking", "redacted_thinking"})


def _marked(message: dict[str, Any], blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A ``cache_control`` on the whole message becomes the mark of its last cacheable block.

    That is the same breakpoint (the prompt prefix up to the end of the message), in
    the place Anthropic takes it; with no block that can carry it, it is dropped.
    """
    mark = message.get("cache_control")
    if mark:
        for block in reversed(blocks):
            if block["type"] not in _UNCACHEABLE:
                block.setdefault("cache_control", mark)
                break
    return blocks


def _non_empty(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Drops empty text blocks, which Anthropic rejects."""
    return [block for block in blocks if block["type"] != "text" or block["text"]]


def _append(turns: list[dict[str, Any]], role: str, blocks: list[dict[str, Any]]) -> None:
    if turns and turns[-1]["role"] == role:
        turns[-1]["content"].extend(blocks)
    else:
        turns.append({"role": role, "content": blocks})


def _append_tool_result(turns: list[dict[str, Any]], block: dict[str, Any]) -> None:
    """Adds a tool result to the current user turn, after its other results and before anything else."""
    if not turns or turns[-1]["role"] != "user":
        turns.append({"role": "user", "content": [block]})
        return
    content = turns[-1]["content"]
    position = 0
    while position < len(content) and content[position]["type"] == "tool_result":
        position += 1
    content.insert(position, block)


def _assistant_blocks(message: dict[str, Any], where: str) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = [dict(block) for block in message.get("thinking_blocks") or []]
    blocks.extend(_non_empty(content_to_blocks(message.get("content"), where=where)))
    for j, call in enumerate(message.get("tool_calls") or []):
        function = call.get("function") or {}
        blocks.append(
            {
                "type": "tool_use",
                "id": tool_id_to_anthropic(call.get("id") or ""),
                "name": function.get("name", ""),
                "input": _arguments(function.get("arguments"), f"{where}.tool_calls[{j}]"),
            }
        )
    return blocks


def _arguments(arguments: Any, where: str) -> dict[str, Any]:
    """Tool-call arguments (a JSON string in OpenAI) as the object Anthropic wants."""
    if isinstance(arguments, dict):
        return arguments
    if arguments is None or not str(arguments).strip():
        return {}
    try:
        parsed = orjson.loads(arguments)
    except orjson.JSONDecodeError as exc:
        raise TranslationError(f"{where}.function.arguments is not valid JSON: {exc}", param=where) from exc
    if not isinstance(parsed, dict):
        raise TranslationError(f"{where}.function.arguments must be a JSON object", param=where)
    return parsed


def _tool_result(message: dict[str, Any], where: str) -> dict[str, Any]:
    tool_call_id = message.get("tool_call_id") or message.get("name")
    if not tool_call_id:
        raise TranslationError(f"{where}: tool messages need tool_call_id", param=where)
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": tool_id_to_anthropic(tool_call_id)}
    content = message.get("content")
    if isinstance(content, str):
        if content:
            block["content"] = content
    elif content:
        block["content"] = _non_empty(content_to_blocks(content, where=where))
    return block


def _copy_sampling(body: dict[str, Any], out: dict[str, Any]) -> None:
    stop = body.get("stop")
    if stop:
        sequences = [stop] if isinstance(stop, str) else list(stop)
        # Anthropic rejects whitespace-only stop sequences.
        sequences = [s for s in sequences if s.strip()]
        if sequences:
            out["stop_sequences"] = sequences
    if body.get("temperature") is not None:
        # OpenAI's range is 0..2, Anthropic's 0..1.
        out["temperature"] = min(max(float(body["temperature"]), 0.0), 1.0)
    if body.get("top_p") is not None:
        out["top_p"] = body["top_p"]
    if body.get("top_k") is not None:
        out["top_k"] = body["top_k"]


def _copy_tools(body: dict[str, Any], out: dict[str, Any]) -> None:
    tools = body.get("tools") or []
    choice = body.get("tool_choice")
    if isinstance(choice, dict) and choice.get("type") == "allowed_tools":
        allowed = choice.get("allowed_tools") or {}
        names = {t.get("function", {}).get("name") for t in allowed.get("tools") or []}
        tools = [t for t in tools if (t.get("function") or {}).get("name") in names]
        choice = "required" if allowed.get("mode") == "required" else "auto"
    if not tools:
        return
    out["tools"] = [_tool(tool, i) for i, tool in enumerate(tools)]
    anthropic_choice = _tool_choice(choice)
    if body.get("parallel_tool_calls") is False and anthropic_choice.get("type") != "none":
        anthropic_choice["disable_parallel_tool_use"] = True
    if choice is not None or len(anthropic_choice) > 1:
        out["tool_choice"] = anthropic_choice


def _tool(tool: dict[str, Any], i: int) -> dict[str, Any]:
    if tool.get("type", "function") != "function":
        raise TranslationError(f"tools[{i}]: only function tools are supported by Anthropic models", param="tools")
    function = tool.get("function") or {}
    schema = function.get("parameters") or {"type": "object", "properties": {}}
    out: dict[str, Any] = {"name": function.get("name", ""), "input_schema": schema}
    if function.get("description"):
        out["description"] = function["description"]
    if tool.get("cache_control"):
        out["cache_control"] = tool["cache_control"]
    return out


def _tool_choice(choice: Any) -> dict[str, Any]:
    if choice is None or choice == "auto":
        return {"type": "auto"}
    if choice == "none":
        return {"type": "none"}
    if choice == "required":
        return {"type": "any"}
    if isinstance(choice, dict) and choice.get("type") == "function":
        return {"type": "tool", "name": (choice.get("function") or {}).get("name", "")}
    raise TranslationError(f"tool_choice {choice!r} is not supported", param="tool_choice")


def _copy_reasoning(body: dict[str, Any], out: dict[str, Any]) -> None:
    """Extended thinking, by Claude's rule (:mod:`switchboard_translate.anthropic.thinking`)."""
    last_assistant: list[dict[str, Any]] = next(
        (m["content"] for m in reversed(out["messages"]) if m["role"] == "assistant"), [])
    budget = claude_thinking_budget(
        body, out["max_tokens"],
        tool_forced=(out.get("tool_choice") or {}).get("type") in ("any", "tool"),
        unsigned_tool_turn=any(block["type"] == "tool_use" for block in last_assistant)
        and last_assistant[0]["type"] not in ("thinking", "redacted_thinking"),
    )
    if budget is None:
        return
    out["thinking"] = {"type": "enabled", "budget_tokens": budget}
    drop_sampling_refused_with_thinking(out, temperature="temperature", top_p="top_p", top_k="top_k")


def _copy_response_format(body: dict[str, Any], out: dict[str, Any]) -> None:
    response_format = body.get("response_format") or {}
    if response_format_type(body) == "json_object":
        raise TranslationError('Claude models cannot be held to response_format {"type": "json_object"} (any JSON '
                               f"object), only to a JSON schema: {JSON_OBJECT_ADVICE}", param="response_format")
    if response_format.get("type") == "json_schema":
        schema = (response_format.get("json_schema") or {}).get("schema") or {"type": "object"}
        out["output_config"] = {"format": {"type": "json_schema", "schema": schema}}
