"""``GET /api/billing/models``: the public catalog, no key needed.

Every public model with its provider, context window, prices per million
tokens (exact decimal strings, USD), privacy tier and jurisdiction, as billing
prices them from the gateway's config and the genai-prices data. The same
facts extend ``GET /v1/models`` (see :func:`pricing_by_model`).

The answer carries the list twice: ``data[]`` (OpenAI's list shape, ``id`` per
model) and ``models[]`` (the hosted-gateway shape, ``model_id`` with its prices,
privacy tiers and jurisdictions), so that ``jq '.models[].model_id'`` and
OpenAI-style clients both read it.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from switchboard_billing.client import CatalogDeployment, CatalogModel, GetCatalogResponse
from switchboard_common.errors import ServiceError
from switchboard_facade.errors import error_response
from switchboard_facade.gateway import Gateway, new_request_id

router = APIRouter()

#: Seconds a fetched catalog is reused (prices change only when the config does).
_CACHE_SECONDS = 10.0


async def fetch_catalog(request: Request) -> GetCatalogResponse:
    """Billing's catalog, cached briefly on the app. Raises ServiceError when billing is unreachable."""
    state = request.app.state
    cached = getattr(state, "billing_catalog", None)
    if cached is not None and time.monotonic() - cached[0] < _CACHE_SECONDS:
        return cached[1]  # type: ignore[no-any-return]  # app.state is untyped: (fetched at, GetCatalogResponse)
    gw: Gateway = state.gateway
    catalog = await gw.billing.catalog()
    state.billing_catalog = (time.monotonic(), catalog)
    return catalog


def deployment_json(d: CatalogDeployment) -> dict[str, Any]:
    return {
        "deployment_id": d.deployment_id,
        "provider": d.provider,
        "upstream_model": d.upstream_model,
        "context_window": d.context_window or None,
        "max_output_tokens": d.max_output_tokens or None,
        "input_cost_per_million": d.input_per_million or None,
        "output_cost_per_million": d.output_per_million or None,
        "cached_input_cost_per_million": d.cached_input_per_million or None,
        "cache_write_cost_per_million": d.cache_write_per_million or None,
        "tiered_pricing": d.tiered,
        "price_source": d.price_source or None,
        "priced": bool(d.price_source),
        "byok": d.byok,
        "byok_fee_per_million": d.byok_fee_per_million or None,
        "byok_fee_per_request_micros": d.byok_fee_per_request_micros or None,
        "privacy_tier": d.privacy_tier,
        "jurisdiction": d.jurisdiction or None,
    }


#: A model's own facts: those of its first deployment.
MODEL_FACTS = ("provider", "context_window", "max_output_tokens", "input_cost_per_million", "output_cost_per_million",
               "cached_input_cost_per_million", "cache_write_cost_per_million", "privacy_tier", "jurisdiction",
               "priced")


def model_json(m: CatalogModel) -> dict[str, Any]:
    """A model's facts are its first (primary) deployment's; every deployment is listed too."""
    deployments = [deployment_json(d) for d in m.deployments if d.servable and not d.not_live]
    primary = deployments[0] if deployments else {}
    return {
        "id": m.name,
        "object": "model",
        **{k: primary.get(k) for k in MODEL_FACTS},
        "fallbacks": list(m.fallbacks),
        "deployments": deployments,
    }


def listing_json(entry: dict[str, Any]) -> dict[str, Any]:
    """A model of ``models[]``: its routing key and what it costs and where it may run, deployment by deployment."""
    deployments = entry["deployments"]
    return {
        "model_id": entry["id"],
        "provider": entry["provider"],
        **{k: entry[k] for k in ("input_cost_per_million", "output_cost_per_million", "cached_input_cost_per_million",
                                 "context_window", "privacy_tier", "jurisdiction")},
        "privacy_tiers": sorted({d["privacy_tier"] for d in deployments if d["privacy_tier"]}),
        "jurisdictions": sorted({d["jurisdiction"] for d in deployments if d["jurisdiction"]}),
    }


async def pricing_by_model(request: Request) -> dict[str, dict[str, Any]]:
    """Public model name → its catalog entry; empty when billing cannot be reached (the list still works)."""
    try:
        catalog = await fetch_catalog(request)
    except ServiceError:
        return {}
    return {m.name: model_json(m) for m in catalog.models}


def attach_pricing(extension: dict[str, Any], entry: dict[str, Any]) -> None:
    """Adds a catalog entry's facts to a /v1/models item's extension, deployment by deployment; the model's own
    facts are those of the first deployment listed (the first that may serve the key)."""
    extension.update({k: v for k, v in entry.items() if k not in ("id", "object", "deployments")})
    priced = {d["deployment_id"]: d for d in entry["deployments"]}
    listed = extension.get("deployments", [])
    for deployment in listed:
        facts = priced.get(deployment.get("deployment_id"))
        if facts is not None:
            deployment.update({k: v for k, v in facts.items() if k not in deployment or not deployment[k]})
    first = priced.get(listed[0].get("deployment_id")) if listed else None
    if first is not None:
        extension.update({k: first.get(k) for k in MODEL_FACTS})


@router.get("/api/billing/models")
async def public_models(request: Request) -> Response:
    request_id = new_request_id()
    try:
        catalog = await fetch_catalog(request)
    except ServiceError as err:
        return error_response(err, {"x-request-id": request_id})
    data = [model_json(m) for m in catalog.models if any(d.servable and not d.not_live for d in m.deployments)]
    listing = {"object": "list", "data": data, "models": [listing_json(entry) for entry in data]}
    return Response(orjson.dumps(listing), media_type="application/json",
                    headers={"x-request-id": request_id, "cache-control": "public, max-age=60"})
