"""Prometheus metrics of every Switchboard service, and their ``/metrics`` endpoint.

One registry per process holds every series the services export. The names are
the contract with the dashboards and alert rules under ``deploy/observability``.
Labels are bounded by construction: routes are templates, models and deployments
come from the catalog, statuses and error kinds are small enums, teams are the
few an administrator creates. Key ids and aliases are never labels (they go to
logs, and to the billing ledger), with one exception: the budget gauges name the
key or team whose budget they show, for at most ``SWITCHBOARD_BUDGET_METRICS_SUBJECTS``
subjects per billing process (see :class:`_BudgetStates`).

Recording never does I/O. What is recorded on every request uses the
lock-free collectors of :mod:`switchboard_common.loop_metrics` (an update is a
dict lookup and an addition); rarer events use prometheus_client's own metrics,
whose ``.labels(...).inc()`` other modules call directly. gRPC services serve the registry over plain HTTP
on ``SWITCHBOARD_METRICS_PORT`` (:func:`serve`); the facade serves it on its own
HTTP port at :data:`PATH` (see :mod:`switchboard_common.http_metrics`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from switchboard_common.loop_metrics import LoopCounter, LoopGauge, LoopHistogram
from switchboard_common.ports import PortInUse, port_in_use_message

log = logging.getLogger(__name__)

#: The settings field (``ServiceSettings.metrics_port``) that holds the gRPC services' metrics port.
PORT_SETTING = "metrics_port"
#: Where the exposition is served.
PATH = "/metrics"
CONTENT_TYPE = CONTENT_TYPE_LATEST

REGISTRY = CollectorRegistry()
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)
GCCollector(registry=REGISTRY)

#: Seconds; from a cache hit on a tiny prompt to a long reasoning answer.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900)
#: Seconds to the first streamed token.
TTFT_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, 30, 60)
#: Seconds inside one gRPC handler (auth and billing answer in milliseconds).
RPC_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10, 60, 300, 900)

# -- the HTTP edge (facade) ---------------------------------------------------------------

REQUESTS = LoopCounter(
    "switchboard_requests", "HTTP requests answered by the facade.",
    ["route", "method", "model", "deployment", "status"], REGISTRY)
REQUEST_LATENCY = LoopHistogram(
    "switchboard_request_duration_seconds", "Time from request to the last byte of the answer.",
    ["route", "model"], LATENCY_BUCKETS, REGISTRY)
TIME_TO_FIRST_TOKEN = LoopHistogram(
    "switchboard_time_to_first_token_seconds", "Time from request to the first streamed chunk.",
    ["model"], TTFT_BUCKETS, REGISTRY)
OVERHEAD_BUCKETS = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.02, 0.05, 0.1, 0.25, 1)
GATEWAY_OVERHEAD = LoopHistogram(
    "switchboard_gateway_overhead_seconds",
    "Time the gateway itself added: total time minus time spent waiting on the provider (for streams: until the "
    "first byte was sent).", ["kind"], OVERHEAD_BUCKETS, REGISTRY)
INFLIGHT = LoopGauge(
    "switchboard_inflight_requests", "HTTP requests (and open streams) in progress.", [], REGISTRY)
OUTBOX_DEPTH = Gauge(
    "switchboard_outbox_depth", "Usage events written to the facade's outbox and not yet settled by billing.",
    registry=REGISTRY)

# -- gRPC servers (every service) -----------------------------------------------------------

RPCS = LoopCounter(
    "switchboard_grpc_server_handled", "RPCs completed by a service, by method and status code.",
    ["service", "method", "code"], REGISTRY)
RPC_LATENCY = LoopHistogram(
    "switchboard_grpc_server_handling_seconds", "Time inside an RPC handler.",
    ["service", "method"], RPC_BUCKETS, REGISTRY)
RPC_INFLIGHT = LoopGauge(
    "switchboard_grpc_server_inflight", "RPCs in progress.", ["service", "method"], REGISTRY)
DENIALS = Counter(
    "switchboard_denials", "Requests refused by a policy: rate limits, budgets, authentication, permissions.",
    ["service", "reason"], registry=REGISTRY)

# -- providers (router) ----------------------------------------------------------------------

TOKENS = LoopCounter(
    "switchboard_tokens", "Tokens processed, by direction (in = prompt, out = completion); team is the caller's "
    "team id (empty: none); source is how the call came in (http, or grpc for an internal service calling the "
    "router directly).", ["model", "deployment", "team", "direction", "source"], REGISTRY)
UPSTREAM_ERRORS = Counter(
    "switchboard_upstream_errors", "Failed completions whose cause was a provider, by provider and error kind.",
    ["provider", "kind"], registry=REGISTRY)
RETRIES = Counter(
    "switchboard_retries", "Provider calls beyond the first one of a completion.", ["model"], registry=REGISTRY)
FALLBACKS = Counter(
    "switchboard_fallbacks", "Completions served by a fallback model.", ["model", "served_model"], registry=REGISTRY)
COOLDOWNS = Counter(
    "switchboard_cooldowns", "Times a deployment was put into cool-down after repeated failures.",
    ["deployment"], registry=REGISTRY)
CONTEXT_CACHES = Counter(
    "switchboard_context_caches", "Explicit provider prompt caches (Gemini cachedContents) the router asked to make, "
    "by deployment and outcome: made; refused (the request went out uncached); lost (the provider no longer had "
    "it: the request was sent again without it).", ["deployment", "outcome"],
    registry=REGISTRY)
PROVIDER_LATENCY = LoopHistogram(
    "switchboard_provider_duration_seconds", "Time spent waiting on the provider for one completion.",
    ["provider", "deployment"], LATENCY_BUCKETS, REGISTRY)
PROVIDER_TTFB = LoopHistogram(
    "switchboard_provider_time_to_first_byte_seconds", "Time from the provider call to its first byte (streams).",
    ["provider", "deployment"], TTFT_BUCKETS, REGISTRY)

# -- money (billing) ---------------------------------------------------------------------------

SPEND_MICROS = Counter(
    "switchboard_spend_micros", "Spend recorded in the ledger, in micro-dollars; team is the caller's team id "
    "(empty: none); source is how the call came in (http, or grpc for an internal service calling the router "
    "directly).", ["model", "team", "source"], registry=REGISTRY)
ALERTS_RAISED = Counter(
    "switchboard_alerts_raised", "Budget alerts and spend reports raised by this billing replica (each once over all "
    "replicas); kind is threshold, soft_budget or report.", ["kind"], registry=REGISTRY)
ALERT_DELIVERIES = Counter(
    "switchboard_alert_deliveries", "Attempts to deliver an alert to a webhook; outcome is delivered or failed "
    "(failed attempts are retried).", ["webhook", "outcome"], registry=REGISTRY)


class _DeploymentStates(Collector):
    """``switchboard_deployment_cooling_down``: 1 for each deployment currently left out, else 0.

    Read at scrape time from a callback, so the router pays nothing between scrapes.
    """

    NAME = "switchboard_deployment_cooling_down"
    LABELS = ("deployment",)

    def __init__(self) -> None:
        self.source: Callable[[], Iterable[tuple[str, bool]]] | None = None

    def collect(self) -> Iterable[GaugeMetricFamily]:
        family = GaugeMetricFamily(self.NAME, "1 while a deployment is in cool-down after repeated failures.",
                                   labels=list(self.LABELS))
        if self.source is not None:
            for deployment, cooling in self.source():
                family.add_metric([deployment], 1.0 if cooling else 0.0)
        yield family


_DEPLOYMENT_STATES = _DeploymentStates()
REGISTRY.register(_DEPLOYMENT_STATES)


class _BudgetStates(Collector):
    """``switchboard_budget_remaining_micros`` and ``switchboard_budget_limit_micros`` per key and team budget.

    Labels: ``scope`` (key, team or user), ``subject`` (its id) and ``kind`` (``budget``: max_budget
    over its window; ``daily``: max_daily_spend). Billing refreshes the values in the background for the
    subjects with a budget it saw most recently, at most ``SWITCHBOARD_BUDGET_METRICS_SUBJECTS`` of them, so
    the series stay bounded however many keys exist; the scrape reads the last values.
    """

    REMAINING = "switchboard_budget_remaining_micros"
    LIMIT = "switchboard_budget_limit_micros"
    LABELS = ("scope", "subject", "kind")

    def __init__(self) -> None:
        self.source: Callable[[], Iterable[tuple[str, str, str, int, int]]] | None = None

    def collect(self) -> Iterable[GaugeMetricFamily]:
        remaining = GaugeMetricFamily(self.REMAINING, "Micro-dollars a key's or team's budget has left in its "
                                      "current window (limit - spent - held in flight).", labels=list(self.LABELS))
        limit = GaugeMetricFamily(self.LIMIT, "A key's or team's budget per window, in micro-dollars.",
                                  labels=list(self.LABELS))
        if self.source is not None:
            for scope, subject, kind, left, cap in self.source():
                remaining.add_metric([scope, subject, kind], float(left))
                limit.add_metric([scope, subject, kind], float(cap))
        yield remaining
        yield limit


_BUDGET_STATES = _BudgetStates()
REGISTRY.register(_BUDGET_STATES)


def observe_deployments(source: Callable[[], Iterable[tuple[str, bool]]]) -> None:
    """Registers the router's view of its deployments: ``(deployment id, cooling down?)`` pairs."""
    _DEPLOYMENT_STATES.source = source


def observe_budgets(source: Callable[[], Iterable[tuple[str, str, str, int, int]]]) -> None:
    """Registers billing's budget standings: ``(scope, subject, kind, remaining micros, limit micros)`` tuples."""
    _BUDGET_STATES.source = source


def observe_outbox(depth: Callable[[], float]) -> None:
    """Registers the facade's outbox; its depth is read at scrape time."""
    OUTBOX_DEPTH.set_function(depth)


def series() -> dict[str, tuple[str, ...]]:
    """Every Switchboard series this registry can export, with its label names.

    Histograms appear as their ``_bucket`` (with ``le``), ``_count`` and ``_sum``
    series and counters as ``_total``, as Prometheus stores them: the names that
    dashboards and alert rules may use.
    """
    out: dict[str, tuple[str, ...]] = {_DEPLOYMENT_STATES.NAME: _DEPLOYMENT_STATES.LABELS,
                                       _BUDGET_STATES.REMAINING: _BUDGET_STATES.LABELS,
                                       _BUDGET_STATES.LIMIT: _BUDGET_STATES.LABELS}
    for value in globals().values():
        if isinstance(value, LoopCounter | LoopGauge | LoopHistogram):
            name, labels = value.name, value.labelnames
        elif isinstance(value, Counter | Gauge | Histogram):
            name, labels = value._name, tuple(value._labelnames)
        else:
            continue
        if isinstance(value, Counter | LoopCounter):
            out[f"{name}_total"] = labels
        elif isinstance(value, Histogram | LoopHistogram):
            out[f"{name}_bucket"] = (*labels, "le")
            out[f"{name}_count"] = labels
            out[f"{name}_sum"] = labels
        else:
            out[name] = labels
    return out


def exposition() -> bytes:
    """The registry in the Prometheus text format."""
    return generate_latest(REGISTRY)


def serve(port: int, host: str = "0.0.0.0") -> int:
    """Serves :data:`PATH` on ``port`` from a daemon thread (0: disabled); returns the bound port or 0.

    It listens on every interface (Prometheus scrapes it from other pods); the thread is outside
    the event loop, so a slow scrape never delays an RPC.
    """
    if port <= 0:
        return 0
    try:
        server, _thread = start_http_server(port, addr=host, registry=REGISTRY)
    except OSError as exc:
        raise PortInUse(port_in_use_message(f"{host}:{port}", "SWITCHBOARD_METRICS_PORT")) from exc
    bound = int(server.server_address[1])
    log.info("metrics listening", extra={"port": bound, "path": PATH})
    return bound
