"""Anthropic Messages API: ``POST /v1/messages`` and ``/v1/messages/count_tokens``, for any model.

Claude Code (``ANTHROPIC_BASE_URL=<gateway>``) and the official ``anthropic``
SDK work unchanged against these routes; ``/anthropic/v1/...`` serves clients
configured with ``<gateway>/anthropic`` as their base URL. The body becomes a
canonical OpenAI chat request, the router answers in OpenAI chat whatever
provider serves the model, and the answer goes back as an Anthropic message
or an Anthropic event stream (``message_start`` … ``message_stop``). Errors
are Anthropic's error JSON, naming Anthropic's fields (``max_tokens``,
``stop_sequences``, ``thinking.budget_tokens``) where the refusal named chat's. The key comes from ``x-api-key`` or
``Authorization: Bearer``; ``anthropic-version`` and ``anthropic-beta`` are
accepted and need not be set.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from switchboard.v1 import common_pb2
from switchboard_common.errors import Kind, ServiceError
from switchboard_facade import flow
from switchboard_facade.errors import anthropic_error_body, error_response, invalid
from switchboard_facade.fast_lane import hot, through_framework
from switchboard_facade.flow import Dialect, Parsed
from switchboard_facade.gateway import Gateway, new_request_id
from switchboard_facade.http_input import Incoming, credential, read_json_object
from switchboard_facade.replies import Reply
from switchboard_facade.token_estimate import chat_prompt_tokens
from switchboard_translate.anthropic import (
    ERROR_TERMS,
    ChatStreamToAnthropic,
    TranslationError,
    anthropic_request_to_chat,
    chat_completion_to_anthropic,
    encode_anthropic_events,
)
from switchboard_translate.errors import InvalidRequest

router = APIRouter()

_PING = {"type": "ping"}
#: Anthropic features that run on Anthropic's servers, which a gateway in front of any model cannot offer.
_UNSUPPORTED = {
    "mcp_servers": "connect MCP servers in the client and pass their tools as client tools",
    "container": "code execution containers exist only on Anthropic's API",
}


def _check_blocks(value: Any, where: str, *, allow_string: bool = True) -> None:
    if value is None or (allow_string and isinstance(value, str)):
        return
    if not isinstance(value, list) or not all(isinstance(block, dict) for block in value):
        kind = "a string or a list of content blocks" if allow_string else "a list of objects"
        raise invalid(f"'{where}' must be {kind}.", where, "invalid_type")


def validate_messages_body(body: dict[str, Any], *, count_only: bool = False) -> None:
    """Checks the fields the translation relies on, with errors that name the field (400)."""
    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
        raise invalid("'model' is required: the public model name to use (see GET /v1/models).", "model",
                      "missing_model")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise invalid("'messages' is required: a non-empty list of {\"role\", \"content\"} objects.", "messages",
                      "missing_messages")
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
            raise invalid(f"messages[{i}] must be an object whose 'role' is user or assistant.", f"messages[{i}]",
                          "invalid_message")
        _check_blocks(message.get("content"), f"messages[{i}].content")
    _check_blocks(body.get("system"), "system")
    _check_blocks(body.get("tools"), "tools", allow_string=False)
    if body.get("tool_choice") is not None and not isinstance(body["tool_choice"], dict):
        raise invalid("'tool_choice' must be an object such as {\"type\": \"auto\"}.", "tool_choice", "invalid_type")
    for name, what in _UNSUPPORTED.items():
        if body.get(name):
            raise invalid(f"'{name}' is not supported through this gateway: {what}.", name, "unsupported_field")
    if count_only:
        return
    max_tokens = body.get("max_tokens")
    if max_tokens is not None and (not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1):
        raise invalid("'max_tokens' must be a positive integer.", "max_tokens", "invalid_type")
    if "stream" in body and not isinstance(body["stream"], bool):
        raise invalid("'stream' must be true or false.", "stream", "invalid_type")


def canonical_body(body: dict[str, Any], *, count_only: bool = False) -> dict[str, Any]:
    """The OpenAI chat body for an Anthropic Messages body (400 when it cannot be expressed)."""
    validate_messages_body(body, count_only=count_only)
    try:
        return anthropic_request_to_chat(body)
    except (TranslationError, InvalidRequest) as exc:
        raise invalid(str(exc), getattr(exc, "param", None), "unsupported_content") from None


def message_id(request_id: str) -> str:
    """The Anthropic message id of a request: the request id under Anthropic's ``msg_`` prefix."""
    return "msg_" + request_id.removeprefix("req_")


class _AnthropicStream:
    """OpenAI chunks → Anthropic events, with a ``ping`` after ``message_start`` as Anthropic sends one."""

    __slots__ = ("_translator", "_pinged")

    def __init__(self, model: str, msg_id: str) -> None:
        self._translator = ChatStreamToAnthropic(model=model, message_id=msg_id)
        self._pinged = False

    def _with_ping(self, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if not self._pinged and events and events[0]["type"] == "message_start":
            self._pinged = True
            events.insert(1, _PING)
        return events

    def chunks(self, chunks: Sequence[bytes]) -> bytes:
        events: list[dict[str, Any]] = []
        for chunk in chunks:
            events.extend(self._translator.feed(orjson.loads(chunk)))
        return encode_anthropic_events(self._with_ping(events))

    def end(self, usage: dict[str, Any] | None, error: common_pb2.Error | None) -> bytes:
        if error is not None:
            # The usage billed (when known) goes before the error, in the message_delta Anthropic reports it in.
            billed = self._translator.interrupted(usage) if usage is not None else []
            return encode_anthropic_events([*billed, anthropic_error_body(ServiceError.from_proto(error))])
        return encode_anthropic_events(self._with_ping(self._translator.close(usage=usage)))


def anthropic_dialect(model: str, request_id: str) -> Dialect:
    msg_id = message_id(request_id)

    def render(body: bytes, usage: common_pb2.Usage | None) -> bytes:
        completion = orjson.loads(body)
        if usage is not None:
            completion["usage"] = flow.openai_usage(usage)  # what was billed, cache reads and writes included
        message = chat_completion_to_anthropic(completion, model=model)
        message["id"] = msg_id
        return orjson.dumps(message)

    return Dialect(errors="anthropic", render=render, stream_encoder=lambda: _AnthropicStream(model, msg_id),
                   extra_headers=lambda rid: {"request-id": rid}, terms=ERROR_TERMS)


class MessagesEndpoint:
    """Anthropic Messages: the body becomes a chat body; answers and errors go back in Anthropic's shapes."""

    errors = "anthropic"

    def parse(self, body: dict[str, Any], incoming: Incoming) -> Parsed:
        chat = canonical_body(body)
        return Parsed(chat, anthropic_dialect(chat["model"], incoming.request_id))


MESSAGES = MessagesEndpoint()


async def handle_message(gw: Gateway, incoming: Incoming) -> Reply:
    return await flow.serve(gw, incoming, MESSAGES)


@router.post("/v1/messages")
@router.post("/anthropic/v1/messages")
@hot(handle_message, errors="anthropic")
async def create_message(request: Request) -> Response:
    return await through_framework(request, handle_message, errors="anthropic")


@router.post("/v1/messages/count_tokens")
@router.post("/anthropic/v1/messages/count_tokens")
async def count_tokens(request: Request) -> Response:
    """``{"input_tokens": N}``: an offline estimate (see :mod:`switchboard_facade.token_estimate`).

    The key must be valid and the model one it may use; nothing is billed or
    counted against rate limits.
    """
    gw: Gateway = request.app.state.gateway
    request_id = new_request_id()
    headers = {"x-request-id": request_id, "request-id": request_id, "x-switchboard-token-count": "estimate"}
    try:
        body, _ = await read_json_object(request, gw.settings.max_body_bytes)
        chat = canonical_body(body, count_only=True)
        key = await gw.verify(credential(request))
        served = await gw.list_models(key)
        if chat["model"] not in {model.name for model in served.models}:
            raise ServiceError(Kind.ERROR_KIND_MODEL_NOT_FOUND,
                               f"The model {chat['model']!r} is not served to this key; GET /v1/models lists the "
                               "models it may use.", param="model", code="model_not_found")
    except ServiceError as err:
        return error_response(err, headers, dialect="anthropic")
    return Response(orjson.dumps({"input_tokens": chat_prompt_tokens(chat)}), media_type="application/json",
                    headers=headers)
