"""OpenTelemetry traces, exported by OTLP when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set, off otherwise.

:func:`setup` is called once at process start, before any gRPC server or channel
exists. With no endpoint it returns at once and imports nothing: the request
path then pays one boolean test (:func:`enabled`). With an endpoint it installs
an SDK tracer provider with a batching OTLP/gRPC exporter and instruments
``grpc.aio`` servers and channels (the trace context crosses each hop in gRPC
metadata, as ``traceparent``) and httpx clients; the router traces its provider
calls itself (``switchboard_router.upstream_spans``). The facade opens the server
span of each HTTP request in :mod:`switchboard_common.http_metrics`, continuing a
caller's ``traceparent``.

Standard OpenTelemetry variables tune it (sampler, headers, resource
attributes); :data:`ENVIRONMENT` lists the ones the manifests may set.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

log = logging.getLogger(__name__)

#: Setting this turns tracing on (e.g. ``http://otel-collector.monitoring:4317``).
ENDPOINT_ENV = "OTEL_EXPORTER_OTLP_ENDPOINT"
#: OpenTelemetry variables that the SDK and exporter read here.
ENVIRONMENT = frozenset({
    ENDPOINT_ENV,
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_HEADERS",
    "OTEL_EXPORTER_OTLP_INSECURE",
    "OTEL_EXPORTER_OTLP_TIMEOUT",
    "OTEL_SERVICE_NAME",
    "OTEL_RESOURCE_ATTRIBUTES",
    "OTEL_TRACES_SAMPLER",
    "OTEL_TRACES_SAMPLER_ARG",
})
TRACER_NAME = "switchboard"

_enabled = False
_provider: Any = None


def enabled() -> bool:
    return _enabled


def setup(service: str, env: Mapping[str, str] | None = None) -> bool:
    """Turns tracing on for this process if an OTLP endpoint is configured; returns whether it is on."""
    global _enabled, _provider
    env = os.environ if env is None else env
    if _enabled or not env.get(ENDPOINT_ENV):
        return _enabled
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.instrumentation.grpc import GrpcAioInstrumentorClient, GrpcAioInstrumentorServer, filters
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    # OTEL_SERVICE_NAME, when set, wins over the built-in name.
    attributes = {} if env.get("OTEL_SERVICE_NAME") else {"service.name": service}
    provider = TracerProvider(resource=Resource.create(attributes))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=env[ENDPOINT_ENV])))
    trace.set_tracer_provider(provider)
    not_health = filters.negate(filters.health_check())
    GrpcAioInstrumentorServer(filter_=not_health).instrument()
    GrpcAioInstrumentorClient(filter_=not_health).instrument()
    HTTPXClientInstrumentor().instrument()
    _provider = provider
    _enabled = True
    log.info("tracing on", extra={"otlp_endpoint": env[ENDPOINT_ENV]})
    return True


def shutdown() -> None:
    """Flushes the spans still in the batch (called on graceful shutdown; also runs at exit)."""
    if _provider is not None:
        _provider.force_flush()


@contextmanager
def http_server_span(method: str, path: str, headers: list[tuple[bytes, bytes]]) -> Iterator[Any]:
    """The server span of one HTTP request, current while the request runs; None when tracing is off.

    When the web framework already opened a server span for the request (FastAPI
    does once a tracer provider is set), that span is returned to be annotated
    rather than a second one opened. Otherwise a new span continues the caller's
    ``traceparent``; its name starts as the method alone and is renamed to
    ``METHOD /route/template`` once routing is known, keeping names low in cardinality.
    """
    if not _enabled:
        yield None
        return
    from opentelemetry import propagate, trace

    current = trace.get_current_span()
    if current.is_recording() and getattr(current, "kind", None) == trace.SpanKind.SERVER:
        yield current
        return
    carrier = {k.decode("latin-1"): v.decode("latin-1") for k, v in headers}
    parent = propagate.extract(carrier)
    tracer = trace.get_tracer(TRACER_NAME)
    with tracer.start_as_current_span(method, context=parent, kind=trace.SpanKind.SERVER,
                                      attributes={"http.request.method": method, "url.path": path}) as span:
        yield span


def current_trace_id() -> str:
    """Hex id of the current trace, for log lines ("" when tracing is off)."""
    if not _enabled:
        return ""
    from opentelemetry import trace

    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else ""
