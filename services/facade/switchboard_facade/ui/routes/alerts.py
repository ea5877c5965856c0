"""The bell: recent budget alerts for the header (``/ui/alerts/recent``, JSON the page script reads) and the alerts
page (``/ui/alerts``). Administrators see every alert; a virtual key's session those of its key, user and team, a
person signed in by single sign-on those of their user — the same rule as ``GET /alerts``, through the same
function."""

from __future__ import annotations

import time
from datetime import datetime

import orjson
from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from switchboard_common.errors import ServiceError
from switchboard_facade.gateway import Gateway
from switchboard_facade.routes.alerts import alerts_page
from switchboard_facade.ui.guard import acting_key, current, to_signin
from switchboard_facade.ui.render import SECURITY_HEADERS, error_page, page

router = APIRouter()

#: Alerts the bell lists, and how recent one must be to count as new.
BELL_ALERTS = 8
NEW_SECONDS = 24 * 3600


@router.get("/ui/alerts/recent")
async def recent_alerts(request: Request) -> Response:
    session = await current(request)
    if session is None:
        return Response(b'{"error": "signed out"}', status_code=401, media_type="application/json",
                        headers=SECURITY_HEADERS)
    gw: Gateway = request.app.state.gateway
    try:
        key = await acting_key(gw, session)
        found = await alerts_page(gw, key, {"limit": str(BELL_ALERTS)})
    except ServiceError:
        return Response(b'{"alerts": [], "new": 0, "unavailable": true}', media_type="application/json",
                        headers=SECURITY_HEADERS)
    since = time.time() - NEW_SECONDS
    alerts = [{"message": a["message"], "kind": a["kind"], "created_at": a["created_at"],
               "threshold_percent": a["threshold_percent"]} for a in found["data"]]
    new = sum(1 for a in found["data"] if a["created_at"] and _epoch(a["created_at"]) >= since)
    return Response(orjson.dumps({"alerts": alerts, "new": new}), media_type="application/json",
                    headers=SECURITY_HEADERS)


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


@router.get("/ui/alerts")
async def alerts_list(request: Request) -> Response:
    session = await current(request)
    if session is None:
        return to_signin()
    gw: Gateway = request.app.state.gateway
    try:
        key = await acting_key(gw, session)
        found = await alerts_page(gw, key, {"limit": "100", "kind": request.query_params.get("kind", "")})
    except ServiceError as err:
        return error_page(request, err)
    return page(request, "alerts.html", session, alerts=found["data"], kind=request.query_params.get("kind", ""))
