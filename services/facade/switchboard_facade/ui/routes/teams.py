"""Teams: each team's keys (its members), limits and spend. Admin only, like ``/team/list``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from switchboard.v1 import auth_pb2, billing_pb2
from switchboard_common.errors import ServiceError
from switchboard_facade.gateway import Gateway
from switchboard_facade.routes.admin_keys import key_json
from switchboard_facade.routes.admin_teams import team_json
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
    who = auth_pb2.AdminCaller(api_key=session.credential)
    teams: list[dict[str, Any]] = []
    error = ""
    try:
        listed = await gw.admin("ListTeams", auth_pb2.ListTeamsRequest(caller=who))
        keys = await gw.admin("ListKeys", auth_pb2.ListKeysRequest(caller=who))
        spend = {g.group: g.cost_micros for g in
                 (await summarize(gw, billing_pb2.SummarizeUsageRequest(group_by="team"))).groups}
        for info in listed.teams:
            team = team_json(info)
            team["members"] = [key_json(k) for k in keys.keys if k.team_id == info.team_id]
            team["spend_micros"] = spend.get(info.team_id, 0)
            team["budget_micros"] = budget_micros(info.limits)
            teams.append(team)
    except ServiceError as err:
        error = err.error.message
    return page(request, "teams.html", session, teams=teams, error=error)
