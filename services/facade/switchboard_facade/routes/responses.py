"""OpenAI Responses API: ``POST /v1/responses`` (and ``/responses``), whole and streamed, for any model.

The dialect of OpenAI's Agents SDK and the Codex CLI. The body becomes a
canonical chat request; the router's chat answer goes back as a ``response``
object, or as the Responses event stream (``response.created`` …
``response.completed``, each an ``event:`` with a JSON payload). The gateway
keeps no responses, so ``previous_response_id`` and ``conversation`` are
refused with a 400 that says to resend the conversation in ``input`` (what
Codex and the Agents SDK do with ``store: false``). An error about the chat
body names the Responses fields the client sent (``text.format``, not
``response_format``: :func:`switchboard_translate.responses_request.error_terms`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from switchboard.v1 import common_pb2
from switchboard_facade import flow
from switchboard_facade.errors import invalid
from switchboard_facade.fast_lane import hot, through_framework
from switchboard_facade.flow import Dialect, Parsed
from switchboard_facade.gateway import Gateway
from switchboard_facade.http_input import Incoming
from switchboard_facade.replies import Reply
from switchboard_facade.routes.chat import validate_chat_body
from switchboard_translate.errors import InvalidRequest
from switchboard_translate.responses_api import chat_completion_to_response, normalize_responses_request
from switchboard_translate.responses_request import error_terms
from switchboard_translate.responses_stream import ChatChunksToResponseEvents
from switchboard_translate.sse import encode_event

router = APIRouter()

#: Request fields that name state kept on the server, which this gateway does not keep.
_SERVER_STATE = {
    "previous_response_id": ("this gateway stores no responses, so a previous response cannot be continued",
                             "Send the whole conversation in 'input' (with store: false) instead."),
    "conversation": ("this gateway stores no conversations",
                     "Send the whole conversation in 'input' (with store: false) instead."),
    "prompt": ("this gateway stores no prompt templates",
               "Send the prompt's text in 'instructions' and 'input' instead."),
    "background": ("this gateway runs no background responses that could be polled later",
                   "Send the request without it (stream it to follow long work)."),
}


def canonical_body(body: dict[str, Any]) -> dict[str, Any]:
    """The OpenAI chat body for a Responses request (400 for what a stateless gateway cannot do)."""
    for name, (why, instead) in _SERVER_STATE.items():
        if body.get(name) not in (None, False):  # "background": false asks for nothing
            raise invalid(f"'{name}' is not supported: {why}. {instead}", name, "stateless_gateway")
    try:
        normalized = normalize_responses_request(body)
    except InvalidRequest as exc:
        raise invalid(exc.message, exc.param, "invalid_request") from None
    return validate_chat_body(normalized.body)


def response_id(request_id: str) -> str:
    """The Responses id of a request: the request id under OpenAI's ``resp_`` prefix."""
    return "resp_" + request_id.removeprefix("req_")


def _frames(events: list[tuple[str, dict[str, Any]]]) -> bytes:
    return b"".join(encode_event(name, orjson.dumps(payload)) for name, payload in events)


class _ResponsesStream:
    """OpenAI chunks → Responses events; the usage the router billed goes into ``response.completed``."""

    __slots__ = ("_translator",)

    def __init__(self, request: dict[str, Any], resp_id: str) -> None:
        self._translator = ChatChunksToResponseEvents(request, response_id=resp_id)

    def chunks(self, chunks: Sequence[bytes]) -> bytes:
        events: list[tuple[str, dict[str, Any]]] = []
        for chunk in chunks:
            events.extend(self._translator.feed(orjson.loads(chunk)))
        return _frames(events)

    def end(self, usage: dict[str, Any] | None, error: common_pb2.Error | None) -> bytes:
        events: list[tuple[str, dict[str, Any]]] = []
        if usage is not None:
            events.extend(self._translator.feed({"choices": [], "usage": usage}))
        if error is not None:
            events.extend(self._translator.fail(error.message, error.code or "server_error"))
        else:
            events.extend(self._translator.finish())
        return _frames(events)


def responses_dialect(request: dict[str, Any], request_id: str) -> Dialect:
    resp_id = response_id(request_id)

    def render(body: bytes, usage: common_pb2.Usage | None) -> bytes:
        completion = orjson.loads(body)
        if usage is not None:
            completion["usage"] = flow.openai_usage(usage)
        return orjson.dumps(chat_completion_to_response(completion, request, response_id=resp_id))

    return Dialect(errors="openai", render=render, stream_encoder=lambda: _ResponsesStream(request, resp_id),
                   terms=error_terms(request))


class ResponsesEndpoint:
    """The Responses API: its body becomes a chat body; answers go back as a response or its event stream."""

    errors = "openai"

    def parse(self, body: dict[str, Any], incoming: Incoming) -> Parsed:
        return Parsed(canonical_body(body), responses_dialect(body, incoming.request_id))


RESPONSES = ResponsesEndpoint()


async def handle_response(gw: Gateway, incoming: Incoming) -> Reply:
    return await flow.serve(gw, incoming, RESPONSES)


@router.post("/v1/responses")
@router.post("/responses")
@hot(handle_response)
async def create_response(request: Request) -> Response:
    return await through_framework(request, handle_response)

