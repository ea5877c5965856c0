"""Admin API for virtual keys, shaped like LiteLLM's: ``/key/generate``, ``/key/update``, ``/key/delete``,
``/key/info``, ``/key/list``, ``/key/regenerate``, ``/key/block`` and ``/key/unblock``.

The master key, an admin key or a ``proxy_admin`` user's key may manage every
key; an ``internal_user``'s key manages its own user's keys; a viewer reads
(auth decides, see ``switchboard_auth.access``); a key holder may read its own
``/key/info``. The plain key appears in an answer exactly once, at creation (or
regeneration). Keys are shown with their spend (billing's). Every LiteLLM field
a body carries is honoured or named in the answer's ``ignored_fields``.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import orjson
from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from switchboard_auth.client import KeyContext
from switchboard_common import audit_origin
from switchboard_common.errors import Kind, ServiceError
from switchboard_facade import audit_context, key_writes
from switchboard_facade.admin_input import blocked, ignored_fields, key_ref, key_spec, key_update, plain_key
from switchboard_facade.admin_views import key_json, key_standings
from switchboard_facade.errors import error_response, invalid
from switchboard_facade.gateway import Gateway, new_request_id
from switchboard_facade.http_input import credential, read_json_object
from switchboard_rules.fields import KEY_IGNORED

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


def is_admin(key: KeyContext) -> bool:
    return key.is_admin


def has_user(key: KeyContext) -> bool:
    """Admins, and keys of users (whose role auth then applies)."""
    return key.is_admin or bool(key.user_role)


def reads_all(key: KeyContext) -> bool:
    """Admins and proxy_admin viewers."""
    return key.is_admin or key.user_role == "proxy_admin_viewer"


def any_key(key: KeyContext) -> bool:
    """Every valid key (auth decides what it may see)."""
    return True


def current_request_id() -> str:
    """The id of the admin request running (what :func:`admin_call` answers with in ``x-request-id``)."""
    origin = audit_origin.current()
    return origin.request_id if origin is not None else new_request_id()


async def admin_call(request: Request, work: Callable[[Gateway, str], Awaitable[Any]], *,
                     allow: Callable[[KeyContext], bool] = is_admin) -> Response:
    """Runs one admin operation with the caller's credential; a ServiceError becomes the OpenAI-style error.

    The credential is checked first — valid, and allowed by ``allow`` (an admin's by default) — so that nothing
    of the request (its body included) is looked at for a caller auth refuses; auth checks again, with the
    caller's role, on every call it serves. ``work`` answers with the JSON to send, or with its own Response (a
    CSV export, say; :func:`current_request_id` is the id to put on it)."""
    request_id = new_request_id()
    audit_context.begin(request, request_id, audit_context.API)
    gw: Gateway = request.app.state.gateway
    try:
        who = credential(request)
        key = await gw.verify(who)
        if not allow(key):
            raise ServiceError(Kind.ERROR_KIND_PERMISSION, "Only the master key, an admin key or a proxy_admin "
                               "user's key may manage keys, teams, users and models.", code="admin_required")
        answer = await work(gw, who)
        return answer if isinstance(answer, Response) else json_response(answer, request_id)
    except ServiceError as err:
        return error_response(err, {"x-request-id": request_id})


async def _with_spend(gw: Gateway, info: Any) -> dict[str, Any]:
    return key_json(info, (await key_standings(gw, [info]))[0])


@router.post("/key/generate")
async def generate_key(request: Request) -> Response:
    async def work(gw: Gateway, who: str) -> Any:
        body = await admin_body(request)
        spec = key_spec(body)
        spec.blocked = bool(blocked(body))  # in the same change (one audit row)
        created = await key_writes.create_key(gw, who, spec, key=plain_key(body))
        return {"key": created.key, **(await _with_spend(gw, created.info)),
                "ignored_fields": ignored_fields(body, KEY_IGNORED)}
    return await admin_call(request, work, allow=has_user)


@router.post("/key/update")
async def update_key(request: Request) -> Response:
    async def work(gw: Gateway, who: str) -> Any:
        body = await admin_body(request)
        ref, spec, fields = key_update(body)
        if blocked(body) is not None:  # in the same change as the other fields (one audit row)
            spec.blocked = bool(blocked(body))
            fields = [*fields, "blocked"]
        info = await key_writes.update_key(gw, who, ref, spec, fields)
        return {**(await _with_spend(gw, info)), "ignored_fields": ignored_fields(body, KEY_IGNORED)}
    return await admin_call(request, work, allow=has_user)


async def _keys_by_alias(gw: Gateway, who: str, aliases: list[str]) -> list[str]:
    """The key ids of LiteLLM's ``key_aliases`` (each must name a key that is not revoked); every key with the
    alias, should an older gateway have let two keys share one."""
    live: dict[str, list[str]] = {}
    for k in await gw.auth.admin.list_keys(who):
        if k.status != "revoked":
            live.setdefault(k.key_alias, []).append(k.key_id)
    missing = [a for a in aliases if a not in live]
    if missing:
        raise ServiceError(Kind.ERROR_KIND_NOT_FOUND, f"No key with alias {missing[0]!r} (see GET /key/list).",
                           param="key_aliases", code="key_not_found")
    return [key_id for a in dict.fromkeys(aliases) for key_id in live[a]]


@router.post("/key/delete")
async def delete_keys(request: Request) -> Response:
    async def work(gw: Gateway, who: str) -> Any:
        body = await admin_body(request)
        keys, aliases = body.get("keys") or [], body.get("key_aliases") or []
        if not all(isinstance(k, list) and all(isinstance(x, str) and x.strip() for x in k) for k in (keys, aliases)) \
                or not (keys or aliases):
            raise invalid("'keys' is required: a non-empty list of key_ids (\"key_...\") or keys (\"sk-...\"); or "
                          "'key_aliases', a list of key aliases.", "keys", "missing_keys")
        unknown = sorted(set(body) - {"keys", "key_aliases"})
        if unknown:
            raise invalid(f"Unknown field(s): {', '.join(unknown)}. /key/delete takes only 'keys' and 'key_aliases'.",
                          unknown[0], "unknown_field")
        named = keys + (await _keys_by_alias(gw, who, aliases) if aliases else [])
        return {"deleted_keys": await gw.auth.admin.delete_keys(who, named)}
    return await admin_call(request, work, allow=has_user)


@router.get("/key/info")
async def key_info(request: Request) -> Response:
    async def work(gw: Gateway, who: str) -> Any:
        info = await gw.auth.admin.get_key(who, request.query_params.get("key", ""))
        return {"key": info.key_id, "info": await _with_spend(gw, info)}
    return await admin_call(request, work, allow=any_key)


def query_number(query: Mapping[str, str], name: str, default: int, most: int) -> int:
    """A page number or size from the query string: ``default`` when absent, else a whole number from 1 to
    ``most`` (a 400 naming it otherwise)."""
    value = query.get(name)
    if value is None:
        return default
    if not value.isdigit() or not 1 <= int(value) <= most:
        raise invalid(f"'{name}' must be a whole number from 1 to {most}.", name, "invalid_value")
    return int(value)


@router.get("/key/list")
async def list_keys(request: Request) -> Response:
    """LiteLLM's key list: ``team_id``, ``user_id`` and ``key_alias`` filters, and ``page`` / ``size`` (at most
    100) when asked for; without ``size`` every key is listed, on one page."""
    async def work(gw: Gateway, who: str) -> Any:
        q = request.query_params
        keys = await gw.auth.admin.list_keys(who, q.get("team_id", ""), q.get("user_id", ""))
        if q.get("key_alias"):
            keys = [k for k in keys if k.key_alias == q["key_alias"]]
        page, size = query_number(q, "page", 1, 1_000_000), query_number(q, "size", max(1, len(keys)), 100)
        shown = keys[(page - 1) * size: page * size]
        standings = await key_standings(gw, shown)
        return {"keys": [key_json(k, s) for k, s in zip(shown, standings, strict=True)], "total_count": len(keys),
                "current_page": page, "total_pages": max(1, math.ceil(len(keys) / size))}
    return await admin_call(request, work, allow=has_user)


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
        created = await key_writes.regenerate_key(gw, who, ref, spec, fields, new_key=plain_key(body, "new_key"))
        return {"key": created.key, **(await _with_spend(gw, created.info)),
                "ignored_fields": ignored_fields(body, KEY_IGNORED)}
    return await admin_call(request, work, allow=has_user)


async def _set_blocked(request: Request, block: bool) -> Response:
    async def work(gw: Gateway, who: str) -> Any:
        body = await admin_body(request)
        return key_json(await gw.auth.admin.set_key_blocked(who, key_ref(body), block))
    return await admin_call(request, work, allow=has_user)


@router.post("/key/block")
async def block_key(request: Request) -> Response:
    return await _set_blocked(request, True)


@router.post("/key/unblock")
async def unblock_key(request: Request) -> Response:
    return await _set_blocked(request, False)
