"""Reading what a client sent: the body (bounded, parsed once) and its credential."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request

from switchboard_common.errors import Kind, ServiceError
from switchboard_facade.errors import invalid


async def read_json_object(request: Request, max_bytes: int) -> tuple[dict[str, Any], int]:
    """The body as a JSON object and its size; 413 past ``max_bytes``, 400 if not a JSON object."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise _too_large(max_bytes)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise _too_large(max_bytes)
        chunks.append(chunk)
    raw = chunks[0] if len(chunks) == 1 else b"".join(chunks)
    if not raw.strip():
        raise invalid("The request body is empty; send a JSON object.", code="empty_body")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise invalid(f"The request body is not valid JSON ({exc}).", code="invalid_json") from None
    if not isinstance(body, dict):
        raise invalid("The request body must be a JSON object.", code="invalid_json")
    return body, size


def _too_large(max_bytes: int) -> ServiceError:
    return ServiceError(Kind.ERROR_KIND_INVALID_REQUEST,
                        f"The request body is larger than this gateway accepts ({max_bytes} bytes). "
                        "Send a shorter prompt or ask the operator to raise SWITCHBOARD_MAX_BODY_BYTES.",
                        code="request_too_large", http_status=413)


def credential(request: Request) -> str:
    """The API key from ``Authorization: Bearer``, Azure's ``api-key`` or Anthropic's ``x-api-key``."""
    auth = request.headers.get("authorization")
    if auth:
        scheme, _, token = auth.partition(" ")
        if scheme.lower() == "bearer":
            return token.strip()
        return auth.strip()
    return (request.headers.get("api-key") or request.headers.get("x-api-key") or "").strip()
