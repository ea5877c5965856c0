"""A client's key-verification cache: API key → KeyContext, kept fresh by auth's pushes.

A key without rate limits (on itself or its team) needs no admission, so once
verified it is served from here with no auth round trip (the facade for HTTP
callers, the router for its own gRPC callers). Freshness comes from
``Auth.WatchInvalidations``: a long-lived stream over which auth (every
replica, through its fan-out) pushes each revocation, block, expiry change or
limit update, typically within milliseconds. The cache trusts itself only
while that stream is up: on any break it empties and stays off until the
stream is back, so a lost push can never extend a revoked key's life. A TTL
bounds the life of an entry regardless.

A key with rate limits needs an admission: a live, fresh hit here lets the
client admit it under a rate-limit lease (``rate_leases``), otherwise it goes
to auth. Every change pushed is also handed to ``on_change`` (the leases' hook),
and so is going dark, so that a changed key stops using its leases at once.
Entries are keyed by a keyed BLAKE2b digest of the key (a per-process random
secret), so the plain key is not kept as a dictionary key.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import secrets
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass

import grpc

from switchboard.v1 import auth_pb2, auth_pb2_grpc
from switchboard_common.per_object import PerObject

log = logging.getLogger(__name__)

_RATE_LIMITS = ("rpm_limit", "tpm_limit", "max_parallel_requests")


def limit_sets(ctx: auth_pb2.KeyContext) -> tuple[auth_pb2.Limits, auth_pb2.Limits, auth_pb2.Limits]:
    """The limits every request of the key is counted against: the key's own, its team's and its user's."""
    return ctx.limits, ctx.team_limits, ctx.user_limits


def has_rate_limits(ctx: auth_pb2.KeyContext) -> bool:
    return any(limits.HasField(n) for limits in limit_sets(ctx) for n in _RATE_LIMITS) or bool(
        ctx.model_rpm_limits or ctx.model_tpm_limits)


_RATE_LIMITED: PerObject[auth_pb2.KeyContext, bool] = PerObject(has_rate_limits)


def rate_limited(ctx: auth_pb2.KeyContext) -> bool:
    """:func:`has_rate_limits` of a context the cache handed out (worked out once per context object)."""
    return _RATE_LIMITED.of(ctx)


def limits_model(ctx: auth_pb2.KeyContext, model: str) -> bool:
    """Whether the key has its own rate limit on ``model`` (or the model its alias names): such a request is
    admitted by auth itself, never under a lease (a lease admits any model of the key)."""
    if not ctx.model_rpm_limits and not ctx.model_tpm_limits:
        return False
    model = ctx.model_aliases.get(model, model)
    return model in ctx.model_rpm_limits or model in ctx.model_tpm_limits


@dataclass(slots=True)
class _Entry:
    ctx: auth_pb2.KeyContext
    stored_at: float


class KeyCache:
    def __init__(self, stub: auth_pb2_grpc.AuthStub, ttl_seconds: float, max_entries: int = 100_000,
                 on_change: Callable[[auth_pb2.Invalidation], None] | None = None,
                 metadata: tuple[tuple[str, str], ...] = ()) -> None:
        self.stub = stub
        self.metadata = metadata
        #: Called with every change applied (and with ``everything`` when the cache goes dark).
        self.on_change = on_change
        self.ttl_seconds = ttl_seconds
        self.max_entries = max_entries
        self._secret = secrets.token_bytes(32)
        self._entries: dict[bytes, _Entry] = {}
        self._live = False
        #: Bumped by every change pushed, so a verification that raced with a change is not stored.
        self.generation = 0
        self._task: asyncio.Task[None] | None = None

    @property
    def enabled(self) -> bool:
        return self.ttl_seconds > 0

    @property
    def live(self) -> bool:
        """Whether hits may be trusted now (the invalidation stream is up)."""
        return self._live

    def _digest(self, api_key: str) -> bytes:
        return hashlib.blake2b(api_key.encode(), key=self._secret, digest_size=32).digest()

    def lookup(self, api_key: str, admission_needed: bool = False) -> auth_pb2.KeyContext | None:
        """The cached context, if it may be used without asking auth (``admission_needed``: for a request to admit,
        so not for a key with rate limits; without it, a rate-limited key's hit is for a lease or verify-only)."""
        if not self._live or not api_key:
            return None
        entry = self._entries.get(self._digest(api_key))
        if entry is None:
            return None
        now = time.monotonic()
        if now - entry.stored_at > self.ttl_seconds or (entry.ctx.expires_at and entry.ctx.expires_at <= time.time()):
            return None
        if admission_needed and rate_limited(entry.ctx):
            return None
        return entry.ctx

    def store(self, api_key: str, ctx: auth_pb2.KeyContext, generation: int) -> None:
        """Remembers auth's verification, taken when the cache was at ``generation``."""
        if not self._live or generation != self.generation or not api_key:
            return
        if len(self._entries) >= self.max_entries:
            self._entries.clear()
        self._entries[self._digest(api_key)] = _Entry(ctx, time.monotonic())

    def peek(self, api_key: str) -> auth_pb2.KeyContext | None:
        """The context last stored for the key, however old: only to name it (its key and team ids)."""
        entry = self._entries.get(self._digest(api_key)) if api_key else None
        return entry.ctx if entry is not None else None

    def apply(self, change: auth_pb2.Invalidation) -> None:
        self.generation += 1
        if self.on_change is not None:
            self.on_change(change)
        if change.everything:
            self._entries.clear()
            return
        keys, teams = set(change.key_ids), set(change.team_ids)
        for digest in [d for d, e in self._entries.items()
                       if e.ctx.key_id in keys or (e.ctx.team_id and e.ctx.team_id in teams)]:
            del self._entries[digest]

    def _go_dark(self) -> None:
        self._live = False
        self.generation += 1
        self._entries.clear()
        if self.on_change is not None:
            self.on_change(auth_pb2.Invalidation(everything=True))

    async def start(self) -> None:
        if self.enabled:
            self._task = asyncio.create_task(self._watch())

    async def _watch(self) -> None:
        request = auth_pb2.WatchInvalidationsRequest(watcher=socket.gethostname())
        backoff = 0.1
        while True:
            try:
                async for change in self.stub.WatchInvalidations(request, metadata=self.metadata):
                    self.apply(change)
                    if not self._live:
                        self._live = True
                        backoff = 0.1
                        log.info("key cache live")
            except asyncio.CancelledError:
                raise
            except grpc.aio.AioRpcError as exc:
                if self._live:
                    log.warning("key cache off: invalidation stream lost", extra={"error": exc.code().name})
            self._go_dark()
            await asyncio.sleep(backoff)
            backoff = min(2.0, backoff * 2)

    async def stop(self) -> None:
        self._go_dark()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
