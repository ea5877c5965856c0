"""Admin API for teams, shaped like LiteLLM's: ``/team/new``, ``/team/update``, ``/team/delete``,
``/team/info`` and ``/team/list``. Master key or admin key only."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from switchboard.v1 import auth_pb2
from switchboard_facade.admin_input import team_spec, team_update
from switchboard_facade.errors import invalid
from switchboard_facade.gateway import Gateway
from switchboard_facade.routes.admin_keys import admin_body, admin_call, iso, key_json, limits_json

router = APIRouter()


def team_json(info: auth_pb2.TeamInfo) -> dict[str, Any]:
    return {
        "team_id": info.team_id,
        "team_alias": info.team_alias or None,
        "models": list(info.models),
        **limits_json(info.limits),
        "privacy_tier": info.privacy_tier or None,
        "pii_policy": info.pii_policy or None,
        "provider_credentials": dict(info.provider_credential_hints),
        "metadata": dict(info.metadata),
        "blocked": info.blocked,
        "key_count": info.key_count,
        "created_at": iso(info.created_at),
        "updated_at": iso(info.updated_at),
    }


@router.post("/team/new")
async def new_team(request: Request) -> Response:
    async def work(gw: Gateway, who: auth_pb2.AdminCaller) -> Any:
        body = await admin_body(request)
        return team_json(await gw.admin("CreateTeam", auth_pb2.TeamRequest(caller=who, spec=team_spec(body))))
    return await admin_call(request, work)


@router.post("/team/update")
async def update_team(request: Request) -> Response:
    async def work(gw: Gateway, who: auth_pb2.AdminCaller) -> Any:
        body = await admin_body(request)
        spec, fields = team_update(body)
        return team_json(await gw.admin("UpdateTeam", auth_pb2.TeamRequest(caller=who, spec=spec,
                                                                           update_fields=fields)))
    return await admin_call(request, work)


@router.post("/team/delete")
async def delete_teams(request: Request) -> Response:
    async def work(gw: Gateway, who: auth_pb2.AdminCaller) -> Any:
        body = await admin_body(request)
        ids = body.get("team_ids")
        if not isinstance(ids, list) or not ids or not all(isinstance(t, str) and t for t in ids):
            raise invalid("'team_ids' is required: a non-empty list of team ids.", "team_ids", "missing_team_ids")
        unknown = sorted(set(body) - {"team_ids"})
        if unknown:
            raise invalid(f"Unknown field(s): {', '.join(unknown)}. /team/delete takes only 'team_ids'.",
                          unknown[0], "unknown_field")
        for team_id in ids:  # checked first, so that a bad id deletes nothing
            await gw.admin("GetTeam", auth_pb2.GetTeamRequest(caller=who, team_id=team_id))
        deleted = [await gw.admin("DeleteTeam", auth_pb2.GetTeamRequest(caller=who, team_id=t)) for t in ids]
        return {"deleted_teams": [t.team_id for t in deleted]}
    return await admin_call(request, work)


@router.get("/team/info")
async def team_info(request: Request) -> Response:
    async def work(gw: Gateway, who: auth_pb2.AdminCaller) -> Any:
        team_id = request.query_params.get("team_id", "")
        info = await gw.admin("GetTeam", auth_pb2.GetTeamRequest(caller=who, team_id=team_id))
        keys = await gw.admin("ListKeys", auth_pb2.ListKeysRequest(caller=who, team_id=info.team_id))
        return {"team_id": info.team_id, "team_info": team_json(info), "keys": [key_json(k) for k in keys.keys]}
    return await admin_call(request, work)


@router.get("/team/list")
async def list_teams(request: Request) -> Response:
    async def work(gw: Gateway, who: auth_pb2.AdminCaller) -> Any:
        listed = await gw.admin("ListTeams", auth_pb2.ListTeamsRequest(caller=who))
        return [team_json(t) for t in listed.teams]
    return await admin_call(request, work)
