"""The OpenAI Responses API (``POST /v1/responses``) on top of canonical chat.

The Agents SDK and Codex speak this dialect. A request becomes a canonical chat
request (:func:`normalize_responses_request`); a chat completion becomes a
Responses ``response`` object (:func:`chat_completion_to_response`). Streams
are translated by :class:`.responses_stream.ChatChunksToResponseEvents`, which
shares the item and envelope builders defined here.

The gateway is stateless: a response is never stored, so ``store`` is echoed as
``false`` and ``previous_response_id`` cannot be resolved (clients resend the
conversation in ``input``, as Codex and the Agents SDK do with ``store=false``).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from typing import Any

from .cursor import NormalizedRequest, normalize_chat_request
from .custom_input import unwrap_custom_arguments
from .errors import InvalidRequest
from .reasoning_replay import call_signature, encode_replay, replayable_blocks
from .responses_logprobs import chat_logprobs, output_text_logprobs
from .tool_defs import normalize_tools

__all__ = [
    "chat_completion_to_response",
    "custom_tool_names",
    "new_item_id",
    "normalize_responses_request",
    "response_envelope",
    "responses_usage",
    "wants_summary",
]

#: The ``reasoning.summary`` levels that ask for a summary (OpenAI's; ``null`` asks for none).
SUMMARY_LEVELS = frozenset({"auto", "concise", "detailed"})
_ECHOED_FIELDS = ("temperature", "top_p", "user", "service_tier", "safety_identifier", "prompt_cache_key")


def normalize_responses_request(body: object) -> NormalizedRequest:
    """A ``/v1/responses`` body as a canonical chat request."""
    if isinstance(body, dict) and body.get("input") is None:
        raise InvalidRequest("'input' is required: send a string or an array of input items.", "input")
    return normalize_chat_request(body)


def new_item_id(prefix: str) -> str:
    """An output item or response id in OpenAI's style (``msg_…``, ``fc_…``, ``resp_…``)."""
    return f"{prefix}_{uuid.uuid4().hex}"


def custom_tool_names(request: dict[str, Any]) -> set[str]:
    """Names of the custom (free-form) tools a Responses request defines."""
    try:
        return normalize_tools(request.get("tools")).custom_tools
    except InvalidRequest:
        return set()


def responses_usage(usage: object) -> dict[str, Any] | None:
    """Chat ``usage`` as Responses ``usage`` (input/output tokens with details)."""
    if not isinstance(usage, dict):
        return None
    prompt = int(usage.get("prompt_tokens") or 0)
    completion = int(usage.get("completion_tokens") or 0)
    prompt_details = usage.get("prompt_tokens_details") or {}
    completion_details = usage.get("completion_tokens_details") or {}
    return {
        "input_tokens": prompt,
        "input_tokens_details": {
            "cached_tokens": int(prompt_details.get("cached_tokens") or 0),
            "cache_write_tokens": int(prompt_details.get("cache_write_tokens") or 0),
        },
        "output_tokens": completion,
        "output_tokens_details": {"reasoning_tokens": int(completion_details.get("reasoning_tokens") or 0)},
        "total_tokens": int(usage.get("total_tokens") or prompt + completion),
    }


def _echo_tools(request: dict[str, Any]) -> list[dict[str, Any]]:
    """The request's tools in the Responses shape, as the response object repeats them."""
    raw_tools = request.get("tools")
    if not isinstance(raw_tools, list):
        return []
    echoed: list[dict[str, Any]] = []
    for tool in raw_tools:
        if not isinstance(tool, dict):
            continue
        if tool.get("type") == "custom" and "input_schema" not in tool:
            echoed.append({k: tool[k] for k in ("type", "name", "description", "format") if k in tool})
            continue
        nested = tool.get("function")
        spec = nested if isinstance(nested, dict) else tool
        if not isinstance(spec.get("name"), str):
            continue
        echoed.append(
            {
                "type": "function",
                "name": spec["name"],
                "description": spec.get("description"),
                "parameters": spec.get("parameters", spec.get("input_schema")),
                "strict": spec.get("strict"),
            }
        )
    return echoed


def _echo_tool_choice(choice: object) -> object:
    if isinstance(choice, str) and choice in ("auto", "none", "required"):
        return choice
    if isinstance(choice, dict) and choice.get("type") in ("function", "custom"):
        nested = choice.get("function")
        name = nested.get("name") if isinstance(nested, dict) else choice.get("name")
        if isinstance(name, str):
            return {"type": choice["type"], "name": name}
    return "auto"


def response_envelope(
    request: dict[str, Any],
    *,
    response_id: str,
    created_at: int,
    status: str,
    output: list[dict[str, Any]],
    usage: dict[str, Any] | None = None,
    incomplete_reason: str | None = None,
    error: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A Responses ``response`` object that repeats the request's settings.

    Its ``model`` is the model the request named, whichever model served it (see
    :mod:`.answer_model`), in every event of a stream as in a whole answer.
    """
    reasoning = _object(request.get("reasoning"))
    text = _object(request.get("text"))
    instructions = request.get("instructions")
    envelope: dict[str, Any] = {
        "id": response_id,
        "object": "response",
        "created_at": created_at,
        "status": status,
        "background": False,
        "error": error,
        "incomplete_details": {"reason": incomplete_reason} if incomplete_reason else None,
        "instructions": instructions if isinstance(instructions, str) else None,
        "max_output_tokens": request.get("max_output_tokens"),
        "metadata": request.get("metadata") if isinstance(request.get("metadata"), dict) else {},
        "model": str(request.get("model", "")),
        "output": output,
        "parallel_tool_calls": request.get("parallel_tool_calls", True) is not False,
        "previous_response_id": None,
        "reasoning": {"effort": reasoning.get("effort"), "summary": reasoning.get("summary")},
        "store": False,
        "text": {"format": text.get("format") or {"type": "text"}, "verbosity": text.get("verbosity", "medium")},
        "tool_choice": _echo_tool_choice(request.get("tool_choice", "auto")),
        "tools": _echo_tools(request),
        "truncation": "disabled",
        "usage": usage,
    }
    for key in _ECHOED_FIELDS:
        envelope[key] = request.get(key)
    if status in ("completed", "incomplete", "failed"):
        envelope["completed_at"] = int(time.time()) if status == "completed" else None
    return envelope


def status_for_finish(finish_reason: object) -> tuple[str, str | None]:
    """Response status and incomplete reason for a chat ``finish_reason``."""
    if finish_reason == "length":
        return "incomplete", "max_output_tokens"
    if finish_reason == "content_filter":
        return "incomplete", "content_filter"
    return "completed", None


def message_item(
    item_id: str, text: str, status: str = "completed", logprobs: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """An assistant message of one ``output_text`` part (``logprobs``: chat's, see :mod:`.responses_logprobs`)."""
    return {
        "id": item_id,
        "type": "message",
        "status": status,
        "role": "assistant",
        "content": [] if status == "in_progress" else [output_text_part(text, logprobs)],
    }


def refusal_item(item_id: str, refusal: str, status: str = "completed") -> dict[str, Any]:
    """An assistant message that declines, as the Responses API reports refusals."""
    return {
        "id": item_id,
        "type": "message",
        "status": status,
        "role": "assistant",
        "content": [{"type": "refusal", "refusal": refusal}],
    }


def output_text_part(text: str, logprobs: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """An ``output_text`` part; ``logprobs`` are chat's ``logprobs.content`` entries of its tokens."""
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": output_text_logprobs(logprobs or [])}


def wants_summary(request: dict[str, Any]) -> bool:
    """Whether the request asked for a reasoning summary (``reasoning.summary``: auto, concise or detailed)."""
    return _object(request.get("reasoning")).get("summary") in SUMMARY_LEVELS


def summary_text_part(text: str) -> dict[str, Any]:
    return {"type": "summary_text", "text": text}


def reasoning_item(
    item_id: str,
    text: str | None,
    status: str = "completed",
    *,
    summary: bool = False,
    blocks: object = None,
    signatures: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """A ``reasoning`` item holding the model's thinking ``text``.

    With ``summary`` (the request asked for one) the text is the item's
    ``summary_text``: the thinking a provider shows (Claude's, Gemini's thought
    summaries) is what a client displays as a summary, at every level asked
    for. Without it the text is ``reasoning_text`` content. Claude's signed
    thinking ``blocks`` and Gemini's thought ``signatures`` of the calls that
    follow (call id → signature) travel in ``encrypted_content`` for the next
    turn (see :mod:`.reasoning_replay`).
    """
    item: dict[str, Any] = {"id": item_id, "type": "reasoning"}
    if summary:
        item["summary"] = [summary_text_part(text)] if text else []
    else:
        item["summary"] = []
        item["content"] = [{"type": "reasoning_text", "text": text}] if text is not None else []
    encrypted = encode_replay(blocks, signatures)
    if encrypted is not None:
        item["encrypted_content"] = encrypted
    item["status"] = status
    return item


def tool_call_item(
    item_id: str, call_id: str, name: str, arguments: str, *, custom: bool, status: str = "completed"
) -> dict[str, Any]:
    """A ``function_call`` item, or a ``custom_tool_call`` carrying the raw input."""
    if custom:
        return {"id": item_id, "type": "custom_tool_call", "call_id": call_id, "name": name, "input": arguments}
    return {
        "id": item_id,
        "type": "function_call",
        "status": status,
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
    }


def chat_completion_to_response(
    completion: dict[str, Any],
    request: dict[str, Any],
    *,
    response_id: str | None = None,
) -> dict[str, Any]:
    """A non-streamed chat completion as a Responses ``response`` object.

    ``request`` is the original Responses request; its settings are echoed and
    its custom tools decide which calls come back as ``custom_tool_call``; the
    thought signatures of its calls ride in the reasoning item that comes first
    (one of their own when the answer has no thinking). The choice's log
    probabilities (when the request asked for them) are the
    ``output_text`` part's ``logprobs``.
    """
    custom = custom_tool_names(request)
    choices = completion.get("choices") or []
    choice = choices[0] if choices and isinstance(choices[0], dict) else {}
    message = choice.get("message") or {}
    output: list[dict[str, Any]] = []
    calls: list[dict[str, Any]] = []
    signatures: dict[str, str] = {}
    for call in message.get("tool_calls") or []:
        function = call.get("function") or {}
        name = str(function.get("name") or "")
        arguments = function.get("arguments") or ""
        is_custom = name in custom
        if is_custom:
            arguments = unwrap_custom_arguments(arguments)
        call_id = call.get("id") or new_item_id("call")
        signature = call_signature(call)
        if signature is not None:
            signatures[call_id] = signature
        calls.append(
            tool_call_item(new_item_id("ctc" if is_custom else "fc"), call_id, name, arguments, custom=is_custom)
        )
    reasoning = message.get("reasoning_content") or message.get("reasoning")
    reasoning = reasoning if isinstance(reasoning, str) and reasoning else None
    blocks = message.get("thinking_blocks")
    if reasoning is not None or replayable_blocks(blocks) or signatures:
        output.append(reasoning_item(new_item_id("rs"), reasoning, summary=wants_summary(request), blocks=blocks,
                                     signatures=signatures))
    status, incomplete_reason = status_for_finish(choice.get("finish_reason"))
    content = message.get("content")
    if isinstance(content, str) and content:  # an answer cut by a limit is an incomplete item, as OpenAI marks it
        item_status = "incomplete" if status == "incomplete" else "completed"
        output.append(message_item(new_item_id("msg"), content, item_status, chat_logprobs(choice)))
    refusal = message.get("refusal")
    if isinstance(refusal, str) and refusal:
        output.append(refusal_item(new_item_id("msg"), refusal))
    output.extend(calls)
    return response_envelope(
        request,
        response_id=response_id or new_item_id("resp"),
        created_at=int(completion.get("created") or time.time()),
        status=status,
        output=output,
        usage=responses_usage(completion.get("usage")),
        incomplete_reason=incomplete_reason,
    )


def _object(value: Any) -> dict[str, Any]:
    """``value`` when it is a JSON object, else an empty one."""
    return value if isinstance(value, dict) else {}
