"""A client span per provider HTTP call, for processes that run with tracing on.

Imported only when :func:`switchboard_common.tracing.enabled` (it imports the
OpenTelemetry API). :class:`TracedPool` wraps a deployment's pool: each call gets a
``CLIENT`` span, child of the RPC being served, and carries the trace context to the
provider in its headers (``traceparent``). A stream's span ends when its headers
have arrived.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from urllib.parse import urlsplit

from opentelemetry import propagate, trace

from switchboard_common.tracing import TRACER_NAME
from switchboard_router.providers.base import UpstreamRequest
from switchboard_router.upstream_http import Answer, UpstreamPool, UpstreamStream


class TracedPool:
    """``inner`` with a span around every call."""

    def __init__(self, inner: UpstreamPool) -> None:
        self.inner = inner
        self._tracer = trace.get_tracer(TRACER_NAME)

    @contextmanager
    def _span(self, request: UpstreamRequest) -> Iterator[tuple[trace.Span, UpstreamRequest]]:
        url = urlsplit(request.url)
        attributes: dict[str, str | int] = {
            "http.request.method": request.method,
            # Without the query: some providers take credentials there.
            "url.full": f"{url.scheme}://{url.netloc.rpartition('@')[2]}{url.path}",
            "server.address": url.hostname or "",
        }
        if url.port:
            attributes["server.port"] = url.port
        with self._tracer.start_as_current_span(request.method, kind=trace.SpanKind.CLIENT,
                                                attributes=attributes) as span:
            headers = dict(request.headers)
            propagate.inject(headers)
            yield span, replace(request, headers=headers)

    @staticmethod
    def _status(span: trace.Span, status: int) -> None:
        span.set_attribute("http.response.status_code", status)
        if status >= 400:
            span.set_status(trace.StatusCode.ERROR)
            span.set_attribute("error.type", str(status))

    async def fetch(self, request: UpstreamRequest, within: float | None = None) -> Answer:
        with self._span(request) as (span, traced):
            answer = await self.inner.fetch(traced, within)
            self._status(span, answer.status)
        return answer

    async def open_stream(self, request: UpstreamRequest) -> UpstreamStream:
        with self._span(request) as (span, traced):
            stream = await self.inner.open_stream(traced)
            self._status(span, stream.status)
        return stream

    async def aclose(self) -> None:
        await self.inner.aclose()
