"""``GET /api/usage/custody/{request_id}``: the custody record of one request.

The same facts the answer's custody headers carried (hops, serving deployment, jurisdiction,
tiers, PII kinds and counts), read back from the usage ledger. A virtual key reads its own
requests; the admin reads any. A request of another key is answered exactly like an unknown one
(404), so ids cannot be probed.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from switchboard_billing.client import ListUsageRequest, UsageRecord
from switchboard_common.errors import Kind, ServiceError
from switchboard_facade.errors import error_response
from switchboard_facade.gateway import Gateway, new_request_id
from switchboard_facade.http_input import credential

router = APIRouter()


def _pii_counts(value: str) -> dict[str, int] | None:
    """``card=1,email=2`` → ``{"card": 1, "email": 2}``; ``none`` → ``{}``; off or unknown → None."""
    if value == "none":
        return {}
    if not value or value == "off":
        return None
    counts = {}
    for item in value.split(","):
        kind, _, count = item.partition("=")
        counts[kind] = int(count) if count.isdigit() else 0
    return counts


def custody_json(record: UsageRecord) -> dict[str, Any]:
    e = record.event
    return {
        "request_id": e.request_id,
        "key_id": e.key_id,
        "key_alias": e.key_alias or None,
        "team_id": e.team_id or None,
        "model": e.model,
        "started_at": datetime.fromtimestamp(e.started_at_ms / 1000, UTC).isoformat(timespec="milliseconds")
        .replace("+00:00", "Z"),
        "status": e.status,
        "http_status": e.http_status,
        "custody_path": e.custody_path.split(">") if e.custody_path else [],
        "deployment": {
            "deployment_id": e.deployment_id,
            "provider": e.provider,
            "upstream_model": e.upstream_model,
            "jurisdiction": e.jurisdiction or None,
            "privacy_tier": e.privacy_tier or None,
        } if e.deployment_id else None,
        "required_privacy_tier": e.required_privacy_tier or None,
        "pii_policy": e.pii_policy or None,
        "pii": _pii_counts(e.pii),
    }


@router.get("/api/usage/custody/{request_id}")
async def custody_record(request: Request, request_id: str) -> Response:
    gw: Gateway = request.app.state.gateway
    own_request_id = new_request_id()
    try:
        key = await gw.verify(credential(request))
        query = ListUsageRequest(request_id=request_id, limit=1)
        if not key.is_admin:
            query.key_id = key.key_id
        page = await gw.billing.list_usage(query)
        if not page.records:
            raise ServiceError(
                Kind.ERROR_KIND_NOT_FOUND,
                f"No custody record for {request_id!r} visible to this key. A request's record appears once it "
                "is settled (normally within a second of the answer); a virtual key sees only its own requests.",
                code="custody_record_not_found", param="request_id")
    except ServiceError as err:
        return error_response(err, {"x-request-id": own_request_id})
    return Response(orjson.dumps(custody_json(page.records[0])), media_type="application/json",
                    headers={"x-request-id": own_request_id})
