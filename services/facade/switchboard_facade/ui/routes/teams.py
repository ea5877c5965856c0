"""Teams: each team's keys (its members), limits and spend. Admin only, like ``/team/list``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from switchboard_billing.client import SummarizeUsageRequest
from switchboard_common.errors import ServiceError
from switchboard_facade.admin_views import key_json, team_json
from switchboard_facade.gateway import Gateway
from switchboard_facade.routes.usage import summarize
from switchboard_facade.ui.guard import current, forbidden, to_signin
from switchboard_facade.ui.render import page
from switchboard_facade.ui.routes.keys import budget_micros

router = APIRouter()


@router.get("/ui/teams")
async def teams_page(request: Request) -> Response:
    session = await current(request)
    if session is None:
        return to_signin()
    if not session.is_admin:
        return forbidden(request, session)
    gw: Gateway = request.app.state.gateway
    who = session.credential
    teams: list[dict[str, Any]] = []
    error = ""
    try:
        listed = await gw.auth.admin.list_teams(who)
        keys = await gw.auth.admin.list_keys(who)
        spend = {g.group: g.cost_micros for g in
                 (await summarize(gw, SummarizeUsageRequest(group_by="team"))).groups}
        for info in listed:
            team = team_json(info)
            team["members"] = [key_json(k) for k in keys if k.team_id == info.team_id]
            team["spend_micros"] = spend.get(info.team_id, 0)
            team["budget_micros"] = budget_micros(info.limits)
            teams.append(team)
    except ServiceError as err:
        error = err.error.message
    return page(request, "teams.html", session, teams=teams, error=error)
