"""Reading what a client sent: the body (bounded, parsed once) and its credential."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

import orjson
from starlette.requests import Request

from switchboard_common.errors import Kind, ServiceError
from switchboard_facade.errors import invalid


class ClientGone(Exception):
    """The client went away before its whole body arrived: there is no one left to answer."""


class Incoming:
    """One request to a gateway route, read: its id, headers, raw body and path parameters.

    The fast lane builds it straight from the ASGI scope; the framework path builds it
    from Starlette's request (see :func:`incoming_from`), so a route's handler is the same code on both.
    """

    __slots__ = ("body", "headers", "path_params", "request_id")

    def __init__(self, request_id: str, headers: Mapping[str, str], body: bytes,
                 path_params: Mapping[str, str] | None = None) -> None:
        self.request_id = request_id
        #: Lower-case names; the first value of a repeated header, as Starlette's ``headers.get`` gives.
        self.headers = headers
        self.body = body
        self.path_params = path_params or {}

    def json_object(self) -> tuple[dict[str, Any], int]:
        """The body as a JSON object and its size (400 when it is empty, not JSON, or not an object)."""
        return parse_json_object(self.body)

    def credential(self) -> str:
        return credential_of(self.headers)


def header_map(raw: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    """ASGI header pairs (names already lower-case) as a dict where the first of repeated names wins."""
    headers: dict[str, str] = {}
    for name, value in raw:
        key = name.decode("latin-1")
        if key not in headers:
            headers[key] = value.decode("latin-1")
    return headers


async def read_body(receive: Callable[[], Awaitable[dict[str, Any]]], declared_length: str | None,
                    max_bytes: int) -> bytes:
    """The whole body from ASGI ``receive``; 413 past ``max_bytes`` (before reading when the length says so)."""
    if declared_length is not None and declared_length.isdigit() and int(declared_length) > max_bytes:
        raise _too_large(max_bytes)
    message = await receive()
    if message["type"] == "http.disconnect":
        raise ClientGone
    body: bytes = message.get("body", b"")
    if not message.get("more_body", False):
        if len(body) > max_bytes:
            raise _too_large(max_bytes)
        return body
    chunks = [body]
    size = len(body)
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > max_bytes:
            raise _too_large(max_bytes)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def parse_json_object(raw: bytes) -> tuple[dict[str, Any], int]:
    """``raw`` as a JSON object and its size; 400 if it is empty, not JSON, or not an object."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if not raw.strip():
            raise invalid("The request body is empty; send a JSON object.", code="empty_body") from None
        raise invalid(f"The request body is not valid JSON ({exc}).", code="invalid_json") from None
    if not isinstance(body, dict):
        raise invalid("The request body must be a JSON object.", code="invalid_json")
    return body, len(raw)


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
    return parse_json_object(chunks[0] if len(chunks) == 1 else b"".join(chunks))


async def incoming_from(request: Request, request_id: str, max_bytes: int) -> Incoming:
    """An :class:`Incoming` from a Starlette request (the framework path to a hot route's handler)."""
    headers = header_map(request.scope["headers"])
    body = await read_body(request.receive, headers.get("content-length"), max_bytes)
    return Incoming(request_id, headers, body, request.path_params)


def _too_large(max_bytes: int) -> ServiceError:
    return ServiceError(Kind.ERROR_KIND_INVALID_REQUEST,
                        f"The request body is larger than this gateway accepts ({max_bytes} bytes). "
                        "Send a shorter prompt or ask the operator to raise SWITCHBOARD_MAX_BODY_BYTES.",
                        code="request_too_large", http_status=413)


def credential_of(headers: Mapping[str, str]) -> str:
    """The API key from ``Authorization: Bearer``, Azure's ``api-key`` or Anthropic's ``x-api-key``."""
    auth = headers.get("authorization")
    if auth:
        scheme, _, token = auth.partition(" ")
        if scheme.lower() == "bearer":
            return token.strip()
        return auth.strip()
    return (headers.get("api-key") or headers.get("x-api-key") or "").strip()


def credential(request: Request) -> str:
    """The API key of a Starlette request (see :func:`credential_of`)."""
    return credential_of(request.headers)
