"""The audit trail (admins only, like ``/audit``): who changed what, when and from where, with the same filters,
a CSV export of what is shown, and whether the hash chains are intact."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from switchboard_common.errors import ServiceError
from switchboard_facade.gateway import Gateway, new_request_id
from switchboard_facade.routes.audit import (
    CSV_COLUMNS,
    audit_query,
    audit_rows,
    csv_row,
    entry_json,
    verification_json,
    verify_all,
)
from switchboard_facade.routes.usage import csv_response
from switchboard_facade.ui.guard import admin_session
from switchboard_facade.ui.render import page

router = APIRouter()

FILTERS = ("actor", "action", "target_type", "target_id", "since", "until", "log")


@router.get("/ui/audit")
async def audit_page(request: Request) -> Response:
    session = await admin_session(request)
    if isinstance(session, Response):
        return session
    gw: Gateway = request.app.state.gateway
    values = {name: request.query_params.get(name, "") for name in FILTERS}
    rows, checks, error = [], [], ""
    try:
        query, logs = audit_query(request.query_params)
        rows = [entry_json(e) for e in await audit_rows(gw, session.credential, query, logs)]
        if request.query_params.get("verify"):
            checks = [verification_json(v) for v in await verify_all(gw, session.credential)]
    except ServiceError as err:
        error = err.error.message
    export = urlencode({k: v for k, v in values.items() if v})
    return page(request, "audit.html", session, rows=rows, checks=checks, values=values, error=error,
                export=export, status=400 if error else 200)


@router.get("/ui/audit.csv")
async def audit_csv(request: Request) -> Response:
    session = await admin_session(request)
    if isinstance(session, Response):
        return session
    gw: Gateway = request.app.state.gateway
    query, logs = audit_query(request.query_params)
    rows = await audit_rows(gw, session.credential, query, logs)
    return csv_response([csv_row(e) for e in rows], CSV_COLUMNS, "audit.csv", new_request_id())
