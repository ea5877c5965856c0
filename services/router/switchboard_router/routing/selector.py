"""Which deployment of a model serves the next attempt.

Deployments are first filtered by the request's privacy tier and
jurisdictions (a hard rule, retries and fallbacks included), then by health,
then one is picked by the model's strategy.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Protocol

from switchboard_router.deployment import Deployment
from switchboard_router.routing.health import HealthBoard


class Draws(Protocol):
    """Where ``choose`` draws from: a ``random.Random``, or the ``random`` module itself (the default)."""

    def choice(self, seq: Sequence[Deployment]) -> Deployment: ...

    def random(self) -> float: ...


def tier_allows(deployment_tier: str, required: str, tiers: Sequence[str]) -> bool:
    """A deployment satisfies a required tier when its tier is the same or stricter
    (tiers are ordered from strictest to loosest)."""
    if not required:
        return True
    try:
        return tiers.index(deployment_tier) <= tiers.index(required)
    except ValueError:
        return False


def permitted(
    deployments: Sequence[Deployment], tier: str, jurisdictions: Sequence[str], tiers: Sequence[str]
) -> list[Deployment]:
    return [
        d
        for d in deployments
        if tier_allows(d.privacy_tier, tier, tiers) and (not jurisdictions or d.jurisdiction in jurisdictions)
    ]


def choose(
    candidates: Sequence[Deployment], strategy: str, health: HealthBoard, rng: Draws | None = None
) -> Deployment:
    """Picks one of ``candidates`` (non-empty) by ``strategy``."""
    rng = rng or random
    if len(candidates) == 1:
        return candidates[0]
    if strategy == "least_inflight":
        low = min(health.get(d.id).inflight for d in candidates)
        pool = [d for d in candidates if health.get(d.id).inflight == low]
        return rng.choice(pool)
    if strategy == "lowest_latency":
        untried = [d for d in candidates if health.get(d.id).latency_ewma == 0]
        if untried:
            return rng.choice(untried)
        return min(candidates, key=lambda d: health.get(d.id).latency_ewma)
    total = sum(d.weight for d in candidates)
    pick = rng.random() * total
    for d in candidates:
        pick -= d.weight
        if pick <= 0:
            return d
    return candidates[-1]
