"""Deployments marked ``only_if_reachable`` (a local Ollama, say) go live only when their server answers."""

from __future__ import annotations

import asyncio
import dataclasses

import httpx

from switchboard_router.catalog.config import Catalog, ModelEntry
from switchboard_router.deployment import Deployment


async def _reachable(client: httpx.AsyncClient, deployment: Deployment) -> bool:
    base = deployment.api_base.rstrip("/")
    try:
        response = await client.get(f"{base}/models")
    except httpx.HTTPError:
        return False
    return response.status_code < 500


async def drop_unreachable(catalog: Catalog, timeout: float = 1.0) -> Catalog:
    probed = [d for e in catalog.models.values() for d in e.deployments if d.extra.get("only_if_reachable")]
    if not probed:
        return catalog
    async with httpx.AsyncClient(timeout=timeout) as client:
        results = await asyncio.gather(*(_reachable(client, d) for d in probed))
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
