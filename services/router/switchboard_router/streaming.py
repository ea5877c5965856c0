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

from switchboard_common.errors import ServiceError
from switchboard_router.calls import authorize, build, use_prompt_cache
from switchboard_router.deployment import Deployment
from switchboard_router.outcomes import (
    DEADLINE,
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
from switchboard_router.providers.base import CACHE_GONE, CacheWrite, StreamOptions, TokenUsage, UpstreamError
from switchboard_router.providers.openai_shapes import openai_usage
from switchboard_router.providers.registry import adapter_for
from switchboard_router.routing.health import HealthBoard
from switchboard_router.upstream_http import ConnectTimeout, ReadTimeout, TransportError, UpstreamPool, UpstreamStream
from switchboard_router.usage_check import credible
from switchboard_router.usage_estimate import ProducedSoFar


async def stream_once(pool: UpstreamPool, health: HealthBoard, deployment: Deployment, served_model: str,
                      body: dict[str, Any], attempt: int, include_usage: bool,
                      deadline: float | None = None) -> AsyncIterator[StreamItem]:
    """The items of one streamed attempt; ``deadline`` (``time.perf_counter()``) bounds the wait for its first byte."""
    adapter = adapter_for(deployment.provider)
    request = build(adapter, deployment, body, stream=True)
    await authorize(adapter, deployment, request)
    await use_prompt_cache(adapter, deployment, request, pool)
    translator = adapter.stream_translator(deployment, StreamOptions(include_usage=include_usage, model=served_model))
    route = Attempted(deployment, attempt, served_model)
    t = deployment.timeouts
    state = health.get(deployment.id)
    started = time.perf_counter()
    first_byte_due, first_byte = started + t.connect + t.first_byte, "first_byte"
    if deadline is not None and deadline < first_byte_due:
        first_byte_due, first_byte = deadline, DEADLINE
    state.inflight += 1
    pump: _Pump | None = None
    try:
        try:
            async with asyncio.timeout(max(0.001, min(first_byte_due, started + t.total) - started)):
                response = await pool.open_stream(request)
                if response.status in CACHE_GONE and request.without_cache():
                    response.close()
                    response = await pool.open_stream(request)
        except TimeoutError as exc:
            raise AttemptFailed(timeout_error(deployment, exc, first_byte), retryable=True) from None
        except (ConnectTimeout, ReadTimeout) as exc:
            raise AttemptFailed(timeout_error(deployment, exc, "first_byte"), retryable=True) from None
        except TransportError as exc:
            raise AttemptFailed(unreachable_error(deployment, exc), retryable=True) from None
        try:
            if response.status >= 400:
                content = await response.read()
                raise AttemptFailed.upstream(adapter.parse_error(response.status, content, response.headers()))
            pump = _Pump(translator, route, body, started, (first_byte_due, first_byte), request.cache_write)
            async for item in pump.run(response, health):
                yield item
        finally:
            # Before the body's end (a failure, or the client cancelled) this closes the provider connection.
            response.close()
    finally:
        state.inflight -= 1
        if request.cache_write is not None and (pump is None or not pump.billed_cache_write):
            request.cache_write.give_back()


#: What a translator raises on bytes it cannot read (orjson's JSONDecodeError is a ValueError).
_UNREADABLE = (ValueError, TypeError, KeyError, AttributeError, IndexError)


class _Pump:
    """Relays one provider stream: timing its reads, checking what it says, counting what it produced."""

    def __init__(self, translator: Any, route: Attempted, body: dict[str, Any], started: float,
                 first_byte_due: tuple[float, str], cache_write: CacheWrite | None = None) -> None:
        self.translator = translator
        #: An explicit cache made for this request, billed with its usage once the provider answered.
        self.cache_write = cache_write
        self.billed_cache_write = False
        self.route = route
        self.body = body
        self.started = started
        self.first_byte_due = first_byte_due
        self.produced = ProducedSoFar()
        #: Whether the provider sent anything the translator could read (a chunk or usage).
        self.readable = False
        #: The last usage report judged, and whether it was believed.
        self.usage_seen: TokenUsage | None = None
        self.usage_rejected = False

    def _first_read_limit(self) -> tuple[float, str]:
        """How long a read before the first chunk may wait, and which timeout that is.

        The first chunk is due ``first_byte`` after the request went out (connecting aside), headers or
        not, or at the request's deadline; no single read may wait longer than ``first_byte`` either.
        """
        t = self.route.deployment.timeouts
        now = time.perf_counter()
        due, label = self.first_byte_due
        limit, which = (max(0.001, due - now), label) if due - now < t.first_byte else (t.first_byte, "first_byte")
        left = self.started + t.total - now
        return (max(0.001, left), "total") if left < limit else (limit, which)

    def _judge_usage(self, chunks: list[bytes]) -> list[bytes]:
        """Checks a new usage report once; while the last one is not credible, usage chunks carry the estimate."""
        usage = self.translator.usage
        if usage is not self.usage_seen:
            self.usage_seen = usage
            if usage is not None:
                self.readable = True
                self.usage_rejected = usage.reported_by_provider and not credible(
                    usage, self.body, self.route.deployment)
        if not self.usage_rejected or not chunks:
            return chunks
        estimate = openai_usage(self.produced.usage(None, failed=True, body=self.body))
        return [with_usage(raw, estimate) if b'"usage"' in raw else raw for raw in chunks]

    async def run(self, response: UpstreamStream, health: HealthBoard) -> AsyncIterator[StreamItem]:
        deployment = self.route.deployment
        translator = self.translator
        t = deployment.timeouts
        idle_limit = min(t.stream_idle, t.first_byte)  # no single read waits longer than first_byte either
        end_by = self.started + t.total
        ttfb_ms = 0.0
        announced = False
        error: ServiceError | None = None
        while True:
            if announced:
                limit, which = idle_limit, "stream_idle"
                left = end_by - time.perf_counter()
                if left < limit:
                    limit, which = max(0.001, left), "total"
            else:
                limit, which = self._first_read_limit()
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
                broken = UpstreamError(
                    502, f"The provider of {deployment.described} broke the stream off: {exc or type(exc).__name__}",
                    type="connection_error", code="upstream_stream_interrupted")
                error = service_error_from_upstream(broken, deployment)
                break
            ended = not data
            try:
                chunks = translator.close() if ended else translator.feed(data)
                failure = translator.error
            except _UNREADABLE as exc:
                chunks, failure = [], malformed_stream(deployment, f"it could not be read ({exc})")
            if chunks:
                self.readable = True
                self.produced.add(chunks)
            if translator.usage is not self.usage_seen or self.usage_rejected:
                chunks = self._judge_usage(chunks)
            if failure is None and ended and not self.readable:
                failure = malformed_stream(deployment, "it ended without any event the gateway could read")
            if failure is not None and not announced and not chunks:
                raise AttemptFailed.upstream(failure)
            if not announced and (chunks or data):
                announced = True
                ttfb_ms = (time.perf_counter() - self.started) * 1000
                health.record_success(deployment.id, ttfb_ms / 1000)
                yield StreamStarted(self.route, ttfb_ms)
            if chunks:
                yield StreamChunks(chunks)
            if failure is not None:
                error = service_error_from_upstream(failure, deployment)
                break
            if ended:
                break
        if not announced:
            ttfb_ms = (time.perf_counter() - self.started) * 1000
            yield StreamStarted(self.route, ttfb_ms)
        if not self.readable:
            usage = TokenUsage(reported_by_provider=False)  # nothing readable was served: nothing is billed
        else:
            reported = None if self.usage_rejected else translator.usage
            usage = self.produced.usage(reported, failed=error is not None, body=self.body)
            if self.cache_write is not None:
                usage, self.billed_cache_write = usage.with_cache_write(self.cache_write), True
        provider_ms = (time.perf_counter() - self.started) * 1000
        yield StreamFinished(usage, self.route, provider_ms, ttfb_ms, error)


def malformed_stream(deployment: Deployment, why: str) -> UpstreamError:
    """The error of a stream answered with 200 whose body is not the provider's event stream."""
    return UpstreamError(502, f"The provider of {deployment.described} answered with a stream the gateway cannot use: "
                              f"{why}.", type="upstream_error", code="malformed_stream")


def with_usage(raw: bytes, usage: dict[str, Any]) -> bytes:
    """A serialized chunk with its ``usage`` replaced (a chunk without one is returned as it is)."""
    try:
        chunk = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw
    if not isinstance(chunk, dict) or "usage" not in chunk:
        return raw
    chunk["usage"] = usage
    return orjson.dumps(chunk)
