"""Admin API for teams, shaped like LiteLLM's: ``/team/new``, ``/team/update``, ``/team/delete``, ``/team/info``,
``/team/list``, ``/team/block``, ``/team/unblock`` and the members' ``/team/member_add``, ``/team/member_update``
and ``/team/member_delete``. Teams are shown with their spend.

Admins manage teams; a team's admins (members with the role ``admin``) manage its members; a key reads its own
team and a user's key the teams its user belongs to. ``/team/delete`` revokes the team's keys with it (LiteLLM
deletes them); ``/team/update`` answers ``{"team_id", "data"}`` as LiteLLM does.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from switchboard_auth.client import TeamInfo, TeamMember, TeamSpec
from switchboard_common.errors import Kind, ServiceError
from switchboard_facade.admin_input import ignored_fields, members, only_ids, team_spec, team_update
from switchboard_facade.admin_views import key_json, key_standings, member_json, team_json, team_standings, user_json
from switchboard_facade.errors import invalid
from switchboard_facade.gateway import Gateway
from switchboard_facade.routes.admin_keys import admin_body, admin_call, any_key
from switchboard_rules.fields import TEAM_IGNORED

router = APIRouter()

#: LiteLLM's member fields the gateway has no meaning for (a member's budget or rate limits within the team).
MEMBER_IGNORED = frozenset({"max_budget_in_team", "tpm_limit", "rpm_limit"})


async def _with_spend(gw: Gateway, info: TeamInfo) -> dict[str, Any]:
    return team_json(info, (await team_standings(gw, [info]))[0])


@router.post("/team/new")
async def new_team(request: Request) -> Response:
    async def work(gw: Gateway, who: str) -> Any:
        body = await admin_body(request)
        info = await gw.auth.admin.create_team(who, team_spec(body))
        return {**team_json(info), "ignored_fields": ignored_fields(body, TEAM_IGNORED)}
    return await admin_call(request, work)


@router.post("/team/update")
async def update_team(request: Request) -> Response:
    async def work(gw: Gateway, who: str) -> Any:
        body = await admin_body(request)
        spec, fields = team_update(body)
        info = await gw.auth.admin.update_team(who, spec, fields)
        return {"team_id": info.team_id, "data": await _with_spend(gw, info),
                "ignored_fields": ignored_fields(body, TEAM_IGNORED)}
    return await admin_call(request, work)


async def _set_blocked(request: Request, block: bool) -> Response:
    async def work(gw: Gateway, who: str) -> Any:
        body = await admin_body(request)
        team_id = body.get("team_id")
        if not isinstance(team_id, str) or not team_id:
            raise invalid("'team_id' is required: the team to block or unblock.", "team_id", "missing_team_id")
        return await _with_spend(gw, await gw.auth.admin.update_team(who, TeamSpec(team_id=team_id, blocked=block),
                                                                     ["blocked"]))
    return await admin_call(request, work)


@router.post("/team/block")
async def block_team(request: Request) -> Response:
    return await _set_blocked(request, True)


@router.post("/team/unblock")
async def unblock_team(request: Request) -> Response:
    return await _set_blocked(request, False)


@router.post("/team/delete")
async def delete_teams(request: Request) -> Response:
    async def work(gw: Gateway, who: str) -> Any:
        ids = only_ids(await admin_body(request), "team_ids", "/team/delete")
        deleted = await gw.auth.admin.delete_teams(who, ids)  # all found first, or none deleted; one change
        return {"deleted_teams": [t.team_id for t in deleted.teams]}
    return await admin_call(request, work)


@router.get("/team/info")
async def team_info(request: Request) -> Response:
    """A team, its keys (those the caller may see) and its members; any key of the team, or of a member, may read
    it."""
    async def work(gw: Gateway, who: str) -> Any:
        info = await gw.auth.admin.get_team(who, request.query_params.get("team_id", ""))
        try:
            keys = await gw.auth.admin.list_keys(who, info.team_id)
        except ServiceError as err:
            if err.error.kind != Kind.ERROR_KIND_PERMISSION:
                raise
            keys = [k for k in [await gw.auth.admin.get_key(who)] if k.team_id == info.team_id]  # its own key
        standings = await key_standings(gw, keys)
        return {"team_id": info.team_id, "team_info": await _with_spend(gw, info),
                "keys": [key_json(k, s) for k, s in zip(keys, standings, strict=True)],
                "team_memberships": [member_json(m) for m in info.members]}
    return await admin_call(request, work, allow=any_key)


@router.get("/team/list")
async def list_teams(request: Request) -> Response:
    async def work(gw: Gateway, who: str) -> Any:
        teams = await gw.auth.admin.list_teams(who, request.query_params.get("user_id", ""))
        standings = await team_standings(gw, teams)
        return [team_json(t, s) for t, s in zip(teams, standings, strict=True)]
    return await admin_call(request, work, allow=any_key)


def _team_id(body: dict[str, Any]) -> str:
    team_id = body.get("team_id")
    if not isinstance(team_id, str) or not team_id:
        raise invalid("'team_id' is required: the team whose members change.", "team_id", "missing_team_id")
    return team_id


def _member_ref(body: dict[str, Any], info: TeamInfo) -> TeamMember:
    """The member a member_delete or member_update body names by user_id or user_email."""
    user_id, email = body.get("user_id"), body.get("user_email")
    if not (isinstance(user_id, str) and user_id) and not (isinstance(email, str) and email):
        raise invalid("Name the member: 'user_id' or 'user_email'.", "user_id", "missing_user_id")
    found = next((m for m in info.members if (user_id and m.user_id == user_id)
                  or (email and (m.user_email == email or m.user_id == email))), None)
    if found is None:
        raise ServiceError(Kind.ERROR_KIND_INVALID_REQUEST, f"User {user_id or email!r} not found in team "
                           f"'{info.team_id}'.", param="user_id", code="team_member_not_found")
    return found


def _check_body(body: dict[str, Any], known: set[str]) -> None:
    unknown = sorted(set(body) - known - MEMBER_IGNORED)
    if unknown:
        raise invalid(f"Unknown field(s): {', '.join(unknown)}. Known fields: {', '.join(sorted(known))}.",
                      unknown[0], "unknown_field")


async def _user(gw: Gateway, who: str, member: TeamMember) -> dict[str, Any]:
    """The member's user as the caller may see it (a team admin who may not read users sees its id and email)."""
    try:
        return user_json(await gw.auth.admin.get_user(who, member.user_id))
    except ServiceError as err:
        if err.error.kind != Kind.ERROR_KIND_PERMISSION:
            raise
        return {"user_id": member.user_id, "user_email": member.user_email or None}


@router.post("/team/member_add")
async def member_add(request: Request) -> Response:
    """``{"team_id", "member": {"role", "user_id" | "user_email"} or a list of them}``; unknown users are created."""
    async def work(gw: Gateway, who: str) -> Any:
        body = await admin_body(request)
        _check_body(body, {"team_id", "member"})
        added = members(body.get("member"), "member")
        if not added:
            raise invalid("'member' is required: {\"role\": \"user\", \"user_id\": \"...\"} or a list of them.",
                          "member", "missing_member")
        info = await gw.auth.admin.update_team_members(who, _team_id(body), upsert=added, strict=True)
        return {**(await _with_spend(gw, info)), "updated_users": [await _user(gw, who, m) for m in added],
                "updated_team_memberships": [member_json(m) for m in added],
                "ignored_fields": ignored_fields(body, MEMBER_IGNORED)}
    return await admin_call(request, work, allow=any_key)


@router.post("/team/member_delete")
async def member_delete(request: Request) -> Response:
    async def work(gw: Gateway, who: str) -> Any:
        body = await admin_body(request)
        _check_body(body, {"team_id", "user_id", "user_email"})
        team = await gw.auth.admin.get_team(who, _team_id(body))
        member = _member_ref(body, team)
        info = await gw.auth.admin.update_team_members(who, team.team_id, remove=[member.user_id], strict=True)
        return await _with_spend(gw, info)
    return await admin_call(request, work, allow=any_key)


@router.post("/team/member_update")
async def member_update(request: Request) -> Response:
    async def work(gw: Gateway, who: str) -> Any:
        body = await admin_body(request)
        _check_body(body, {"team_id", "user_id", "user_email", "role"})
        team = await gw.auth.admin.get_team(who, _team_id(body))
        member = _member_ref(body, team)
        role = body.get("role")
        if role is not None:
            changed = members({"user_id": member.user_id, "user_email": member.user_email, "role": role}, "role")
            await gw.auth.admin.update_team_members(who, team.team_id, upsert=changed)
        return {"team_id": team.team_id, "user_id": member.user_id, "user_email": member.user_email or None,
                "role": role or member.role, "max_budget_in_team": None, "tpm_limit": None, "rpm_limit": None,
                "ignored_fields": ignored_fields(body, MEMBER_IGNORED)}
    return await admin_call(request, work, allow=any_key)
