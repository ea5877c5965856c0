"""Models at run time, shaped like LiteLLM's: ``/model/new``, ``/model/update`` (and ``PATCH
/model/{id}/update``), ``/model/delete``, ``/model/info`` (``/v1/model/info``), ``/v2/model/info`` and
``/model_group/info``.

Models added here are stored by billing (with their credentials sealed) and served by every router within
a second; the config file stays the source of what it declares (its deployments are listed, not changed
here). Only the master key, an admin key or a proxy_admin user's key may change models; they and proxy_admin
viewers read every model, any other key the models it may use.
"""

from __future__ import annotations

import math
from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from switchboard_billing.client import AuditActor
from switchboard_common.errors import Kind, ServiceError
from switchboard_facade.gateway import Gateway
from switchboard_facade.model_input import model_id_of, stored_model
from switchboard_facade.model_views import deployment_entry, group_entry, model_entries
from switchboard_facade.routes.admin_keys import admin_body, admin_call, any_key, reads_all

router = APIRouter()

#: LiteLLM's default page size of /v2/model/info.
PAGE_SIZE = 50


async def actor(gw: Gateway, who: str) -> tuple[str, AuditActor]:
    """Who asks: the key id (or "master") stored as created_by / updated_by, and the audit log's actor."""
    key = await gw.verify(who)
    key_id = key.key_id or "master"
    return key_id, AuditActor(kind="master" if key_id == "master" else "key", key_id=key_id, user_id=key.user_id)


async def _stored(gw: Gateway, model_id: str) -> Any:
    for model in (await gw.billing.models.list()).models:
        if model.model_id == model_id:
            return model
    raise ServiceError(Kind.ERROR_KIND_NOT_FOUND, f"No model with id {model_id!r} was added at run time; "
                       "/model/info lists the ids (models of the config file are changed in the file).",
                       code="model_not_found", param="id")


async def _answer(gw: Gateway, stored: Any, ignored: list[str]) -> dict[str, Any]:
    """The stored deployment as LiteLLM answers a write: the row's fields, and the /model/info item."""
    entry = deployment_entry(stored.model_name, _catalog_deployment(await gw.billing.catalog(), stored.model_id),
                             stored)
    return {"model_id": stored.model_id, "model_name": stored.model_name, "litellm_params": entry["litellm_params"],
            "model_info": entry["model_info"], "created_at": stored.created_at_ms // 1000,
            "created_by": stored.created_by, "updated_at": stored.updated_at_ms // 1000,
            "updated_by": stored.updated_by, "ignored_fields": ignored, "switchboard": entry["switchboard"]}


def _catalog_deployment(catalog: Any, deployment_id: str) -> Any:
    return next((d for m in catalog.models for d in m.deployments if d.deployment_id == deployment_id), None)


@router.post("/model/new")
async def model_new(request: Request) -> Response:
    async def work(gw: Gateway, who: str) -> Any:
        model, ignored = stored_model(await admin_body(request))
        key_id, audit_actor = await actor(gw, who)
        stored = await gw.billing.models.put(model, actor=key_id, create_only=True, who=audit_actor)
        return await _answer(gw, stored, ignored)
    return await admin_call(request, work)


async def _update(request: Request, model_id: str = "") -> Response:
    async def work(gw: Gateway, who: str) -> Any:
        body = await admin_body(request)
        existing = await _stored(gw, model_id or model_id_of(body))
        model, ignored = stored_model(body, existing)
        key_id, audit_actor = await actor(gw, who)
        stored = await gw.billing.models.put(model, actor=key_id, update_only=True, who=audit_actor)
        return await _answer(gw, stored, ignored)
    return await admin_call(request, work)


@router.post("/model/update")
async def model_update(request: Request) -> Response:
    return await _update(request)


@router.patch("/model/{model_id}/update")
async def model_patch(request: Request, model_id: str) -> Response:
    return await _update(request, model_id)


@router.post("/model/delete")
async def model_delete(request: Request) -> Response:
    async def work(gw: Gateway, who: str) -> Any:
        deleted = await gw.billing.models.delete(model_id_of(await admin_body(request)), (await actor(gw, who))[1])
        return {"message": f"Model: {deleted.model_id} deleted successfully"}
    return await admin_call(request, work)


async def _entries(gw: Gateway, who: str) -> list[dict[str, Any]]:
    """Every deployment the caller may see: all of them for an admin, else those of the models its key may use."""
    entries = model_entries(await gw.billing.catalog(), await gw.billing.models.list())
    key = await gw.verify(who)
    if reads_all(key):
        return entries
    names = {m.name for m in (await gw.list_models(key, include_wildcards=True)).models}
    return [e for e in entries if e["model_name"] in names]


@router.get("/model/info")
@router.get("/v1/model/info")
async def model_info(request: Request) -> Response:
    async def work(gw: Gateway, who: str) -> Any:
        entries = await _entries(gw, who)
        wanted = request.query_params.get("litellm_model_id")
        if wanted:
            entries = [e for e in entries if e["model_info"]["id"] == wanted]
        return {"data": entries}
    return await admin_call(request, work, allow=any_key)


@router.get("/v2/model/info")
async def model_info_v2(request: Request) -> Response:
    async def work(gw: Gateway, who: str) -> Any:
        params = request.query_params
        entries = await _entries(gw, who)
        if params.get("model"):
            entries = [e for e in entries if e["model_name"] == params["model"]]
        if params.get("modelId"):
            entries = [e for e in entries if e["model_info"]["id"] == params["modelId"]]
        if params.get("search"):
            needle = params["search"].lower()
            entries = [e for e in entries if needle in e["model_name"].lower()]
        page, size = _positive(params.get("page"), 1, "page"), _positive(params.get("size"), PAGE_SIZE, "size")
        total = len(entries)
        return {"data": entries[(page - 1) * size:page * size], "total_count": total, "current_page": page,
                "total_pages": max(1, math.ceil(total / size)), "size": size}
    return await admin_call(request, work, allow=any_key)


def _positive(value: str | None, default: int, name: str) -> int:
    if value is None or value == "":
        return default
    if not value.isdigit() or int(value) < 1:
        raise ServiceError(Kind.ERROR_KIND_INVALID_REQUEST, f"'{name}' must be a whole number, 1 or more.",
                           param=name, code="invalid_value")
    return int(value)


@router.get("/model_group/info")
async def model_group_info(request: Request) -> Response:
    async def work(gw: Gateway, who: str) -> Any:
        catalog = await gw.billing.catalog()
        key = await gw.verify(who)
        models = [m for m in catalog.models if m.deployments]
        if not reads_all(key):
            names = {m.name for m in (await gw.list_models(key, include_wildcards=True)).models}
            models = [m for m in models if m.name in names]
        wanted = request.query_params.get("model_group")
        if wanted:
            models = [m for m in models if m.name == wanted]
        return {"data": [group_entry(m) for m in models]}
    return await admin_call(request, work, allow=any_key)
