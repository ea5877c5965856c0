"""Admin API for teams, shaped like LiteLLM's: ``/team/new``, ``/team/update``, ``/team/delete``,
``/team/info`` and ``/team/list``. Master key or admin key only. Teams are shown with their spend."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from switchboard_facade.admin_input import team_spec, team_update
from switchboard_facade.admin_views import key_json, key_standings, team_json, team_standings
from switchboard_facade.errors import invalid
from switchboard_facade.gateway import Gateway
from switchboard_facade.routes.admin_keys import admin_body, admin_call

router = APIRouter()


@router.post("/team/new")
async def new_team(request: Request) -> Response:
    async def work(gw: Gateway, who: str) -> Any:
        body = await admin_body(request)
        return team_json(await gw.auth.admin.create_team(who, team_spec(body)))
    return await admin_call(request, work)


@router.post("/team/update")
async def update_team(request: Request) -> Response:
    async def work(gw: Gateway, who: str) -> Any:
        body = await admin_body(request)
        spec, fields = team_update(body)
        info = await gw.auth.admin.update_team(who, spec, fields)
        return team_json(info, (await team_standings(gw, [info]))[0])
    return await admin_call(request, work)


@router.post("/team/delete")
async def delete_teams(request: Request) -> Response:
    async def work(gw: Gateway, who: str) -> Any:
        body = await admin_body(request)
        ids = body.get("team_ids")
        if not isinstance(ids, list) or not ids or not all(isinstance(t, str) and t for t in ids):
            raise invalid("'team_ids' is required: a non-empty list of team ids.", "team_ids", "missing_team_ids")
        unknown = sorted(set(body) - {"team_ids"})
        if unknown:
            raise invalid(f"Unknown field(s): {', '.join(unknown)}. /team/delete takes only 'team_ids'.",
                          unknown[0], "unknown_field")
        for team_id in ids:  # checked first, so that a bad id deletes nothing
            await gw.auth.admin.get_team(who, team_id)
        deleted = [await gw.auth.admin.delete_team(who, t) for t in ids]
        return {"deleted_teams": [t.team_id for t in deleted]}
    return await admin_call(request, work)


@router.get("/team/info")
async def team_info(request: Request) -> Response:
    async def work(gw: Gateway, who: str) -> Any:
        info = await gw.auth.admin.get_team(who, request.query_params.get("team_id", ""))
        keys = await gw.auth.admin.list_keys(who, info.team_id)
        team_standing = (await team_standings(gw, [info]))[0]
        standings = await key_standings(gw, keys)
        return {"team_id": info.team_id, "team_info": team_json(info, team_standing),
                "keys": [key_json(k, s) for k, s in zip(keys, standings, strict=True)]}
    return await admin_call(request, work)


@router.get("/team/list")
async def list_teams(request: Request) -> Response:
    async def work(gw: Gateway, who: str) -> Any:
        teams = await gw.auth.admin.list_teams(who)
        standings = await team_standings(gw, teams)
        return [team_json(t, s) for t, s in zip(teams, standings, strict=True)]
    return await admin_call(request, work)
