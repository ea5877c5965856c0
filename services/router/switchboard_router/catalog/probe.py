"""Which configured deployments go live: conditions that depend on more than the environment.

* ``only_if_reachable: true`` (a local Ollama, say): live only when its server answers.
* ``only_if_alone: true`` (the shipped ``demo`` model): live only while no other model is, so that a
  gateway with no provider key still answers, and steps aside as soon as a real provider is configured.
"""

from __future__ import annotations

import asyncio
import dataclasses

from switchboard_router.catalog.config import Catalog, ModelEntry
from switchboard_router.deployment import Deployment, Timeouts
from switchboard_router.providers.base import UpstreamRequest
from switchboard_router.upstream_http import ConnectTimeout, HttpPool, ReadTimeout, TransportError, UpstreamPool


async def _reachable(pool: UpstreamPool, deployment: Deployment) -> bool:
    base = deployment.api_base.rstrip("/")
    try:
        answer = await pool.fetch(UpstreamRequest("GET", f"{base}/models", {}, b""))
    except (ConnectTimeout, ReadTimeout, TransportError):
        return False
    return answer.status < 500


async def drop_unreachable(catalog: Catalog, timeout: float = 1.0) -> Catalog:
    probed = [d for e in catalog.models.values() for d in e.deployments if d.extra.get("only_if_reachable")]
    if not probed:
        return catalog
    # ``timeout`` bounds connecting and each silence of the server, as it always has.
    pool = HttpPool(Timeouts(connect=timeout, first_byte=timeout), len(probed))
    try:
        results = await asyncio.gather(*(_reachable(pool, d) for d in probed))
    finally:
        await pool.aclose()
    down = {d.id for d, ok in zip(probed, results, strict=True) if not ok}
    if not down:
        return catalog
    models: dict[str, ModelEntry] = {}
    for name, entry in catalog.models.items():
        gone = [d for d in entry.deployments if d.id in down]
        if gone:
            entry = dataclasses.replace(
                entry,
                deployments=tuple(d for d in entry.deployments if d.id not in down),
                unavailable=entry.unavailable + tuple((d.id, f"{d.api_base} did not answer") for d in gone),
            )
        models[name] = entry
    return dataclasses.replace(catalog, models=models)


def drop_if_not_alone(catalog: Catalog) -> Catalog:
    """Leaves out ``only_if_alone`` deployments when a model without that mark has a live deployment."""
    others = any(not d.extra.get("only_if_alone") for e in catalog.models.values() for d in e.deployments)
    if not others:
        return catalog
    models: dict[str, ModelEntry] = {}
    for name, entry in catalog.models.items():
        alone = [d for d in entry.deployments if d.extra.get("only_if_alone")]
        if alone:
            entry = dataclasses.replace(
                entry,
                deployments=tuple(d for d in entry.deployments if not d.extra.get("only_if_alone")),
                unavailable=entry.unavailable + tuple((d.id, "only_if_alone: steps aside while other models are live")
                                                      for d in alone),
            )
        models[name] = entry
    return dataclasses.replace(catalog, models=models)


async def live_catalog(catalog: Catalog) -> Catalog:
    """The catalog with every conditional deployment decided: reachability first, then ``only_if_alone``."""
    return drop_if_not_alone(await drop_unreachable(catalog))
