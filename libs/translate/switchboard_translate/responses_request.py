"""Responses API request fields, as Chat Completions fields.

Used for ``POST /v1/responses`` and for the Responses-shaped bodies Cursor's
agent mode posts to ``/chat/completions``. The gateway is stateless, so fields
that only make sense with server-side state (``store``, ``previous_response_id``,
``include`` but for its log probabilities entry, ``truncation``,
``prompt_cache_retention``...) are dropped and reported, never forwarded to a
provider that would reject them.

Log probabilities are asked for as OpenAI documents: ``include`` holding
``message.output_text.logprobs``, with ``top_logprobs`` alternatives at each
position; ``top_logprobs`` of 1 or more asks for them as well (OpenAI would
answer an empty list without the ``include`` entry). Both become chat's
``logprobs: true`` and ``top_logprobs``.

:func:`error_terms` is the inverse of this translation for errors: an error
about the chat body names the Responses field the client sent (see
:mod:`.error_terms`).
"""

from __future__ import annotations

from typing import Any

from .chat_messages import (
    append_message,
    content_part,
    dumps,
    parts_text,
    place_tool_media,
    tool_result_text,
    with_tool_media,
)
from .error_terms import ErrorTerms
from .errors import InvalidRequest
from .logprobs import LEAVE_OUT_LOGPROBS
from .reasoning_replay import decode_replay, with_call_signature
from .response_format import JSON_SCHEMA_FORMAT
from .thinking import LEAVE_OUT_REASONING

# Responses fields with the same meaning and name in Chat Completions.
PASS_THROUGH = (
    "model",
    "stream",
    "temperature",
    "top_p",
    "parallel_tool_calls",
    "user",
    "metadata",
    "service_tier",
    "safety_identifier",
    "prompt_cache_key",
)
# Responses fields a stateless chat call cannot honour; dropped, and reported for logs.
STATEFUL_OR_UNSUPPORTED = (
    "include",
    "store",
    "previous_response_id",
    "truncation",
    "prompt_cache_retention",
    "background",
    "conversation",
    "max_tool_calls",
    "prompt",
    "context_management",
)
#: The ``include`` entry asking for the log probabilities of the output text.
LOGPROBS_INCLUDE = "message.output_text.logprobs"


def input_to_messages(raw: object, param: str = "input") -> list[dict[str, Any]]:
    """The ``input`` of a Responses request as chat messages.

    A reasoning item this gateway wrote carries what the model signed (see
    :mod:`.reasoning_replay`): Claude's thinking blocks go back as the
    ``thinking_blocks`` of the assistant turn that follows it, so that Claude
    takes the turn with thinking on; Gemini's thought signatures go back on the
    function calls of that turn with the call ids they name. Any other
    reasoning item is left out: provider-specific (often encrypted) reasoning
    cannot be replayed to another model.
    """
    if isinstance(raw, str):
        return [{"role": "user", "content": raw}]
    if not isinstance(raw, list):
        raise InvalidRequest(f"'{param}' must be a string or an array of input items.", param)
    out: list[dict[str, Any]] = []
    #: Thinking blocks of reasoning items, waiting for the assistant turn they began.
    thinking: list[dict[str, Any]] = []
    #: Thought signatures of reasoning items, waiting for the calls of their turn (call id → signature); a
    #: model's turn ends at the next user message or tool result (Gemini's call ids repeat from turn to turn).
    signatures: dict[str, str] = {}
    for i, item in enumerate(raw):
        where = f"{param}[{i}]"
        if not isinstance(item, dict):
            raise InvalidRequest(f"'{where}' must be an input item object.", where)
        kind = item.get("type", "message" if "role" in item else None)
        if kind == "reasoning":
            replay = decode_replay(item.get("encrypted_content"))
            thinking.extend(replay.thinking_blocks)
            signatures.update(replay.thought_signatures)
            continue
        if kind == "message":
            if item.get("role") != "assistant":
                signatures.clear()
            _message_item(item, where, out)
        elif kind in ("function_call", "custom_tool_call"):
            _call_item(item, kind, where, out, signatures)
        elif kind in ("function_call_output", "custom_tool_call_output"):
            signatures.clear()
            call_id = _string(item, "call_id", where)
            text = tool_result_text(item.get("output"), where + ".output")
            out.append(with_tool_media({"role": "tool", "tool_call_id": call_id, "content": text},
                                       item.get("output"), where + ".output"))
        else:
            raise InvalidRequest(
                f"'{where}.type' is {kind!r}; supported input items are message, function_call, "
                "function_call_output, custom_tool_call, custom_tool_call_output and reasoning.",
                where + ".type",
            )
        if thinking:
            _begin_turn(out, thinking)
    return place_tool_media(out)


def _begin_turn(out: list[dict[str, Any]], thinking: list[dict[str, Any]]) -> None:
    """Gives the thinking blocks to the assistant turn just added; blocks that began no assistant turn are
    dropped (Anthropic takes thinking only at the start of one)."""
    last = out[-1] if out else None
    if last is not None and last.get("role") == "assistant":
        last["thinking_blocks"] = [*(last.get("thinking_blocks") or []), *thinking]
    thinking.clear()


def _string(item: dict[str, Any], key: str, where: str) -> str:
    value = item.get(key)
    if not isinstance(value, str) or not value:
        raise InvalidRequest(f"'{where}.{key}' must be a non-empty string.", f"{where}.{key}")
    return value


def _message_item(item: dict[str, Any], where: str, out: list[dict[str, Any]]) -> None:
    role = item.get("role")
    content = item.get("content")
    if isinstance(content, list) and role != "user":
        parts = []
        for j, raw in enumerate(content):
            part = content_part(raw, f"{where}.content[{j}]")
            if part is not None:
                parts.append(part)
        content = parts_text(parts)
    append_message({"role": role, "content": content}, where, out)


def _call_item(item: dict[str, Any], kind: str, where: str, out: list[dict[str, Any]],
               signatures: dict[str, str]) -> None:
    call_id = _string(item, "call_id", where)
    name = _string(item, "name", where)
    if kind == "custom_tool_call":
        raw_input = item.get("input", "")
        arguments = dumps({"input": raw_input if isinstance(raw_input, str) else dumps(raw_input)})
    else:
        arguments = item.get("arguments", "")
        if not isinstance(arguments, str):
            arguments = dumps(arguments)
    call = {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}
    signature = signatures.pop(call_id, None)
    if signature is not None:
        with_call_signature(call, signature)
    last = out[-1] if out else None
    if last is not None and last.get("role") == "assistant":
        # Text and calls of one model turn arrive as separate items; chat keeps them in one message.
        last.setdefault("tool_calls", []).append(call)
    else:
        out.append({"role": "assistant", "content": None, "tool_calls": [call]})


def stream_options(body: dict[str, Any], chat: dict[str, Any]) -> None:
    """Keeps the one stream option Chat Completions shares with the Responses API."""
    options = body.get("stream_options")
    if isinstance(options, dict):
        chat["stream_options"] = {"include_usage": bool(options.get("include_usage", False))}


def responses_fields(body: dict[str, Any], chat: dict[str, Any], dropped: list[str]) -> None:
    """Moves Responses-only knobs of ``body`` onto the chat request ``chat``."""
    reasoning = body.get("reasoning")
    if isinstance(reasoning, dict):
        effort = reasoning.get("effort")
        if isinstance(effort, str) and "reasoning_effort" not in chat:
            chat["reasoning_effort"] = effort
        if reasoning.get("summary") is not None:
            dropped.append("reasoning.summary")
    elif reasoning is not None:
        raise InvalidRequest('\'reasoning\' must be an object such as {"effort": "medium"}.', "reasoning")
    max_output = body.get("max_output_tokens")
    if max_output is not None:
        if not isinstance(max_output, int) or isinstance(max_output, bool) or max_output < 1:
            raise InvalidRequest("'max_output_tokens' must be a positive integer.", "max_output_tokens")
        if "max_completion_tokens" not in chat and "max_tokens" not in chat:
            chat["max_completion_tokens"] = max_output
    text = body.get("text")
    if isinstance(text, dict):
        if isinstance(text.get("verbosity"), str):
            chat["verbosity"] = text["verbosity"]
        fmt = text.get("format")
        if isinstance(fmt, dict) and "response_format" not in chat:
            response_format = _response_format(fmt)
            if response_format is not None:
                chat["response_format"] = response_format
    elif text is not None:
        raise InvalidRequest('\'text\' must be an object such as {"format": {"type": "text"}}.', "text")
    _logprobs(body, chat)
    for key in STATEFUL_OR_UNSUPPORTED:
        if key in body:
            dropped.append(key)


def _top_logprobs(body: dict[str, Any]) -> int | None:
    top = body.get("top_logprobs")
    return top if isinstance(top, int) and not isinstance(top, bool) else None


def _included_logprobs(body: dict[str, Any]) -> bool:
    include = body.get("include")
    return isinstance(include, list) and LOGPROBS_INCLUDE in include


def _logprobs(body: dict[str, Any], chat: dict[str, Any]) -> None:
    """Chat's ``logprobs`` and ``top_logprobs`` when the body asks for log probabilities (a chat-shaped body's
    own are kept); ``top_logprobs: 0`` alone asks for nothing and is dropped."""
    if "logprobs" in chat or "top_logprobs" in chat:
        return
    top = _top_logprobs(body)
    if _included_logprobs(body) or (top or 0) > 0:
        chat["logprobs"] = True
        if top is not None:
            chat["top_logprobs"] = top


#: Chat fields (of errors about the chat body) → the Responses fields the client sent.
_FIELDS = {
    "response_format": "text.format",
    "max_tokens": "max_output_tokens",
    "max_completion_tokens": "max_output_tokens",
    "logprobs": "top_logprobs",
    "messages": "input",
    "reasoning_effort": "reasoning.effort",
    "verbosity": "text.verbosity",
}
#: Chat advice → the same advice in Responses fields and syntax.
_PHRASES = {
    JSON_SCHEMA_FORMAT: 'text.format {"type": "json_schema", "name": "answer", "schema": {...}}',
    LEAVE_OUT_LOGPROBS: f'leave out top_logprobs and the include entry "{LOGPROBS_INCLUDE}"',
    LEAVE_OUT_REASONING: "leave out reasoning",
}
_TERMS = ErrorTerms(_FIELDS, _PHRASES)
#: The same, for a client that asked for log probabilities with ``include`` alone.
_INCLUDE_TERMS = ErrorTerms({**_FIELDS, "logprobs": "include"}, _PHRASES)


def error_terms(body: dict[str, Any]) -> ErrorTerms:
    """How an error about the chat body of the Responses request ``body`` names what the client sent."""
    if _included_logprobs(body) and not _top_logprobs(body):
        return _INCLUDE_TERMS
    return _TERMS


def _response_format(fmt: dict[str, Any]) -> dict[str, Any] | None:
    kind = fmt.get("type")
    if kind == "json_schema":
        schema: dict[str, Any] = {"name": fmt.get("name", "response"), "schema": fmt.get("schema", {})}
        for key in ("strict", "description"):
            if key in fmt:
                schema[key] = fmt[key]
        return {"type": "json_schema", "json_schema": schema}
    if kind == "json_object":
        return {"type": "json_object"}
    if kind in (None, "text"):
        return None
    raise InvalidRequest(f"'text.format.type' is {kind!r}; use text, json_object or json_schema.", "text.format.type")
