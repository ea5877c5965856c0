"""The facade's ASGI application: routes, CORS, error handlers, lifecycle."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import orjson
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import Response

from switchboard_common import metrics
from switchboard_common.http_metrics import ObservabilityMiddleware
from switchboard_facade.clients import Peers
from switchboard_facade.gateway import Gateway
from switchboard_facade.outbox import Outbox
from switchboard_facade.request_id import RequestIdMiddleware
from switchboard_facade.routes import (
    admin_keys,
    admin_teams,
    anthropic_messages,
    catalog,
    chat,
    custody,
    embeddings,
    health,
    models,
    responses,
    spend,
    usage,
)
from switchboard_facade.settings import FacadeSettings
from switchboard_facade.ui import install as install_dashboard


def _error(status: int, message: str, etype: str, code: str) -> Response:
    body = {"error": {"message": message, "type": etype, "param": None, "code": code}}
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def create_app(settings: FacadeSettings | None = None) -> FastAPI:
    settings = settings or FacadeSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        peers = Peers.connect(settings)
        gateway_holder: list[Gateway] = []

        async def deliver(events):  # type: ignore[no-untyped-def]
            await gateway_holder[0].deliver_usage(events)

        outbox = Outbox(settings.ensure_data_dir() / "outbox", deliver)
        gateway = Gateway(settings, peers, outbox)
        gateway_holder.append(gateway)
        metrics.observe_outbox(lambda: outbox.depth)
        app.state.gateway = gateway
        app.state.draining = False
        await outbox.start()
        await gateway.keycache.start()
        try:
            yield
        finally:
            app.state.draining = True
            await gateway.keycache.stop()
            await outbox.stop(settings.shutdown_grace_seconds)
            await gateway.leases.close(settings.shutdown_grace_seconds)
            await gateway.releaser.drain(settings.shutdown_grace_seconds)
            await peers.close()

    app = FastAPI(title="Switchboard", version="0.1.0", lifespan=lifespan, docs_url="/docs", redoc_url=None)
    origins = [o.strip() for o in settings.cors_origins.split(",") if o.strip()]
    app.add_middleware(CORSMiddleware, allow_origins=origins, allow_methods=["*"], allow_headers=["*"],
                       expose_headers=["x-request-id", "x-switchboard-request-id", "x-switchboard-custody-path",
                                       "x-switchboard-resolved-jurisdiction", "x-switchboard-privacy-tier",
                                       "x-switchboard-pii",
                                       "x-ratelimit-limit-requests", "x-ratelimit-remaining-requests",
                                       "x-ratelimit-reset-requests", "x-ratelimit-limit-tokens",
                                       "x-ratelimit-remaining-tokens", "x-ratelimit-reset-tokens", "retry-after"])
    app.add_middleware(RequestIdMiddleware)
    app.add_middleware(ObservabilityMiddleware)
    for module in (chat, anthropic_messages, responses, embeddings, models, admin_keys, admin_teams, spend,
                   usage, custody, catalog, health):
        app.include_router(module.router)
    install_dashboard(app)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404:
            return _error(404, f"No route {request.method} {request.url.path}. For chat use POST "
                               "/v1/chat/completions (or <base>/cursor/chat/completions for Cursor).",
                          "not_found_error", "route_not_found")
        if exc.status_code == 405:
            return _error(405, f"{request.method} is not allowed on {request.url.path}.", "invalid_request_error",
                          "method_not_allowed")
        return _error(exc.status_code, str(exc.detail), "api_error", "http_error")

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        return _error(400, f"Invalid request: {exc.errors()}", "invalid_request_error", "invalid_request")

    return app
