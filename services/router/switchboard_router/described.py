"""Every configured model as the router sees it now: live or not, and why (the DescribeModels RPC).

ListModels answers what a client may call; this answers what an operator needs
to see: each deployment of the config with its state — ``live``,
``cooling_down`` (until when, after how many failures) or ``unavailable`` (the
reason the catalog or the start-up probe left it out: a credential variable not
set, a server that did not answer, a demo that steps aside), or ``excluded`` when
the caller's privacy tier or jurisdictions keep its requests away — and the recent
provider latency the router routes by.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Iterable

from switchboard.v1 import router_pb2
from switchboard_router.catalog.config import Catalog, ModelEntry
from switchboard_router.routing.health import HealthBoard

LIVE = "live"
COOLING_DOWN = "cooling_down"
UNAVAILABLE = "unavailable"
#: Loaded, but outside the caller's privacy tier or jurisdictions: its requests never go there.
EXCLUDED = "excluded"


def describe_model(entry: ModelEntry, health: HealthBoard, now: float | None = None,
                   wall_ms: int | None = None, permitted: Collection[str] | None = None) -> router_pb2.ModelDescription:
    """One model with every configured deployment's state; ``now`` is ``time.monotonic()`` (the health board's
    clock) and ``wall_ms`` the same instant in Unix milliseconds; ``permitted`` the deployments the caller's
    privacy tier and jurisdictions allow (None: all)."""
    now = time.monotonic() if now is None else now
    wall_ms = int(time.time() * 1000) if wall_ms is None else wall_ms
    loaded = {d.id for d in entry.deployments}
    reasons = dict(entry.unavailable)
    out = router_pb2.ModelDescription(name=entry.name, fallbacks=entry.fallbacks, strategy=entry.strategy,
                                      live=bool(entry.deployments), owned_by=entry.owned_by)
    for d in entry.configured or entry.deployments:
        state = out.deployments.add(
            deployment_id=d.id, provider=d.provider, upstream_model=d.model, jurisdiction=d.jurisdiction,
            privacy_tier=d.privacy_tier, context_window=d.context_window, max_output_tokens=d.max_output_tokens,
            weight=d.weight)
        if d.id not in loaded:
            state.state = UNAVAILABLE
            state.reason = reasons.get(d.id, "not loaded")
            continue
        if permitted is not None and d.id not in permitted:
            state.state = EXCLUDED
            state.reason = "outside this key's privacy tier or jurisdictions"
            continue
        h = health.get(d.id)
        state.inflight = h.inflight
        state.consecutive_failures = h.consecutive_failures
        state.latency_ms = h.latency_ewma * 1000
        if h.cooling_down(now):
            state.state = COOLING_DOWN
            state.cooldown_until_ms = wall_ms + int((h.cooldown_until - now) * 1000)
            state.reason = "left out after repeated failures"
        else:
            state.state = LIVE
    return out


def describe(catalog: Catalog, health: HealthBoard, names: Iterable[str],
             permitted: Collection[str] | None = None) -> router_pb2.DescribeModelsResponse:
    now, wall_ms = time.monotonic(), int(time.time() * 1000)
    return router_pb2.DescribeModelsResponse(
        models=[describe_model(catalog.models[name], health, now, wall_ms, permitted) for name in names])
