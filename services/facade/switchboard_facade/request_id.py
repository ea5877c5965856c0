"""Every answer carries ``x-request-id``.

Routes that do gateway work set their own id (it is also the ledger's key);
this pure-ASGI middleware adds one to every other answer (health checks,
CORS preflights, 404s, the dashboard's forms: the id their audit rows carry)
without touching the body or buffering anything.
"""

from __future__ import annotations

import secrets
from typing import Any

from switchboard_common import audit_origin

_HEADER = b"x-request-id"


def new_request_id() -> str:
    """A request's id: also the ledger's key for the requests that reach a provider."""
    return "req_" + secrets.token_hex(12)


class RequestIdMiddleware:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_id(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                headers = message.get("headers") or []
                if not any(name == _HEADER for name, _ in headers):
                    origin = audit_origin.current()  # an admin request's own id (its audit row has it too)
                    request_id = origin.request_id if origin is not None and origin.request_id else new_request_id()
                    message["headers"] = [*headers, (_HEADER, request_id.encode())]
            await send(message)

        await self.app(scope, receive, send_with_id)
