"""The fast lane: the gateway's hot routes answered straight from ASGI.

Every chat, messages, responses and embeddings call would otherwise cross
half a dozen framework layers (error and exception middlewares, CORS, request
id and observability middlewares each wrapping ``send``, routing, dependency
solving) that cost more CPU than the route's own work. Here, a ``POST`` to a
hot path is dispatched by a dict lookup to its handler, and one wrapper does
what those layers did for it:

* the request id (made here, handed to the handler, on every answer);
* metrics, the access-log line and the trace span (:class:`http_metrics.Observer`);
* CORS headers for a request with an ``Origin`` (:class:`cors.SimpleCors`);
* the body size limit (413) and, for an unexpected exception, a 500 — both as
  error JSON in the route's dialect, with ``x-request-id``;
* a client that disconnects cancels the upstream call, before the answer as
  during a stream (:mod:`replies`); one that left before its answer (while
  sending its body, or while the router worked) is logged with status 499.

The routes stay declared on the FastAPI app, marked with :func:`hot`, so the
OpenAPI schema lists them and a request the lane does not take (another
method, a trailing slash, an ASGI ``root_path``) gets the framework's answer.
Everything else — admin API, dashboard, preflights, 404/405 — is FastAPI's.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.routing import BaseRoute, Route

from switchboard_common import metrics, tracing
from switchboard_common.errors import ServiceError
from switchboard_common.http_metrics import Exchange, Observer, annotate, close_notes, open_notes
from switchboard_facade.cors import EXPOSE_HEADERS, SimpleCors
from switchboard_facade.errors import error_response, id_headers, internal_error_response
from switchboard_facade.gateway import Gateway, new_request_id
from switchboard_facade.header_aliases import HeaderAliases
from switchboard_facade.http_input import Incoming, header_map, incoming_from, read_body
from switchboard_facade.replies import (
    ClientGone,
    Reply,
    StreamReply,
    client_closed,
    client_connection,
    stream_frames,
    unless_client_leaves,
)

log = logging.getLogger(__name__)

Handler = Callable[[Gateway, Incoming], Awaitable[Reply]]
Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

_NO_PARAMS: dict[str, str] = {}
#: Path parameter kinds whose value is the matched text itself (``{name}``, and ``{name:path}``, which spans
#: ``/``: a ``provider/model`` name in Azure's deployment path), so the route's regex match is the parameter.
_TEXT_CONVERTORS = frozenset({"StringConvertor", "PathConvertor"})


@dataclass(frozen=True, slots=True)
class HotRoute:
    """One hot path: its handler, the template metrics name it by, and the dialect of the lane's own errors."""

    template: str
    handler: Handler
    errors: str


def hot(handler: Handler, errors: str = "openai") -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Marks a FastAPI endpoint as served by the fast lane through ``handler``.

    ``errors`` ("openai" or "anthropic") is the dialect of the errors the lane itself answers
    (body too large, internal error). The endpoint should hand its request to :func:`through_framework`.
    """
    def mark(endpoint: Callable[..., Any]) -> Callable[..., Any]:
        endpoint.hot_route = (handler, errors)  # type: ignore[attr-defined]  # a mark on the function, read by the lane
        return endpoint
    return mark


async def through_framework(request: Request, handler: Handler, errors: str = "openai") -> Reply:
    """A hot route's answer when FastAPI routed the request (its middlewares observe it)."""
    gw: Gateway = request.app.state.gateway
    request_id = new_request_id()
    try:
        incoming = await incoming_from(request, request_id, gw.settings.max_body_bytes)
    except ServiceError as err:
        return error_response(err, id_headers(request_id, errors), errors)
    except ClientGone:
        return client_closed(request_id)  # it left while sending its body
    try:
        return await unless_client_leaves(handler(gw, incoming), request.receive, client_connection(request.scope))
    except ClientGone:
        return client_closed(request_id)


class FastLane:
    """Dispatches hot ``POST`` paths and answers them (see the module docstring)."""

    def __init__(self, routes: Iterable[BaseRoute], cors_origins: list[str], service: str = "facade",
                 expose_headers: tuple[str, ...] = EXPOSE_HEADERS, header_aliases: HeaderAliases | None = None) -> None:
        self.exact: dict[str, HotRoute] = {}
        self.patterned: list[tuple[str, re.Pattern[str], HotRoute]] = []
        for route in routes:
            marked = getattr(getattr(route, "endpoint", None), "hot_route", None)
            if marked is None or not isinstance(route, Route) or "POST" not in (route.methods or ()):
                continue
            entry = HotRoute(route.path_format, marked[0], marked[1])
            if "{" not in route.path:
                self.exact.setdefault(route.path, entry)
            else:
                if any(type(c).__name__ not in _TEXT_CONVERTORS for c in route.param_convertors.values()):
                    raise ValueError(f"hot route {route.path}: only str and path parameters are supported")
                self.patterned.append((route.path.split("{", 1)[0], route.path_regex, entry))
        self.cors = SimpleCors(cors_origins, expose_headers)
        self.observer = Observer(service)
        #: The custody headers' other names (SWITCHBOARD_HEADER_ALIAS_PREFIX), added to every answer of the lane.
        self.header_aliases = header_aliases
        #: Set when the app starts (its lifespan makes the gateway).
        self.gateway: Gateway | None = None

    def match(self, path: str) -> tuple[HotRoute, dict[str, str]] | None:
        """The hot route of ``path`` and its path parameters, or None for the framework."""
        entry = self.exact.get(path)
        if entry is not None:
            return entry, _NO_PARAMS
        for prefix, regex, pattern_entry in self.patterned:
            if path.startswith(prefix):
                found = regex.match(path)
                if found is not None:
                    return pattern_entry, found.groupdict()
        return None

    async def serve(self, route: HotRoute, params: dict[str, str], scope: Scope, receive: Receive,
                    send: Send) -> None:
        started = time.perf_counter()
        exchange = Exchange()
        notes, token = open_notes()
        metrics.INFLIGHT.add((), 1)
        if self.header_aliases is not None:
            send = self.header_aliases.wrap(send)  # an answer sent at once adds them itself (_send)
        try:
            if tracing.enabled():
                with tracing.http_server_span(scope["method"], scope["path"], scope["headers"]) as span:
                    exchange.span = span
                    await self._answer(route, params, scope, receive, send, exchange)
            else:
                await self._answer(route, params, scope, receive, send, exchange)
        finally:
            metrics.INFLIGHT.add((), -1)
            close_notes(token)
            self.observer.record(scope["method"], route.template, exchange, started, notes)

    async def _answer(self, route: HotRoute, params: dict[str, str], scope: Scope, receive: Receive, send: Send,
                      exchange: Exchange) -> None:
        headers = header_map(scope["headers"])
        request_id = new_request_id()
        cors = self.cors.headers(headers.get("origin"))
        try:
            gw = self.gateway
            assert gw is not None, "the fast lane serves only once the app has started"
            try:
                body = await read_body(receive, headers.get("content-length"), gw.settings.max_body_bytes)
            except ServiceError as err:
                reply = error_response(err, id_headers(request_id, route.errors), route.errors)
            except ClientGone:
                reply = client_closed(request_id)  # it left while sending its body: a 499 too
            else:
                try:
                    reply = await unless_client_leaves(
                        route.handler(gw, Incoming(request_id, headers, body, params, scope["headers"])), receive,
                        client_connection(scope))
                except ClientGone:
                    reply = client_closed(request_id)  # the server drops it; the access log keeps its 499
            await self._send(reply, request_id, cors, scope, receive, send, exchange, route)
        except ClientGone:
            return  # it left while its answer was being sent: recorded with the answer's status
        except Exception:
            if exchange.status:
                raise  # the answer has begun: the server closes the connection
            log.exception("request failed in the gateway", extra={"request_id": request_id,
                                                                  "route": route.template})
            await self._send(internal_error_response(request_id, route.errors), request_id, cors, scope, receive,
                             send, exchange, route)

    async def _send(self, reply: Reply, request_id: str, cors: tuple[tuple[bytes, bytes], ...], scope: Scope,
                    receive: Receive, send: Send, exchange: Exchange, route: HotRoute) -> None:
        try:
            answer = reply.header_map
            if "x-request-id" not in answer:
                cors = ((b"x-request-id", request_id.encode()), *cors)
                exchange.request_id = request_id
            else:
                exchange.request_id = answer["x-request-id"]
            exchange.model = answer.get("x-switchboard-model", "")
            exchange.deployment = answer.get("x-switchboard-deployment", "")
            exchange.provider = answer.get("x-switchboard-provider", "")
            exchange.streaming = isinstance(reply, StreamReply)
            exchange.status = reply.status_code
            if exchange.span is not None:
                annotate(exchange.span, scope["method"], route.template, exchange)
            connection = client_connection(scope)
            lines = None
            if connection is not None:
                aliases = self.header_aliases.of(answer, cors) if self.header_aliases is not None else ()
                lines = reply.header_lines((*cors, *aliases) if aliases else cors)
            if isinstance(reply, StreamReply):
                if connection is None or lines is None or not connection.start_at_once(scope, reply.status_code, lines):
                    await send(reply.start(cors))
                await stream_frames(reply.frames, send, receive, lambda: _first_frame(exchange), connection)
                return
            if connection is None or lines is None or not connection.answer_at_once(scope, reply.status_code, lines,
                                                                                    reply.body):
                await send(reply.start(cors))
                await send({"type": "http.response.body", "body": reply.body})
        finally:
            reply.run_then()  # what the answer need not wait for, once it is out (or cannot be)


def _first_frame(exchange: Exchange) -> None:
    exchange.first_chunk = time.perf_counter()
