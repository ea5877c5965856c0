"""The engine keeps one HTTP pool per deployment, replaces it when a reload changes the deployment's
timeouts, and closes a pool it no longer hands out once the calls it may carry are past their timeout."""

from __future__ import annotations

import asyncio
from typing import Any

from switchboard_router.catalog.config import parse_catalog
from switchboard_router.deployment import Timeouts
from switchboard_router.engine import Engine


class CountingPool:
    def __init__(self, timeouts: Timeouts, max_connections: int) -> None:
        self.timeouts = timeouts
        self.max_connections = max_connections
        self.closed = 0

    async def fetch(self, request: Any, within: float | None = None) -> Any:
        raise AssertionError("no call in this test")

    async def open_stream(self, request: Any) -> Any:
        raise AssertionError("no call in this test")

    async def aclose(self) -> None:
        self.closed += 1


def catalog(*deployments: tuple[str, dict[str, float]]) -> Any:
    return parse_catalog({"models": [{"name": "m", "deployments": [
        {"id": dep_id, "provider": "openai", "model": "x", "api_base": "http://x.invalid/v1", "api_key": "k",
         "timeouts": timeouts} for dep_id, timeouts in deployments]}]})


async def test_a_reload_replaces_pools_and_closes_the_old_ones_after_their_calls_could_end() -> None:
    engine = Engine(catalog(("a", {"connect": 0.05, "total": 0.1}), ("b", {"connect": 0.05, "total": 0.1})),
                    max_connections=7, pool_factory=CountingPool)
    a, b = engine.catalog.models["m"].deployments
    pool_a, pool_b = engine.pool_for(a), engine.pool_for(b)
    assert engine.pool_for(a) is pool_a and isinstance(pool_a, CountingPool) and pool_a.max_connections == 7

    engine.replace_catalog(catalog(("a", {"connect": 0.05, "total": 0.1}), ("b", {"connect": 0.05, "total": 0.1})))
    assert engine.pool_for(engine.catalog.models["m"].deployments[0]) is pool_a, "same timeouts: same pool"

    engine.replace_catalog(catalog(("a", {"connect": 0.05, "total": 0.2})))  # b is gone, a's timeouts changed
    [a2] = engine.catalog.models["m"].deployments
    new_a = engine.pool_for(a2)
    assert new_a is not pool_a and isinstance(new_a, CountingPool) and new_a.timeouts.total == 0.2
    assert (pool_a.closed, pool_b.closed) == (0, 0), "calls in flight may still use the old pools"
    await asyncio.sleep(0.25)
    assert (pool_a.closed, pool_b.closed) == (1, 1)

    engine.replace_catalog(catalog(("a", {"connect": 0.05, "total": 5})))
    [a3] = engine.catalog.models["m"].deployments
    newest = engine.pool_for(a3)
    await engine.aclose()  # shutdown closes the live pool and the one still waiting to be retired
    assert isinstance(newest, CountingPool) and (newest.closed, new_a.closed) == (1, 1)
