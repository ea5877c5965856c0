"""OpenAI Chat Completions: ``/v1/chat/completions``, ``/chat/completions``, the
``/cursor`` base path and Azure-style ``/openai/deployments/<model>/chat/completions``.

Streams are true pass-through: the router's chunk batches are framed as SSE
and written as they arrive; headers go out only once the provider has
answered, so failures before the first byte are ordinary HTTP errors.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import grpc
import orjson
from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from switchboard.v1 import common_pb2, router_pb2
from switchboard_common.errors import ServiceError, from_rpc_error
from switchboard_facade.budget import budget_headers
from switchboard_facade.errors import error_response, invalid, status_for
from switchboard_facade.gateway import (
    Call,
    Gateway,
    error_event_payload,
    estimate_prompt_tokens,
    new_request_id,
    route_headers,
)
from switchboard_facade.http_input import credential, read_json_object
from switchboard_facade.privacy_tier import take_requested_tier
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


def gateway(request: Request) -> Gateway:
    return request.app.state.gateway  # type: ignore[no-any-return]


async def handle_chat(request: Request, path_model: str | None = None, cursor: bool = False) -> Response:
    gw = gateway(request)
    request_id = new_request_id()
    call: Call | None = None
    try:
        body, size = await read_json_object(request, gw.settings.max_body_bytes)
        if path_model is not None:
            body["model"] = path_model
        requested_tier = take_requested_tier(request.headers, body)
        body, fixer = canonical_chat_body(body, cursor)
        call = Call(request_id=request_id, model=body["model"], body=body, stream=bool(body.get("stream")),
                    requested_privacy_tier=requested_tier)
        call.estimated_prompt_tokens = estimate_prompt_tokens(size)
        await gw.authorize(credential(request), call)
        await gw.reserve(call, size)
    except ServiceError as err:
        return error_response(err, {"x-request-id": request_id})
    if call.stream:
        return await _stream(gw, call, fixer)
    return await _unary(gw, call, fixer)


async def _unary(gw: Gateway, call: Call, fixer: CursorResponseFixer | None) -> Response:
    try:
        result = await gw.complete(call)
    except ServiceError as err:
        gw.settle(call, usage=None, route=None, status="error", http_status=status_for(err),
                  error_code=err.error.code)
        return error_response(err, {"x-request-id": call.request_id})
    gw.settle(call, usage=result.usage, route=result.route, status="success", http_status=200)
    headers = route_headers(call, result.route)
    headers.update(budget_headers(call.budget))
    headers["x-switchboard-overhead-ms"] = _overhead(call, result.provider_ms)
    body = result.body if fixer is None else orjson.dumps(fixer.fix_completion(orjson.loads(result.body)))
    return Response(body, media_type="application/json", headers=headers)


def _overhead(call: Call, provider_ms: float) -> str:
    total_ms = (time.perf_counter() - call.started) * 1000
    return f"{max(0.0, total_ms - provider_ms):.3f}"


async def _stream(gw: Gateway, call: Call, fixer: CursorResponseFixer | None) -> Response:
    try:
        route, events, rpc = await gw.stream(call)
    except ServiceError as err:
        gw.settle(call, usage=None, route=None, status="error", http_status=status_for(err),
                  error_code=err.error.code)
        return error_response(err, {"x-request-id": call.request_id})
    headers = route_headers(call, route)
    headers.update(budget_headers(call.budget))
    headers["x-switchboard-ttfb-overhead-ms"] = f"{(time.perf_counter() - call.started) * 1000:.3f}"
    headers["cache-control"] = "no-cache"
    headers["x-accel-buffering"] = "no"
    return StreamingResponse(_relay(gw, call, route, events, rpc, fixer), media_type="text/event-stream",
                             headers=headers)


def _fixed(chunks: Any, fixer: CursorResponseFixer) -> list[bytes]:
    return [orjson.dumps(fixer.fix_chunk(orjson.loads(c))) for c in chunks]


async def _relay(gw: Gateway, call: Call, route: router_pb2.RouteInfo,
                 events: AsyncIterator[router_pb2.StreamEvent], rpc: grpc.aio.UnaryStreamCall,
                 fixer: CursorResponseFixer | None) -> AsyncIterator[bytes]:
    """Frames chunk batches as SSE; settles exactly once however the stream ends."""
    usage: common_pb2.Usage | None = None
    status, http_status, error_code = "cancelled", 499, "client_disconnected"
    ttft_ms = 0.0
    forwarded = 0
    forwarded_bytes = 0
    try:
        async for event in events:
            kind = event.WhichOneof("event")
            if kind == "chunks":
                if not forwarded:
                    ttft_ms = (time.perf_counter() - call.started) * 1000
                chunks = event.chunks.chunks if fixer is None else _fixed(event.chunks.chunks, fixer)
                forwarded += len(chunks)
                frame = b"".join(b"data: " + c + b"\n\n" for c in chunks)
                forwarded_bytes += len(frame)
                yield frame
            elif kind == "end":
                end = event.end
                usage = end.usage
                route = end.route if end.HasField("route") else route
                if end.HasField("error"):
                    status, http_status, error_code = "error", status_for(ServiceError.from_proto(end.error)), \
                        end.error.code
                    yield b"data: " + error_event_payload(end.error) + b"\n\n"
                else:
                    status, http_status, error_code = "success", 200, ""
                held = fixer.flush() if fixer is not None else None
                if held is not None:
                    yield b"data: " + orjson.dumps(held) + b"\n\n"
                yield DONE
    except grpc.aio.AioRpcError as exc:
        err = from_rpc_error(exc, "router")
        status, http_status, error_code = "error", status_for(err), err.error.code
        yield b"data: " + error_event_payload(err.error) + b"\n\n" + DONE
    finally:
        rpc.cancel()
        if usage is None:
            # The stream ended before the router could report usage (client gone): bill an estimate.
            usage = common_pb2.Usage(prompt_tokens=call.estimated_prompt_tokens,
                                     completion_tokens=max(0, (forwarded_bytes - 150 * forwarded) // 4),
                                     reported_by_provider=False)
            usage.total_tokens = usage.prompt_tokens + usage.completion_tokens
        gw.settle(call, usage=usage, route=route, status=status, http_status=http_status, error_code=error_code,
                  ttft_ms=ttft_ms)


@router.post("/v1/chat/completions")
@router.post("/chat/completions")
async def chat_completions(request: Request) -> Response:
    return await handle_chat(request)


@router.post("/cursor/chat/completions")
@router.post("/cursor/v1/chat/completions")
@router.post("/v1/cursor/chat/completions")
async def cursor_chat_completions(request: Request) -> Response:
    """Cursor's "Override OpenAI Base URL" = ``<gateway>/cursor``: every Cursor body shape, answers Cursor can read."""
    return await handle_chat(request, cursor=True)


@router.post("/openai/deployments/{deployment}/chat/completions")
@router.post("/cursor/openai/deployments/{deployment}/chat/completions")
async def azure_chat_completions(request: Request, deployment: str) -> Response:
    """Cursor's Azure settings: the deployment name is the public model name; ``api-version`` is accepted as is."""
    return await handle_chat(request, path_model=deployment, cursor=True)
