"""Admin API for virtual keys, shaped like LiteLLM's (``/key/generate``, ``/key/list``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from switchboard.v1 import auth_pb2
from switchboard_common.errors import ServiceError
from switchboard_facade.admin_input import key_spec, micros_to_usd
from switchboard_facade.errors import error_response
from switchboard_facade.gateway import Gateway, new_request_id
from switchboard_facade.http_input import credential, read_json_object

router = APIRouter()


def _iso(ts: int) -> str | None:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z") if ts else None


def key_json(info: auth_pb2.KeyInfo) -> dict[str, Any]:
    limits = info.limits
    return {
        "key_id": info.key_id,
        "token": info.key_id,
        "key_alias": info.key_alias or None,
        "key_name": f"sk-...{info.last_four}",
        "team_id": info.team_id or None,
        "models": list(info.models),
        "rpm_limit": limits.rpm_limit if limits.HasField("rpm_limit") else None,
        "tpm_limit": limits.tpm_limit if limits.HasField("tpm_limit") else None,
        "max_parallel_requests": limits.max_parallel_requests if limits.HasField("max_parallel_requests") else None,
        "max_budget": micros_to_usd(limits.max_budget_micros) if limits.HasField("max_budget_micros") else None,
        "budget_duration": limits.budget_duration or None,
        "max_daily_spend": (micros_to_usd(limits.max_daily_spend_micros)
                            if limits.HasField("max_daily_spend_micros") else None),
        "privacy_tier": info.privacy_tier or None,
        "pii_policy": info.pii_policy or None,
        "metadata": dict(info.metadata),
        "created_at": _iso(info.created_at),
        "expires": _iso(info.expires_at),
        "status": info.status,
    }


def _json(data: Any, request_id: str, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type="application/json",
                    headers={"x-request-id": request_id})


@router.post("/key/generate")
async def generate_key(request: Request) -> Response:
    gw: Gateway = request.app.state.gateway
    request_id = new_request_id()
    try:
        body, _ = await read_json_object(request, 1024 * 1024)
        spec = key_spec(body)
        created = await gw.admin("CreateKey", auth_pb2.CreateKeyRequest(
            caller=auth_pb2.AdminCaller(api_key=credential(request)), spec=spec))
    except ServiceError as err:
        return error_response(err, {"x-request-id": request_id})
    return _json({"key": created.key, **key_json(created.info)}, request_id)


@router.get("/key/list")
async def list_keys(request: Request) -> Response:
    gw: Gateway = request.app.state.gateway
    request_id = new_request_id()
    try:
        listed = await gw.admin("ListKeys", auth_pb2.ListKeysRequest(
            caller=auth_pb2.AdminCaller(api_key=credential(request)),
            team_id=request.query_params.get("team_id", "")))
    except ServiceError as err:
        return error_response(err, {"x-request-id": request_id})
    return _json({"keys": [key_json(k) for k in listed.keys], "total_count": len(listed.keys)}, request_id)
