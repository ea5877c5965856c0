"""Reading what a client sent: the body (bounded, parsed once, shape-checked) and its credential."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping
from typing import Any

import orjson
from starlette.requests import Request

from switchboard_common.errors import Kind, ServiceError
from switchboard_facade.errors import invalid
from switchboard_facade.replies import ClientGone
from switchboard_rules import request_fields


class Incoming:
    """One request to a gateway route, read: its id, headers, raw body and path parameters.

    The fast lane builds it straight from the ASGI scope; the framework path builds it
    from Starlette's request (see :func:`incoming_from`), so a route's handler is the same code on both.
    """

    __slots__ = ("body", "headers", "path_params", "raw_headers", "request_id")

    def __init__(self, request_id: str, headers: Mapping[str, str], body: bytes,
                 path_params: Mapping[str, str] | None = None,
                 raw_headers: Iterable[tuple[bytes, bytes]] = ()) -> None:
        self.request_id = request_id
        #: Lower-case names; the first value of a repeated header, as Starlette's ``headers.get`` gives.
        self.headers = headers
        #: Every header as received (the ASGI pairs), for what must see repeated headers (the credential).
        self.raw_headers = raw_headers
        self.body = body
        self.path_params = path_params or {}

    def json_object(self) -> tuple[dict[str, Any], int]:
        """The body as a JSON object and its size (400 when it is empty, not JSON, not an object, nested too
        deep, or when a field every route reads is out of range: see :func:`check_common_fields`)."""
        body, size = parse_json_object(self.body)
        check_common_fields(body)
        return body, size

    def credential(self) -> str:
        return credential_of(self.raw_headers)


def header_map(raw: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    """ASGI header pairs (names already lower-case) as a dict where the first of repeated names wins."""
    headers: dict[str, str] = {}
    for name, value in raw:
        key = name.decode("latin-1")
        if key not in headers:
            headers[key] = value.decode("latin-1")
    return headers


#: What a client whose prompt is too large can do.
PROMPT_ADVICE = "Send a shorter prompt or ask the operator to raise SWITCHBOARD_MAX_BODY_BYTES."


def declared_length(raw_headers: Iterable[tuple[bytes, bytes]]) -> int | None:
    """The ``Content-Length`` a request declares (None when it sends none, e.g. a chunked body)."""
    for name, value in raw_headers:
        if name == b"content-length" and value.isdigit():
            return int(value)
    return None


async def read_body(receive: Callable[[], Awaitable[MutableMapping[str, Any]]], declared: str | int | None,
                    max_bytes: int, advice: str = PROMPT_ADVICE) -> bytes:
    """The whole body from ASGI ``receive``; 413 past ``max_bytes``: before reading when the declared length
    says so, else as soon as the bytes read pass it (a chunked body is not read further)."""
    if declared is not None and (isinstance(declared, int) or declared.isdigit()) and int(declared) > max_bytes:
        raise too_large(max_bytes, advice)
    message = await receive()
    if message["type"] == "http.disconnect":
        raise ClientGone
    body: bytes = message.get("body", b"")
    if not message.get("more_body", False):
        if len(body) > max_bytes:
            raise too_large(max_bytes, advice)
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
            raise too_large(max_bytes, advice)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


#: Deepest nesting of arrays and objects a body may have. Real requests (tool schemas included) stay far
#: below; the serializer the gateway uses refuses more than 254 levels, and every level costs work.
MAX_JSON_DEPTH = 64


def parse_json_object(raw: bytes) -> tuple[dict[str, Any], int]:
    """``raw`` as a JSON object and its size; 400 if it is empty, not JSON, not an object or nested too deep."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if not raw.strip():
            raise invalid("The request body is empty; send a JSON object.", code="empty_body") from None
        if "depth limit" in str(exc) or "recursion" in str(exc):
            raise _too_deep() from None
        raise invalid(f"The request body is not valid JSON ({exc}).", code="invalid_json") from None
    if not isinstance(body, dict):
        raise invalid("The request body must be a JSON object.", code="invalid_json")
    # A walk of the containers alone (strings are not visited): a few µs for a 100 KB conversation, where counting
    # its brackets first took some 50 µs of byte scanning.
    if _deeper_than(body, MAX_JSON_DEPTH):
        raise _too_deep()
    return body, len(raw)


def _deeper_than(value: dict[str, Any] | list[Any], limit: int) -> bool:
    stack: list[tuple[dict[str, Any] | list[Any], int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        for child in node.values() if isinstance(node, dict) else node:
            if isinstance(child, (dict, list)):
                if depth >= limit:
                    return True
                stack.append((child, depth + 1))
    return False


def _too_deep() -> ServiceError:
    return invalid(f"The request body is nested too deeply: at most {MAX_JSON_DEPTH} levels of arrays and "
                   "objects are accepted.", code="json_too_deep")


def check_common_fields(body: dict[str, Any]) -> None:
    """400 naming the field when a field every route reads is out of range (:mod:`switchboard_rules.request_fields`)."""
    try:
        request_fields.check_common_fields(body)
    except request_fields.FieldError as exc:
        raise invalid(exc.message, exc.param, exc.code) from None


async def read_json_object(request: Request, max_bytes: int,
                           advice: str = PROMPT_ADVICE) -> tuple[dict[str, Any], int]:
    """The body as a JSON object and its size; 413 past ``max_bytes``, 400 if not a JSON object."""
    body = await read_body(request.receive, declared_length(request.scope["headers"]), max_bytes, advice)
    return parse_json_object(body)


async def incoming_from(request: Request, request_id: str, max_bytes: int) -> Incoming:
    """An :class:`Incoming` from a Starlette request (the framework path to a hot route's handler)."""
    raw = request.scope["headers"]
    headers = header_map(raw)
    body = await read_body(request.receive, headers.get("content-length"), max_bytes)
    return Incoming(request_id, headers, body, request.path_params, raw)


def too_large(max_bytes: int, advice: str = PROMPT_ADVICE) -> ServiceError:
    message = f"The request body is larger than this gateway accepts for this request ({max_bytes} bytes)."
    return ServiceError(Kind.ERROR_KIND_INVALID_REQUEST, f"{message} {advice}".strip(), code="request_too_large",
                        http_status=413)


#: The headers a client may carry its key in: OpenAI's ``Authorization: Bearer``, Azure's ``api-key``,
#: Anthropic's ``x-api-key``.
_CREDENTIAL_HEADERS = (b"authorization", b"api-key", b"x-api-key")


def credential_of(raw_headers: Iterable[tuple[bytes, bytes]]) -> str:
    """The API key a request carries; 400 when it carries two that differ (two ``Authorization`` headers, or
    ``Authorization`` and ``api-key``/``x-api-key`` with another key), rather than picking one."""
    found: list[tuple[bytes, str]] = []
    for name, value in raw_headers:
        if name in _CREDENTIAL_HEADERS:
            found.append((name, value.decode("latin-1")))
    if not found:
        return ""
    if len(found) == 1:
        return _token(*found[0])
    authorizations = [value for name, value in found if name == b"authorization"]
    if len(authorizations) > 1:
        raise invalid("The request has more than one Authorization header; send the key once.", "authorization",
                      "conflicting_credentials")
    keys = {_token(name, value) for name, value in found}
    if len(keys) > 1:
        names = ", ".join(sorted({name.decode() for name, _ in found}))
        raise invalid(f"The request carries different keys in {names}; send one key (in one of them).",
                      "authorization", "conflicting_credentials")
    return keys.pop()


def _token(name: bytes, value: str) -> str:
    if name == b"authorization":
        scheme, _, token = value.partition(" ")
        if scheme.lower() == "bearer":
            return token.strip()
    return value.strip()


def credential(request: Request) -> str:
    """The API key of a Starlette request (see :func:`credential_of`)."""
    return credential_of(request.scope["headers"])
