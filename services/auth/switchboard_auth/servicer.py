"""The Auth gRPC servicer: key verification, rate-limit admission, and the admin API for keys and teams (users and
team members: :mod:`switchboard_auth.people`)."""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import AsyncIterator, Sequence
from typing import Any

import grpc

from switchboard.v1 import auth_pb2, auth_pb2_grpc, common_pb2
from switchboard_auth import audit
from switchboard_auth.access import ADMIN_ONLY, Caller, denied
from switchboard_auth.cache import VerificationCache
from switchboard_auth.hashing import KEY_PREFIX, generate_key, hash_key, new_key_id, same_hash
from switchboard_auth.invalidation import END_OF_STREAM, InvalidationBus
from switchboard_auth.limits import Admitted, Denial, LeaseAsk, LeaseGrant, LeaseReturn, LimitCheck, Limiter
from switchboard_auth.models import Team, User, VirtualKey
from switchboard_auth.people import PeopleAdmin
from switchboard_auth.policy import GatewayDefaults, effective
from switchboard_auth.selfserve import SelfServe
from switchboard_auth.sessions import SESSION_PREFIX, SessionAdmin
from switchboard_auth.specs import (
    TEAM_ID,
    apply_key_spec,
    apply_team_spec,
    bad,
    check_key_jurisdictions_within_team,
    check_key_models_within_team,
    check_team_jurisdictions_cover_keys,
    check_text,
    key_info,
    key_status,
    limits_of,
    model_budgets,
    now_s,
    seal_credentials,
    spec_fields_set,
    team_info,
)
from switchboard_auth.store import AUDIT, Conflict, KeyStore
from switchboard_auth.typed_rpc import rpc
from switchboard_auth.wire import duration_header
from switchboard_common import audit_chain
from switchboard_common.audit_messages import entry, query_of, verification
from switchboard_common.credential_cipher import CredentialCipher, CredentialError
from switchboard_common.errors import Kind, ServiceError
from switchboard_common.identity import ServiceIdentity

log = logging.getLogger(__name__)

#: The scope of a key's counters on one model (LiteLLM's model_rpm_limit / model_tpm_limit).
KEY_MODEL = "key_model"

#: The key fields a team bounds (a change of any is checked against the key's team).
_TEAM_BOUND = frozenset({"team_id", "models", "model_aliases", "jurisdictions"})
#: The key fields whose owners (team, user) are checked when one changes.
_OWNED = _TEAM_BOUND | {"user_id"}

#: A lease id names records in the limit counters: letters, digits, '_' and '-' only.
_LEASE_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")


def _unauthenticated(message: str, code: str) -> ServiceError:
    return ServiceError(Kind.ERROR_KIND_AUTHENTICATION, message, code=code)


def _not_found(what: str, param: str) -> ServiceError:
    return ServiceError(Kind.ERROR_KIND_NOT_FOUND, what, param=param, code=f"{param}_not_found")


def _apply_blocked(key: VirtualKey, spec: auth_pb2.KeySpec, fields: set[str]) -> None:
    """Takes ``blocked`` out of ``fields`` and applies it to the key's status (a revoked key stays revoked)."""
    if "blocked" in fields:
        fields.discard("blocked")
        if key.status != "revoked":
            key.status = "blocked" if spec.blocked else "active"


def _retry_conflict() -> ServiceError:
    return ServiceError(Kind.ERROR_KIND_CONFLICT, "Another change of the same team or user was made at the same "
                        "time; retry.", code="concurrent_change")


def _limits_unavailable(exc: Exception) -> ServiceError:
    log.error("rate-limit store unavailable", extra={"error": repr(exc)})
    return ServiceError(Kind.ERROR_KIND_SERVICE_UNAVAILABLE, "The rate-limit store (Redis) is unavailable, so "
                        "requests of keys with rate limits cannot be admitted. Retry shortly; operators: check "
                        "SWITCHBOARD_REDIS_URL.",
                        code="rate_limits_unavailable", http_status=503)


#: The servicer context of each RPC shape: grpc.aio.ServicerContext[its request, its answer].
_AuthorizeContext = grpc.aio.ServicerContext[auth_pb2.AuthorizeRequest, auth_pb2.AuthorizeResponse]
_CredentialsContext = grpc.aio.ServicerContext[auth_pb2.GetProviderCredentialsRequest, auth_pb2.ProviderCredentials]
_ReleaseContext = grpc.aio.ServicerContext[auth_pb2.ReleaseAdmissionRequest, auth_pb2.ReleaseAdmissionResponse]
_ReleaseBatchContext = grpc.aio.ServicerContext[auth_pb2.ReleaseBatchRequest, auth_pb2.ReleaseAdmissionResponse]
_WatchInvalidationsContext = grpc.aio.ServicerContext[auth_pb2.WatchInvalidationsRequest, auth_pb2.Invalidation]
_CreateKeyContext = grpc.aio.ServicerContext[auth_pb2.CreateKeyRequest, auth_pb2.CreateKeyResponse]
_ListKeysContext = grpc.aio.ServicerContext[auth_pb2.ListKeysRequest, auth_pb2.ListKeysResponse]
_GetKeyContext = grpc.aio.ServicerContext[auth_pb2.GetKeyRequest, auth_pb2.KeyInfo]
_UpdateKeyContext = grpc.aio.ServicerContext[auth_pb2.UpdateKeyRequest, auth_pb2.KeyInfo]
_DeleteKeysContext = grpc.aio.ServicerContext[auth_pb2.DeleteKeysRequest, auth_pb2.DeleteKeysResponse]
_RegenerateKeyContext = grpc.aio.ServicerContext[auth_pb2.RegenerateKeyRequest, auth_pb2.CreateKeyResponse]
_SetBlockedContext = grpc.aio.ServicerContext[auth_pb2.SetBlockedRequest, auth_pb2.KeyInfo]
_TeamContext = grpc.aio.ServicerContext[auth_pb2.TeamRequest, auth_pb2.TeamInfo]
_GetTeamContext = grpc.aio.ServicerContext[auth_pb2.GetTeamRequest, auth_pb2.TeamInfo]
_ListTeamsContext = grpc.aio.ServicerContext[auth_pb2.ListTeamsRequest, auth_pb2.ListTeamsResponse]
_DeleteTeamsContext = grpc.aio.ServicerContext[auth_pb2.DeleteTeamsRequest, auth_pb2.DeleteTeamsResponse]
_ListAuditContext = grpc.aio.ServicerContext[auth_pb2.ListAuditRequest, common_pb2.AuditPage]
_VerifyAuditContext = grpc.aio.ServicerContext[auth_pb2.VerifyAuditRequest, common_pb2.AuditVerification]


class AuthServicer(PeopleAdmin, SessionAdmin, auth_pb2_grpc.AuthServicer):
    def __init__(self, store: KeyStore, master_key: str, pepper: str, limiter: Limiter, bus: InvalidationBus,
                 cache: VerificationCache, cipher: CredentialCipher | None = None,
                 identity: ServiceIdentity | None = None, defaults: GatewayDefaults | None = None,
                 key_prefix: str = KEY_PREFIX, self_serve: SelfServe | None = None) -> None:
        self.store = store
        #: Bounds on the keys users make for themselves (switchboard_auth.selfserve).
        self.self_serve = self_serve or SelfServe()
        #: The privacy tier and jurisdictions of keys that set none (see switchboard_auth.policy).
        self.defaults = defaults or GatewayDefaults()
        #: Prefix of the keys this replica issues; keys of any prefix are found by their hash.
        self.key_prefix = key_prefix
        #: Who may call: every RPC needs a service token (see switchboard_common.identity); credentials go to the
        #: router alone.
        self.identity = identity or ServiceIdentity("auth")
        #: Opens the keys' sealed provider credentials (bring your own key); None: BYOK disabled.
        self.cipher = cipher
        self.pepper = pepper
        self.limiter = limiter
        self.bus = bus
        self.cache = cache
        self._master_hash = hash_key(master_key, pepper)

    # -- verification ----------------------------------------------------------------------

    async def _verify(self, api_key: str) -> tuple[VirtualKey | None, Team | None, User | None]:
        """The key row (None for the master key), its team and its user; raises when the key may not be used."""
        if not api_key:
            raise _unauthenticated(
                "No API key was sent. Send your Switchboard virtual key as 'Authorization: Bearer sk-...' (or, from "
                "an Anthropic client, as 'x-api-key: sk-...').",
                "missing_api_key")
        digest = hash_key(api_key, self.pepper)
        if same_hash(digest, self._master_hash):
            return None, None, None
        cached = self.cache.get(digest)
        key: VirtualKey | None
        if cached is not None:
            key, team, user = cached.key, cached.team, cached.user
        else:
            generation = self.bus.generation
            key = await self.store.by_hash(digest)
            team = await self.store.team(key.team_id) if key is not None else None
            user = await self.store.user(key.user_id) if key is not None else None
            if key is not None:
                self.cache.put(digest, key, team, generation, user)
        if key is None or not same_hash(key.key_hash, digest):
            raise _unauthenticated(
                "The API key is not valid for this gateway. Check that you copied the whole key, "
                f"including its prefix ('{self.key_prefix}...'), or ask an admin for a new one.", "invalid_api_key")
        self._check_usable(key, team, user)
        return key, team, user

    @staticmethod
    def _check_usable(key: VirtualKey, team: Team | None, user: User | None) -> None:
        """Raises when the key, its team or its user stops the key from being used."""
        status = key_status(key, now_s())
        if status != "active":
            advice = {"blocked": "Ask an admin to unblock it (POST /key/unblock)",
                      "expired": "Ask an admin to regenerate it with a new duration, or for a new key"}.get(
                          status, "Ask an admin for a new key")
            raise _unauthenticated(f"This API key is {status}. {advice}.", f"key_{status}")
        if team is not None and team.blocked:
            raise _unauthenticated(f"This API key's team '{team.team_alias or team.team_id}' is blocked. "
                                   "Ask an admin to unblock it.", "team_blocked")
        if user is not None and user.blocked:
            raise _unauthenticated(f"This API key's user '{user.user_id}' is blocked. Ask an admin to unblock it.",
                                   "user_blocked")

    async def _caller(self, caller: auth_pb2.AdminCaller) -> Caller:
        if caller.api_key.startswith(SESSION_PREFIX):
            return (await self._session(caller.api_key))[0]
        return Caller(*await self._verify(caller.api_key))

    def _context(self, key: VirtualKey | None, team: Team | None, user: User | None = None) -> auth_pb2.KeyContext:
        if key is None:
            return auth_pb2.KeyContext(key_id="master", key_alias="master", is_admin=True)
        resolved = effective(key, team, self.defaults)
        ctx = auth_pb2.KeyContext(
            key_id=key.key_id, key_alias=key.key_alias, team_id=key.team_id,
            models=key.models or (team.models if team is not None else []) or (user.models if user else []),
            limits=limits_of(key), privacy_tier=resolved.privacy_tier, jurisdictions=resolved.jurisdictions,
            pii_policy=key.pii_policy or (team.pii_policy if team is not None else ""),
            metadata=key.key_metadata, is_admin=Caller(key, team, user).is_admin, expires_at=key.expires_at,
            model_aliases={**(team.model_aliases if team is not None else {}), **key.model_aliases},
            tags=list(dict.fromkeys([*key.tags, *(team.tags if team is not None else [])])),
            model_rpm_limits=key.model_rpm_limits, model_tpm_limits=key.model_tpm_limits,
            model_max_budgets=model_budgets(key),
        )
        if team is not None:
            ctx.team_limits.CopyFrom(limits_of(team))
            ctx.team_alias = team.team_alias or ""
        if user is not None:
            ctx.user_id, ctx.user_role = user.user_id, user.user_role
            ctx.user_limits.CopyFrom(limits_of(user))
        providers = set(key.provider_credential_hints) | (set(team.provider_credential_hints) if team else set())
        ctx.credential_providers.extend(sorted(providers))
        return ctx

    def _open_credentials(self, key: VirtualKey, team: Team | None) -> dict[str, str]:
        """The team's and the key's own provider credentials (the key's win); a key whose credentials cannot be
        opened is refused rather than silently served (and billed) with the operator's."""
        try:
            if self.cipher is None:
                raise CredentialError("SWITCHBOARD_ENCRYPTION_KEY is not set")
            credentials = self.cipher.open(team.provider_credentials_sealed) if team is not None else {}
            credentials.update(self.cipher.open(key.provider_credentials_sealed))
        except CredentialError as exc:
            log.error("provider credentials of a key cannot be opened", extra={"key_id": key.key_id})
            raise ServiceError(Kind.ERROR_KIND_INTERNAL, f"This key's own provider credentials cannot be used: {exc}. "
                               "Ask the operator to check SWITCHBOARD_ENCRYPTION_KEY.",
                               code="byok_credentials_unreadable") from None
        return credentials

    async def _admin(self, caller: auth_pb2.AdminCaller) -> Caller:
        who = await self._caller(caller)
        who.require_admin()
        return who

    @rpc
    async def Authorize(self, request: auth_pb2.AuthorizeRequest,
                        context: _AuthorizeContext) -> auth_pb2.AuthorizeResponse:
        for earlier in request.releases:  # the caller's corrections not sent yet count before this admission
            await self._release(earlier)
        key, team, user = await self._verify(request.api_key)
        response = auth_pb2.AuthorizeResponse(key=self._context(key, team, user))
        if request.verify_only or key is None:
            return response
        model = response.key.model_aliases.get(request.model, request.model)
        checks = [c for c in (
            LimitCheck("key", key.key_id, key.rpm_limit, key.tpm_limit, key.max_parallel_requests),
            LimitCheck("team", team.team_id, team.rpm_limit, team.tpm_limit, team.max_parallel_requests)
            if team is not None else None,
            LimitCheck("user", user.user_id, user.rpm_limit, user.tpm_limit, user.max_parallel_requests)
            if user is not None else None,
            LimitCheck(KEY_MODEL, f"{key.key_id}:{model}", key.model_rpm_limits.get(model),
                       key.model_tpm_limits.get(model)),
        ) if c is not None and not c.empty]
        if not checks:
            return response
        request_id = request.request_id or "auth_" + secrets.token_hex(12)
        tokens = max(0, request.estimated_prompt_tokens)
        try:
            result = await self.limiter.admit(checks, request_id, tokens, self._lease_ask(request, checks))
        except self.limiter.unavailable_errors as exc:
            raise _limits_unavailable(exc) from None
        if isinstance(result, Denial):
            raise self._denied(result, key, team, tokens)
        assert isinstance(result, Admitted)
        response.admission.CopyFrom(auth_pb2.Admission(
            request_id=request_id, key_id=key.key_id, team_id=key.team_id, counted_tokens=tokens,
            tpm_window_start=result.tpm_window_start, holds_parallel_slot=result.holds_parallel_slot,
            key_model=next((c.owner_id for c in checks if c.scope == KEY_MODEL), ""),
            user_id=next((c.owner_id for c in checks if c.scope == "user"), "")))
        response.rate_limits.extend(auth_pb2.RateLimitState(name=s.name, limit=s.limit, remaining=s.remaining,
                                                            reset_seconds=s.reset_seconds) for s in result.states)
        if result.lease is not None:
            response.lease.CopyFrom(self._lease(result.lease, key, response.rate_limits))
            response.lease.user_id = next((c.owner_id for c in checks if c.scope == "user"), "")
        return response

    @staticmethod
    def _lease_ask(request: auth_pb2.AuthorizeRequest, checks: list[LimitCheck]) -> LeaseAsk | None:
        """The caller's lease ask, if it may have one: never for a key with a parallel-request limit, nor for a
        request under a per-model limit (a lease admits any model of the key)."""
        if not request.HasField("lease_ask") or any(c.parallel is not None or c.scope == KEY_MODEL for c in checks):
            return None
        ask = request.lease_ask
        if not _LEASE_ID.fullmatch(ask.lease_id) or ask.requests <= 0 or ask.use_seconds <= 0:
            return None
        return LeaseAsk(ask.lease_id, ask.requests, max(0, ask.tokens), max(0, ask.min_tokens), ask.use_seconds)

    @staticmethod
    def _lease(grant: LeaseGrant, key: VirtualKey,
               states: Sequence[auth_pb2.RateLimitState]) -> auth_pb2.RateLimitLease:
        return auth_pb2.RateLimitLease(
            lease_id=grant.lease_id, key_id=key.key_id, team_id=key.team_id, requests=grant.requests,
            request_scopes=grant.request_scopes, tokens=grant.tokens, token_scopes=grant.token_scopes,
            tpm_window_start=grant.tpm_window_start, use_seconds=grant.use_seconds, recorded_at=grant.recorded_at,
            rate_limits=states)

    @staticmethod
    def _denied(denial: Denial, key: VirtualKey, team: Team | None, tokens: int) -> ServiceError:
        if denial.scope == KEY_MODEL:
            owner = f"key '{key.key_alias or key.key_id}' on model '{denial.owner_id.split(':', 1)[1]}'"
        elif denial.scope == "key":
            owner = f"key '{key.key_alias or key.key_id}'"
        elif denial.scope == "user":
            owner = f"user '{denial.owner_id}' (all of the user's keys together)"
        else:
            owner = f"team '{(team.team_alias if team else '') or denial.owner_id}'"
        what = {"rpm_limit": f"{denial.limit} requests per minute",
                "tpm_limit": f"{denial.limit} tokens per minute",
                "max_parallel_requests": f"{denial.limit} requests in flight at once"}[denial.limit_name]
        message = f"Rate limit reached: {denial.limit_name} of {owner} ({what})."
        if denial.limit_name == "tpm_limit" and tokens > denial.limit:
            message += f" This request alone is estimated at {tokens} tokens; send a shorter prompt."
        else:
            message += f" Retry after {max(1, int(denial.retry_after_seconds + 0.999))} s."
        headers: dict[str, str] = {}
        dimension = {"rpm_limit": "requests", "tpm_limit": "tokens"}.get(denial.limit_name)
        if dimension:
            headers = {f"x-ratelimit-limit-{dimension}": str(denial.limit),
                       f"x-ratelimit-remaining-{dimension}": "0",
                       f"x-ratelimit-reset-{dimension}": duration_header(denial.retry_after_seconds)}
        return ServiceError(Kind.ERROR_KIND_RATE_LIMITED, message, code=f"{denial.limit_name}_exceeded",
                            retry_after_seconds=denial.retry_after_seconds, headers=headers)

    @rpc
    async def GetProviderCredentials(self, request: auth_pb2.GetProviderCredentialsRequest,
                                     context: _CredentialsContext) -> auth_pb2.ProviderCredentials:
        if self.identity.caller(context.invocation_metadata()) != "router":
            raise ServiceError(Kind.ERROR_KIND_PERMISSION, "Provider credentials are given to the router alone.",
                               code="router_only")
        key = await self.store.by_id(request.key_id) if request.key_id.startswith("key_") else None
        if key is None:
            raise _not_found("No such key.", "key")
        team = await self.store.team(key.team_id) if key.team_id else None
        if not key.provider_credentials_sealed and not (team and team.provider_credentials_sealed):
            return auth_pb2.ProviderCredentials()
        return auth_pb2.ProviderCredentials(credentials=self._open_credentials(key, team))

    @rpc
    async def Release(self, request: auth_pb2.ReleaseAdmissionRequest,
                      context: _ReleaseContext) -> auth_pb2.ReleaseAdmissionResponse:
        await self._release(request)
        return auth_pb2.ReleaseAdmissionResponse()

    @rpc
    async def ReleaseBatch(self, request: auth_pb2.ReleaseBatchRequest,
                           context: _ReleaseBatchContext) -> auth_pb2.ReleaseAdmissionResponse:
        for one in request.releases:
            await self._release(one)
        for returned in request.lease_returns:
            await self._return_lease(returned)
        return auth_pb2.ReleaseAdmissionResponse()

    async def _return_lease(self, returned: auth_pb2.RateLimitLeaseReturn) -> None:
        lease = returned.lease
        if not lease.key_id or not _LEASE_ID.fullmatch(lease.lease_id):
            return
        owners = {"key": lease.key_id, "team": lease.team_id, "user": lease.user_id}

        def scopes(names: Sequence[str]) -> list[tuple[str, str]]:
            return [(name, owners[name]) for name in names if owners.get(name)]

        try:
            await self.limiter.return_lease(LeaseReturn(
                lease.lease_id, scopes(lease.request_scopes), lease.requests, returned.requests_used,
                scopes(lease.token_scopes), lease.tokens, returned.tokens_used, lease.tpm_window_start))
        except self.limiter.unavailable_errors as exc:
            raise _limits_unavailable(exc) from None

    async def _release(self, request: auth_pb2.ReleaseAdmissionRequest) -> None:
        a = request.admission
        if not a.key_id:
            return
        scopes = [("key", a.key_id)] + ([("team", a.team_id)] if a.team_id else []) + (
            [(KEY_MODEL, a.key_model)] if a.key_model else []) + ([("user", a.user_id)] if a.user_id else [])
        delta = request.actual_tokens - a.counted_tokens if request.actual_tokens >= 0 else 0
        try:
            await self.limiter.release(scopes, a.request_id, a.tpm_window_start, delta)
        except self.limiter.unavailable_errors as exc:
            raise _limits_unavailable(exc) from None

    async def WatchInvalidations(self, request: auth_pb2.WatchInvalidationsRequest,
                                 context: _WatchInvalidationsContext) -> AsyncIterator[auth_pb2.Invalidation]:
        if not self.bus.healthy:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "this auth replica does not hear changes right now")
        queue = self.bus.subscribe()
        try:
            yield auth_pb2.Invalidation(everything=True)
            while (change := await queue.get()) is not END_OF_STREAM:
                yield change
        finally:
            self.bus.unsubscribe(queue)

    # -- keys ------------------------------------------------------------------------------

    async def _find_key(self, ref: str) -> VirtualKey:
        check_text(ref, "key")
        key = (await self.store.by_id(ref) if ref.startswith("key_")
               else await self.store.by_hash(hash_key(ref, self.pepper)) if ref else None)
        if key is None:
            raise _not_found("No such key. Name it by its key_id ('key_...', see GET /key/list) or by the key "
                             "itself.", "key")
        return key

    async def _managed_key(self, who: Caller, ref: str) -> VirtualKey:
        """The key named, if the caller may change it (admins any key, an internal_user its user's)."""
        if not who.is_admin and not who.may_manage_key(None):
            raise denied(ADMIN_ONLY)
        key = await self._find_key(ref)
        if not who.may_manage_key(key):
            raise denied("An internal_user's key may only manage its own user's keys.", "not_your_key")
        return key

    @staticmethod
    def _check_own_spec(who: Caller, spec: auth_pb2.KeySpec, fields: set[str]) -> None:
        """What an internal_user may set on its own keys: not admin rights, not another owner."""
        if who.is_admin:
            return
        if "is_admin" in fields and spec.is_admin:
            raise denied("Only admins may create admin keys.")
        if "user_id" in fields and spec.user_id != who.user_id:
            raise denied("An internal_user's key may only create keys for its own user.", "not_your_key")

    async def _check_owners(self, key: VirtualKey, who: Caller | None = None,
                            fields: set[str] | frozenset[str] = _OWNED) -> Team | None:
        """The key's team (None when it has none), once the key's user and team exist, a non-admin caller's user
        is a member of the team, and the key's models and jurisdictions are within the team's (each checked when
        ``fields`` changed what it depends on)."""
        if "user_id" in fields and key.user_id and await self.store.user(key.user_id) is None:
            raise bad(f"user_id '{key.user_id}' does not exist; create it first with POST /user/new.", "user_id",
                      "user_not_found")
        if not key.team_id:
            return None
        team = await self.store.team(key.team_id)
        if team is None:
            raise bad(f"team_id '{key.team_id}' does not exist; create it first with POST /team/new.", "team_id",
                      "team_not_found")
        if "team_id" in fields and who is not None and not who.is_admin and not who.member_of(team):
            raise denied(f"Your user is not a member of team '{key.team_id}'.", "not_your_team")
        if fields & {"team_id", "models", "model_aliases"}:
            check_key_models_within_team(key, team)
        if fields & {"team_id", "jurisdictions"}:
            check_key_jurisdictions_within_team(key, team)
        return team

    def _info(self, key: VirtualKey, now: float, team: Team | None, user: User | None = None) -> auth_pb2.KeyInfo:
        """The key as shown, with the context (and its sources) its requests get."""
        return key_info(key, now, self._context(key, team, user), effective(key, team, self.defaults))

    async def _info_of(self, key: VirtualKey, now: float) -> auth_pb2.KeyInfo:
        team = await self.store.team(key.team_id) if key.team_id else None
        user = await self.store.user(key.user_id) if key.user_id else None
        return self._info(key, now, team, user)

    async def _changed(self, key_ids: Sequence[str] = (), team_ids: Sequence[str] = ()) -> None:
        await self.bus.publish(auth_pb2.Invalidation(key_ids=key_ids, team_ids=team_ids))

    def _plain_key(self, given: str, param: str) -> str:
        """The plain key to issue: the one given (migrating keys from another gateway), else a fresh one with this
        gateway's prefix."""
        if not given:
            return generate_key(self.key_prefix)
        check_text(given, param)
        prefixes = sorted({KEY_PREFIX, self.key_prefix})
        if not given.startswith(tuple(prefixes)) or len(given) < len(self._prefix_of(given)) + 20 \
                or any(c.isspace() for c in given):
            raise bad(f"'{param}' must start with {' or '.join(repr(p) for p in prefixes)} and hold at least 20 "
                      "more characters, without spaces.", param)
        return given

    def _prefix_of(self, plain: str) -> str:
        """The prefix a plain key was issued with: this gateway's, else the default ``sk-``."""
        return self.key_prefix if plain.startswith(self.key_prefix) else KEY_PREFIX

    @rpc
    async def CreateKey(self, request: auth_pb2.CreateKeyRequest,
                        context: _CreateKeyContext) -> auth_pb2.CreateKeyResponse:
        who = await self._caller(request.caller)
        if not who.may_manage_key(None):
            raise denied(ADMIN_ONLY)
        spec = request.spec
        if not who.is_admin and not spec.user_id:
            spec = auth_pb2.KeySpec()
            spec.CopyFrom(request.spec)
            spec.user_id = who.user_id  # an internal user's new key is its own
        key, plain, team = await self._key_to_create(who, spec, request.key)
        now = key.created_at
        if not who.is_admin:
            live = (await self.store.live_key_counts("user_id")).get(key.user_id, 0)
            self.self_serve.for_team(team).bound(key, now, live)
        if request.dry_run:
            return auth_pb2.CreateKeyResponse(info=self._info(key, now, team))
        try:
            await self.store.commit(audit.change(who, request.caller, "key.create", "key", key.key_id,
                                                 after=audit.snapshot(key)), insert=[key])
        except Conflict:
            raise ServiceError(Kind.ERROR_KIND_CONFLICT, "That key is already in use; choose another.", param="key",
                               code="key_exists") from None
        log.info("key created", extra={"key_id": key.key_id, "key_alias": key.key_alias})
        return auth_pb2.CreateKeyResponse(key=plain, info=self._info(key, now, team))

    async def _key_to_create(self, who: Caller, spec: auth_pb2.KeySpec, given: str,
                             *, new_user: bool = False) -> tuple[VirtualKey, str, Team | None]:
        """A new key as ``spec`` says (not written yet), its plain key (``given``, else generated) and its team;
        ``new_user``: the key's user is created in the same change (so it is not looked up)."""
        fields = spec_fields_set(spec)
        self._check_own_spec(who, spec, fields)
        now = now_s()
        plain = self._plain_key(given, "key")
        key = VirtualKey(key_id=new_key_id(), key_hash=hash_key(plain, self.pepper), last_four=plain[-4:],
                         created_at=now, status="active", key_prefix=self._prefix_of(plain))
        _apply_blocked(key, spec, fields)
        apply_key_spec(key, spec, fields, now)
        seal_credentials(key, spec, fields, self.cipher)
        team = await self._check_owners(key, who, _OWNED - {"user_id"} if new_user else _OWNED)
        await self._check_alias_free(key)
        return key, plain, team

    async def _check_alias_free(self, key: VirtualKey) -> None:
        """Refuses an alias another live key has: scripts find, update and delete keys by alias (LiteLLM's
        ``key_aliases``), and one that named two keys would leave one of them live."""
        if not key.key_alias:
            return
        holders = [k for k in await self.store.live_with_alias(key.key_alias) if k.key_id != key.key_id]
        if holders:
            raise ServiceError(Kind.ERROR_KIND_CONFLICT,
                               f"Key alias '{key.key_alias}' is already used by key {holders[0].key_id}: aliases "
                               "are unique among keys that are not deleted. Choose another alias, or update or "
                               "delete that key.", param="key_alias", code="key_alias_exists")

    @rpc
    async def ListKeys(self, request: auth_pb2.ListKeysRequest,
                       context: _ListKeysContext) -> auth_pb2.ListKeysResponse:
        who = await self._caller(request.caller)
        check_text(request.team_id, "team_id")
        check_text(request.user_id, "user_id")
        user_id = request.user_id
        if not who.reads_all:
            if not who.user_id:
                raise denied(ADMIN_ONLY)
            if user_id and user_id != who.user_id:
                raise denied("A user's key may only list its own user's keys.", "not_your_key")
            user_id = who.user_id
        now = now_s()
        teams = {t.team_id: t for t in await self.store.teams()}
        return auth_pb2.ListKeysResponse(keys=[self._info(k, now, teams.get(k.team_id))
                                               for k in await self.store.list(request.team_id, user_id)])

    @rpc
    async def GetKey(self, request: auth_pb2.GetKeyRequest, context: _GetKeyContext) -> auth_pb2.KeyInfo:
        who = await self._caller(request.caller)
        if not request.key:
            if who.key is not None:
                return self._info(who.key, now_s(), who.team, who.user)
            raise bad(f"Name the key: GET /key/info?key=<key_id or {self.key_prefix}...>.", "key", "missing_key")
        if who.key is not None and (request.key == who.key.key_id
                                    or same_hash(hash_key(request.key, self.pepper), who.key.key_hash)):
            return self._info(who.key, now_s(), who.team, who.user)
        if not who.reads_all and not who.user_id:
            raise ServiceError(Kind.ERROR_KIND_PERMISSION, "A virtual key may only read its own info; "
                               "call GET /key/info without a 'key' parameter.", code="not_your_key")
        key = await self._find_key(request.key)
        if not who.may_read_key(key):
            raise denied("A user's key may only read its own user's keys.", "not_your_key")
        return await self._info_of(key, now_s())

    @rpc
    async def UpdateKey(self, request: auth_pb2.UpdateKeyRequest,
                        context: _UpdateKeyContext) -> auth_pb2.KeyInfo:
        who = await self._caller(request.caller)
        key = await self._managed_key(who, request.key)
        if key.status == "revoked":
            raise ServiceError(Kind.ERROR_KIND_CONFLICT, "This key is revoked and cannot be changed.",
                               param="key", code="key_revoked")
        fields = set(request.update_fields)
        self._check_own_spec(who, request.spec, fields)
        before = audit.snapshot(key)
        now = now_s()
        _apply_blocked(key, request.spec, fields)
        apply_key_spec(key, request.spec, fields, now)
        seal_credentials(key, request.spec, fields, self.cipher)
        team = await self._check_owners(key, who, fields)
        if "key_alias" in fields:
            await self._check_alias_free(key)
        if not who.is_admin:
            self.self_serve.for_team(team).bound(key, now)
        if request.dry_run:
            return self._info(key, now, team)
        await self.store.commit(audit.change(who, request.caller, "key.update", "key", key.key_id, before,
                                             audit.snapshot(key)), save=[key])
        await self._changed(key_ids=[key.key_id])
        log.info("key updated", extra={"key_id": key.key_id, "fields": sorted(fields)})
        return self._info(key, now, team)

    @staticmethod
    def _revoked(keys: Sequence[VirtualKey]) -> tuple[list[VirtualKey], dict[str, tuple[dict[str, Any],
                                                                                  dict[str, Any]]]]:
        """The keys marked revoked (not written yet: the caller commits them with its change), and each key's
        snapshots before and after, for the audit log."""
        now = now_s()
        changed: list[VirtualKey] = []
        pairs: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
        for key in keys:
            before = audit.snapshot(key)
            if key.status != "revoked":
                key.status, key.updated_at = "revoked", now
                changed.append(key)
            pairs[key.key_id] = (before, audit.snapshot(key))
        return changed, pairs

    async def _revoke_announced(self, key_ids: Sequence[str]) -> None:
        if key_ids:
            await self._changed(key_ids=key_ids)
            log.info("keys revoked", extra={"key_ids": list(key_ids)})

    @rpc
    async def DeleteKeys(self, request: auth_pb2.DeleteKeysRequest,
                         context: _DeleteKeysContext) -> auth_pb2.DeleteKeysResponse:
        who = await self._caller(request.caller)
        if not who.may_manage_key(None):
            raise denied(ADMIN_ONLY)
        if not request.keys:
            raise bad("Name the keys to delete: {\"keys\": [\"key_...\"]}.", "keys", "missing_keys")
        found = list({k.key_id: k for k in [await self._managed_key(who, ref) for ref in request.keys]}.values())
        changed, pairs = self._revoked(found)
        await self.store.commit(audit.many(who, request.caller, "key.delete", "key", pairs), save=changed)
        ids = [k.key_id for k in found]
        await self._revoke_announced(ids)
        return auth_pb2.DeleteKeysResponse(deleted_keys=ids)

    @rpc
    async def RegenerateKey(self, request: auth_pb2.RegenerateKeyRequest,
                            context: _RegenerateKeyContext) -> auth_pb2.CreateKeyResponse:
        who = await self._caller(request.caller)
        key = await self._managed_key(who, request.key)
        if key.status == "revoked":
            raise ServiceError(Kind.ERROR_KIND_CONFLICT, "This key is revoked; create a new one instead.",
                               param="key", code="key_revoked")
        fields = set(request.update_fields)
        self._check_own_spec(who, request.spec, fields)
        before = audit.snapshot(key)
        now = now_s()
        if fields:
            apply_key_spec(key, request.spec, fields, now)
            seal_credentials(key, request.spec, fields, self.cipher)
        team = await self._check_owners(key, who, fields)
        if not who.is_admin:
            self.self_serve.for_team(team).bound(key, now)
        plain = self._plain_key(request.new_key, "new_key")
        key.key_hash, key.last_four, key.updated_at = hash_key(plain, self.pepper), plain[-4:], now
        key.key_prefix = self._prefix_of(plain)
        try:
            await self.store.commit(audit.change(who, request.caller, "key.regenerate", "key", key.key_id, before,
                                                 audit.snapshot(key)), save=[key])
        except Conflict:
            raise ServiceError(Kind.ERROR_KIND_CONFLICT, "That key is already in use; choose another.",
                               param="new_key", code="key_exists") from None
        await self._changed(key_ids=[key.key_id])
        log.info("key regenerated", extra={"key_id": key.key_id})
        return auth_pb2.CreateKeyResponse(key=plain, info=self._info(key, now, team))

    @rpc
    async def SetKeyBlocked(self, request: auth_pb2.SetBlockedRequest,
                            context: _SetBlockedContext) -> auth_pb2.KeyInfo:
        who = await self._caller(request.caller)
        key = await self._managed_key(who, request.key)
        if key.status == "revoked":
            raise ServiceError(Kind.ERROR_KIND_CONFLICT, "This key is revoked and cannot be blocked or unblocked.",
                               param="key", code="key_revoked")
        before = audit.snapshot(key)
        key.status, key.updated_at = ("blocked" if request.blocked else "active"), now_s()
        await self.store.commit(audit.change(who, request.caller, "key.block" if request.blocked else "key.unblock",
                                             "key", key.key_id, before, audit.snapshot(key)), save=[key])
        await self._changed(key_ids=[key.key_id])
        log.info("key blocked" if request.blocked else "key unblocked", extra={"key_id": key.key_id})
        return await self._info_of(key, key.updated_at)

    # -- teams -----------------------------------------------------------------------------

    async def _find_team(self, team_id: str) -> Team:
        if not team_id:
            raise bad("Name the team: team_id is required.", "team_id", "missing_team_id")
        check_text(team_id, "team_id")
        team = await self.store.team(team_id)
        if team is None:
            raise _not_found(f"No team '{team_id}' (see GET /team/list).", "team_id")
        return team

    async def _team_info(self, team: Team) -> auth_pb2.TeamInfo:
        return team_info(team, (await self.store.live_key_counts()).get(team.team_id, 0))

    @rpc
    async def CreateTeam(self, request: auth_pb2.TeamRequest, context: _TeamContext) -> auth_pb2.TeamInfo:
        who = await self._admin(request.caller)
        team_id = request.spec.team_id or "team_" + secrets.token_hex(8)
        if not TEAM_ID.match(team_id):
            raise bad("team_id may hold letters, digits, '.', '_', ':' and '-' (at most 80).", "team_id")
        now = now_s()
        team = Team(team_id=team_id, created_at=now)
        fields = spec_fields_set(request.spec)
        apply_team_spec(team, request.spec, fields, now)
        seal_credentials(team, request.spec, fields, self.cipher)
        if await self.store.team(team_id) is not None:
            raise ServiceError(Kind.ERROR_KIND_CONFLICT, f"A team '{team_id}' already exists.", param="team_id",
                               code="team_exists")
        users = await self._new_users(team.members)
        try:
            await self.store.commit(audit.change(who, request.caller, "team.create", "team", team_id,
                                                 after=audit.snapshot(team), extra=audit.created_users(users)),
                                    insert=[*users, team])
        except Conflict:
            raise ServiceError(Kind.ERROR_KIND_CONFLICT, f"A team '{team_id}' already exists.", param="team_id",
                               code="team_exists") from None
        log.info("team created", extra={"team_id": team_id})
        return team_info(team)

    @rpc
    async def UpdateTeam(self, request: auth_pb2.TeamRequest, context: _TeamContext) -> auth_pb2.TeamInfo:
        who = await self._admin(request.caller)
        team = await self._find_team(request.spec.team_id)
        before = audit.snapshot(team)
        fields = set(request.update_fields)
        apply_team_spec(team, request.spec, fields, now_s())
        seal_credentials(team, request.spec, fields, self.cipher)
        if "jurisdictions" in fields:
            check_team_jurisdictions_cover_keys(team, await self.store.list(team.team_id))
        users = await self._new_users(team.members) if "members" in fields else []
        action = ("team.block" if team.blocked else "team.unblock") if fields == {"blocked"} else "team.update"
        try:
            await self.store.commit(audit.change(who, request.caller, action, "team", team.team_id, before,
                                                 audit.snapshot(team), audit.created_users(users)),
                                    insert=users, save=[team])
        except Conflict:
            raise _retry_conflict() from None
        await self._changed(team_ids=[team.team_id])
        log.info("team updated", extra={"team_id": team.team_id, "fields": sorted(fields)})
        return await self._team_info(team)

    @rpc
    async def DeleteTeam(self, request: auth_pb2.GetTeamRequest,
                         context: _GetTeamContext) -> auth_pb2.TeamInfo:
        who = await self._admin(request.caller)
        team = await self._find_team(request.team_id)
        keys = [k for k in await self.store.list(team.team_id) if k.status != "revoked"]
        revoked, _ = self._revoked(keys)  # as LiteLLM deletes a team's keys with it (here they stay listed, revoked)
        await self.store.commit(audit.change(who, request.caller, "team.delete", "team", team.team_id,
                                             before=audit.snapshot(team),
                                             extra={"revoked_keys": [k.key_id for k in revoked]}),
                                save=revoked, delete=[team])
        await self._revoke_announced([k.key_id for k in revoked])
        await self._changed(team_ids=[team.team_id])
        log.info("team deleted", extra={"team_id": team.team_id, "revoked_keys": len(keys)})
        return team_info(team)

    @rpc
    async def DeleteTeams(self, request: auth_pb2.DeleteTeamsRequest,
                          context: _DeleteTeamsContext) -> auth_pb2.DeleteTeamsResponse:
        who = await self._admin(request.caller)
        if not request.team_ids:
            raise bad("Name the teams to delete: {\"team_ids\": [\"...\"]}.", "team_ids", "missing_team_ids")
        teams = list({t.team_id: t for t in [await self._find_team(t) for t in request.team_ids]}.values())
        keys = [k for t in teams for k in await self.store.list(t.team_id) if k.status != "revoked"]
        revoked, _ = self._revoked(keys)
        revoked_ids = [k.key_id for k in revoked]
        await self.store.commit(audit.many(who, request.caller, "team.delete", "team",
                                           {t.team_id: (audit.snapshot(t), {}) for t in teams},
                                           {"revoked_keys": revoked_ids}),
                                save=revoked, delete=teams)
        await self._revoke_announced(revoked_ids)
        await self._changed(team_ids=[t.team_id for t in teams])
        log.info("teams deleted", extra={"team_ids": [t.team_id for t in teams], "revoked_keys": len(revoked)})
        return auth_pb2.DeleteTeamsResponse(teams=[team_info(t) for t in teams], revoked_keys=revoked_ids)

    # -- audit log -------------------------------------------------------------------------

    @rpc
    async def ListAudit(self, request: auth_pb2.ListAuditRequest,
                        context: _ListAuditContext) -> common_pb2.AuditPage:
        await self._admin(request.caller)
        rows = await audit_chain.query(self.store.engine, AUDIT, query_of(request.query))
        return common_pb2.AuditPage(entries=[entry(r, "auth") for r in rows])

    @rpc
    async def VerifyAudit(self, request: auth_pb2.VerifyAuditRequest,
                          context: _VerifyAuditContext) -> common_pb2.AuditVerification:
        await self._admin(request.caller)
        return verification(await audit_chain.verify(self.store.engine, AUDIT), "auth")

    @rpc
    async def GetTeam(self, request: auth_pb2.GetTeamRequest, context: _GetTeamContext) -> auth_pb2.TeamInfo:
        who = await self._caller(request.caller)
        if not who.reads_all and not request.team_id:
            raise denied(ADMIN_ONLY)
        team = await self._find_team(request.team_id)
        if not who.may_read_team(team):
            raise denied("A key may only read its own team, or the teams its user is a member of.",
                         "not_your_team")
        return await self._team_info(team)

    @rpc
    async def ListTeams(self, request: auth_pb2.ListTeamsRequest,
                        context: _ListTeamsContext) -> auth_pb2.ListTeamsResponse:
        who = await self._caller(request.caller)
        check_text(request.user_id, "user_id")
        counts = await self.store.live_key_counts()
        teams = await self.store.teams()
        if request.user_id:
            if not who.reads_all and request.user_id != who.user_id:
                raise denied("A user's key may only list its own user's teams.", "not_your_key")
            teams = [t for t in teams if any(m.get("user_id") == request.user_id for m in t.members)]
        elif not who.reads_all:
            if who.key is None and not who.user_id:
                raise denied(ADMIN_ONLY)
            teams = [t for t in teams if who.may_read_team(t)]
        return auth_pb2.ListTeamsResponse(teams=[team_info(t, counts.get(t.team_id, 0)) for t in teams])
