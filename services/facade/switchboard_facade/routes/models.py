"""``GET /v1/models`` (and ``/models``, ``/cursor/models``): the models this key may use, OpenAI's list shape.

A wildcard entry of the catalog (``openai/*``) is listed as the models of its provider's published list it
serves (``openai/gpt-4o``, ...), as LiteLLM lists its wildcard routes; ``?return_wildcard_routes=true`` lists
the entry itself too."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from switchboard_common.errors import ServiceError
from switchboard_facade.errors import error_response
from switchboard_facade.gateway import Gateway, new_request_id
from switchboard_facade.http_input import credential
from switchboard_facade.routes.catalog import attach_pricing, pricing_by_model

router = APIRouter()


@router.get("/v1/models")
@router.get("/models")
@router.get("/cursor/models")
@router.get("/cursor/v1/models")
async def list_models(request: Request) -> Response:
    gw: Gateway = request.app.state.gateway
    request_id = new_request_id()
    try:
        key = await gw.verify(credential(request))
        # LiteLLM's flag: list the wildcard entries ("openai/*") too, not only the models they serve.
        wildcards = request.query_params.get("return_wildcard_routes", "").lower() in ("true", "1")
        models = await gw.list_models(key, include_wildcards=wildcards)
    except ServiceError as err:
        return error_response(err, {"x-request-id": request_id})
    data: list[dict[str, Any]] = [
        {
            "id": m.name,
            "object": "model",
            "created": m.created,
            "owned_by": m.owned_by,
            "switchboard": {
                "deployments": [
                    {"deployment_id": d.deployment_id, "provider": d.provider, "jurisdiction": d.jurisdiction,
                     "privacy_tier": d.privacy_tier, "health": d.health, "context_window": d.context_window}
                    for d in m.deployments
                ]
            },
        }
        for m in models.models
    ]
    # Billing's catalog facts (prices per million tokens, limits, privacy, jurisdiction) under "switchboard".
    catalog = await pricing_by_model(request)
    for item in data:
        entry = catalog.get(str(item["id"]))
        if entry is not None:
            attach_pricing(item["switchboard"], entry)
    return Response(orjson.dumps({"object": "list", "data": data}), media_type="application/json",
                    headers={"x-request-id": request_id})
