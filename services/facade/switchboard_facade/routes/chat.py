"""OpenAI Chat Completions: ``/v1/chat/completions``, ``/chat/completions``, the
``/cursor`` base path and Azure-style ``/openai/deployments/<model>/chat/completions``.

Streams are true pass-through: the router's chunk batches are framed as SSE
and written as they arrive; headers go out only once the provider has
answered, so failures before the first byte are ordinary HTTP errors.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from switchboard.v1 import common_pb2
from switchboard_common.errors import ServiceError
from switchboard_facade import relay
from switchboard_facade.errors import error_response, invalid
from switchboard_facade.fast_lane import hot, through_framework
from switchboard_facade.gateway import Call, Gateway, call_headers, error_event_payload, estimate_prompt_tokens
from switchboard_facade.http_input import Incoming
from switchboard_facade.privacy_tier import take_requested_tier
from switchboard_facade.relay import Dialect
from switchboard_facade.replies import Reply
from switchboard_translate.cursor import CursorResponseFixer, normalize_chat_request
from switchboard_translate.errors import InvalidRequest
from switchboard_translate.sse import DONE

router = APIRouter()


def canonical_chat_body(body: dict[str, Any], cursor: bool) -> tuple[dict[str, Any], CursorResponseFixer | None]:
    """One canonical OpenAI chat body from any shape Cursor or an SDK sends, and the
    fixer its answer needs (Cursor: every tool call named; custom tools unwrapped)."""
    try:
        normalized = normalize_chat_request(body)
    except InvalidRequest as exc:
        raise invalid(exc.message, exc.param, "invalid_request") from None
    body = validate_chat_body(normalized.body)
    fixer = None
    if cursor or normalized.custom_tools:
        fixer = CursorResponseFixer(normalized.custom_tools, repeat_identity=cursor)
    return body, fixer


def validate_chat_body(body: dict[str, Any]) -> dict[str, Any]:
    """Validates an OpenAI chat body (the fields the gateway itself relies on)."""
    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
        raise invalid("'model' is required: the public model name to use (see GET /v1/models).", "model",
                      "missing_model")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise invalid("'messages' is required: a non-empty list of chat messages.", "messages", "missing_messages")
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise invalid(f"messages[{i}] must be an object with a 'role'.", f"messages[{i}]", "invalid_message")
    if "stream" in body and not isinstance(body["stream"], bool):
        raise invalid("'stream' must be true or false.", "stream", "invalid_type")
    return body


async def handle_chat(gw: Gateway, incoming: Incoming, path_model: str | None = None, cursor: bool = False) -> Reply:
    request_id = incoming.request_id
    call: Call | None = None
    try:
        body, size = incoming.json_object()
        if path_model is not None:
            body["model"] = path_model
        requested_tier = take_requested_tier(incoming.headers, body)
        body, fixer = canonical_chat_body(body, cursor)
        call = Call(request_id=request_id, model=body["model"], body=body, stream=bool(body.get("stream")),
                    requested_privacy_tier=requested_tier)
        call.estimated_prompt_tokens = estimate_prompt_tokens(size)
        call.body_bytes = size
        await relay.admit(gw, incoming.credential(), call)
    except ServiceError as err:
        return error_response(err, call_headers(call) if call is not None else {"x-request-id": request_id})
    return await relay.run(gw, call, chat_dialect(fixer))


async def openai_chat(gw: Gateway, incoming: Incoming) -> Reply:
    return await handle_chat(gw, incoming)


async def cursor_chat(gw: Gateway, incoming: Incoming) -> Reply:
    return await handle_chat(gw, incoming, cursor=True)


async def azure_chat(gw: Gateway, incoming: Incoming) -> Reply:
    return await handle_chat(gw, incoming, path_model=incoming.path_params["deployment"], cursor=True)


class _ChatStream:
    """OpenAI chat SSE: chunks pass through as ``data:`` frames (fixed for Cursor when asked), then ``[DONE]``."""

    __slots__ = ("fixer",)

    def __init__(self, fixer: CursorResponseFixer | None) -> None:
        self.fixer = fixer

    def chunks(self, chunks: Sequence[bytes]) -> bytes:
        if self.fixer is not None:
            chunks = [orjson.dumps(self.fixer.fix_chunk(orjson.loads(c))) for c in chunks]
        return b"".join(b"data: " + c + b"\n\n" for c in chunks)

    def end(self, usage: dict[str, Any] | None, error: common_pb2.Error | None) -> bytes:
        frames = b"data: " + error_event_payload(error) + b"\n\n" if error is not None else b""
        held = self.fixer.flush() if self.fixer is not None else None
        if held is not None:
            frames += b"data: " + orjson.dumps(held) + b"\n\n"
        return frames + DONE


def chat_dialect(fixer: CursorResponseFixer | None) -> Dialect:
    """OpenAI chat: bodies pass through (through the Cursor fixer when there is one)."""
    if fixer is None:
        return _PASS_THROUGH

    def render(body: bytes, usage: common_pb2.Usage | None) -> bytes:
        return orjson.dumps(fixer.fix_completion(orjson.loads(body)))
    return Dialect(errors="openai", render=render, stream_encoder=lambda: _ChatStream(fixer))


_PASS_THROUGH = Dialect(errors="openai", render=lambda body, usage: body, stream_encoder=lambda: _ChatStream(None))


@router.post("/v1/chat/completions")
@router.post("/chat/completions")
@hot(openai_chat)
async def chat_completions(request: Request) -> Response:
    return await through_framework(request, openai_chat)


@router.post("/cursor/chat/completions")
@router.post("/cursor/v1/chat/completions")
@router.post("/v1/cursor/chat/completions")
@hot(cursor_chat)
async def cursor_chat_completions(request: Request) -> Response:
    """Cursor's "Override OpenAI Base URL" = ``<gateway>/cursor``: every Cursor body shape, answers Cursor can read."""
    return await through_framework(request, cursor_chat)


@router.post("/openai/deployments/{deployment}/chat/completions")
@router.post("/cursor/openai/deployments/{deployment}/chat/completions")
@hot(azure_chat)
async def azure_chat_completions(request: Request, deployment: str) -> Response:
    """Cursor's Azure settings: the deployment name is the public model name; ``api-version`` is accepted as is."""
    return await through_framework(request, azure_chat)
