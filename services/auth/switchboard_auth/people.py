"""The admin RPCs of users and of team members (part of :class:`~switchboard_auth.servicer.AuthServicer`).

A user owns keys (``VirtualKey.user_id``): its budgets count the spend of all
its keys (billing), its role decides what its keys may do in the admin API
(:mod:`switchboard_auth.access`), its ``blocked`` flag refuses all its keys.
A team's members are users with a team role (``admin`` or ``user``); naming an
unknown user as a member creates that user, as LiteLLM does.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import grpc

from switchboard.v1 import auth_pb2
from switchboard_auth import audit
from switchboard_auth.access import ADMIN_ONLY, Caller, denied
from switchboard_auth.models import Team, User, VirtualKey
from switchboard_auth.specs import (
    USER_ID,
    apply_user_spec,
    bad,
    check_members,
    check_text,
    member_rows,
    now_s,
    spec_fields_set,
    user_info,
)
from switchboard_auth.store import Conflict, KeyStore
from switchboard_auth.typed_rpc import rpc
from switchboard_common.errors import Kind, ServiceError
from switchboard_rules.fields import DEFAULT_USER_ROLE

log = logging.getLogger(__name__)


#: The servicer context of each RPC shape: grpc.aio.ServicerContext[its request, its answer].
_UserContext = grpc.aio.ServicerContext[auth_pb2.UserRequest, auth_pb2.UserInfo]
_GetUserContext = grpc.aio.ServicerContext[auth_pb2.GetUserRequest, auth_pb2.UserInfo]
_ListUsersContext = grpc.aio.ServicerContext[auth_pb2.ListUsersRequest, auth_pb2.ListUsersResponse]
_DeleteUsersContext = grpc.aio.ServicerContext[auth_pb2.DeleteUsersRequest, auth_pb2.DeleteUsersResponse]
_UpdateTeamMembersContext = grpc.aio.ServicerContext[auth_pb2.UpdateTeamMembersRequest, auth_pb2.TeamInfo]


class PeopleAdmin:
    """Users and team members. The servicer provides the store and the shared helpers named below."""

    store: KeyStore

    if TYPE_CHECKING:  # provided by the servicer
        async def _caller(self, caller: auth_pb2.AdminCaller) -> Caller: ...
        async def _admin(self, caller: auth_pb2.AdminCaller) -> Caller: ...
        async def _changed(self, key_ids: Sequence[str] = (), team_ids: Sequence[str] = ()) -> None: ...
        async def _find_team(self, team_id: str) -> Team: ...
        async def _team_info(self, team: Team) -> auth_pb2.TeamInfo: ...
        @staticmethod
        def _revoked(keys: Sequence[VirtualKey]) -> tuple[list[VirtualKey], dict[str, tuple[dict[str, Any],
                                                                                      dict[str, Any]]]]: ...
        async def _revoke_announced(self, key_ids: Sequence[str]) -> None: ...
        async def _key_to_create(self, who: Caller, spec: auth_pb2.KeySpec, given: str,
                                 *, new_user: bool = False) -> tuple[VirtualKey, str, Team | None]: ...
        def _info(self, key: VirtualKey, now: float, team: Team | None,
                  user: User | None = None) -> auth_pb2.KeyInfo: ...

    # -- helpers ---------------------------------------------------------------------------

    async def _find_user(self, user_id: str) -> User:
        if not user_id:
            raise bad("Name the user: user_id is required.", "user_id", "missing_user_id")
        check_text(user_id, "user_id")
        user = await self.store.user(user_id)
        if user is None:
            raise ServiceError(Kind.ERROR_KIND_NOT_FOUND, f"No user '{user_id}' (see GET /user/list).",
                               param="user_id", code="user_id_not_found")
        return user

    async def _new_users(self, members: Iterable[dict[str, str]]) -> list[User]:
        """The members that are not users yet, as users to create (role internal_user) with the change that names
        them, as LiteLLM's member_add does."""
        now = now_s()
        new: dict[str, User] = {}
        for member in members:
            if member["user_id"] not in new and await self.store.user(member["user_id"]) is None:
                new[member["user_id"]] = User(user_id=member["user_id"], user_email=member.get("user_email", ""),
                                              user_role=DEFAULT_USER_ROLE, created_at=now, updated_at=now)
        if new:
            log.info("users created as team members", extra={"user_ids": list(new)})
        return list(new.values())

    async def _user_info(self, user: User) -> auth_pb2.UserInfo:
        teams = [t.team_id for t in await self.store.teams()
                 if any(m.get("user_id") == user.user_id for m in t.members)]
        count = (await self.store.live_key_counts("user_id")).get(user.user_id, 0)
        return user_info(user, count, teams)

    async def _user_keys_changed(self, user: User) -> None:
        """Every key of the user carries the user's limits, role and models in its context: drop them."""
        key_ids = [k.key_id for k in await self.store.list(user_id=user.user_id)]
        if key_ids:
            await self._changed(key_ids=key_ids)

    # -- users -----------------------------------------------------------------------------

    @rpc
    async def CreateUser(self, request: auth_pb2.UserRequest, context: _UserContext) -> auth_pb2.UserInfo:
        who = await self._admin(request.caller)
        user_id = request.spec.user_id or "user_" + secrets.token_hex(8)
        check_text(user_id, "user_id")
        if not USER_ID.match(user_id):
            raise bad("user_id may hold letters, digits, '.', '_', ':', '@', '+' and '-' (at most 200).",
                      "user_id")
        now = now_s()
        user = User(user_id=user_id, created_at=now)
        apply_user_spec(user, request.spec, spec_fields_set(request.spec), now)
        if await self.store.user(user_id) is not None:
            raise ServiceError(Kind.ERROR_KIND_CONFLICT, f"A user '{user_id}' already exists.",
                               param="user_id", code="user_exists")
        teams = await self._joined(user, request.join_teams, now)
        created: auth_pb2.CreateKeyResponse | None = None
        keys: list[VirtualKey] = []
        extra: dict[str, Any] = {"joined_teams": [t.team_id for t in teams]} if teams else {}
        if request.HasField("create_key"):
            spec = auth_pb2.KeySpec()
            spec.CopyFrom(request.create_key)
            spec.user_id = user_id
            key, plain, key_team = await self._key_to_create(who, spec, "", new_user=True)
            keys.append(key)
            extra["created_key"] = key.key_id
            created = auth_pb2.CreateKeyResponse(key=plain, info=self._info(key, now, key_team, user))
        try:
            await self.store.commit(audit.change(who, request.caller, "user.create", "user", user_id,
                                                 after=audit.snapshot(user), extra=extra),
                                    insert=[user, *keys], save=teams)
        except Conflict:
            raise ServiceError(Kind.ERROR_KIND_CONFLICT, f"A user '{user_id}' already exists (or a team it joins "
                               "changed at the same time); retry.", param="user_id", code="user_exists") from None
        if teams:
            await self._changed(team_ids=[t.team_id for t in teams])
        log.info("user created", extra={"user_id": user_id, "user_role": user.user_role})
        info = user_info(user, len(keys), [t.team_id for t in teams])
        if created is not None:
            info.created_key.CopyFrom(created)
        return info

    async def _joined(self, user: User, join: Sequence[auth_pb2.TeamMembership], now: int) -> list[Team]:
        """The teams ``join`` names, each with the new user as a member (not written yet)."""
        teams: list[Team] = []
        for team_id, joining in {m.team_id: m for m in join}.items():
            team = await self._find_team(team_id)
            member = auth_pb2.TeamMember(user_id=user.user_id, role=joining.role or "user",
                                         user_email=user.user_email)
            check_members([member])
            team.members = [*(m for m in team.members if m.get("user_id") != user.user_id), *member_rows([member])]
            team.updated_at = now
            teams.append(team)
        return teams

    @rpc
    async def UpdateUser(self, request: auth_pb2.UserRequest, context: _UserContext) -> auth_pb2.UserInfo:
        who = await self._admin(request.caller)
        user = await self._find_user(request.spec.user_id)
        before = audit.snapshot(user)
        fields = set(request.update_fields)
        apply_user_spec(user, request.spec, fields, now_s())
        await self.store.commit(audit.change(who, request.caller, "user.update", "user", user.user_id, before,
                                             audit.snapshot(user)), save=[user])
        await self._user_keys_changed(user)
        log.info("user updated", extra={"user_id": user.user_id, "fields": sorted(fields)})
        return await self._user_info(user)

    @rpc
    async def GetUser(self, request: auth_pb2.GetUserRequest, context: _GetUserContext) -> auth_pb2.UserInfo:
        who = await self._caller(request.caller)
        user_id = request.user_id or who.user_id
        if not user_id and who.key is not None:
            raise ServiceError(Kind.ERROR_KIND_NOT_FOUND, "This key belongs to no user.", param="user_id",
                               code="user_id_not_found")
        if not user_id:
            raise bad("Name the user: GET /user/info?user_id=...", "user_id", "missing_user_id")
        if not who.reads_all and user_id != who.user_id:
            raise denied("A user's key may only read its own user.", "not_your_user")
        return await self._user_info(await self._find_user(user_id))

    @rpc
    async def ListUsers(self, request: auth_pb2.ListUsersRequest,
                        context: _ListUsersContext) -> auth_pb2.ListUsersResponse:
        (await self._caller(request.caller)).require_reader()
        check_text(request.user_role, "user_role")
        counts = await self.store.live_key_counts("user_id")
        memberships: dict[str, list[str]] = {}
        for team in await self.store.teams():
            for member in team.members:
                memberships.setdefault(member.get("user_id", ""), []).append(team.team_id)
        return auth_pb2.ListUsersResponse(users=[
            user_info(u, counts.get(u.user_id, 0), memberships.get(u.user_id, []))
            for u in await self.store.users(request.user_role)])

    @rpc
    async def DeleteUsers(self, request: auth_pb2.DeleteUsersRequest,
                          context: _DeleteUsersContext) -> auth_pb2.DeleteUsersResponse:
        who = await self._admin(request.caller)
        if not request.user_ids:
            raise bad("Name the users to delete: {\"user_ids\": [\"...\"]}.", "user_ids", "missing_user_ids")
        found = [await self._find_user(user_id) for user_id in request.user_ids]  # all found before any change
        users = list({u.user_id: u for u in found}.values())
        keys: list[VirtualKey] = []
        for user in users:
            keys += [k for k in await self.store.list(user_id=user.user_id) if k.status != "revoked"]
        revoked_rows, _ = self._revoked(keys)
        revoked = [k.key_id for k in revoked_rows]
        gone = {u.user_id for u in users}
        teams: list[Team] = []
        for team in await self.store.teams():
            kept = [m for m in team.members if m.get("user_id") not in gone]
            if len(kept) != len(team.members):
                team.members, team.updated_at = kept, now_s()
                teams.append(team)
        await self.store.commit(audit.many(who, request.caller, "user.delete", "user",
                                           {u.user_id: (audit.snapshot(u), {}) for u in users},
                                           {"revoked_keys": revoked, "left_teams": [t.team_id for t in teams]}),
                                save=[*revoked_rows, *teams], delete=users)
        await self._revoke_announced(revoked)
        log.info("users deleted", extra={"user_ids": sorted(gone), "revoked_keys": len(revoked)})
        return auth_pb2.DeleteUsersResponse(deleted_users=[u.user_id for u in users], revoked_keys=revoked)

    # -- team members ----------------------------------------------------------------------

    @rpc
    async def UpdateTeamMembers(self, request: auth_pb2.UpdateTeamMembersRequest,
                                context: _UpdateTeamMembersContext) -> auth_pb2.TeamInfo:
        who = await self._caller(request.caller)
        team = await self._find_team(request.team_id)
        if not who.is_admin and not who.team_admin_of(team):
            raise denied(f"{ADMIN_ONLY} A team's admins may manage its members too.")
        check_members(request.upsert)
        for user_id in request.remove_user_ids:
            check_text(user_id, "user_id")
        members = {m["user_id"]: m for m in team.members}
        if request.strict:
            present = [m.user_id for m in request.upsert if m.user_id in members]
            if present:
                raise ServiceError(Kind.ERROR_KIND_INVALID_REQUEST, f"User(s) {present} already in team "
                                   f"'{team.team_id}'; use /team/member_update to change a role.",
                                   param="member", code="team_member_already_in_team")
            absent = [u for u in request.remove_user_ids if u not in members]
            if absent:
                raise ServiceError(Kind.ERROR_KIND_INVALID_REQUEST, f"User(s) {absent} not found in team "
                                   f"'{team.team_id}'.", param="user_id", code="team_member_not_found")
        for row in member_rows(request.upsert):
            if not row["user_email"] and row["user_id"] in members:
                row["user_email"] = members[row["user_id"]].get("user_email", "")
            members[row["user_id"]] = row
        for user_id in request.remove_user_ids:
            members.pop(user_id, None)
        before = audit.snapshot(team)
        team.members, team.updated_at = list(members.values()), now_s()
        users = await self._new_users(team.members)
        try:
            await self.store.commit(audit.change(who, request.caller, "team.members", "team", team.team_id, before,
                                                 audit.snapshot(team), audit.created_users(users)),
                                    insert=users, save=[team])
        except Conflict:
            raise ServiceError(Kind.ERROR_KIND_CONFLICT, "Another change of the same team or user was made at the "
                               "same time; retry.", code="concurrent_change") from None
        log.info("team members changed", extra={"team_id": team.team_id, "members": len(team.members)})
        return await self._team_info(team)
