"""Dashboard sessions (part of :class:`~switchboard_auth.servicer.AuthServicer`).

A session is opened for whoever signed in to the dashboard: the master key (break-glass), a virtual key, or a
user by single sign-on (the facade maps the identity provider's claims; auth creates the user on first
sign-in and brings its role and mapped teams up to date). Its token (``sbs_`` + 32 random bytes) goes back to
the facade, which keeps it only in the browser's cookie; auth keeps only its keyed hash. The token then stands
for the person in every admin RPC (``AdminCaller.api_key``), resolved afresh on each call: a session of a key
revoked or blocked, or of a user blocked or deleted, ends at its next use. Being in auth's database, sessions
survive facade restarts and are the same on every facade replica.
"""

from __future__ import annotations

import logging
import secrets
from typing import TYPE_CHECKING

import grpc

from switchboard.v1 import auth_pb2
from switchboard_auth.access import Caller, denied
from switchboard_auth.hashing import hash_key, same_hash
from switchboard_auth.models import Team, UiSession, User, VirtualKey
from switchboard_auth.specs import TEAM_ID, USER_ID, bad, check_text, now_s
from switchboard_auth.store import Conflict, KeyStore
from switchboard_auth.typed_rpc import rpc
from switchboard_common.errors import Kind, ServiceError
from switchboard_rules.fields import DEFAULT_USER_ROLE, USER_ROLES

if TYPE_CHECKING:
    from switchboard_auth.selfserve import SelfServe
    from switchboard_common.identity import ServiceIdentity

log = logging.getLogger(__name__)

#: Session tokens start with this, so that an AdminCaller tells them from keys without a lookup.
SESSION_PREFIX = "sbs_"
#: A session lasts this long unless the facade asks for another lifetime.
DEFAULT_TTL_SECONDS = 8 * 3600
#: The longest session auth opens.
MAX_TTL_SECONDS = 7 * 24 * 3600


def _ended(message: str, code: str = "session_ended") -> ServiceError:
    return ServiceError(Kind.ERROR_KIND_AUTHENTICATION, message, code=code)


class SessionAdmin:
    """The session RPCs. The servicer provides the store, the hashing pepper and the helpers named below."""

    store: KeyStore
    pepper: str
    identity: ServiceIdentity
    self_serve: SelfServe
    _master_hash: str

    if TYPE_CHECKING:  # provided by the servicer
        async def _verify(self, api_key: str) -> tuple[VirtualKey | None, Team | None, User | None]: ...
        @staticmethod
        def _check_usable(key: VirtualKey, team: Team | None, user: User | None) -> None: ...
        async def _user_keys_changed(self, user: User) -> None: ...

    def _master_subject(self) -> str:
        return "master:" + self._master_hash[:32]

    async def _session(self, token: str) -> tuple[Caller, UiSession]:
        """The caller a live session token stands for; UNAUTHENTICATED when the session ended."""
        row = await self.store.ui_session(hash_key(token, self.pepper)) if token.startswith(SESSION_PREFIX) else None
        if row is None or row.expires_at <= now_s():
            raise _ended("Your dashboard session has ended. Sign in again.")
        if row.kind == "master":
            if not same_hash(row.subject, self._master_subject()):
                raise _ended("The master key changed since this session began. Sign in again.")
            return Caller(None, None, None), row
        if row.kind == "key":
            key = await self.store.by_id(row.subject)
            if key is None:
                raise _ended("The key this session signed in with no longer exists. Sign in again.")
            team = await self.store.team(key.team_id)
            user = await self.store.user(key.user_id)
            self._check_usable(key, team, user)
            return Caller(key, team, user), row
        user = await self.store.user(row.subject)
        if user is None:
            raise _ended(f"The user '{row.subject}' no longer exists. Ask an admin.", "user_not_found")
        if user.blocked:
            raise _ended(f"The user '{user.user_id}' is blocked. Ask an admin to unblock it.", "user_blocked")
        return Caller(None, None, user), row

    async def _session_info(self, who: Caller, row: UiSession, token: str = "") -> auth_pb2.SessionInfo:
        if who.key is not None:
            team_ids = [who.key.team_id] if who.key.team_id else []
        elif who.user is not None:
            team_ids = [t.team_id for t in await self.store.teams() if who.member_of(t)]
        else:
            team_ids = []
        bounds = self.self_serve.for_team(who.team)
        return auth_pb2.SessionInfo(
            token=token, kind=row.kind, user_id=who.user_id, key_id=who.key.key_id if who.key else "",
            label=row.label, role=who.role, is_admin=who.is_admin, reads_all=who.reads_all,
            expires_at=row.expires_at, team_ids=team_ids, self_serve=bounds.as_message())

    async def _sso_user(self, sso: auth_pb2.SsoSignIn) -> User:
        """The user the claims name, created or brought up to date, with its mapped team memberships."""
        for value, name in ((sso.user_id, "user_id"), (sso.user_email, "user_email"),
                            (sso.user_alias, "user_alias"), (sso.user_role, "user_role")):
            check_text(value, name)
        if not USER_ID.match(sso.user_id):
            raise bad("The identity provider's user claim is not a usable user_id (letters, digits, '.', '_', ':', "
                      "'@', '+', '-'; at most 200).", "user_id")
        if sso.user_role and sso.user_role not in USER_ROLES:
            raise bad(f"user_role must be one of {', '.join(USER_ROLES)}.", "user_role")
        managed = set(sso.managed_team_ids)
        for team_id in [*managed, *sso.team_ids]:
            check_text(team_id, "team_ids")
            if not TEAM_ID.match(team_id):
                raise bad(f"'{team_id}' is not a team_id (see SWITCHBOARD_OIDC_GROUP_TEAMS).", "team_ids")
        if not set(sso.team_ids) <= managed:
            raise bad("team_ids must be among managed_team_ids.", "team_ids")
        now = now_s()
        user = await self.store.user(sso.user_id)
        if user is None:
            user = User(user_id=sso.user_id, user_email=sso.user_email, user_alias=sso.user_alias,
                        user_role=sso.user_role or DEFAULT_USER_ROLE, created_at=now, updated_at=now,
                        user_metadata={"created_by": "sso"})
            try:
                await self.store.insert(user)
                log.info("user created by single sign-on", extra={"user_id": user.user_id,
                                                                   "user_role": user.user_role})
            except Conflict:  # created by a concurrent sign-in
                user = await self.store.user(sso.user_id) or user
        else:
            if user.blocked:
                raise _ended(f"The user '{user.user_id}' is blocked. Ask an admin to unblock it.", "user_blocked")
            role_changed = bool(sso.user_role) and sso.user_role != user.user_role
            user.user_email = sso.user_email or user.user_email
            user.user_alias = sso.user_alias or user.user_alias
            user.user_role = sso.user_role or user.user_role
            user.updated_at = now
            await self.store.save(user)
            if role_changed:
                log.info("user role changed by single sign-on", extra={"user_id": user.user_id,
                                                                       "user_role": user.user_role})
                await self._user_keys_changed(user)
        await self._sync_teams(user, set(sso.team_ids), managed, now)
        return user

    async def _sync_teams(self, user: User, wanted: set[str], managed: set[str], now: int) -> None:
        """Makes the user a member of ``wanted`` (creating a missing team) and of no other team in ``managed``."""
        for team_id in sorted(managed):
            team = await self.store.team(team_id)
            present = team is not None and any(m.get("user_id") == user.user_id for m in team.members)
            if team_id in wanted and not present:
                member = {"user_id": user.user_id, "role": "user", "user_email": user.user_email}
                if team is None:
                    team = Team(team_id=team_id, team_alias=team_id, members=[member], created_at=now,
                                updated_at=now, team_metadata={"created_by": "sso"})
                    try:
                        await self.store.insert(team)
                        log.info("team created by single sign-on", extra={"team_id": team_id})
                        continue
                    except Conflict:
                        team = await self.store.team(team_id)
                        if team is None:
                            continue
                team.members, team.updated_at = [*team.members, member], now
                await self.store.save(team)
            elif team_id not in wanted and present and team is not None:
                team.members = [m for m in team.members if m.get("user_id") != user.user_id]
                team.updated_at = now
                await self.store.save(team)

    @rpc
    async def OpenSession(self, request: auth_pb2.OpenSessionRequest,
                          context: grpc.aio.ServicerContext[object, object]) -> auth_pb2.SessionInfo:
        now = now_s()
        ttl = request.ttl_seconds or DEFAULT_TTL_SECONDS
        if ttl < 0 or ttl > MAX_TTL_SECONDS:
            raise bad(f"ttl_seconds must be between 1 and {MAX_TTL_SECONDS}.", "ttl_seconds")
        if request.HasField("sso"):
            if self.identity.caller(context.invocation_metadata()) != "facade":
                raise denied("Only the facade signs users in by single sign-on.", "facade_only")
            user = await self._sso_user(request.sso)
            kind, subject, label = "user", user.user_id, user.user_email or user.user_alias or user.user_id
        else:
            if request.caller.api_key.startswith(SESSION_PREFIX):
                raise bad("Sign in with the master key or a virtual key, not a session token.", "api_key")
            key, _, _ = await self._verify(request.caller.api_key)
            if key is None:
                kind, subject, label = "master", self._master_subject(), "master key"
            else:
                kind, subject = "key", key.key_id
                label = key.key_alias or f"key …{key.last_four}"
        token = SESSION_PREFIX + secrets.token_urlsafe(32)
        row = UiSession(session_hash=hash_key(token, self.pepper), kind=kind, subject=subject, label=label[:200],
                        created_at=now, expires_at=now + ttl)
        await self.store.end_ui_sessions(expired_before=now)
        await self.store.insert(row)
        who, _ = await self._session(token)
        log.info("dashboard session opened", extra={"kind": kind, "user_id": who.user_id,
                                                    "key_id": who.key.key_id if who.key else ""})
        return await self._session_info(who, row, token)

    @rpc
    async def GetSession(self, request: auth_pb2.SessionRequest,
                         context: grpc.aio.ServicerContext[object, object]) -> auth_pb2.SessionInfo:
        who, row = await self._session(request.token)
        return await self._session_info(who, row)

    @rpc
    async def CloseSession(self, request: auth_pb2.SessionRequest,
                           context: grpc.aio.ServicerContext[object, object]) -> auth_pb2.SessionInfo:
        if request.token.startswith(SESSION_PREFIX):
            await self.store.end_ui_sessions(hash_key(request.token, self.pepper))
        return auth_pb2.SessionInfo()
