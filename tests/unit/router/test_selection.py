"""Deployment choice: privacy tiers are a hard filter, strategies pick among the rest, breakers cool down."""

from __future__ import annotations

import random
from collections import Counter

from switchboard_router.deployment import Deployment
from switchboard_router.routing.access import is_allowed
from switchboard_router.routing.health import HealthBoard
from switchboard_router.routing.selector import choose, permitted, tier_allows

TIERS = ("zero_retention", "managed_regional_cloud", "standard")


def d(i: int, tier: str = "standard", jurisdiction: str = "us", weight: float = 1.0) -> Deployment:
    return Deployment(id=f"m/{i}", public_model="m", provider="openai", model="x", api_base="", privacy_tier=tier,
                      jurisdiction=jurisdiction, weight=weight)


def test_a_tier_admits_itself_and_stricter_tiers_only() -> None:
    assert tier_allows("zero_retention", "managed_regional_cloud", TIERS)
    assert tier_allows("managed_regional_cloud", "managed_regional_cloud", TIERS)
    assert not tier_allows("standard", "managed_regional_cloud", TIERS)
    assert tier_allows("standard", "", TIERS)
    assert not tier_allows("unknown", "standard", TIERS)


def test_permitted_filters_by_tier_and_jurisdiction() -> None:
    deps = [d(0, "standard", "us"), d(1, "zero_retention", "ca"), d(2, "managed_regional_cloud", "ca")]
    assert [x.id for x in permitted(deps, "managed_regional_cloud", ["ca"], TIERS)] == ["m/1", "m/2"]
    assert [x.id for x in permitted(deps, "", ["us"], TIERS)] == ["m/0"]


def test_weighted_random_follows_weights() -> None:
    deps = [d(0, weight=1), d(1, weight=3)]
    rng = random.Random(7)
    counts = Counter(choose(deps, "weighted_random", HealthBoard(), rng).id for _ in range(4000))
    assert 0.7 < counts["m/1"] / 4000 < 0.8


def test_least_inflight_and_lowest_latency() -> None:
    health = HealthBoard()
    deps = [d(0), d(1)]
    health.get("m/0").inflight = 3
    assert choose(deps, "least_inflight", health).id == "m/1"
    health.record_success("m/0", 0.05)
    health.record_success("m/1", 0.5)
    assert choose(deps, "lowest_latency", health).id == "m/0"


def test_breaker_cools_down_and_comes_back() -> None:
    health = HealthBoard(cooldown_failures=2, cooldown_seconds=10)
    assert not health.record_failure("m/0", now=100)
    assert health.record_failure("m/0", now=100)
    assert not health.is_available("m/0", now=105)
    assert health.is_available("m/0", now=111)


def test_model_access_patterns() -> None:
    groups = {"cheap": ["gpt-4o-mini", "haiku"]}
    assert is_allowed("anything", [], groups)
    assert is_allowed("anthropic/claude", ["anthropic/*"], groups)
    assert not is_allowed("openai/gpt", ["anthropic/*"], groups)
    assert is_allowed("haiku", ["cheap"], groups)
    assert not is_allowed("gpt-4o", ["cheap"], groups)
