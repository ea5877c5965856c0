"""ASGI middleware of the facade: metrics, the access log, the request's trace span, ``/metrics``.

It wraps the whole application, so routes need no observability code. What it
records comes from what the routes already send back: the status, and the
``x-request-id`` / ``x-switchboard-model`` / ``x-switchboard-deployment`` headers.
For streams (``text/event-stream``) it measures the time to the first body
chunk. Facts only a route knows (the caller's key alias) are added with
:func:`note`; they go to the access log, never to metric labels.

The access log (:mod:`switchboard_common.access_log`) is one JSON line per
request with the request id, key alias, model, deployment, status and latency.
Bodies — prompts and completions — are never logged here.

The facade's hot routes do not pass through this middleware: its fast lane
(``switchboard_facade.fast_lane``) records the same facts through the same
:class:`Observer`, filling an :class:`Exchange` from the answer it builds.

``GET /metrics`` is answered here, on the facade's own port. Requests that came
through a proxy (they carry ``X-Forwarded-For`` or ``Forwarded``, which the
Ingress always sets) get a 404: the exposition is for Prometheus inside the
cluster, not for the internet.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, MutableMapping
from contextvars import ContextVar, Token
from typing import Any

from switchboard_common import metrics, tracing
from switchboard_common.access_log import AccessLog

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: Paths left out of the access log (probes and scrapes would drown it).
QUIET_PREFIXES = ("/health", metrics.PATH)
_PROXY_HEADERS = (b"x-forwarded-for", b"forwarded")
_NOTES: ContextVar[dict[str, Any] | None] = ContextVar("switchboard_request_notes", default=None)


def note(**fields: Any) -> None:
    """Adds fields to the current request's access-log line (e.g. ``key_alias=``); a no-op outside a request."""
    notes = _NOTES.get()
    if notes is not None:
        notes.update(fields)


class Exchange:
    """What is learned about one request while it is answered."""

    __slots__ = ("deployment", "first_chunk", "model", "provider", "request_id", "span", "status", "streaming")

    def __init__(self) -> None:
        self.status = 0
        self.model = ""
        self.deployment = ""
        self.provider = ""
        self.request_id = ""
        self.streaming = False
        self.first_chunk = 0.0
        self.span: Any = None

    def read_start(self, message: Message) -> None:
        self.status = int(message["status"])
        for key, value in message.get("headers", ()):
            if key == b"x-request-id":
                self.request_id = value.decode("latin-1")
            elif key == b"x-switchboard-model":
                self.model = value.decode("latin-1")
            elif key == b"x-switchboard-deployment":
                self.deployment = value.decode("latin-1")
            elif key == b"x-switchboard-provider":
                self.provider = value.decode("latin-1")
            elif key == b"content-type":
                self.streaming = value.startswith(b"text/event-stream")


_ACCESS_LOGS: dict[str, AccessLog] = {}


def access_log_for(service: str) -> AccessLog:
    """The process's one access log of ``service`` (one writer thread, so lines never interleave)."""
    log = _ACCESS_LOGS.get(service)
    if log is None:
        log = _ACCESS_LOGS[service] = AccessLog(service)
    return log


def open_notes() -> tuple[dict[str, Any], Token[dict[str, Any] | None]]:
    """Starts collecting :func:`note` fields for the request running in this context."""
    notes: dict[str, Any] = {}
    return notes, _NOTES.set(notes)


def close_notes(token: Token[dict[str, Any] | None]) -> None:
    _NOTES.reset(token)


class Observer:
    """Records one answered request: the request metrics always, the access-log line when INFO is on."""

    def __init__(self, service: str = "facade") -> None:
        self.access_log = access_log_for(service)

    def record(self, method: str, route: str, exchange: Exchange, started: float, notes: dict[str, Any]) -> None:
        elapsed = time.perf_counter() - started
        status = exchange.status or 500
        metrics.REQUESTS.inc((route, method, exchange.model, exchange.deployment, str(status)))
        metrics.REQUEST_LATENCY.observe((route, exchange.model), elapsed)
        ttft = exchange.first_chunk - started if exchange.first_chunk else 0.0
        if ttft:
            metrics.TIME_TO_FIRST_TOKEN.observe((exchange.model,), ttft)
        if route.startswith(QUIET_PREFIXES) or not self.access_log.enabled():
            return
        fields: dict[str, Any] = {
            "request_id": exchange.request_id, "method": method, "route": route, "status": status,
            "latency_ms": round(elapsed * 1000, 3), "model": exchange.model, "deployment": exchange.deployment,
            "provider": exchange.provider, "stream": exchange.streaming,
        }
        if ttft:
            fields["ttft_ms"] = round(ttft * 1000, 3)
        if exchange.span is not None:
            fields["trace_id"] = format(exchange.span.get_span_context().trace_id, "032x")
        fields.update(notes)
        self.access_log.write(fields)


class ObservabilityMiddleware:
    """Wrap the facade's ASGI app with it: ``app.add_middleware(ObservabilityMiddleware)``."""

    def __init__(self, app: ASGIApp, service: str = "facade") -> None:
        self.app = app
        self.observer = Observer(service)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["path"] == metrics.PATH and scope["method"] in ("GET", "HEAD"):
            await _exposition(scope, send)
            return
        started = time.perf_counter()
        exchange = Exchange()
        notes, token = open_notes()

        async def observed_send(message: Message) -> None:
            kind = message["type"]
            if kind == "http.response.start":
                exchange.read_start(message)
                if exchange.span is not None:
                    # Now, not after the app returns: a framework's span may end with the last byte.
                    annotate(exchange.span, scope["method"], _route_template(scope), exchange)
            elif kind == "http.response.body" and exchange.streaming and not exchange.first_chunk \
                    and message.get("body"):
                exchange.first_chunk = time.perf_counter()
            await send(message)

        metrics.INFLIGHT.add((), 1)
        try:
            if tracing.enabled():
                with tracing.http_server_span(scope["method"], scope["path"], scope.get("headers", [])) as span:
                    exchange.span = span
                    await self.app(scope, receive, observed_send)
            else:
                await self.app(scope, receive, observed_send)
        finally:
            route = _route_template(scope)
            metrics.INFLIGHT.add((), -1)
            close_notes(token)
            self.observer.record(scope["method"], route, exchange, started, notes)


def _route_template(scope: Scope) -> str:
    """The matched route's path template (``/openai/deployments/{deployment}/...``, a parameter's convertor left
    out, as in the OpenAPI schema), or ``unmatched``."""
    route = scope.get("route")
    path = getattr(route, "path_format", None) or getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"


def annotate(span: Any, method: str, route: str, exchange: Exchange) -> None:
    span.update_name(f"{method} {route}")
    span.set_attribute("http.route", route)
    span.set_attribute("http.response.status_code", exchange.status or 500)
    for key, value in (("switchboard.request_id", exchange.request_id), ("switchboard.model", exchange.model),
                       ("switchboard.deployment", exchange.deployment)):
        if value:
            span.set_attribute(key, value)
    if exchange.status >= 500 or not exchange.status:
        from opentelemetry.trace import Status, StatusCode

        span.set_status(Status(StatusCode.ERROR))


async def _exposition(scope: Scope, send: Send) -> None:
    if any(key in _PROXY_HEADERS for key, _ in scope.get("headers", ())):
        body, status, content_type = b'{"error":{"message":"Not found.","type":"not_found_error"}}', 404, \
            b"application/json"
    else:
        body, status, content_type = metrics.exposition(), 200, metrics.CONTENT_TYPE.encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body})
