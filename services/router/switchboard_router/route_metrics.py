"""What the router's answers tell the metrics: retries, fallbacks, provider time, upstream errors; and the tokens
of each settled call, with the team that pays (:func:`record_tokens`, called by the router's settlement, the one
place that knows who paid).

The facts are already in the messages going out (``CompleteResponse`` and a
stream's ``StreamEnd``), so the engine needs no metrics code of its own: the
gRPC server's metrics interceptor hands every answer to :func:`observe_response`,
and the Exchange stream does the same for the calls it carries.
"""

from __future__ import annotations

from typing import Any

from switchboard.v1 import common_pb2, router_pb2
from switchboard_common import metrics
from switchboard_common.grpc_metrics import UPSTREAM_KINDS, kind_label


def record_tokens(model: str, route: router_pb2.RouteInfo, usage: common_pb2.Usage, team: str, source: str) -> None:
    """Counts the tokens of one settled call by served model, deployment, paying team and source (http, grpc)."""
    deployment = route.deployment_id
    if deployment:
        served = route.served_model or model
        metrics.TOKENS.inc((served, deployment, team, "in", source), usage.prompt_tokens)
        metrics.TOKENS.inc((served, deployment, team, "out", source), usage.completion_tokens)


def record_route(model: str, route: router_pb2.RouteInfo, usage: common_pb2.Usage, provider_ms: float,
                 ttfb_ms: float = 0.0, error: common_pb2.Error | None = None) -> None:
    """Counts what one finished completion tells: retries, fallbacks, provider time, upstream errors (its tokens
    are counted where it is settled: :func:`record_tokens`)."""
    deployment, provider = route.deployment_id, route.provider
    if deployment:
        metrics.PROVIDER_LATENCY.observe((provider, deployment), provider_ms / 1000)
        if ttfb_ms > 0:
            metrics.PROVIDER_TTFB.observe((provider, deployment), ttfb_ms / 1000)
    if route.attempts > 1:
        metrics.RETRIES.labels(model).inc(route.attempts - 1)
    if route.served_model and route.served_model != model:
        metrics.FALLBACKS.labels(model, route.served_model).inc()
    if error is not None and error.kind in UPSTREAM_KINDS:
        metrics.UPSTREAM_ERRORS.labels(error.provider or provider or "unknown", kind_label(error.kind)).inc()


def observe_response(request: Any, response: Any) -> None:
    """Counts what an answer going out tells (retries, fallbacks, provider time)."""
    if isinstance(response, router_pb2.CompleteResponse):
        record_route(request.model, response.route, response.usage, response.provider_ms)
    elif isinstance(response, router_pb2.StreamEvent) and response.WhichOneof("event") == "end":
        end = response.end
        record_route(request.model, end.route, end.usage, end.provider_ms, end.time_to_first_byte_ms,
                     end.error if end.HasField("error") else None)
