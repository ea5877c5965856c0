"""Admin API for users, shaped like LiteLLM's: ``/user/new``, ``/user/info``, ``/user/update``, ``/user/delete``
and ``/user/list``.

A user owns keys; its budgets (``max_budget``, ``budget_duration``, ``max_daily_spend``) apply to the sum of all
its keys' spend with the same no-overrun guarantee as a key's, and its role decides what its keys may do here.
``/user/new`` also creates a key for the user unless ``auto_create_key`` is false, and adds the user to the
``teams`` it names, as LiteLLM does. Users are shown with their spend.
"""

from __future__ import annotations

import math
from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from switchboard_auth.client import KeySpec, UserInfo
from switchboard_facade.admin_input import only_ids, user_ignored, user_spec, user_update
from switchboard_facade.admin_views import key_json, key_standings, team_json, team_standings, user_json, user_standings
from switchboard_facade.errors import invalid
from switchboard_facade.gateway import Gateway
from switchboard_facade.routes.admin_keys import admin_body, admin_call, any_key, has_user, query_number

router = APIRouter()

#: Fields of /user/update that LiteLLM documents as not implemented there (they shape /user/new's extras).
_UPDATE_IGNORED = frozenset({"teams", "team_id", "auto_create_key", "key_alias", "duration"})


async def _with_spend(gw: Gateway, info: UserInfo) -> dict[str, Any]:
    return user_json(info, (await user_standings(gw, [info]))[0])


def _teams(body: dict[str, Any]) -> list[tuple[str, str]]:
    """(team id, member role) of LiteLLM's ``teams`` (ids, or ``{"team_id", "user_role"}``) and ``team_id``."""
    out: list[tuple[str, str]] = []
    teams = body.get("teams") or []
    if not isinstance(teams, list):
        raise invalid("'teams' must be a list of team ids (or {\"team_id\", \"user_role\"} objects).", "teams",
                      "invalid_type")
    for team in teams:
        if isinstance(team, str) and team:
            out.append((team, "user"))
        elif isinstance(team, dict) and isinstance(team.get("team_id"), str) and team.get("user_role", "user") in (
                "user", "admin"):
            out.append((team["team_id"], team.get("user_role", "user")))
        else:
            raise invalid("Each of 'teams' is a team id or {\"team_id\": \"...\", \"user_role\": \"user\"}.",
                          "teams", "invalid_type")
    if isinstance(body.get("team_id"), str) and body["team_id"]:
        out.append((body["team_id"], "user"))
    return out


@router.post("/user/new")
async def new_user(request: Request) -> Response:
    async def work(gw: Gateway, who: str) -> Any:
        body = await admin_body(request)
        spec = user_spec(body)
        teams = _teams(body)
        auto_key = body.get("auto_create_key", True)
        if not isinstance(auto_key, bool):
            raise invalid("'auto_create_key' must be true or false.", "auto_create_key", "invalid_type")
        key_spec = KeySpec(key_alias=str(body.get("key_alias") or ""), duration=str(body.get("duration") or ""),
                           team_id=body["team_id"] if isinstance(body.get("team_id"), str) else "")
        # The user, its teams and its key in one change (all or nothing; one audit row).
        user = await gw.auth.admin.create_user(who, spec, teams, key_spec if auto_key else None)
        key: dict[str, Any] = {"key": None}
        if user.HasField("created_key"):
            key = {**key_json(user.created_key.info), "key": user.created_key.key}
        user = await gw.auth.admin.get_user(who, user.user_id)
        return {**key, **user_json(user), "ignored_fields": user_ignored(body)}
    return await admin_call(request, work)


@router.get("/user/info")
async def user_info(request: Request) -> Response:
    """The user (the caller's own when ``user_id`` is absent), its spend, its keys and its teams."""
    async def work(gw: Gateway, who: str) -> Any:
        user = await gw.auth.admin.get_user(who, request.query_params.get("user_id", ""))
        keys = await gw.auth.admin.list_keys(who, user_id=user.user_id)
        teams = [t for t in await gw.auth.admin.list_teams(who, user.user_id)]
        key_spend = await key_standings(gw, keys)
        team_spend = await team_standings(gw, teams)
        return {"user_id": user.user_id, "user_info": await _with_spend(gw, user),
                "keys": [key_json(k, s) for k, s in zip(keys, key_spend, strict=True)],
                "teams": [team_json(t, s) for t, s in zip(teams, team_spend, strict=True)]}
    return await admin_call(request, work, allow=any_key)


@router.post("/user/update")
async def update_user(request: Request) -> Response:
    async def work(gw: Gateway, who: str) -> Any:
        body = await admin_body(request)
        spec, fields = user_update(body)
        info = await gw.auth.admin.update_user(who, spec, fields)
        return {"user_id": info.user_id, "data": await _with_spend(gw, info),
                "ignored_fields": user_ignored(body, _UPDATE_IGNORED)}
    return await admin_call(request, work)


@router.post("/user/delete")
async def delete_users(request: Request) -> Response:
    """Deletes users and revokes every key they own (LiteLLM deletes them)."""
    async def work(gw: Gateway, who: str) -> Any:
        ids = only_ids(await admin_body(request), "user_ids", "/user/delete")
        answer = await gw.auth.admin.delete_users(who, ids)
        return {"deleted_users": list(answer.deleted_users), "revoked_keys": list(answer.revoked_keys)}
    return await admin_call(request, work)


@router.get("/user/list")
async def list_users(request: Request) -> Response:
    """LiteLLM's page of users: ``role``, ``user_ids`` (comma-separated), ``page`` and ``page_size`` (at most
    100)."""
    async def work(gw: Gateway, who: str) -> Any:
        q = request.query_params
        page, size = query_number(q, "page", 1, 1_000_000), query_number(q, "page_size", 25, 100)
        users = await gw.auth.admin.list_users(who, q.get("role", ""))
        wanted = {u for u in q.get("user_ids", "").split(",") if u}
        if wanted:
            users = [u for u in users if u.user_id in wanted]
        shown = users[(page - 1) * size: page * size]
        standings = await user_standings(gw, shown)
        return {"users": [user_json(u, s) for u, s in zip(shown, standings, strict=True)], "total": len(users),
                "page": page, "page_size": size, "total_pages": max(1, math.ceil(len(users) / size))}
    return await admin_call(request, work, allow=has_user)
