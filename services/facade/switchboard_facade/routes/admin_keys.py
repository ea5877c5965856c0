"""Admin API for virtual keys, shaped like LiteLLM's: ``/key/generate``, ``/key/update``, ``/key/delete``,
``/key/info``, ``/key/list``, ``/key/regenerate``, ``/key/block`` and ``/key/unblock``.

Only the master key or an admin key may manage keys; a key holder may read
its own ``/key/info``. The plain key appears in an answer exactly once, at
creation (or regeneration).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from switchboard.v1 import auth_pb2
from switchboard_common.errors import Kind, ServiceError
from switchboard_facade.admin_input import key_ref, key_spec, key_update, micros_to_usd
from switchboard_facade.errors import error_response, invalid
from switchboard_facade.gateway import Gateway, new_request_id
from switchboard_facade.http_input import credential, read_json_object

router = APIRouter()

ADMIN_BODY_BYTES = 1024 * 1024
#: What a client whose admin body is too large can do.
ADMIN_BODY_ADVICE = "Admin bodies are small JSON objects; send only the fields to set."


async def admin_body(request: Request) -> dict[str, Any]:
    """The admin request's JSON object (413 past ADMIN_BODY_BYTES or the gateway's own limit when lower, 400
    when it is not a JSON object)."""
    limit = min(ADMIN_BODY_BYTES, request.app.state.gateway.settings.max_body_bytes)
    body, _ = await read_json_object(request, limit, ADMIN_BODY_ADVICE)
    return body


def iso(ts: int) -> str | None:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z") if ts else None


def limits_json(limits: auth_pb2.Limits) -> dict[str, Any]:
    def opt(name: str) -> int | None:
        return getattr(limits, name) if limits.HasField(name) else None

    return {
        "rpm_limit": opt("rpm_limit"),
        "tpm_limit": opt("tpm_limit"),
        "max_parallel_requests": opt("max_parallel_requests"),
        "max_budget": micros_to_usd(opt("max_budget_micros")),
        "budget_duration": limits.budget_duration or None,
        "max_daily_spend": micros_to_usd(opt("max_daily_spend_micros")),
    }


def key_json(info: auth_pb2.KeyInfo) -> dict[str, Any]:
    return {
        "key_id": info.key_id,
        "token": info.key_id,
        "key_alias": info.key_alias or None,
        "key_name": f"sk-...{info.last_four}",
        "last_four": info.last_four,
        "team_id": info.team_id or None,
        "models": list(info.models),
        **limits_json(info.limits),
        "privacy_tier": info.privacy_tier or None,
        "pii_policy": info.pii_policy or None,
        "provider_credentials": dict(info.provider_credential_hints),
        "metadata": dict(info.metadata),
        "is_admin": info.is_admin,
        "created_at": iso(info.created_at),
        "updated_at": iso(info.updated_at),
        "expires": iso(info.expires_at),
        "status": info.status,
        "blocked": info.status == "blocked",
    }


def json_response(data: Any, request_id: str, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type="application/json",
                    headers={"x-request-id": request_id})


def caller(request: Request) -> auth_pb2.AdminCaller:
    return auth_pb2.AdminCaller(api_key=credential(request))


async def admin_call(request: Request, work: Callable[[Gateway, auth_pb2.AdminCaller], Awaitable[Any]], *,
                     admin_only: bool = True) -> Response:
    """Runs one admin operation; any ServiceError becomes the OpenAI-style error answer.

    The caller's credential is checked first — valid, and an admin's unless ``admin_only`` is off (a key
    reading itself) — so that nothing of the request (its body included) is looked at for a caller auth
    refuses; auth checks again on every call it serves."""
    request_id = new_request_id()
    gw: Gateway = request.app.state.gateway
    try:
        who = caller(request)
        key = await gw.authorize(who.api_key, verify_only=True)
        if admin_only and not key.is_admin:
            raise ServiceError(Kind.ERROR_KIND_PERMISSION,
                               "Only the master key or an admin key may manage keys and teams.",
                               code="admin_required")
        return json_response(await work(gw, who), request_id)
    except ServiceError as err:
        return error_response(err, {"x-request-id": request_id})


@router.post("/key/generate")
async def generate_key(request: Request) -> Response:
    async def work(gw: Gateway, who: auth_pb2.AdminCaller) -> Any:
        body = await admin_body(request)
        created = await gw.admin("CreateKey", auth_pb2.CreateKeyRequest(caller=who, spec=key_spec(body)))
        return {"key": created.key, **key_json(created.info)}
    return await admin_call(request, work)


@router.post("/key/update")
async def update_key(request: Request) -> Response:
    async def work(gw: Gateway, who: auth_pb2.AdminCaller) -> Any:
        body = await admin_body(request)
        ref, spec, fields = key_update(body)
        info = await gw.admin("UpdateKey", auth_pb2.UpdateKeyRequest(caller=who, key=ref, spec=spec,
                                                                     update_fields=fields))
        return key_json(info)
    return await admin_call(request, work)


@router.post("/key/delete")
async def delete_keys(request: Request) -> Response:
    async def work(gw: Gateway, who: auth_pb2.AdminCaller) -> Any:
        body = await admin_body(request)
        keys = body.get("keys")
        if not isinstance(keys, list) or not keys or not all(isinstance(k, str) and k.strip() for k in keys):
            raise invalid("'keys' is required: a non-empty list of key_ids (\"key_...\") or keys (\"sk-...\").",
                          "keys", "missing_keys")
        unknown = sorted(set(body) - {"keys"})
        if unknown:
            raise invalid(f"Unknown field(s): {', '.join(unknown)}. /key/delete takes only 'keys'.", unknown[0],
                          "unknown_field")
        deleted = await gw.admin("DeleteKeys", auth_pb2.DeleteKeysRequest(caller=who, keys=keys))
        return {"deleted_keys": list(deleted.deleted_keys)}
    return await admin_call(request, work)


@router.get("/key/info")
async def key_info(request: Request) -> Response:
    async def work(gw: Gateway, who: auth_pb2.AdminCaller) -> Any:
        info = await gw.admin("GetKey", auth_pb2.GetKeyRequest(caller=who, key=request.query_params.get("key", "")))
        return {"key": info.key_id, "info": key_json(info)}
    return await admin_call(request, work, admin_only=False)


@router.get("/key/list")
async def list_keys(request: Request) -> Response:
    async def work(gw: Gateway, who: auth_pb2.AdminCaller) -> Any:
        listed = await gw.admin("ListKeys", auth_pb2.ListKeysRequest(
            caller=who, team_id=request.query_params.get("team_id", "")))
        return {"keys": [key_json(k) for k in listed.keys], "total_count": len(listed.keys)}
    return await admin_call(request, work)


@router.post("/key/regenerate")
@router.post("/key/{key_path}/regenerate")
async def regenerate_key(request: Request, key_path: str = "") -> Response:
    async def work(gw: Gateway, who: auth_pb2.AdminCaller) -> Any:
        ref = key_path
        if not ref:
            body = await admin_body(request)
            ref = key_ref(body)
        created = await gw.admin("RegenerateKey", auth_pb2.GetKeyRequest(caller=who, key=ref))
        return {"key": created.key, **key_json(created.info)}
    return await admin_call(request, work)


async def _set_blocked(request: Request, blocked: bool) -> Response:
    async def work(gw: Gateway, who: auth_pb2.AdminCaller) -> Any:
        body = await admin_body(request)
        info = await gw.admin("SetKeyBlocked", auth_pb2.SetBlockedRequest(caller=who, key=key_ref(body),
                                                                          blocked=blocked))
        return key_json(info)
    return await admin_call(request, work)


@router.post("/key/block")
async def block_key(request: Request) -> Response:
    return await _set_blocked(request, True)


@router.post("/key/unblock")
async def unblock_key(request: Request) -> Response:
    return await _set_blocked(request, False)
