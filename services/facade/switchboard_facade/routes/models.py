"""``GET /v1/models`` (and ``/models``, ``/cursor/models``): the models this key may use, OpenAI's list shape;
``GET /v1/models/{model}`` one of them (the OpenAI SDK's ``models.retrieve``), or OpenAI's 404.

A wildcard entry of the catalog (``openai/*``) is listed as the models of its provider's published list it
serves (``openai/gpt-4o``, ...), as LiteLLM lists its wildcard routes; ``?return_wildcard_routes=true`` lists
the entry itself too."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from switchboard_common.errors import Kind, ServiceError
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
    request_id = new_request_id()
    # LiteLLM's flag: list the wildcard entries ("openai/*") too, not only the models they serve.
    wildcards = request.query_params.get("return_wildcard_routes", "").lower() in ("true", "1")
    try:
        data = await _models(request, wildcards)
    except ServiceError as err:
        return error_response(err, {"x-request-id": request_id})
    return Response(orjson.dumps({"object": "list", "data": data}), media_type="application/json",
                    headers={"x-request-id": request_id})


@router.get("/v1/models/{model:path}")
@router.get("/models/{model:path}")
@router.get("/cursor/models/{model:path}")
@router.get("/cursor/v1/models/{model:path}")
async def retrieve_model(request: Request, model: str) -> Response:
    request_id = new_request_id()
    try:
        found = next((item for item in await _models(request, wildcards=True) if item["id"] == model), None)
        if found is None:
            raise ServiceError(Kind.ERROR_KIND_NOT_FOUND,
                               f"The model '{model}' does not exist or this key may not use it; GET /v1/models "
                               "lists the models it may use.", param="model", code="model_not_found")
    except ServiceError as err:
        return error_response(err, {"x-request-id": request_id})
    return Response(orjson.dumps(found), media_type="application/json", headers={"x-request-id": request_id})


async def _models(request: Request, wildcards: bool) -> list[dict[str, Any]]:
    """The key's models as OpenAI model objects, with the deployments and billing's catalog facts (prices per
    million tokens, limits, privacy, jurisdiction) under "switchboard"; raises the key's ServiceError."""
    gw: Gateway = request.app.state.gateway
    key = await gw.verify(credential(request))
    models = await gw.list_models(key, include_wildcards=wildcards)
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
    catalog = await pricing_by_model(request)
    for item in data:
        entry = catalog.get(str(item["id"]))
        if entry is not None:
            attach_pricing(item["switchboard"], entry)
    return data
