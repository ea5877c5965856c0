"""Models + Endpoints: each public model, its deployments with health and price, and a copy button for its name."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from switchboard_common.errors import ServiceError
from switchboard_facade.gateway import Gateway
from switchboard_facade.routes.catalog import pricing_by_model
from switchboard_facade.ui.guard import current, to_signin
from switchboard_facade.ui.render import page

router = APIRouter()


async def model_rows(request: Request, credential: str) -> tuple[list[dict[str, Any]], str]:
    """The models this credential may use: the router's deployments (health) joined with billing's prices."""
    gw: Gateway = request.app.state.gateway
    try:
        key = await gw.verify(credential)
        listed = await gw.list_models(key)
    except ServiceError as err:
        return [], err.error.message
    catalog = await pricing_by_model(request)
    rows = []
    for m in listed.models:
        priced = {d["deployment_id"]: d for d in catalog.get(m.name, {}).get("deployments", [])}
        deployments = []
        for d in m.deployments:
            facts = priced.get(d.deployment_id, {})
            deployments.append({
                "deployment_id": d.deployment_id, "provider": d.provider, "upstream_model": d.upstream_model,
                "jurisdiction": d.jurisdiction or "—", "privacy_tier": d.privacy_tier or "—", "health": d.health,
                "context_window": d.context_window or None,
                "input": facts.get("input_cost_per_million"), "output": facts.get("output_cost_per_million"),
            })
        rows.append({"name": m.name, "deployments": deployments,
                     "fallbacks": catalog.get(m.name, {}).get("fallbacks", [])})
    return rows, ""


@router.get("/ui/models")
async def models_page(request: Request) -> Response:
    session = await current(request)
    if session is None:
        return to_signin()
    rows, error = await model_rows(request, session.credential)
    return page(request, "models.html", session, models=rows, error=error)
