"""Anthropic Messages request body → OpenAI Chat Completions body, for the facade's ``/v1/messages``.

The inverse of :mod:`request_to_anthropic`: ``system`` becomes a system
message; a user message's ``tool_result`` blocks become one ``role: "tool"``
message each (in order, ahead of the rest of that user message, since OpenAI
wants tool answers right after the assistant's calls); ``tool_use`` blocks
become ``tool_calls`` with their arguments as a JSON string.

:data:`ERROR_TERMS` is its inverse for errors: an error about the chat body
names the Anthropic field the client sent (see :mod:`switchboard_translate.error_terms`).
"""

from __future__ import annotations

from typing import Any

import orjson

from switchboard_translate.anthropic.content import block_to_part
from switchboard_translate.anthropic.errors import TranslationError
from switchboard_translate.anthropic.tool_ids import tool_id_from_anthropic
from switchboard_translate.error_terms import ErrorTerms
from switchboard_translate.response_format import JSON_SCHEMA_FORMAT
from switchboard_translate.thinking import LEAVE_OUT_REASONING

#: ``reasoning_effort`` for an extended-thinking budget: the first level whose ceiling the budget fits under.
_EFFORT_CEILINGS: tuple[tuple[int, str], ...] = ((1024, "low"), (2048, "medium"))

#: Chat fields (of errors about the chat body) → the Anthropic fields they come from.
ERROR_TERMS = ErrorTerms(
    {
        "max_completion_tokens": "max_tokens",
        "stop": "stop_sequences",
        "reasoning_effort": "thinking.budget_tokens",
        "response_format": "output_config.format",
        "user": "metadata.user_id",
    },
    {JSON_SCHEMA_FORMAT: 'output_config.format {"type": "json_schema", "schema": {...}}',
     LEAVE_OUT_REASONING: "leave out thinking"},
)


def anthropic_request_to_chat(body: dict[str, Any]) -> dict[str, Any]:
    """The OpenAI chat body for an Anthropic Messages body (``model`` and ``stream`` kept as given)."""
    messages: list[dict[str, Any]] = []
    system = body.get("system")
    if system:
        messages.append({"role": "system", "content": _system_content(system)})
    for i, message in enumerate(body.get("messages") or []):
        where = f"messages[{i}]"
        if message.get("role") == "user":
            messages.extend(_user_messages(message.get("content"), where))
        elif message.get("role") == "assistant":
            messages.append(_assistant_message(message.get("content"), where))
        else:
            raise TranslationError(f"{where}: role must be user or assistant", param=where)
    out: dict[str, Any] = {"model": body.get("model", ""), "messages": messages}
    if body.get("max_tokens") is not None:
        out["max_tokens"] = body["max_tokens"]
    for name in ("temperature", "top_p", "top_k"):
        if body.get(name) is not None:
            out[name] = body[name]
    stop = body.get("stop_sequences")
    if stop:
        if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop):
            raise TranslationError("stop_sequences must be an array of strings", param="stop_sequences")
        out["stop"] = list(stop)
    if body.get("stream"):
        out["stream"] = True
        out["stream_options"] = {"include_usage": True}
    user_id = _object(body, "metadata").get("user_id")
    if user_id:
        if not isinstance(user_id, str):
            raise TranslationError("metadata.user_id must be a string", param="metadata.user_id")
        out["user"] = user_id
    _copy_tools(body, out)
    _copy_thinking(body, out)
    _copy_output_format(body, out)
    return out


def _system_content(system: Any) -> Any:
    if isinstance(system, str):
        return system
    parts = [block_to_part(block) for block in system]
    if all(set(part) == {"type", "text"} for part in parts if part):
        return "".join(part["text"] for part in parts if part)
    return parts


def _user_messages(content: Any, where: str) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"role": "user", "content": content}]
    tool_messages: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    for block in content or []:
        if block.get("type") == "tool_result":
            tool_message, images = _tool_message(block, where)
            tool_messages.append(tool_message)
            parts.extend(images)
        else:
            part = block_to_part(block)
            if part is not None:
                parts.append(part)
    out = tool_messages
    if parts:
        only_text = all(set(part) == {"type", "text"} for part in parts)
        out.append({"role": "user", "content": "".join(p["text"] for p in parts) if only_text else parts})
    return out


def _tool_message(block: dict[str, Any], where: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The tool message for a ``tool_result``; images in it, which tool messages cannot hold, go after."""
    content = block.get("content")
    images: list[dict[str, Any]] = []
    if content is None:
        text = ""
    elif isinstance(content, str):
        text = content
    else:
        if not isinstance(content, list) or not all(isinstance(inner, dict) for inner in content):
            raise TranslationError(f"{where}: a tool_result's content must be a string or an array of content "
                                   "blocks", param=where)
        texts: list[str] = []
        for inner in content:
            if inner.get("type") == "text":
                text_part = block_to_part(inner)
                texts.append(text_part["text"] if text_part is not None else "")
            else:
                part = block_to_part(inner)
                if part is not None:
                    images.append(part)
        text = "".join(texts)
    message = {"role": "tool", "tool_call_id": tool_id_from_anthropic(block.get("tool_use_id", "")), "content": text}
    return message, images


def _assistant_message(content: Any, where: str) -> dict[str, Any]:
    if isinstance(content, str):
        return {"role": "assistant", "content": content}
    texts: list[str] = []
    reasoning: list[str] = []
    thinking_blocks: list[dict[str, Any]] = []
    tool_calls: list[dict[str, Any]] = []
    for block in content or []:
        kind = block.get("type")
        if kind == "text":
            texts.append(block.get("text", ""))
        elif kind == "tool_use":
            tool_calls.append(
                {
                    "id": tool_id_from_anthropic(block.get("id", "")),
                    "type": "function",
                    "function": {
                        "name": block.get("name", ""),
                        "arguments": orjson.dumps(block.get("input") or {}).decode(),
                    },
                }
            )
        elif kind in ("thinking", "redacted_thinking"):
            thinking_blocks.append(block)
            if kind == "thinking":
                reasoning.append(block.get("thinking", ""))
        else:
            raise TranslationError(f"{where}: assistant blocks of type {kind!r} are not supported", param=where)
    message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts else None}
    if tool_calls:
        message["tool_calls"] = tool_calls
    if thinking_blocks:
        message["thinking_blocks"] = thinking_blocks
        message["reasoning_content"] = "".join(reasoning)
    return message


def _copy_tools(body: dict[str, Any], out: dict[str, Any]) -> None:
    tools = body.get("tools") or []
    if not tools:
        return
    functions: list[dict[str, Any]] = []
    for i, tool in enumerate(tools):
        if tool.get("type") not in (None, "custom"):
            raise TranslationError(
                f"tools[{i}]: server tools ({tool.get('type')}) are not supported through this gateway", param="tools"
            )
        function: dict[str, Any] = {"name": tool.get("name", ""), "parameters": tool.get("input_schema") or {}}
        if tool.get("description"):
            function["description"] = tool["description"]
        entry: dict[str, Any] = {"type": "function", "function": function}
        if tool.get("cache_control"):
            entry["cache_control"] = tool["cache_control"]
        functions.append(entry)
    out["tools"] = functions
    choice = body.get("tool_choice")
    if not choice:
        return
    kind = choice.get("type")
    if kind == "auto":
        out["tool_choice"] = "auto"
    elif kind == "any":
        out["tool_choice"] = "required"
    elif kind == "none":
        out["tool_choice"] = "none"
    elif kind == "tool":
        out["tool_choice"] = {"type": "function", "function": {"name": choice.get("name", "")}}
    else:
        raise TranslationError(f"tool_choice type {kind!r} is not supported", param="tool_choice")
    if choice.get("disable_parallel_tool_use"):
        out["parallel_tool_calls"] = False


def _object(body: dict[str, Any], name: str) -> dict[str, Any]:
    """``body[name]`` when it is an object, ``{}`` when absent; a TranslationError naming it otherwise."""
    value = body.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise TranslationError(f"{name} must be an object", param=name)
    return value


def _copy_thinking(body: dict[str, Any], out: dict[str, Any]) -> None:
    thinking = _object(body, "thinking")
    if thinking.get("type") != "enabled":
        return
    budget = thinking.get("budget_tokens") or 0
    if isinstance(budget, bool) or not isinstance(budget, int):
        raise TranslationError("thinking.budget_tokens must be a whole number", param="thinking.budget_tokens")
    out["reasoning_effort"] = next((effort for ceiling, effort in _EFFORT_CEILINGS if budget <= ceiling), "high")
    if budget > 0:
        # The exact budget too (LiteLLM's ``thinking`` chat parameter): Claude and Gemini deployments use it,
        # OpenAI-compatible ones, which have only the effort level, drop it.
        out["thinking"] = {"type": "enabled", "budget_tokens": budget}


def _copy_output_format(body: dict[str, Any], out: dict[str, Any]) -> None:
    output_format = _object(body, "output_config").get("format") or body.get("output_format")
    if output_format and not isinstance(output_format, dict):
        raise TranslationError("output_format must be an object", param="output_format")
    if output_format and output_format.get("type") == "json_schema":
        out["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": "output", "schema": output_format.get("schema") or {}, "strict": True},
        }
