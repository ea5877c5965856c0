"""The client half of auth: verify a key and admit a request against its rate limits, cheaply.

Every caller of auth outside the service uses this class — the facade for
HTTP callers and the admin API, the router for its own gRPC callers. It keeps:

- the key-verification cache, fresh by auth's pushed invalidations
  (:mod:`~switchboard_auth.client.keycache`): a key without rate limits is
  verified with no round trip;
- rate-limit leases (:mod:`~switchboard_auth.client.rate_leases`): a key with
  rate limits is admitted locally while this client holds a slice of its
  headroom;
- the releaser (:mod:`~switchboard_auth.client.releases`): admissions are given
  back off the request path, batched, and token corrections still waiting travel
  with the next admission of the key;
- for the router only: the keys' own provider credentials (bring your own key),
  cached until auth says the key changed.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import grpc

from switchboard.v1 import auth_pb2, auth_pb2_grpc, common_pb2
from switchboard_auth.client.admin import AuthAdmin
from switchboard_auth.client.keycache import KeyCache, limits_model, rate_limited
from switchboard_auth.client.rate_leases import LeasedAdmission, LimitLeases
from switchboard_auth.client.releases import Releaser, rate_limit_headers
from switchboard_common import http_metrics
from switchboard_common.errors import ServiceError, from_rpc_error

#: Refusals that unused leased units of the key may have caused.
_RATE_LIMIT_REFUSALS = frozenset({"rpm_limit_exceeded", "tpm_limit_exceeded"})


@dataclass(slots=True)
class AuthClientSettings:
    #: Seconds a call to auth may take before it fails as auth unavailable (503).
    timeout_seconds: float = 5.0
    #: Longest life of a cached verification (changes are pushed sooner); 0 turns the cache off.
    key_cache_ttl_seconds: float = 30.0
    #: Most requests one rate-limit lease may cover; 0: an auth admission per request.
    rate_lease_units: int = 256
    #: Seconds a rate-limit lease admits requests before its unused part is returned.
    rate_lease_seconds: float = 10.0


@dataclass(slots=True)
class Admitted:
    """A verified key and what admitting one request took; hand it to :meth:`AuthClient.release` at the end."""

    key: auth_pb2.KeyContext
    #: Auth's answer when auth admitted the request; None when no admission was needed, or under a lease.
    authorization: auth_pb2.AuthorizeResponse | None = None
    #: The admission under this client's lease (its real token count also corrects the lease).
    leased: LeasedAdmission | None = None
    released: bool = field(default=False)

    def rate_limit_headers(self) -> dict[str, str]:
        """x-ratelimit-{limit,remaining,reset}-{requests,tokens} of the limits that apply."""
        if self.leased is not None:
            return self.leased.rate_limit_headers()
        return rate_limit_headers(self.authorization)


class AuthClient:
    def __init__(self, channel: grpc.aio.Channel, metadata: tuple[tuple[str, str], ...] = (),
                 settings: AuthClientSettings | None = None) -> None:
        self.settings = settings or AuthClientSettings()
        self.stub = auth_pb2_grpc.AuthStub(channel)
        #: This service's identity, sent with every call.
        self.metadata = metadata
        timeout = self.settings.timeout_seconds
        self.releaser = Releaser(self.stub, timeout, metadata=metadata)
        self.leases = LimitLeases(self.releaser, self.settings.rate_lease_units,
                                  use_seconds=self.settings.rate_lease_seconds)
        self.keycache = KeyCache(self.stub, self.settings.key_cache_ttl_seconds, on_change=self._changed,
                                 metadata=metadata)
        self._credentials: dict[str, Mapping[str, str]] = {}
        #: The admin API's typed calls; a change made through them drops this client's cached verifications.
        self.admin = AuthAdmin(self.stub, metadata, timeout,
                               lambda: self.keycache.apply(auth_pb2.Invalidation(everything=True)))

    async def start(self) -> None:
        await self.keycache.start()

    async def close(self, timeout: float) -> None:
        """Retires the leases and sends what is left to release (within ``timeout``)."""
        await self.keycache.stop()
        await self.releaser.drain(timeout)

    def _changed(self, change: auth_pb2.Invalidation) -> None:
        self.leases.changed(change)
        if change.everything:
            self._credentials.clear()
        else:
            for key_id in change.key_ids:
                self._credentials.pop(key_id, None)
            if change.team_ids:
                self._credentials.clear()  # a team's credential may be any of its keys'

    # -- verification and admission ----------------------------------------------------------

    async def verify(self, api_key: str) -> auth_pb2.KeyContext:
        """The key's context without counting a request against its limits; raises ServiceError."""
        cached = self.keycache.lookup(api_key)
        if cached is not None:
            return cached
        response = await self._authorize(auth_pb2.AuthorizeRequest(api_key=api_key, verify_only=True), ask=False)
        return response.key

    async def admit(self, api_key: str, *, model: str, request_id: str, estimated_tokens: int) -> Admitted:
        """Verifies the key and admits one request against its (and its team's) rate limits; raises ServiceError.

        A cached key without rate limits needs no admission; one with rate limits is admitted here under a
        rate-limit lease when this client holds one that fits, else by auth, whose Authorize then also asks
        for a lease."""
        cached = self.keycache.lookup(api_key)
        if cached is not None and not rate_limited(cached):
            http_metrics.note(key_alias=cached.key_alias, team_id=cached.team_id)
            return Admitted(cached)
        leases = self.leases
        if cached is not None and not limits_model(cached, model):
            taken = self._take_lease(cached, estimated_tokens)
            if taken is not None:
                return taken
        # Admission by auth: the request it needs is built only now (a leased admission needs none).
        request = auth_pb2.AuthorizeRequest(api_key=api_key, model=model, request_id=request_id,
                                            estimated_prompt_tokens=estimated_tokens)
        if cached is not None and limits_model(cached, model):
            return await self._admit(api_key, request, cached, ask=False)
        if cached is not None and leases.may_ask(cached):
            async with leases.lock(cached.key_id):  # one ask per key; the others wait for its lease
                taken = self._take_lease(cached, estimated_tokens)
                if taken is not None:
                    return taken
                if leases.may_ask(cached):
                    return await self._admit(api_key, request, cached, ask=True)
        return await self._admit(api_key, request, cached,
                                 ask=cached is None and self.keycache.live and leases.may_ask(None))

    def _take_lease(self, cached: auth_pb2.KeyContext, tokens: int) -> Admitted | None:
        leased = self.leases.take(cached, tokens)
        if leased is None:
            return None
        http_metrics.note(key_alias=cached.key_alias, team_id=cached.team_id)
        return Admitted(cached, leased=leased)

    async def _admit(self, api_key: str, request: auth_pb2.AuthorizeRequest, cached: auth_pb2.KeyContext | None,
                     ask: bool) -> Admitted:
        """Admission by auth. A rate-limit refusal while this client holds unused leased units of the key (or its
        team) hands them back and asks once more, so that idle slices never cause a denial here."""
        try:
            return Admitted((response := await self._authorize(request, ask)).key, response)
        except ServiceError as err:
            if err.error.code not in _RATE_LIMIT_REFUSALS:
                raise
            known = cached or self.keycache.peek(api_key)
            if known is None:
                raise
            self.leases.refused(known.key_id)
            if not await self.leases.return_for(known.key_id, known.team_id):
                raise
        response = await self._authorize(request, ask=False)
        return Admitted(response.key, response)

    async def _authorize(self, request: auth_pb2.AuthorizeRequest, ask: bool) -> auth_pb2.AuthorizeResponse:
        generation = self.keycache.generation
        known = self.keycache.peek(request.api_key)
        if not request.verify_only:
            if known is not None:
                del request.releases[:]
                request.releases.extend(self.releaser.take_corrections(known.key_id, known.team_id))
            if ask:
                request.lease_ask.CopyFrom(self.leases.ask(known.key_id if known is not None else "",
                                                           request.estimated_prompt_tokens))
        asked_at = time.monotonic()
        try:
            response: auth_pb2.AuthorizeResponse = await self.stub.Authorize(
                request, timeout=self.settings.timeout_seconds, metadata=self.metadata)
        except grpc.aio.AioRpcError as exc:
            raise from_rpc_error(exc, "auth") from None
        http_metrics.note(key_alias=response.key.key_alias, team_id=response.key.team_id)
        self.keycache.store(request.api_key, response.key, generation)
        if ask:
            # A lease is used only while the key's verification is live in the cache: not if a change raced.
            self.leases.granted(response, asked_at,
                                usable=self.keycache.live and generation == self.keycache.generation)
        return response

    def release(self, admitted: Admitted | None, usage: common_pb2.Usage | None = None) -> None:
        """Frees the request's parallel slot and corrects its TPM count (in the background); once."""
        if admitted is None or admitted.released:
            return
        admitted.released = True
        if admitted.leased is not None:
            self.leases.finished(admitted.leased, usage.total_tokens if usage is not None else None)
        else:
            self.releaser.release(admitted.authorization, usage)

    # -- the router's: keys' own provider credentials ---------------------------------------

    async def credentials(self, key_id: str) -> Mapping[str, str]:
        """The key's (and its team's) own provider credentials, decrypted by auth for the router alone; cached
        until auth pushes a change of the key or its team (and only while the cache is live)."""
        found = self._credentials.get(key_id)
        if found is not None and self.keycache.live:
            return found
        generation = self.keycache.generation
        try:
            answer = await self.stub.GetProviderCredentials(
                auth_pb2.GetProviderCredentialsRequest(key_id=key_id), timeout=self.settings.timeout_seconds,
                metadata=self.metadata)
        except grpc.aio.AioRpcError as exc:
            raise from_rpc_error(exc, "auth") from None
        credentials = dict(answer.credentials)
        if self.keycache.live and generation == self.keycache.generation:
            if len(self._credentials) > 10_000:
                self._credentials.clear()
            self._credentials[key_id] = credentials
        return credentials

