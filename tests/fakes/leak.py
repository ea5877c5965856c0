"""The leaky provider: it repeats the headers and query string it was sent in its error answers.

Some real providers quote what they were sent when they refuse a request (the
``Authorization`` of a 401, the URL of a 404). Every fake provider takes these
model names (the upstream model id, or Azure's deployment name):

- ``leak-<status>``: that status, with the provider's own error JSON whose message
  quotes every request header and the query string;
- ``leak-text-<status>``: the same quote as a plain-text body;
- ``leak-stream``: a stream that starts, then carries the quote in the provider's
  in-stream error event.

The gateway must pass none of what it sent on to its client, its ledger or its logs.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from typing import Any

#: The error statuses a leaky provider is tested with.
LEAK_STATUSES = (400, 401, 403, 404, 429, 500, 503)

_LEAK = re.compile(r"leak-(text-)?(\d{3})")


def leak_of(model: str) -> tuple[int, bool] | None:
    """(status, plain text?) when ``model`` asks for a leaky error answer, else None."""
    match = _LEAK.search(model)
    if match is None:
        return None
    return int(match.group(2)), match.group(1) is not None


def quote_request(headers: dict[str, str], query: str) -> str:
    """What the leaky provider says: the request's headers and query string, verbatim."""
    return f"Request refused. You sent headers {json.dumps(headers)} and query {query!r}."


async def answer_leak(model: str, said: str, send: Any, error: Callable[[int, str], Awaitable[None]]) -> bool:
    """Answers ``leak-<status>`` (through ``error``, the provider's error JSON) or ``leak-text-<status>``.

    False when ``model`` asks for neither."""
    leak = leak_of(model)
    if leak is None:
        return False
    status, plain = leak
    if plain:
        await send_text(send, status, said)
    else:
        await error(status, said)
    return True


async def send_text(send: Any, status: int, text: str) -> None:
    """A plain-text answer (``send`` is the ASGI send callable)."""
    body = text.encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
