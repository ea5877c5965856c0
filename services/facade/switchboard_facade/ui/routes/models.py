"""Models: every configured model the session may use, live or not and why, with each deployment's limits,
prices, tier and jurisdiction; a model's page adds its recent traffic, errors and latency.

The router says what is configured and in what state (``DescribeModels``); billing's catalog adds prices and
what the price data knows of context windows (``GetCatalog``).
"""

from __future__ import annotations

import asyncio
from decimal import Decimal, InvalidOperation
from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from switchboard_billing.client import CatalogDeployment, SummarizeUsageRequest, UsageGroup
from switchboard_common.errors import ServiceError
from switchboard_facade.gateway import Gateway
from switchboard_facade.routes.catalog import fetch_catalog
from switchboard_facade.routes.usage import summarize
from switchboard_facade.ui import ranges
from switchboard_facade.ui.display import utc
from switchboard_facade.ui.guard import acting_key, current, to_signin, usage_scope
from switchboard_facade.ui.names import directory
from switchboard_facade.ui.render import page
from switchboard_facade.ui.session import Session
from switchboard_facade.ui.usage_charts import usage_charts
from switchboard_router.client import DeploymentState, ModelDescription, RoutingConstraints

router = APIRouter()


def per_million(price: str) -> str:
    """A price per million tokens as billing states it ("2.5") → ``$2.50``; ``—`` when unknown."""
    if not price:
        return "—"
    try:
        value = Decimal(price)
    except InvalidOperation:
        return price
    text = f"{value.normalize():f}"
    whole, _, fraction = text.partition(".")
    return f"${int(whole):,}.{fraction.ljust(2, '0')}"


def deployment_row(d: DeploymentState, priced: CatalogDeployment | None) -> dict[str, Any]:
    return {
        "deployment_id": d.deployment_id, "provider": d.provider, "upstream_model": d.upstream_model,
        "jurisdiction": d.jurisdiction, "privacy_tier": d.privacy_tier, "state": d.state, "reason": d.reason,
        "cooldown_until": utc(d.cooldown_until_ms) if d.cooldown_until_ms else "",
        "context_window": d.context_window or (priced.context_window if priced else 0),
        "max_output_tokens": d.max_output_tokens or (priced.max_output_tokens if priced else 0),
        "input": per_million(priced.input_per_million) if priced else "—",
        "output": per_million(priced.output_per_million) if priced else "—",
        "cached_input": per_million(priced.cached_input_per_million) if priced else "—",
        "tiered": bool(priced and priced.tiered),
        "unpriced_reason": priced.unpriced_reason if priced else "",
        "price_source": priced.price_source if priced else "",
        "byok": bool(priced and priced.byok),
        "byok_fee": per_million(priced.byok_fee_per_million) if priced and priced.byok else "",
        "latency_ms": d.latency_ms, "inflight": d.inflight, "failures": d.consecutive_failures, "weight": d.weight,
    }


def model_row(m: ModelDescription, prices: dict[str, CatalogDeployment]) -> dict[str, Any]:
    deployments = [deployment_row(d, prices.get(d.deployment_id)) for d in m.deployments]
    states = {d["state"] for d in deployments}
    if "live" in states:
        state, why = "live", ""
    elif "excluded" in states and "cooling_down" not in states:
        state, why = "excluded", "no deployment within this key's privacy tier or jurisdictions"
    elif "cooling_down" in states:
        until = min(d.cooldown_until_ms for d in m.deployments if d.cooldown_until_ms)
        state, why = "cooling_down", f"every deployment failed repeatedly; back at {utc(until)}"
    else:
        state = "not_live"
        why = "; ".join(sorted({d["reason"] for d in deployments if d["reason"]})) or "no deployment configured"
    return {"name": m.name, "state": state, "why": why, "deployments": deployments, "fallbacks": list(m.fallbacks),
            "strategy": m.strategy, "owned_by": m.owned_by}


async def describe(request: Request, session: Session) -> tuple[list[dict[str, Any]], str]:
    """The models the session may use, live or not (an admin: every configured model)."""
    gw: Gateway = request.app.state.gateway
    try:
        key = await acting_key(gw, session)
        # An admin sees every model as it stands; a key also sees which deployments its tier and jurisdictions rule out.
        constraints = RoutingConstraints(allowed_models=key.models) if key.is_admin else RoutingConstraints(
            allowed_models=key.models, privacy_tier=key.privacy_tier, jurisdictions=key.jurisdictions)
        described, catalog = await asyncio.gather(gw.router.describe_models(constraints), _catalog(request))
    except ServiceError as err:
        return [], err.error.message
    prices = {d.deployment_id: d for m in catalog for d in m.deployments}
    return [model_row(m, prices) for m in described.models], ""


async def _catalog(request: Request) -> list[Any]:
    try:
        return list((await fetch_catalog(request)).models)
    except ServiceError:  # prices are missing, the models still show
        return []


@router.get("/ui/models")
async def models_page(request: Request) -> Response:
    session = await current(request)
    if session is None:
        return to_signin()
    models, error = await describe(request, session)
    live = sum(1 for m in models if m["state"] == "live")
    return page(request, "models.html", session, models=models, live=live, error=error)


@router.get("/ui/models/{name:path}")
async def model_page(request: Request, name: str) -> Response:
    session = await current(request)
    if session is None:
        return to_signin()
    models, error = await describe(request, session)
    model = next((m for m in models if m["name"] == name), None)
    if model is None:
        return page(request, "error.html", session, status=404, title="No such model",
                    message=error or f"There is no model {name!r} that you may use.")
    gw: Gateway = request.app.state.gateway
    rng = ranges.parse(request.query_params.get("range", ""), "", "")
    charts: dict[str, Any] = {}
    overall = UsageGroup()
    try:
        filters = await usage_scope(gw, session, {"model": name})
        filters.update(from_ms=rng.from_ms, to_ms=rng.to_ms)
        names, totals, by_key, whole = await asyncio.gather(
            directory(gw, session),
            summarize(gw, SummarizeUsageRequest(group_by=rng.bucket, **filters)),
            summarize(gw, SummarizeUsageRequest(group_by=rng.bucket, split_by="key", **filters)),
            summarize(gw, SummarizeUsageRequest(**filters)))
        charts = usage_charts(rng, totals.groups, by_key.groups, "key", names.key)
        overall = whole.groups[0] if whole.groups else overall
    except ServiceError as err:
        error = err.error.message
    return page(request, "model.html", session, model=model, charts=charts, overall=overall, range=rng,
                presets=ranges.PRESETS, error=error)
