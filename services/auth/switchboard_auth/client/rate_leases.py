"""Rate-limit leases: admit a key's requests locally, against a slice of its RPM/TPM headroom auth granted.

"This client" below is the auth client of a facade (for HTTP callers) or of the router (for its own gRPC callers).

Admitting each request of a rate-limited key with an ``Auth.Authorize`` round
trip costs about a millisecond and auth's CPU per request. Instead, when the
client has to ask auth anyway, it adds a *lease ask* to that ``Authorize``:
auth admits the request and, in the same atomic step, may also grant this
client a slice of the key's (and its team's) headroom — up to ``n`` requests
and ``T`` prompt tokens, counted in the limits' own counters (RPM records
stamped at the end of the lease's use time, tokens in the current TPM window;
see ``switchboard_auth.limits``). The sum of every client's slices and every
admission therefore never exceeds a limit, across any number of clients and
auth replicas.

A later request of the key is admitted here, with no round trip, when:

- the key is a live, fresh hit of the key cache (so a revocation, block or
  limit change — pushed by auth within milliseconds — stops lease use at once:
  the cache's change hook retires the key's leases);
- the lease's use time has not ended (measured from before the ask was sent,
  so it ends no later than auth's reckoning; a TPM lease ends with its window);
- the lease has a request left and, with a TPM limit, tokens for the request's
  prompt estimate, which it debits.

Its x-ratelimit-* headers are the limits' state when the lease was granted
minus this client's use of it. Its real token count reaches auth like any
admission's (a correction of the estimate, summed and batched by the
:class:`~switchboard_auth.client.releases.Releaser`), and counts at once
against the lease itself (:meth:`LimitLeases.finished`), so the lease admits
no more than its slice of real tokens. A leased admission is plain Python
(:class:`LeasedAdmission`), not an ``AuthorizeResponse``: it is the common
case of a busy key, and it builds no protobuf message from its admission to
its release.

A lease is *retired* — and what it did not use handed back in the
releaser's next batch — when it runs out or cannot fit a request, when its use
time ends, when its key or team changes, when the key cache goes dark, and at
shutdown (the key cache's stop, before the releaser drains). A request refused
while this client holds unused units of the key (or its team) returns them at
once and is asked once more, so idle slices never cause a denial here. A lost
return just expires.

Auth grants conservatively (at most a quarter of what is free and a twentieth
of the limit, and only 2 requests or more), so a key with a small limit, or one
near its limit, gets no lease: it is admitted by ``Authorize`` per request,
whose answer and denial are exact. After a refused ask the key is not asked
for a lease for ``_NO_LEASE_SECONDS``. Keys with a parallel-request limit are
never leased: their slots are per request.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from dataclasses import dataclass, field

from switchboard.v1 import auth_pb2
from switchboard_auth.client.keycache import limit_sets
from switchboard_auth.client.releases import Releaser, add_limit_headers

log = logging.getLogger(__name__)

#: How long a key whose lease ask was refused goes straight to per-request admission.
_NO_LEASE_SECONDS = 1.0
#: Longest pause of the sweeper that retires leases whose use time ended.
_SWEEP_SECONDS = 1.0


def frees_units(returned: auth_pb2.RateLimitLeaseReturn) -> bool:
    """Whether a lease return gives back requests or tokens (not only restamps used records)."""
    lease = returned.lease
    return ((bool(lease.request_scopes) and returned.requests_used < lease.requests)
            or (bool(lease.token_scopes) and returned.tokens_used < lease.tokens))


def has_parallel_limit(ctx: auth_pb2.KeyContext) -> bool:
    return any(limits.HasField("max_parallel_requests") for limits in limit_sets(ctx))


@dataclass(slots=True)
class _Lease:
    grant: auth_pb2.RateLimitLease
    #: Monotonic time the ask was sent: use time and header resets count from it.
    asked_at: float
    use_until: float
    counts_tokens: bool
    requests_used: int = 0
    tokens_used: int = 0
    #: Real tokens minus estimates of the requests it admitted that have ended (sent to auth as corrections).
    tokens_corrected: int = 0
    #: (name, limit, remaining at grant, reset seconds at grant) of each limit, for the headers.
    states: list[tuple[str, int, int, float]] = field(default_factory=list)

    def holds_unused(self) -> bool:
        """Whether some of what the lease counted in the limits is still unused."""
        grant = self.grant
        return ((bool(grant.request_scopes) and self.requests_used < grant.requests)
                or (self.counts_tokens and self.tokens_used < grant.tokens))

    def fits(self, tokens: int, now: float) -> bool:
        return (now < self.use_until and self.requests_used < self.grant.requests
                and (not self.counts_tokens
                     or self.tokens_used + max(0, self.tokens_corrected) + tokens <= self.grant.tokens))


@dataclass(slots=True)
class LeasedAdmission:
    """One request admitted under a lease: what its headers and its release need."""

    lease: _Lease
    #: The prompt estimate counted against the lease (0 when no TPM limit applies).
    counted_tokens: int
    #: The lease's requests and tokens used when this one was admitted (it included).
    requests_used: int
    tokens_used: int
    #: Seconds from the lease's ask to this admission.
    elapsed: float

    def rate_limit_headers(self) -> dict[str, str]:
        """x-ratelimit-* of each limit: its state at the grant, less this client's use of the lease."""
        headers: dict[str, str] = {}
        for name, limit, remaining, reset in self.lease.states:
            used = self.requests_used if name == "requests" else self.tokens_used
            add_limit_headers(headers, name, limit, remaining - used, max(0.0, reset - self.elapsed))
        return headers


class LimitLeases:
    """This facade's rate-limit leases, at most one live lease per key."""

    def __init__(self, releaser: Releaser, max_units: int = 256, first_units: int = 16,
                 use_seconds: float = 10.0) -> None:
        self.releaser = releaser
        self.max_units = max_units
        self.first_units = min(first_units, max_units)
        self.use_seconds = use_seconds
        self._leases: dict[str, _Lease] = {}
        self._next_units: dict[str, int] = {}
        self._no_lease_until: dict[str, float] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._sweeper: asyncio.Task[None] | None = None

    @property
    def enabled(self) -> bool:
        return self.max_units >= 2 and self.use_seconds > 0

    # -- admitting -------------------------------------------------------------------------

    def take(self, ctx: auth_pb2.KeyContext, tokens: int) -> LeasedAdmission | None:
        """Admits one request of a cached, verified key under its lease; None: no lease fits, ask auth."""
        lease = self._leases.get(ctx.key_id)
        if lease is None:
            return None
        now = time.monotonic()
        if lease.grant.team_id != ctx.team_id or not lease.fits(tokens, now):
            self.retire(ctx.key_id)  # spent, ended, or too small for this request: the next ask replaces it
            return None
        lease.requests_used += 1
        counted = 0
        if lease.counts_tokens:
            lease.tokens_used += tokens
            counted = tokens
        return LeasedAdmission(lease, counted, lease.requests_used, lease.tokens_used, now - lease.asked_at)

    def finished(self, admitted: LeasedAdmission, actual_tokens: int | None) -> None:
        """A request admitted under a lease ended with ``actual_tokens`` (None: no usage known, counted as 0 in
        auth's TPM window): the key's live lease of the same TPM window counts the difference from the estimate
        at once, and auth gets the correction with the releaser's next batch."""
        grant = admitted.lease.grant
        if not admitted.lease.counts_tokens:
            return
        if actual_tokens is not None:
            live = self._leases.get(grant.key_id)
            if live is not None and live.counts_tokens and live.grant.tpm_window_start == grant.tpm_window_start:
                live.tokens_corrected += actual_tokens - admitted.counted_tokens
        self.releaser.correct(grant.key_id, grant.team_id, grant.tpm_window_start, admitted.counted_tokens,
                              actual_tokens or 0)

    def may_ask(self, ctx: auth_pb2.KeyContext | None) -> bool:
        """Whether an Authorize of this key should carry a lease ask (``ctx`` None: the key is not cached)."""
        if not self.enabled:
            return False
        if ctx is None:
            return True
        return not has_parallel_limit(ctx) and time.monotonic() >= self._no_lease_until.get(ctx.key_id, 0.0)

    def lock(self, key_id: str) -> asyncio.Lock:
        """Held while one request of the key asks for a lease, so that the others wait and use it."""
        lock = self._locks.get(key_id)
        if lock is None:
            lock = self._locks[key_id] = asyncio.Lock()
        return lock

    def ask(self, key_id: str, tokens: int) -> auth_pb2.RateLimitLeaseAsk:
        units = self._next_units.get(key_id, self.first_units)
        per_request = max(1, tokens)
        return auth_pb2.RateLimitLeaseAsk(lease_id="rlease_" + secrets.token_hex(12), requests=units,
                                          tokens=units * per_request, min_tokens=2 * per_request,
                                          use_seconds=self.use_seconds)

    def refused(self, key_id: str) -> None:
        """No lease was granted (the key is near a limit, or was refused): per-request admission for a while."""
        self._no_lease_until[key_id] = time.monotonic() + _NO_LEASE_SECONDS

    def granted(self, response: auth_pb2.AuthorizeResponse, asked_at: float, usable: bool) -> None:
        """Takes the lease of an Authorize that asked for one (``usable`` False: a change raced with it)."""
        key_id = response.key.key_id
        if not response.HasField("lease"):
            if key_id:
                self.refused(key_id)
            return
        grant = response.lease
        lease = _Lease(grant, asked_at, asked_at + grant.use_seconds, bool(grant.token_scopes),
                       states=[(s.name, s.limit, s.remaining, s.reset_seconds) for s in grant.rate_limits])
        if not usable or grant.key_id != key_id:
            self._hand_back(lease)
            return
        self.retire(key_id)
        self._leases[key_id] = lease
        units = self._next_units.get(key_id, self.first_units)
        self._next_units[key_id] = min(self.max_units, units * 2)
        self._no_lease_until.pop(key_id, None)
        self._start_sweeper()

    # -- retiring --------------------------------------------------------------------------

    def retire(self, key_id: str) -> bool:
        """Stops using the key's lease and hands back what it did not use; True if it had unused units."""
        lease = self._leases.pop(key_id, None)
        if lease is None:
            return False
        return self._hand_back(lease)

    def _hand_back(self, lease: _Lease) -> bool:
        unused = lease.holds_unused()
        if unused or lease.grant.request_scopes:
            # Even a spent RPM lease is returned: its used records then leave the log sooner.
            self.releaser.return_lease(self._return_of(lease))
        return unused

    @staticmethod
    def _return_of(lease: _Lease) -> auth_pb2.RateLimitLeaseReturn:
        return auth_pb2.RateLimitLeaseReturn(lease=lease.grant, requests_used=lease.requests_used,
                                             tokens_used=lease.tokens_used)

    def changed(self, change: auth_pb2.Invalidation) -> None:
        """The key cache's change hook: a changed key or team (or everything) stops using its leases."""
        if change.everything:
            for key_id in list(self._leases):
                self.retire(key_id)
            return
        keys, teams = set(change.key_ids), set(change.team_ids)
        for key_id in [k for k, lease in self._leases.items()
                       if k in keys or (lease.grant.team_id and lease.grant.team_id in teams)]:
            self.retire(key_id)

    async def return_for(self, key_id: str, team_id: str) -> bool:
        """After a refusal: hands back at once every unused unit of the key's (and its team's) leases — live ones,
        and retired ones whose return has not reached auth yet — and waits for auth to take them; True if there
        were any (the caller then asks once more)."""
        def ours(lease: auth_pb2.RateLimitLease) -> bool:
            return lease.key_id == key_id or bool(team_id and lease.team_id == team_id)

        for key in [k for k, lease in self._leases.items() if ours(lease.grant)]:
            self.retire(key)
        return await self.releaser.return_now(lambda r: ours(r.lease) and frees_units(r))

    def _start_sweeper(self) -> None:
        if self._sweeper is None or self._sweeper.done():
            self._sweeper = asyncio.get_running_loop().create_task(self._sweep())

    async def _sweep(self) -> None:
        """Retires leases whose use time ended, so that their unused units go back to the limits."""
        while self._leases:
            await asyncio.sleep(min(_SWEEP_SECONDS, self.use_seconds / 2))
            now = time.monotonic()
            for key_id in [k for k, lease in self._leases.items() if now >= lease.use_until]:
                self.retire(key_id)
