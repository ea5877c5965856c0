"""One streamed attempt against one deployment, and the pump that relays its chunks.

Before the first byte a failure is an :class:`AttemptFailed` (the engine may try
elsewhere, invisibly to the client). After it, a failure ends the stream with
:class:`StreamFinished` carrying the error and the usage so far: the provider's
own count when it reported one, else an estimate from what was relayed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson

from switchboard_common.errors import Kind, ServiceError
from switchboard_router.calls import build
from switchboard_router.deployment import Deployment
from switchboard_router.outcomes import (
    Attempted,
    AttemptFailed,
    StreamChunks,
    StreamFinished,
    StreamItem,
    StreamStarted,
    service_error_from_upstream,
    timeout_error,
    unreachable_error,
)
from switchboard_router.providers.base import StreamOptions, TokenUsage
from switchboard_router.providers.registry import adapter_for
from switchboard_router.routing.health import HealthBoard
from switchboard_router.upstream_http import ConnectTimeout, ReadTimeout, TransportError, UpstreamPool, UpstreamStream
from switchboard_translate.generated_text import estimate_tokens, generated_chars


def estimate_prompt_tokens(body: dict[str, Any]) -> int:
    """Tokens of the prompt, estimated from the serialized messages and tools."""
    size = len(orjson.dumps(body.get("messages") or [])) + len(orjson.dumps(body.get("tools") or []))
    return estimate_tokens(size)


class ProducedSoFar:
    """What a stream relayed, kept by reference (no per-chunk work) in case it must be billed by estimate.

    Only a stream that failed mid-way or ended without the provider's usage is
    ever read back; then only the generated text counts (content, reasoning,
    refusals, tool names and arguments), not the JSON envelope around it.
    """

    __slots__ = ("chunks",)

    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    def add(self, chunks: list[bytes]) -> None:
        self.chunks.extend(chunks)

    def chars(self) -> int:
        return generated_chars(self.chunks)

    def usage(self, reported: TokenUsage | None, prompt_tokens: int, failed: bool) -> TokenUsage:
        """The provider's usage; after a failure topped up to what was visibly produced; else an estimate."""
        if reported is not None and not failed:
            return reported
        produced = estimate_tokens(self.chars())
        if reported is None:
            return TokenUsage(prompt_tokens=prompt_tokens, completion_tokens=produced, reported_by_provider=False)
        if reported.completion_tokens < produced:
            reported.completion_tokens = produced
        return reported


async def stream_once(pool: UpstreamPool, health: HealthBoard, deployment: Deployment, served_model: str,
                      body: dict[str, Any], attempt: int, include_usage: bool) -> AsyncIterator[StreamItem]:
    adapter = adapter_for(deployment.provider)
    request = build(adapter, deployment, body, stream=True)
    translator = adapter.stream_translator(deployment, StreamOptions(include_usage=include_usage, model=served_model))
    route = Attempted(deployment, attempt, served_model)
    t = deployment.timeouts
    state = health.get(deployment.id)
    started = time.perf_counter()
    state.inflight += 1
    try:
        try:
            async with asyncio.timeout(min(t.first_byte + t.connect, t.total)):
                response = await pool.open_stream(request)
        except (TimeoutError, ConnectTimeout, ReadTimeout) as exc:
            raise AttemptFailed(timeout_error(deployment, exc, "first_byte"), retryable=True) from None
        except TransportError as exc:
            raise AttemptFailed(unreachable_error(deployment, exc), retryable=True) from None
        try:
            if response.status >= 400:
                content = await response.read()
                raise AttemptFailed.upstream(adapter.parse_error(response.status, content, response.headers()))
            async for item in _pump(response, translator, route, started, health, estimate_prompt_tokens(body)):
                yield item
        finally:
            # Before the body's end (a failure, or the client cancelled) this closes the provider connection.
            response.close()
    finally:
        state.inflight -= 1


async def _pump(response: UpstreamStream, translator: Any, route: Attempted, started: float, health: HealthBoard,
                prompt_estimate: int) -> AsyncIterator[StreamItem]:
    deployment = route.deployment
    t = deployment.timeouts
    deadline = started + t.total
    #: The first chunk is due ``first_byte`` after the request went out (connecting aside), headers or not.
    first_byte_due = started + t.connect + t.first_byte
    #: No single read may wait longer than ``first_byte`` either, silences between chunks included.
    read_limit = t.first_byte
    idle_limit = min(t.stream_idle, read_limit)
    produced = ProducedSoFar()
    ttfb_ms = 0.0
    announced = False
    error: ServiceError | None = None
    while True:
        now = time.perf_counter()
        left = deadline - now
        if announced:
            limit, which = idle_limit, "stream_idle"
        else:
            limit, which = max(0.001, min(first_byte_due - now, read_limit)), "first_byte"
        if left < limit:
            limit, which = max(0.001, left), "total"
        try:
            async with asyncio.timeout(limit):
                data = await response.next_chunk()
        except (TimeoutError, ReadTimeout) as exc:
            if not announced:
                raise AttemptFailed(timeout_error(deployment, exc, which), retryable=True) from None
            error = service_error_from_upstream(timeout_error(deployment, exc, which), deployment)
            break
        except TransportError as exc:
            if not announced:
                raise AttemptFailed(unreachable_error(deployment, exc), retryable=True) from None
            error = ServiceError(Kind.ERROR_KIND_UPSTREAM_UNREACHABLE,
                                 f"The provider of {deployment.id} broke the stream off: {exc or type(exc).__name__}",
                                 code="upstream_stream_interrupted", provider=deployment.provider)
            break
        if not data:
            chunks = translator.close()
            if chunks:
                produced.add(chunks)
                yield StreamChunks(chunks)
            break
        chunks = translator.feed(data)
        if translator.error is not None and not announced and not chunks:
            raise AttemptFailed.upstream(translator.error)
        if not announced and (chunks or data):
            announced = True
            ttfb_ms = (time.perf_counter() - started) * 1000
            health.record_success(deployment.id, ttfb_ms / 1000)
            yield StreamStarted(route, ttfb_ms)
        if chunks:
            produced.add(chunks)
            yield StreamChunks(chunks)
        if translator.error is not None:
            error = service_error_from_upstream(translator.error, deployment)
            break
    if not announced:
        ttfb_ms = (time.perf_counter() - started) * 1000
        yield StreamStarted(route, ttfb_ms)
    usage = produced.usage(translator.usage, prompt_estimate, failed=error is not None)
    provider_ms = (time.perf_counter() - started) * 1000
    yield StreamFinished(usage, route, provider_ms, ttfb_ms, error)
