"""Users: each user's role, keys, teams, budget and spend. Admin only, like ``/user/list``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from switchboard_billing.client import SummarizeUsageRequest
from switchboard_common.errors import ServiceError
from switchboard_facade.admin_views import user_json
from switchboard_facade.gateway import Gateway
from switchboard_facade.routes.usage import summarize
from switchboard_facade.ui.guard import current, forbidden, to_signin
from switchboard_facade.ui.render import page
from switchboard_facade.ui.routes.keys import budget_micros

router = APIRouter()


@router.get("/ui/users")
async def users_page(request: Request) -> Response:
    session = await current(request)
    if session is None:
        return to_signin()
    if not session.is_admin:
        return forbidden(request, session)
    gw: Gateway = request.app.state.gateway
    users: list[dict[str, Any]] = []
    error = ""
    try:
        listed = await gw.auth.admin.list_users(session.credential)
        spend = {g.group: g.cost_micros for g in
                 (await summarize(gw, SummarizeUsageRequest(group_by="user"))).groups}
        for info in listed:
            user = user_json(info)
            user["spend_micros"] = spend.get(info.user_id, 0)
            user["budget_micros"] = budget_micros(info.limits)
            users.append(user)
    except ServiceError as err:
        error = err.error.message
    return page(request, "users.html", session, users=users, error=error)
