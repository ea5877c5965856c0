"""Teams (admins only, like ``/team/*``): the list with budget bars, create, a team's page (members, budgets,
settings), block and unblock, delete (refused while the team has keys)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from switchboard_auth.client import TeamInfo
from switchboard_common.errors import ServiceError
from switchboard_facade.admin_input import team_spec, team_update
from switchboard_facade.admin_views import team_json
from switchboard_facade.gateway import Gateway
from switchboard_facade.ui.budget_bars import standings
from switchboard_facade.ui.choices import choices
from switchboard_facade.ui.forms import FormError, message_of, team_body
from switchboard_facade.ui.guard import admin_post, admin_session
from switchboard_facade.ui.names import Directory, directory
from switchboard_facade.ui.render import SECURITY_HEADERS, page
from switchboard_facade.ui.routes.keys import form_fields, key_rows
from switchboard_facade.ui.session import Session

router = APIRouter()

ACTIONS = ("edit", "block", "unblock", "delete")


async def team_rows(gw: Gateway, infos: list[TeamInfo], names: Directory) -> list[dict[str, Any]]:
    found = await standings(gw, [("team", t.team_id, t.limits) for t in infos])
    return [{**team_json(t), **form_fields(t.limits, t.jurisdictions), "name": names.team(t.team_id),
             "standing": found.get(("team", t.team_id))}
            for t in infos]


@router.get("/ui/teams")
async def teams_page(request: Request) -> Response:
    session = await admin_session(request)
    if isinstance(session, Response):
        return session
    gw: Gateway = request.app.state.gateway
    names = await directory(gw, session)
    error = "" if names.ok else "Teams could not be listed (auth did not answer); try again in a moment."
    teams = sorted(await team_rows(gw, list(names.teams.values()), names), key=lambda t: t["name"].lower())
    return page(request, "teams.html", session, teams=teams, error=error,
                notice="Team deleted." if request.query_params.get("deleted") else "")


async def _team_page(request: Request, session: Session, team_id: str, *, values: Any = None, error: str = "",
                     status: int = 200, notice: str = "") -> Response:
    gw: Gateway = request.app.state.gateway
    names = await directory(gw, session)
    info = names.teams.get(team_id)
    if info is None:
        return page(request, "error.html", session, status=404, title="No such team",
                    message=error or f"There is no team {team_id!r}.")
    team = (await team_rows(gw, [info], names))[0]
    members = await key_rows(gw, [k for k in names.keys.values() if k.team_id == team_id], names)
    return page(request, "team.html", session, team=team, members=members, choices=await choices(request, session),
                values=values or {}, error=error, status=status, notice=notice)


@router.get("/ui/teams/new")
async def new_team_form(request: Request) -> Response:
    session = await admin_session(request)
    if isinstance(session, Response):
        return session
    return page(request, "team_new.html", session, choices=await choices(request, session), values={})


@router.post("/ui/teams/create")
async def create(request: Request) -> Response:
    posted = await admin_post(request)
    if isinstance(posted, Response):
        return posted
    session, form = posted
    gw: Gateway = request.app.state.gateway
    try:
        made = await gw.auth.admin.create_team(session.credential, team_spec(team_body(form)))
    except (FormError, ServiceError) as err:
        return page(request, "team_new.html", session, choices=await choices(request, session), values=form,
                    error=message_of(err), status=400)
    return RedirectResponse(f"/ui/teams/{made.team_id}?created=1", status_code=303, headers=SECURITY_HEADERS)


@router.get("/ui/teams/{team_id}")
async def team_page(request: Request, team_id: str) -> Response:
    session = await admin_session(request)
    if isinstance(session, Response):
        return session
    q = request.query_params
    notice = "Team created." if q.get("created") else "Saved." if q.get("saved") else ""
    return await _team_page(request, session, team_id, notice=notice)


@router.post("/ui/teams/{team_id}/{action}")
async def act(request: Request, team_id: str, action: str) -> Response:
    posted = await admin_post(request)
    if isinstance(posted, Response):
        return posted
    session, form = posted
    if action not in ACTIONS:
        return page(request, "error.html", session, status=404, message=f"No team action named {action!r}.")
    gw: Gateway = request.app.state.gateway
    who = session.credential
    target = f"/ui/teams/{team_id}"
    try:
        if action == "delete":
            await gw.auth.admin.delete_team(who, team_id)
            target = "/ui/teams?deleted=1"
        elif action in ("block", "unblock"):
            spec, changed = team_update({"team_id": team_id, "blocked": action == "block"})
            await gw.auth.admin.update_team(who, spec, changed)
            if form.get("back", [""])[0] == "list":
                target = "/ui/teams"
        else:
            spec, changed = team_update({**team_body(form, keep_blank=True), "team_id": team_id})
            await gw.auth.admin.update_team(who, spec, changed)
            target = f"/ui/teams/{team_id}?saved=1"
    except (FormError, ServiceError) as err:
        message = message_of(err)
        return await _team_page(request, session, team_id, values=form if action == "edit" else None,
                                error=message, status=400)
    return RedirectResponse(target, status_code=303, headers=SECURITY_HEADERS)
