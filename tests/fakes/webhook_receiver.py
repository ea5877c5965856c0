"""A real HTTP webhook receiver for alert tests: records every delivery, and can be told to fail or to be down.

``fail_with(503)`` answers every delivery with that status (the sender must retry);
``hold(seconds)`` keeps each request that long before answering (a delivery in
flight); ``go_down()`` closes the listening socket (connection refused) and
``come_up()`` listens again on the same port.
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.fakes.server import BackgroundServer


@dataclass(frozen=True)
class Delivery:
    path: str
    headers: dict[str, str]
    body: bytes
    #: The status this receiver answered.
    status: int

    def json(self) -> Any:
        return orjson.loads(self.body)

    @property
    def idempotency_key(self) -> str:
        return self.headers.get("x-switchboard-idempotency-key", "")


class WebhookReceiver:
    def __init__(self) -> None:
        self.deliveries: list[Delivery] = []
        self.status = 200
        self.hold_seconds = 0.0
        #: Requests that arrived (answered or not yet).
        self.arrived = 0
        self._lock = threading.Lock()
        self._server: BackgroundServer | None = None
        self.port = 0

    def _app(self) -> Starlette:
        async def receive(request: Request) -> Response:
            body = await request.body()
            self.arrived += 1
            if self.hold_seconds:
                await asyncio.sleep(self.hold_seconds)
            status = self.status
            with self._lock:
                self.deliveries.append(Delivery(request.url.path, {k.lower(): v for k, v in request.headers.items()},
                                                body, status))
            return Response(b"ok" if status < 300 else b"unavailable", status_code=status)

        return Starlette(routes=[Route("/{path:path}", receive, methods=["POST"])])

    def start(self) -> WebhookReceiver:
        server = BackgroundServer(self._app(), name="webhook-receiver", port=self.port)  # the same port coming back
        self._server = server.start()
        self.port = server.port
        return self

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def fail_with(self, status: int) -> None:
        self.status = status

    def hold(self, seconds: float) -> None:
        self.hold_seconds = seconds

    def go_down(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def come_up(self) -> None:
        self.status = 200
        self.start()

    def stop(self) -> None:
        self.go_down()

    def accepted(self, path: str | None = None) -> list[Delivery]:
        """Deliveries answered with a 2xx (what a real receiver kept)."""
        with self._lock:
            return [d for d in self.deliveries if d.status < 300 and (path is None or d.path == path)]

    def wait_for(self, count: int, path: str | None = None, timeout: float = 30.0) -> list[Delivery]:
        """Waits until ``count`` distinct idempotency keys were accepted; returns the accepted deliveries."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            accepted = self.accepted(path)
            if len({d.idempotency_key for d in accepted}) >= count:
                return accepted
            time.sleep(0.05)
        raise AssertionError(f"{count} alerts expected at the receiver, got "
                             f"{sorted({d.idempotency_key for d in self.accepted(path)})}")

