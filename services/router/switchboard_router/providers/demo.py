"""``provider: demo`` — the built-in offline model, for trying the gateway without a provider account.

The demo speaks OpenAI's wire format, so its adapter is the OpenAI-compatible one
(requests built, answers and streams parsed, errors classified by the same code
as a hosted provider's); only the transport differs: instead of an HTTP pool, the
engine gives demo deployments a :class:`DemoPool` that computes the answer in the
router (:mod:`switchboard_router.providers.demo_model`) and streams it token by
token. Everything downstream — keys, limits, budgets, the ledger, PII substitution,
custody headers — cannot tell it from a real provider.

Deployment settings read here: ``chunk_delay_ms`` (pause between streamed
tokens, default 15, so that a stream looks like one; 0 for none).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import orjson

from switchboard_router.deployment import Deployment, Timeouts
from switchboard_router.providers import demo_model
from switchboard_router.providers.base import UpstreamRequest
from switchboard_router.providers.openai_compat import Flavour, OpenAICompatAdapter
from switchboard_router.upstream_http import Answer

#: Where demo requests "go": nothing listens there, the :class:`DemoPool` answers them.
DEMO_API_BASE = "demo://switchboard/v1"
DEFAULT_CHUNK_DELAY_MS = 15.0
#: Request header carrying the deployment's ``chunk_delay_ms`` to the pool.
_DELAY_HEADER = "x-demo-chunk-delay-ms"
_JSON = {"content-type": "application/json"}


class DemoAdapter(OpenAICompatAdapter):
    """The OpenAI-compatible adapter, pointed at the in-router demo model."""

    def __init__(self) -> None:
        self.name = "demo"
        self.flavour = Flavour(DEMO_API_BASE, strict_fields=False)

    def headers(self, deployment: Deployment) -> dict[str, str]:
        headers = super().headers(deployment)
        delay = deployment.extra.get("chunk_delay_ms", DEFAULT_CHUNK_DELAY_MS)
        headers[_DELAY_HEADER] = str(float(delay))
        return headers


def _error(status: int, message: str) -> Answer:
    body = {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": None}}
    return Answer(status, orjson.dumps(body), _JSON)


class DemoStream:
    """A streamed demo answer: Server-Sent Events, one chunk per token, paced like a hosted model."""

    def __init__(self, events: Iterator[bytes], delay_seconds: float) -> None:
        self.status = 200
        self._events = events
        self._delay = delay_seconds
        self._first = True
        self._closed = False

    def headers(self) -> dict[str, str]:
        return {"content-type": "text/event-stream"}

    async def read(self) -> bytes:
        return b"".join(self._events)

    async def next_chunk(self) -> bytes:
        if self._closed:
            return b""
        if self._delay and not self._first:
            await asyncio.sleep(self._delay)
        self._first = False
        return next(self._events, b"")

    def close(self) -> None:
        self._closed = True


def _sse(chunks: Iterator[dict[str, Any]]) -> Iterator[bytes]:
    for chunk in chunks:
        yield b"data: " + orjson.dumps(chunk) + b"\n\n"
    yield b"data: [DONE]\n\n"


class DemoPool:
    """Answers demo requests in the router (the :class:`~switchboard_router.upstream_http.UpstreamPool` seam)."""

    def __init__(self, timeouts: Timeouts, max_connections: int) -> None:
        self.timeouts = timeouts

    @staticmethod
    def _body(request: UpstreamRequest) -> dict[str, Any] | Answer:
        try:
            body = orjson.loads(request.content)
        except orjson.JSONDecodeError:
            return _error(400, "The request body is not JSON.")
        return body if isinstance(body, dict) else _error(400, "The request body must be a JSON object.")

    async def fetch(self, request: UpstreamRequest, within: float | None = None) -> Answer:  # answers at once
        body = self._body(request)
        if isinstance(body, Answer):
            return body
        try:
            if request.url.endswith("/embeddings"):
                answer = demo_model.embeddings(body)
            elif request.url.endswith("/chat/completions"):
                answer = demo_model.chat_completion(body, int(time.time()))
            else:
                return _error(404, f"The demo model serves /chat/completions and /embeddings, not {request.url}.")
        except demo_model.DemoRequestError as exc:
            return _error(400, str(exc))
        return Answer(200, orjson.dumps(answer), _JSON)

    async def open_stream(self, request: UpstreamRequest) -> Any:
        body = self._body(request)
        if isinstance(body, Answer):
            return _Refusal(body)
        try:
            demo_model.answer(body)  # a request the model refuses is refused before the stream starts
        except demo_model.DemoRequestError as exc:
            return _Refusal(_error(400, str(exc)))
        delay = float(request.headers.get(_DELAY_HEADER, DEFAULT_CHUNK_DELAY_MS)) / 1000
        return DemoStream(_sse(demo_model.chat_chunks(body, int(time.time()))), delay)

    async def aclose(self) -> None:
        return None


class _Refusal:
    """An error answer to a stream request, read whole (as the stream pump reads any status >= 400)."""

    def __init__(self, answer: Answer) -> None:
        self.status = answer.status
        self._answer = answer

    def headers(self) -> dict[str, str]:
        return self._answer.headers()

    async def read(self) -> bytes:
        return self._answer.body

    async def next_chunk(self) -> bytes:
        return b""

    def close(self) -> None:
        return None
