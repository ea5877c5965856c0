"""OpenAI Chat Completions: ``/v1/chat/completions``, ``/chat/completions``, the
``/cursor`` base path and Azure-style ``/openai/deployments/<model>/chat/completions``.

Streams are true pass-through: the router's chunk batches are framed as SSE
and written as they arrive, each naming the model the client asked for (see
:mod:`switchboard_translate.answer_model`); headers go out only once the
provider has answered, so failures before the first byte are ordinary HTTP errors.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from switchboard.v1 import common_pb2
from switchboard_facade import flow
from switchboard_facade.errors import error_event_payload, invalid
from switchboard_facade.fast_lane import hot, through_framework
from switchboard_facade.flow import Dialect, Parsed
from switchboard_facade.gateway import Gateway
from switchboard_facade.http_input import Incoming
from switchboard_facade.replies import Reply
from switchboard_rules import request_fields
from switchboard_translate.answer_model import AnswerModel
from switchboard_translate.cursor import CursorResponseFixer, normalize_chat_request
from switchboard_translate.errors import InvalidRequest
from switchboard_translate.sse import DONE

router = APIRouter()


def canonical_chat_body(body: dict[str, Any], cursor: bool) -> tuple[dict[str, Any], CursorResponseFixer | None]:
    """One canonical OpenAI chat body from any shape Cursor or an SDK sends, and the
    fixer its answer needs (Cursor: every tool call named; custom tools unwrapped).

    ``cursor`` is the path's word (``/cursor``, the Azure layout); a body only Cursor sends (Agent mode's
    Responses shape) is answered for Cursor on any path, while an SDK's chat body on ``/v1`` keeps OpenAI's
    framing (name and id on a call's first delta only: the SDKs append every fragment)."""
    try:
        normalized = normalize_chat_request(body)
    except InvalidRequest as exc:
        raise invalid(exc.message, exc.param, "invalid_request") from None
    body = validate_chat_body(normalized.body)
    cursor = cursor or normalized.sent_by_cursor
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


@dataclass(frozen=True, slots=True)
class ChatEndpoint:
    """OpenAI chat: the body normalized to one canonical shape; Cursor's answers fixed for Cursor."""

    cursor: bool = False
    #: Azure's path names the model (the deployment name is the public model name).
    model_in_path: bool = False
    errors: str = "openai"

    def parse(self, body: dict[str, Any], incoming: Incoming) -> Parsed:
        if self.model_in_path:
            body["model"] = incoming.path_params["deployment"]
        chat, fixer = canonical_chat_body(body, self.cursor)
        # Normalizing never changes what it is given (it builds the canonical body anew), so an equal result
        # means the client's JSON is the canonical body; equal values are mostly the same objects, so this
        # costs microseconds even for a 100 KB conversation.
        return Parsed(chat, chat_dialect(fixer, AnswerModel(chat["model"]), request_fields.usage_asked(chat)),
                      as_sent=not self.model_in_path and chat == body)


OPENAI_CHAT = ChatEndpoint()
CURSOR_CHAT = ChatEndpoint(cursor=True)
AZURE_CHAT = ChatEndpoint(cursor=True, model_in_path=True)


async def openai_chat(gw: Gateway, incoming: Incoming) -> Reply:
    return await flow.serve(gw, incoming, OPENAI_CHAT)


async def cursor_chat(gw: Gateway, incoming: Incoming) -> Reply:
    return await flow.serve(gw, incoming, CURSOR_CHAT)


async def azure_chat(gw: Gateway, incoming: Incoming) -> Reply:
    return await flow.serve(gw, incoming, AZURE_CHAT)


class _ChatStream:
    """OpenAI chat SSE: chunks pass through as ``data:`` frames naming the model asked for (fixed for Cursor when
    asked), then ``[DONE]``.

    A stream the provider broke off ends with the gateway's error event; a client that asked for usage is told
    first what it was billed, in the usage chunk OpenAI ends a stream with (``choices: []``), unless the last
    chunk relayed already said the same. The chunks' bytes are only kept for that (the first for the answer's
    id, the last to compare), and read only when a stream fails.
    """

    __slots__ = ("fixer", "model", "usage_asked", "first", "last")

    def __init__(self, fixer: CursorResponseFixer | None, model: AnswerModel, usage_asked: bool = False) -> None:
        self.fixer = fixer
        self.model = model
        self.usage_asked = usage_asked
        self.first: bytes | None = None
        self.last: bytes | None = None

    def chunks(self, chunks: Sequence[bytes]) -> bytes:
        if self.usage_asked and chunks:
            if self.first is None:
                self.first = chunks[0]
            self.last = chunks[-1]
        if self.fixer is not None:
            chunks = [orjson.dumps(self.model.name(self.fixer.fix_chunk(orjson.loads(c)))) for c in chunks]
        else:
            chunks = [self.model.name_bytes(c) for c in chunks]
        return b"".join(b"data: " + c + b"\n\n" for c in chunks)

    def end(self, usage: dict[str, Any] | None, error: common_pb2.Error | None) -> bytes:
        held = self.fixer.flush() if self.fixer is not None else None
        frames = b"data: " + orjson.dumps(self.model.name(held)) + b"\n\n" if held is not None else b""
        if error is not None:
            if usage is not None and self.usage_asked:
                frames += self._billed(usage)
            frames += b"data: " + error_event_payload(error) + b"\n\n"
        return frames + DONE

    def _billed(self, usage: dict[str, Any]) -> bytes:
        """The usage chunk of a failed stream (empty when the last chunk relayed carried the same counts)."""
        last = _object(self.last)
        told = last.get("usage") if not last.get("choices") else None
        if isinstance(told, dict) and all(told.get(name) == usage[name] for name in _COUNTS):
            return b""
        first = _object(self.first)
        chunk: dict[str, Any] = {"id": first.get("id") or "", "object": "chat.completion.chunk",
                                 "created": first.get("created") or 0, "model": self.model.model,
                                 "choices": [], "usage": usage}
        return b"data: " + orjson.dumps(chunk) + b"\n\n"


#: The counts a usage chunk already relayed must match for the billed usage to go unsaid.
_COUNTS = ("prompt_tokens", "completion_tokens", "total_tokens")


def _object(raw: bytes | None) -> dict[str, Any]:
    """A relayed chunk's JSON object (empty when there is none)."""
    try:
        parsed = orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def chat_dialect(fixer: CursorResponseFixer | None, model: AnswerModel, usage_asked: bool = False) -> Dialect:
    """OpenAI chat: bodies pass through naming the model asked for (through the Cursor fixer when there is one)."""
    if fixer is None:
        def render(body: bytes, usage: common_pb2.Usage | None) -> bytes:
            return model.name_bytes(body)
    else:
        def render(body: bytes, usage: common_pb2.Usage | None) -> bytes:
            return orjson.dumps(model.name(fixer.fix_completion(orjson.loads(body))))
    return Dialect(errors="openai", render=render, stream_encoder=lambda: _ChatStream(fixer, model, usage_asked))


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


@router.post("/openai/deployments/{deployment:path}/chat/completions")
@router.post("/cursor/openai/deployments/{deployment:path}/chat/completions")
@hot(azure_chat)
async def azure_chat_completions(request: Request, deployment: str) -> Response:
    """Cursor's Azure settings: the deployment name is the public model name, ``provider/model`` ones included
    (its ``/`` as is or ``%2F``); ``api-version`` is accepted as is."""
    return await through_framework(request, azure_chat)
