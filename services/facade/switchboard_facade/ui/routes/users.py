"""Users (admins only, like ``/user/list``): each user's role, keys, teams, and budget bars over all their keys."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from switchboard_facade.admin_views import user_json
from switchboard_facade.gateway import Gateway
from switchboard_facade.ui.budget_bars import standings
from switchboard_facade.ui.guard import admin_session
from switchboard_facade.ui.names import directory
from switchboard_facade.ui.render import page

router = APIRouter()


@router.get("/ui/users")
async def users_page(request: Request) -> Response:
    session = await admin_session(request)
    if isinstance(session, Response):
        return session
    gw: Gateway = request.app.state.gateway
    names = await directory(gw, session)
    infos = sorted(names.users.values(), key=lambda u: names.user(u.user_id).lower())
    found = await standings(gw, [("user", u.user_id, u.limits) for u in infos])
    users = [{**user_json(u), "name": names.user(u.user_id), "team_names": [names.team(t) for t in u.teams],
              "standing": found.get(("user", u.user_id))} for u in infos]
    error = "" if names.ok else "Users could not be listed (auth did not answer); try again in a moment."
    return page(request, "users.html", session, users=users, error=error)
