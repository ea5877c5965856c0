"""The Auth gRPC servicer: key verification and the admin key API."""

from __future__ import annotations

import logging
import time

import grpc

from switchboard.v1 import auth_pb2, auth_pb2_grpc
from switchboard_auth.durations import parse_duration
from switchboard_auth.hashing import generate_key, hash_key, new_key_id, same_hash
from switchboard_auth.models import VirtualKey
from switchboard_auth.store import KeyStore
from switchboard_common.errors import Kind, ServiceError, abort

log = logging.getLogger(__name__)

PII_POLICIES = ("", "off", "substitute", "mask", "block")


def _unauthenticated(message: str, code: str) -> ServiceError:
    return ServiceError(Kind.ERROR_KIND_AUTHENTICATION, message, code=code)


def key_status(key: VirtualKey, now: float) -> str:
    if key.status != "active":
        return key.status
    if key.expires_at and key.expires_at <= now:
        return "expired"
    return "active"


def key_info(key: VirtualKey, now: float) -> auth_pb2.KeyInfo:
    return auth_pb2.KeyInfo(
        key_id=key.key_id, key_alias=key.key_alias, last_four=key.last_four, team_id=key.team_id,
        models=key.models, limits=_limits(key), privacy_tier=key.privacy_tier, pii_policy=key.pii_policy,
        metadata=key.key_metadata, created_at=key.created_at, expires_at=key.expires_at,
        status=key_status(key, now),
    )


def _limits(key: VirtualKey) -> auth_pb2.Limits:
    limits = auth_pb2.Limits(budget_duration=key.budget_duration)
    for name in ("rpm_limit", "tpm_limit", "max_parallel_requests", "max_budget_micros", "max_daily_spend_micros"):
        value = getattr(key, name)
        if value is not None:
            setattr(limits, name, value)
    return limits


class AuthServicer(auth_pb2_grpc.AuthServicer):
    def __init__(self, store: KeyStore, master_key: str, pepper: str) -> None:
        self.store = store
        self.pepper = pepper
        self._master_hash = hash_key(master_key, pepper)

    async def _context(self, api_key: str) -> auth_pb2.KeyContext:
        if not api_key:
            raise _unauthenticated(
                "No API key was sent. Send your Switchboard virtual key as 'Authorization: Bearer sk-...'.",
                "missing_api_key")
        digest = hash_key(api_key, self.pepper)
        if same_hash(digest, self._master_hash):
            return auth_pb2.KeyContext(key_id="master", key_alias="master", is_admin=True)
        key = await self.store.by_hash(digest)
        if key is None or not same_hash(key.key_hash, digest):
            raise _unauthenticated(
                "The API key is not valid for this gateway. Check that you copied the whole key, "
                "including its 'sk-' prefix, or ask an admin for a new one.", "invalid_api_key")
        status = key_status(key, time.time())
        if status != "active":
            raise _unauthenticated(f"This API key is {status}. Ask an admin for a new key.", f"key_{status}")
        return auth_pb2.KeyContext(
            key_id=key.key_id, key_alias=key.key_alias, team_id=key.team_id, models=key.models,
            limits=_limits(key), privacy_tier=key.privacy_tier, pii_policy=key.pii_policy,
            metadata=key.key_metadata, expires_at=key.expires_at,
        )

    async def _admin(self, caller: auth_pb2.AdminCaller) -> auth_pb2.KeyContext:
        ctx = await self._context(caller.api_key)
        if not ctx.is_admin:
            raise ServiceError(Kind.ERROR_KIND_PERMISSION,
                               "Only the master key or an admin key may manage keys.", code="admin_required")
        return ctx

    async def Authorize(self, request: auth_pb2.AuthorizeRequest,
                        context: grpc.aio.ServicerContext) -> auth_pb2.AuthorizeResponse:
        try:
            return auth_pb2.AuthorizeResponse(key=await self._context(request.api_key))
        except ServiceError as err:
            await abort(context, err)
            raise

    async def CreateKey(self, request: auth_pb2.CreateKeyRequest,
                        context: grpc.aio.ServicerContext) -> auth_pb2.CreateKeyResponse:
        try:
            await self._admin(request.caller)
            spec = request.spec
            now = time.time()
            expires_at = spec.expires_at
            if spec.duration:
                try:
                    expires_at = int(now) + parse_duration(spec.duration)
                except ValueError as exc:
                    raise ServiceError(Kind.ERROR_KIND_INVALID_REQUEST, str(exc), param="duration") from None
            if spec.pii_policy not in PII_POLICIES:
                raise ServiceError(Kind.ERROR_KIND_INVALID_REQUEST,
                                   f"pii_policy must be one of off, substitute, mask, block (got {spec.pii_policy!r})",
                                   param="pii_policy")
            plain = generate_key()
            limits = spec.limits
            key = VirtualKey(
                key_id=new_key_id(), key_hash=hash_key(plain, self.pepper), key_alias=spec.key_alias,
                last_four=plain[-4:], team_id=spec.team_id, models=list(spec.models),
                **{name: getattr(limits, name) if limits.HasField(name) else None for name in (
                    "rpm_limit", "tpm_limit", "max_parallel_requests", "max_budget_micros",
                    "max_daily_spend_micros")},
                budget_duration=limits.budget_duration,
                privacy_tier=spec.privacy_tier, pii_policy=spec.pii_policy, key_metadata=dict(spec.metadata),
                created_at=int(now), expires_at=expires_at, status="active",
            )
            await self.store.insert(key)
            log.info("key created", extra={"key_id": key.key_id, "key_alias": key.key_alias})
            return auth_pb2.CreateKeyResponse(key=plain, info=key_info(key, now))
        except ServiceError as err:
            await abort(context, err)
            raise

    async def ListKeys(self, request: auth_pb2.ListKeysRequest,
                       context: grpc.aio.ServicerContext) -> auth_pb2.ListKeysResponse:
        try:
            await self._admin(request.caller)
            now = time.time()
            keys = await self.store.list(request.team_id)
            return auth_pb2.ListKeysResponse(keys=[key_info(k, now) for k in keys])
        except ServiceError as err:
            await abort(context, err)
            raise
