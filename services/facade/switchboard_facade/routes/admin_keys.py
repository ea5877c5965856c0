"""Admin API for virtual keys, shaped like LiteLLM's: ``/key/generate``, ``/key/update``, ``/key/delete``,
``/key/info``, ``/key/list``, ``/key/regenerate``, ``/key/block`` and ``/key/unblock``.

Only the master key or an admin key may manage keys; a key holder may read
its own ``/key/info``. The plain key appears in an answer exactly once, at
creation (or regeneration). Keys are shown with their spend (billing's).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from switchboard_common.errors import Kind, ServiceError
from switchboard_facade import key_writes
from switchboard_facade.admin_input import key_ref, key_spec, key_update
from switchboard_facade.admin_views import key_json, key_standings
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


def json_response(data: Any, request_id: str, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type="application/json",
                    headers={"x-request-id": request_id})


async def admin_call(request: Request, work: Callable[[Gateway, str], Awaitable[Any]], *,
                     admin_only: bool = True) -> Response:
    """Runs one admin operation with the caller's credential; a ServiceError becomes the OpenAI-style error.

    The credential is checked first — valid, and an admin's unless ``admin_only`` is off (a key reading
    itself) — so that nothing of the request (its body included) is looked at for a caller auth refuses;
    auth checks again on every call it serves."""
    request_id = new_request_id()
    gw: Gateway = request.app.state.gateway
    try:
        who = credential(request)
        key = await gw.verify(who)
        if admin_only and not key.is_admin:
            raise ServiceError(Kind.ERROR_KIND_PERMISSION,
                               "Only the master key or an admin key may manage keys, teams and models.",
                               code="admin_required")
        return json_response(await work(gw, who), request_id)
    except ServiceError as err:
        return error_response(err, {"x-request-id": request_id})


async def _with_spend(gw: Gateway, info: Any) -> dict[str, Any]:
    return key_json(info, (await key_standings(gw, [info]))[0])


@router.post("/key/generate")
async def generate_key(request: Request) -> Response:
    async def work(gw: Gateway, who: str) -> Any:
        body = await admin_body(request)
        created = await key_writes.create_key(gw, who, key_spec(body))
        return {"key": created.key, **key_json(created.info)}
    return await admin_call(request, work)


@router.post("/key/update")
async def update_key(request: Request) -> Response:
    async def work(gw: Gateway, who: str) -> Any:
        body = await admin_body(request)
        ref, spec, fields = key_update(body)
        return await _with_spend(gw, await key_writes.update_key(gw, who, ref, spec, fields))
    return await admin_call(request, work)


@router.post("/key/delete")
async def delete_keys(request: Request) -> Response:
    async def work(gw: Gateway, who: str) -> Any:
        body = await admin_body(request)
        keys = body.get("keys")
        if not isinstance(keys, list) or not keys or not all(isinstance(k, str) and k.strip() for k in keys):
            raise invalid("'keys' is required: a non-empty list of key_ids (\"key_...\") or the keys themselves.",
                          "keys", "missing_keys")
        unknown = sorted(set(body) - {"keys"})
        if unknown:
            raise invalid(f"Unknown field(s): {', '.join(unknown)}. /key/delete takes only 'keys'.", unknown[0],
                          "unknown_field")
        return {"deleted_keys": await gw.auth.admin.delete_keys(who, keys)}
    return await admin_call(request, work)


@router.get("/key/info")
async def key_info(request: Request) -> Response:
    async def work(gw: Gateway, who: str) -> Any:
        info = await gw.auth.admin.get_key(who, request.query_params.get("key", ""))
        return {"key": info.key_id, "info": await _with_spend(gw, info)}
    return await admin_call(request, work, admin_only=False)


@router.get("/key/list")
async def list_keys(request: Request) -> Response:
    async def work(gw: Gateway, who: str) -> Any:
        keys = await gw.auth.admin.list_keys(who, request.query_params.get("team_id", ""))
        standings = await key_standings(gw, keys)
        return {"keys": [key_json(k, s) for k, s in zip(keys, standings, strict=True)], "total_count": len(keys)}
    return await admin_call(request, work)


@router.post("/key/regenerate")
@router.post("/key/{key_path}/regenerate")
async def regenerate_key(request: Request, key_path: str = "") -> Response:
    """A new secret for the key; fields given with it (``duration``, ``max_budget``, ``models``, ...) change at the
    same time, as LiteLLM's regenerate takes them (an expired key gets a new lifetime with ``duration``)."""
    async def work(gw: Gateway, who: str) -> Any:
        sent = request.headers.get("content-length", "0") != "0" or "transfer-encoding" in request.headers
        body: dict[str, Any] = await admin_body(request) if sent or not key_path else {}
        if key_path:
            body.setdefault("key", key_path)
        ref, spec, fields = key_update(body, changes_required=False)
        created = await key_writes.regenerate_key(gw, who, ref, spec, fields)
        return {"key": created.key, **(await _with_spend(gw, created.info))}
    return await admin_call(request, work)


async def _set_blocked(request: Request, blocked: bool) -> Response:
    async def work(gw: Gateway, who: str) -> Any:
        body = await admin_body(request)
        return key_json(await gw.auth.admin.set_key_blocked(who, key_ref(body), blocked))
    return await admin_call(request, work)


@router.post("/key/block")
async def block_key(request: Request) -> Response:
    return await _set_blocked(request, True)


@router.post("/key/unblock")
async def unblock_key(request: Request) -> Response:
    return await _set_blocked(request, False)
