"""The facade's ASGI application: routes, CORS, error handlers, lifecycle.

:class:`FacadeApp` is the FastAPI app with one difference at its door: a
``POST`` to a hot route (chat, messages, responses, embeddings) goes to the
fast lane (:mod:`switchboard_facade.fast_lane`), everything else through
FastAPI and its middlewares.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from switchboard_common import metrics
from switchboard_common.errors import Kind, ServiceError
from switchboard_common.http_metrics import ObservabilityMiddleware
from switchboard_facade.cors import EXPOSE_HEADERS, parse_origins
from switchboard_facade.errors import dialect_for_path, error_response, id_headers, internal_error_response
from switchboard_facade.fast_lane import FastLane
from switchboard_facade.gateway import Gateway
from switchboard_facade.header_aliases import HeaderAliases
from switchboard_facade.http_input import declared_length, too_large
from switchboard_facade.replies import ClientGone, Reply
from switchboard_facade.request_id import RequestIdMiddleware, new_request_id
from switchboard_facade.routes import (
    admin_keys,
    admin_models,
    admin_teams,
    admin_users,
    alerts,
    anthropic_messages,
    audit,
    catalog,
    chat,
    completions,
    custody,
    embeddings,
    health,
    models,
    moderations,
    responses,
    spend,
    usage,
)
from switchboard_facade.settings import FacadeSettings
from switchboard_facade.ui import install as install_dashboard
from switchboard_facade.ui.render import error_page
from switchboard_translate.anthropic import anthropic_error

log = logging.getLogger(__name__)


#: What to use instead of a LiteLLM route the gateway does not serve.
_LITELLM_INSTEAD = (
    (("/global/spend", "/user/daily/activity", "/team/daily/activity", "/spend/report"),
     "Spend reports are GET /usage (group_by=key|team|user|model|day, from, to; docs/billing.md); "
     "single requests are GET /spend/logs."),
    (("/v1/messages/batches",), "Anthropic's Message Batches API is not served: send each message to POST "
                                "/v1/messages."),
)


def _route_hint(path: str) -> str:
    """What to call instead, for a path that is not served."""
    for prefixes, hint in _LITELLM_INSTEAD:
        if path.startswith(prefixes):
            return hint
    return "For chat use POST /v1/chat/completions (or <base>/cursor/chat/completions for Cursor)."


def _error(status: int, message: str, etype: str, code: str) -> Response:
    body = {"error": {"message": message, "type": etype, "param": None, "code": code}}
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


class FacadeApp(FastAPI):
    """FastAPI, with the hot routes answered by :attr:`fast_lane` before the framework sees them."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.fast_lane = FastLane((), [])
        self.framework: ASGIApp = super().__call__
        #: Custody and request-id headers also sent under another prefix (None: not).
        self.header_aliases: HeaderAliases | None = None

    def shutdown_grace_expired(self) -> None:
        """The server is about to cancel the requests its shutdown's grace did not see finish: they are recorded as
        cut by this facade's shutdown, at the router too."""
        gateway = getattr(self.state, "gateway", None)
        if gateway is not None:
            gateway.shutdown_grace_expired()

    def trust_forwarded_headers(self, trusted_hosts: list[str] | str) -> None:
        """Reads ``X-Forwarded-For``/``-Proto`` from these proxies on the framework path (the dashboard
        uses the client's scheme); the fast lane never looks at the client address or scheme."""
        self.framework = ProxyHeadersMiddleware(super().__call__, trusted_hosts=trusted_hosts)  # type: ignore[arg-type, assignment]  # uvicorn types ASGI with its own TypedDicts, starlette with MutableMapping

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.framework(scope, receive, send)
            return
        query = scope["query_string"]
        has_nul = "\x00" in scope["path"] or bool(query) and b"%00" in query
        if scope["method"] == "POST" and not scope.get("root_path") and not has_nul:
            hot = self.fast_lane.match(scope["path"])
            if hot is not None:
                await self.fast_lane.serve(hot[0], hot[1], scope, receive, send)  # it adds the header aliases itself
                return
        if self.header_aliases is not None:
            send = self.header_aliases.wrap(send)
        if has_nul:
            # No name or filter the gateway knows holds a NUL character, and no database stores one.
            await _refusal(scope, ServiceError(
                Kind.ERROR_KIND_INVALID_REQUEST, "The request's path or query contains a NUL (%00) character; "
                "remove it.", code="invalid_text")).send_to(send)
            return
        ended = False

        async def tracked(message: Message) -> None:
            nonlocal ended
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                ended = True

        try:
            await self.framework(scope, receive, tracked)
        except (ClientGone, ClientDisconnect):
            return  # no one to answer
        except Exception:
            # Starlette answered it through internal_error (below) and re-raised it: the answer is whole, so the
            # connection can stay open. An answer cut short is left to the server, which closes the connection.
            if not ended:
                raise


def _refusal(scope: Scope, err: ServiceError) -> Reply:
    """A request refused before any route ran, in the dialect of its path."""
    dialect = dialect_for_path(scope["path"])
    return error_response(err, id_headers(new_request_id(), dialect), dialect)


class BodyLimit:
    """Refuses a body the request declares larger than ``max_bytes`` (413) before any framework route runs.

    The readers of the routes count the bytes of bodies that declare no length (chunked) and stop at their
    own limits (which may be lower, e.g. the admin API's); the hot routes do both in the fast lane."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            declared = declared_length(scope["headers"])
            if declared is not None and declared > self.max_bytes:
                await _refusal(scope, too_large(self.max_bytes)).send_to(send)
                return
        await self.app(scope, receive, send)


def create_app(settings: FacadeSettings | None = None) -> FacadeApp:
    settings = settings or FacadeSettings()

    @asynccontextmanager
    async def lifespan(app: FacadeApp) -> AsyncIterator[None]:
        gateway = Gateway(settings)
        metrics.observe_outbox(lambda: gateway.billing.outbox.depth)
        app.state.gateway = gateway
        app.fast_lane.gateway = gateway
        app.state.draining = False
        await gateway.start()
        try:
            yield
        finally:
            app.state.draining = True
            await gateway.close()

    app = FacadeApp(title="Switchboard", version="0.1.0", lifespan=lifespan, docs_url="/docs", redoc_url=None)
    origins = parse_origins(settings.cors_origins)
    if settings.header_alias_prefix:
        app.header_aliases = HeaderAliases(settings.header_alias_prefix)
    exposed = (*EXPOSE_HEADERS, *(app.header_aliases.names if app.header_aliases else ()))
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(CORSMiddleware, allow_origins=origins, allow_methods=["*"], allow_headers=["*"],
                       expose_headers=list(exposed))
    app.add_middleware(RequestIdMiddleware)
    app.add_middleware(ObservabilityMiddleware)
    modules = (chat, anthropic_messages, responses, embeddings, completions, moderations, models, admin_keys,
               admin_teams, admin_users, admin_models, audit, spend, usage, alerts, custody, catalog, health)
    for module in modules:
        app.include_router(module.router)
    install_dashboard(app)
    app.fast_lane = FastLane([route for module in modules for route in module.router.routes], origins,
                             expose_headers=exposed, header_aliases=app.header_aliases)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        path = request.url.path
        dialect = dialect_for_path(path)  # Anthropic's clients read Anthropic's error body on its paths
        request_id = new_request_id()
        if exc.status_code == 404:
            missing = ServiceError(Kind.ERROR_KIND_NOT_FOUND, f"No route {request.method} {path}. "
                                   f"{_route_hint(path)}", code="route_not_found")
            return error_response(missing, id_headers(request_id, dialect), dialect)
        if exc.status_code == 405:
            message = f"{request.method} is not allowed on {path}."
            if dialect == "anthropic":
                return Response(orjson.dumps(anthropic_error(405, message, request_id=request_id)), status_code=405,
                                media_type="application/json", headers=id_headers(request_id, dialect))
            return _error(405, message, "invalid_request_error", "method_not_allowed")
        return _error(exc.status_code, str(exc.detail), "api_error", "http_error")

    @app.exception_handler(ServiceError)
    async def service_error(request: Request, exc: ServiceError) -> Response:
        """A refusal a route raised instead of answering (e.g. a dashboard form over its size)."""
        path = request.url.path
        if path.startswith("/ui"):
            return error_page(request, exc)
        dialect = dialect_for_path(path)
        return error_response(exc, id_headers(new_request_id(), dialect), dialect)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> Response:
        """A bug: logged with a request id, answered in the client's dialect with that id and nothing of the
        exception (its text may name internals)."""
        request_id = new_request_id()
        if not isinstance(exc, (ClientGone, ClientDisconnect)):  # else no one is left to read the answer
            log.error("request failed in the gateway", exc_info=exc,
                      extra={"request_id": request_id, "method": request.method, "path": request.url.path})
        return internal_error_response(request_id, dialect_for_path(request.url.path))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        return _error(400, f"Invalid request: {exc.errors()}", "invalid_request_error", "invalid_request")

    return app
