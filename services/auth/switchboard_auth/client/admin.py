"""The admin API of keys, teams and users, as typed calls: what the admin routes, the dashboard and the CLI use.

Every call carries the caller's own credential (the master key or a virtual
key); auth decides what it may do. A change that succeeded also drops this
client's cached verifications at once (read-your-writes here; auth's push
reaches every other client within a second). A refused call changes nothing,
the cache included.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

import grpc

from switchboard.v1 import auth_pb2, auth_pb2_grpc, common_pb2
from switchboard_common import audit_origin
from switchboard_common.errors import from_rpc_error

T = TypeVar("T")

KeySpec = auth_pb2.KeySpec
TeamSpec = auth_pb2.TeamSpec
KeyInfo = auth_pb2.KeyInfo
TeamInfo = auth_pb2.TeamInfo
TeamMember = auth_pb2.TeamMember
UserSpec = auth_pb2.UserSpec
UserInfo = auth_pb2.UserInfo
CreatedKey = auth_pb2.CreateKeyResponse
AuditQuery = common_pb2.AuditQuery
AuditEntry = common_pb2.AuditEntry
AuditVerification = common_pb2.AuditVerification
SessionInfo = auth_pb2.SessionInfo
SsoSignIn = auth_pb2.SsoSignIn
SelfServeLimits = auth_pb2.SelfServeLimits


class AuthAdmin:
    def __init__(self, stub: auth_pb2_grpc.AuthStub, metadata: tuple[tuple[str, str], ...], timeout_seconds: float,
                 changed: Callable[[], None]) -> None:
        self.stub = stub
        self.metadata = metadata
        self.timeout_seconds = timeout_seconds
        #: Called after every successful change (drops cached verifications).
        self.changed = changed

    async def _call(self, rpc: Callable[..., Awaitable[T]], request: object, change: bool) -> T:
        try:
            answer = await rpc(request, timeout=self.timeout_seconds, metadata=self.metadata)
        except grpc.aio.AioRpcError as exc:
            raise from_rpc_error(exc, "auth") from None
        if change:
            self.changed()
        return answer

    @staticmethod
    def _caller(api_key: str) -> auth_pb2.AdminCaller:
        """The caller's credential, with the origin of the admin request running (see
        :mod:`switchboard_common.audit_origin`), which auth records with any change the call makes."""
        return auth_pb2.AdminCaller(api_key=api_key, origin=audit_origin.message())

    async def create_key(self, caller: str, spec: KeySpec, key: str = "", *, dry_run: bool = False) -> CreatedKey:
        """A new key; ``key``: the plain key to use (migrating keys), else a generated one; with ``dry_run``, the
        key as it would be (no plain key), nothing written."""
        return await self._call(self.stub.CreateKey, auth_pb2.CreateKeyRequest(
            caller=self._caller(caller), spec=spec, key=key, dry_run=dry_run), change=False)

    async def list_keys(self, caller: str, team_id: str = "", user_id: str = "") -> list[KeyInfo]:
        answer = await self._call(self.stub.ListKeys, auth_pb2.ListKeysRequest(
            caller=self._caller(caller), team_id=team_id, user_id=user_id), change=False)
        return list(answer.keys)

    async def get_key(self, caller: str, key: str = "") -> KeyInfo:
        return await self._call(self.stub.GetKey, auth_pb2.GetKeyRequest(caller=self._caller(caller), key=key),
                                change=False)

    async def update_key(self, caller: str, key: str, spec: KeySpec, fields: Sequence[str], *,
                         dry_run: bool = False) -> KeyInfo:
        """The key changed; with ``dry_run``, the key as it would be, nothing written."""
        return await self._call(self.stub.UpdateKey, auth_pb2.UpdateKeyRequest(
            caller=self._caller(caller), key=key, spec=spec, update_fields=fields, dry_run=dry_run),
            change=not dry_run)

    async def regenerate_key(self, caller: str, key: str, spec: KeySpec | None = None,
                             fields: Sequence[str] = (), new_key: str = "") -> CreatedKey:
        return await self._call(self.stub.RegenerateKey, auth_pb2.RegenerateKeyRequest(
            caller=self._caller(caller), key=key, spec=spec, update_fields=fields, new_key=new_key), change=True)

    async def delete_keys(self, caller: str, keys: Sequence[str]) -> list[str]:
        answer = await self._call(self.stub.DeleteKeys, auth_pb2.DeleteKeysRequest(caller=self._caller(caller),
                                                                                    keys=keys), change=True)
        return list(answer.deleted_keys)

    async def set_key_blocked(self, caller: str, key: str, blocked: bool) -> KeyInfo:
        return await self._call(self.stub.SetKeyBlocked, auth_pb2.SetBlockedRequest(
            caller=self._caller(caller), key=key, blocked=blocked), change=True)

    async def create_team(self, caller: str, spec: TeamSpec) -> TeamInfo:
        return await self._call(self.stub.CreateTeam, auth_pb2.TeamRequest(caller=self._caller(caller), spec=spec),
                                change=False)

    async def update_team(self, caller: str, spec: TeamSpec, fields: Sequence[str]) -> TeamInfo:
        return await self._call(self.stub.UpdateTeam, auth_pb2.TeamRequest(
            caller=self._caller(caller), spec=spec, update_fields=fields), change=True)

    async def delete_team(self, caller: str, team_id: str) -> TeamInfo:
        return await self._call(self.stub.DeleteTeam, auth_pb2.GetTeamRequest(caller=self._caller(caller),
                                                                              team_id=team_id), change=True)

    async def delete_teams(self, caller: str, team_ids: Sequence[str]) -> auth_pb2.DeleteTeamsResponse:
        """Deletes the teams (all or none) and revokes their keys, in one change."""
        return await self._call(self.stub.DeleteTeams, auth_pb2.DeleteTeamsRequest(
            caller=self._caller(caller), team_ids=team_ids), change=True)

    async def get_team(self, caller: str, team_id: str) -> TeamInfo:
        return await self._call(self.stub.GetTeam, auth_pb2.GetTeamRequest(caller=self._caller(caller),
                                                                           team_id=team_id), change=False)

    async def list_teams(self, caller: str, user_id: str = "") -> list[TeamInfo]:
        answer = await self._call(self.stub.ListTeams, auth_pb2.ListTeamsRequest(
            caller=self._caller(caller), user_id=user_id), change=False)
        return list(answer.teams)

    async def update_team_members(self, caller: str, team_id: str, upsert: Sequence[TeamMember] = (),
                                  remove: Sequence[str] = (), strict: bool = False) -> TeamInfo:
        return await self._call(self.stub.UpdateTeamMembers, auth_pb2.UpdateTeamMembersRequest(
            caller=self._caller(caller), team_id=team_id, upsert=upsert, remove_user_ids=remove, strict=strict),
            change=False)

    async def create_user(self, caller: str, spec: UserSpec, join_teams: Sequence[tuple[str, str]] = (),
                          create_key: KeySpec | None = None) -> UserInfo:
        """A new user; in the same change, it joins ``join_teams`` ((team_id, role) pairs) and gets a key made
        from ``create_key`` when given (its plain key in the answer's ``created_key``)."""
        return await self._call(self.stub.CreateUser, auth_pb2.UserRequest(
            caller=self._caller(caller), spec=spec, create_key=create_key,
            join_teams=[auth_pb2.TeamMembership(team_id=t, role=r) for t, r in join_teams]), change=False)

    async def update_user(self, caller: str, spec: UserSpec, fields: Sequence[str]) -> UserInfo:
        return await self._call(self.stub.UpdateUser, auth_pb2.UserRequest(
            caller=self._caller(caller), spec=spec, update_fields=fields), change=True)

    async def get_user(self, caller: str, user_id: str = "") -> UserInfo:
        return await self._call(self.stub.GetUser, auth_pb2.GetUserRequest(caller=self._caller(caller),
                                                                           user_id=user_id), change=False)

    async def list_users(self, caller: str, user_role: str = "") -> list[UserInfo]:
        answer = await self._call(self.stub.ListUsers, auth_pb2.ListUsersRequest(
            caller=self._caller(caller), user_role=user_role), change=False)
        return list(answer.users)

    async def audit(self, caller: str, query: AuditQuery) -> list[AuditEntry]:
        """Rows of auth's audit log matching the query, newest first (admins only)."""
        answer = await self._call(self.stub.ListAudit, auth_pb2.ListAuditRequest(
            caller=self._caller(caller), query=query), change=False)
        return list(answer.entries)

    async def verify_audit(self, caller: str) -> AuditVerification:
        """Checks auth's audit chain (admins only)."""
        return await self._call(self.stub.VerifyAudit, auth_pb2.VerifyAuditRequest(caller=self._caller(caller)),
                                change=False)

    async def delete_users(self, caller: str, user_ids: Sequence[str]) -> auth_pb2.DeleteUsersResponse:
        return await self._call(self.stub.DeleteUsers, auth_pb2.DeleteUsersRequest(
            caller=self._caller(caller), user_ids=user_ids), change=True)

    # -- dashboard sessions (see switchboard_auth.sessions) ------------------------------------

    async def open_session(self, credential: str, ttl_seconds: int = 0) -> SessionInfo:
        """A session for the master key or a virtual key; its ``token`` names it from now on."""
        return await self._call(self.stub.OpenSession, auth_pb2.OpenSessionRequest(
            caller=self._caller(credential), ttl_seconds=ttl_seconds), change=False)

    async def open_sso_session(self, sso: SsoSignIn, ttl_seconds: int = 0) -> SessionInfo:
        """A session for a user signed in by single sign-on (created or brought up to date from ``sso``)."""
        return await self._call(self.stub.OpenSession, auth_pb2.OpenSessionRequest(
            sso=sso, ttl_seconds=ttl_seconds), change=True)

    async def get_session(self, token: str) -> SessionInfo:
        """The live session ``token`` names; raises an authentication ServiceError once it ended."""
        return await self._call(self.stub.GetSession, auth_pb2.SessionRequest(token=token), change=False)

    async def close_session(self, token: str) -> None:
        await self._call(self.stub.CloseSession, auth_pb2.SessionRequest(token=token), change=False)
