"""Traces: off at no cost without an endpoint; with one, a single trace follows a
request from the facade through the gRPC hops to the provider call.

The collector is a real OTLP/gRPC server on loopback; the gateway is the real
four processes; the caller's ``traceparent`` must be the root of it all.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path

import grpc
import httpx
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as gen_ai

from switchboard_common import tracing
from tests.conftest import fake_models
from tests.fakes.openai_provider import FakeOpenAI
from tests.harness import Gateway, start_gateway


class Collector(trace_service_pb2_grpc.TraceServiceServicer):
    """Keeps every exported span as (service name, span)."""

    def __init__(self) -> None:
        self.spans: list[tuple[str, object]] = []
        self.lock = threading.Lock()

    def Export(self, request: trace_service_pb2.ExportTraceServiceRequest,
               context: grpc.ServicerContext) -> trace_service_pb2.ExportTraceServiceResponse:
        with self.lock:
            for resource_spans in request.resource_spans:
                attributes = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
                for scope_spans in resource_spans.scope_spans:
                    for span in scope_spans.spans:
                        self.spans.append((attributes.get("service.name", ""), span))
        return trace_service_pb2.ExportTraceServiceResponse()

    def of_trace(self, trace_id: bytes) -> list[tuple[str, object]]:
        with self.lock:
            return [(s, span) for s, span in self.spans if span.trace_id == trace_id]  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def collector() -> Iterator[tuple[Collector, int]]:
    servicer = Collector()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield servicer, port
    server.stop(0)


@pytest.fixture(scope="module")
def traced_gateway(tmp_path_factory: pytest.TempPathFactory, fake_openai: tuple[FakeOpenAI, str],
                   collector: tuple[Collector, int]) -> Iterator[Gateway]:
    tmp: Path = tmp_path_factory.mktemp("traced")
    gw = start_gateway(tmp, fake_models(fake_openai[1]), extra_env={
        tracing.ENDPOINT_ENV: f"http://127.0.0.1:{collector[1]}",
        "OTEL_BSP_SCHEDULE_DELAY": "100",
    })
    yield gw
    gw.stop()


def test_tracing_is_off_without_an_endpoint() -> None:
    assert tracing.setup("switchboard-test", env={}) is False
    assert tracing.enabled() is False
    with tracing.http_server_span("GET", "/", []) as span:
        assert span is None
    assert tracing.current_trace_id() == ""


def test_one_trace_follows_a_request_to_the_provider(traced_gateway: Gateway,
                                                      collector: tuple[Collector, int]) -> None:
    trace_id, parent_id = secrets.token_bytes(16), secrets.token_bytes(8)
    key = traced_gateway.create_key(key_alias="traced")
    response = httpx.post(
        f"{traced_gateway.base_url}/v1/chat/completions",
        json={"model": "fake-good", "messages": [{"role": "user", "content": "trace me"}]},
        headers={"Authorization": f"Bearer {key}", "traceparent": f"00-{trace_id.hex()}-{parent_id.hex()}-01"},
        timeout=30)
    assert response.status_code == 200

    wanted = {"switchboard-facade", "switchboard-auth", "switchboard-router"}
    deadline = time.monotonic() + 15
    spans = collector[0].of_trace(trace_id)
    while time.monotonic() < deadline and not (wanted <= {s for s, _ in spans} and _provider_call(spans)
                                               and _facade_server(spans)):
        time.sleep(0.1)
        spans = collector[0].of_trace(trace_id)

    services = {s for s, _ in spans}
    assert wanted <= services, f"trace reached only {services}"
    by_id = {span.span_id: (service, span) for service, span in spans}  # type: ignore[attr-defined]
    servers = [span for service, span in spans if service == "switchboard-facade"
               and span.kind == span.SPAN_KIND_SERVER]  # type: ignore[attr-defined]
    assert len(servers) == 1, "one server span for the HTTP request"
    root = servers[0]
    assert root.name == "POST /v1/chat/completions"  # type: ignore[attr-defined]
    attributes = {a.key: a.value.string_value for a in root.attributes}  # type: ignore[attr-defined]
    assert attributes.get("switchboard.request_id") == response.headers["x-request-id"], root
    assert attributes["switchboard.deployment"] == response.headers["x-switchboard-deployment"]
    assert root.parent_span_id == parent_id  # type: ignore[attr-defined]
    provider_call = _provider_call(spans)
    assert provider_call is not None, "no span for the provider call"
    # Walk from the provider call up to the facade's server span: every hop is in the chain.
    chain, current = [], provider_call
    while current is not None:
        chain.append(current)
        current = by_id.get(current.parent_span_id, (None, None))[1]  # type: ignore[attr-defined]
    names = [span.name for span in chain]  # type: ignore[attr-defined]
    assert chain[-1] is root, names
    assert any("switchboard.v1.Router/Complete" in n for n in names), names
    # The provider attempt is a GenAI span (semantic conventions), parent of the HTTP call to the provider.
    genai = [span for span in chain if any(a.key == gen_ai.GEN_AI_OPERATION_NAME for a in span.attributes)]
    assert len(genai) == 1, names
    values = {a.key: a.value for a in genai[0].attributes}  # type: ignore[attr-defined]
    assert genai[0].name == "chat good" and values[gen_ai.GEN_AI_PROVIDER_NAME].string_value == "openai"
    assert values[gen_ai.GEN_AI_USAGE_OUTPUT_TOKENS].int_value > 0
    assert chain[0] is not genai[0] and chain[1] is genai[0], "the HTTP call is the GenAI span's child"


def _facade_server(spans: list[tuple[str, object]]) -> bool:
    """Whether the facade's server span has arrived (it is exported last: it ends with the response)."""
    return any(service == "switchboard-facade" and span.kind == span.SPAN_KIND_SERVER  # type: ignore[attr-defined]
               for service, span in spans)


def _provider_call(spans: list[tuple[str, object]]) -> object | None:
    """The router's client span for the HTTP call to the provider."""
    for service, span in spans:
        if (service == "switchboard-router" and span.kind == span.SPAN_KIND_CLIENT  # type: ignore[attr-defined]
                and any(a.key == "http.request.method" for a in span.attributes)):  # type: ignore[attr-defined]
            return span
    return None
