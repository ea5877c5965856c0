"""Every answer carries ``x-request-id``.

Routes that do gateway work set their own id (it is also the ledger's key);
this pure-ASGI middleware adds one to every other answer (health checks,
CORS preflights, 404s, the dashboard's forms: the id their audit rows carry)
without touching the body or buffering anything.
"""

from __future__ import annotations

import os
import time
from typing import Any

from switchboard_common import audit_origin

_HEADER = b"x-request-id"
#: Random hex digits of an id, after its 12 of the time (48 bits: with the millisecond, unique across every facade
#: and restart without coordination).
_ID_DIGITS = 12
#: Ids' worth of the OS's random bytes read at once: one ``getrandom`` call per this many requests, not one each.
_IDS_PER_READ = 256


class _RandomHex:
    """Hex digits from the OS's cryptographic source, read in blocks and handed out once each.

    A forked child starts with an empty block, so parent and child never hand out the same digits."""

    __slots__ = ("_digits", "_at")

    def __init__(self) -> None:
        self._digits = ""
        self._at = 0

    def take(self) -> str:
        at = self._at
        if at >= len(self._digits):
            self._digits, at = os.urandom(_ID_DIGITS // 2 * _IDS_PER_READ).hex(), 0
        self._at = at + _ID_DIGITS
        return self._digits[at:at + _ID_DIGITS]

    def forget(self) -> None:
        self._digits, self._at = "", 0


_random_hex = _RandomHex()
os.register_at_fork(after_in_child=_random_hex.forget)


def new_request_id() -> str:
    """A request's id: also the ledger's key for the requests that reach a provider.

    The milliseconds since the epoch (12 hex digits) come first, then random digits, so ids sort by when they
    were made: the ledger's primary key grows at its end and a settlement batch's rows share its last pages. With
    random ids every row landed on a page of its own, read (once the index outgrew the page cache) and written
    back whole, a cost that grew with the ledger: a quarter of a settled row's at a few hundred thousand rows."""
    return f"req_{time.time_ns() // 1_000_000:012x}{_random_hex.take()}"


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
