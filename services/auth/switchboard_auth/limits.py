"""Rate limits (RPM, TPM, parallel requests) and the in-process limiter.

Every request is checked against its key's limits and, if the key is in a
team, its team's limits (the team's counters see the sum of its keys'
traffic), all or nothing: a request denied by one limit counts against none.

- RPM is a sliding log of the last 60 seconds: at most N admissions in any
  60-second span, never 2N across a window edge.
- TPM is a fixed one-minute window counted in tokens: the prompt estimate is
  counted at admission and corrected to the real total in :meth:`release`.
- Parallel requests are a set of in-flight request ids; a slot whose release
  never came (a crashed caller) expires after ``slot_ttl_seconds``.

:class:`MemoryLimiter` keeps the counters in this process (the embedded
default, one auth replica); ``redis_limits.RedisLimiter`` keeps the same
counters in Redis with atomic scripts for several replicas.

Rate-limit leases
-----------------
A facade admitting every request with an ``Authorize`` round trip pays about
a millisecond and auth's CPU per request. So an admission may also grant the
facade a *lease*: a slice of the key's (and its team's) headroom that the
facade then spends locally, one request at a time, with no round trip. The
slice is counted in the same counters, in the same atomic step as the
admission, so the sum of every slice and every admission never exceeds a
limit, however many facades and auth replicas share it.

- RPM: the lease's ``n`` admissions are recorded in the sliding log stamped
  ``recorded_at`` = grant time + use time, which is no earlier than any real
  use (the facade stops using the lease by then, measured from before it
  asked). Each real use therefore stays in the log at least 60 s after it
  happened, exactly like a per-request admission. When the facade returns the
  lease, the ``used`` records stay (restamped to the return time if that is
  earlier: every use happened before the return) and the others are removed.
- TPM: the lease's tokens are counted in the current one-minute window and
  the lease ends with that window. The facade debits each request's prompt
  estimate from its slice; the correction to the real count reaches auth as a
  normal release (batched); unused tokens are taken off the window on return.
- Grants are conservative so that small limits stay exact per request: per
  limit, at most ``free // LEASE_FREE_DIVISOR`` and ``limit //
  LEASE_LIMIT_DIVISOR`` (a quarter of what is free, a twentieth of the
  limit), and only when that is at least ``LEASE_MIN_UNITS`` requests (and,
  for TPM, at least the ask's ``min_tokens``); otherwise no lease, and the
  facade admits each request with its own ``Authorize``, exact as before.
- Keys with a parallel-request limit are never leased (slots are per request).
- Returns are idempotent (the token part is applied once per lease id), and a
  lost return just expires: unused records leave the log 60 s after
  ``recorded_at``, unused tokens leave with their window.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

WINDOW_SECONDS = 60
#: A lease takes at most this fraction (1/4) of what is free in a limit...
LEASE_FREE_DIVISOR = 4
#: ... and at most this fraction (1/20) of the limit itself.
LEASE_LIMIT_DIVISOR = 20
#: Fewer requests than this: no lease (the facade asks auth per request).
LEASE_MIN_UNITS = 2
#: Most requests one lease may carry (each is one record in the RPM log).
LEASE_MAX_REQUESTS = 1024
#: Longest use time of a lease, seconds.
LEASE_MAX_SECONDS = 60.0
#: How long a returned lease id is remembered, so that a repeated return takes its tokens off only once.
LEASE_RETURN_MEMORY_SECONDS = 180.0


@dataclass(frozen=True, slots=True)
class LimitCheck:
    """The limits of one scope ("key", "team", "user" or "key_model") that a request must fit in; None: no
    limit."""

    scope: str
    owner_id: str
    rpm: int | None = None
    tpm: int | None = None
    parallel: int | None = None

    @property
    def empty(self) -> bool:
        return self.rpm is None and self.tpm is None and self.parallel is None


@dataclass(frozen=True, slots=True)
class LimitState:
    """One limit after an admission, for the x-ratelimit-* headers."""

    name: str  # "requests" or "tokens"
    limit: int
    remaining: int
    reset_seconds: float


@dataclass(frozen=True, slots=True)
class Denial:
    scope: str
    owner_id: str
    #: "rpm_limit", "tpm_limit" or "max_parallel_requests".
    limit_name: str
    limit: int
    retry_after_seconds: float


@dataclass(frozen=True, slots=True)
class LeaseAsk:
    """What a facade asks for on top of an admission (see the module docstring)."""

    lease_id: str
    #: Most requests wanted.
    requests: int
    #: Most TPM tokens wanted.
    tokens: int
    #: Fewest TPM tokens worth a lease.
    min_tokens: int
    #: Longest time the facade will use the lease, seconds.
    use_seconds: float


@dataclass(frozen=True, slots=True)
class LeaseGrant:
    lease_id: str
    #: Requests granted (a cap only, when no RPM limit applies: request_scopes is empty).
    requests: int
    #: Scopes ("key", "team", "user") whose RPM log recorded the requests.
    request_scopes: tuple[str, ...]
    #: Tokens granted (0 when no TPM limit applies: token_scopes is empty).
    tokens: int
    #: Scopes whose TPM window counted the tokens.
    token_scopes: tuple[str, ...]
    tpm_window_start: int
    #: Use time granted (the ask's, cut at the end of the TPM window when tokens are leased).
    use_seconds: float
    #: Limiter time at which the leased requests are recorded in the RPM log.
    recorded_at: float


@dataclass(frozen=True, slots=True)
class LeaseReturn:
    """What a facade did not use of a retired lease."""

    lease_id: str
    #: (scope, owner_id) of the RPM logs that recorded the lease's requests.
    request_scopes: list[tuple[str, str]]
    requests: int
    requests_used: int
    #: (scope, owner_id) of the TPM windows that counted its tokens.
    token_scopes: list[tuple[str, str]]
    tokens: int
    tokens_used: int
    tpm_window_start: int


@dataclass(slots=True)
class Admitted:
    tpm_window_start: int
    holds_parallel_slot: bool
    states: list[LimitState] = field(default_factory=list)
    #: The lease granted with this admission, if one was asked for and the limits allowed it.
    lease: LeaseGrant | None = None


class Limiter(Protocol):
    #: Exceptions that mean "the counters cannot be reached" (answered as 503), not a bug.
    unavailable_errors: tuple[type[Exception], ...]

    async def admit(self, checks: list[LimitCheck], request_id: str, tokens: int,
                    lease: LeaseAsk | None = None) -> Admitted | Denial: ...

    async def release(self, scopes: list[tuple[str, str]], request_id: str, tpm_window_start: int,
                      token_delta: int) -> None: ...

    async def return_lease(self, returned: LeaseReturn) -> None: ...

    async def close(self) -> None: ...


def lease_share(wanted: int, limit: int, used: int) -> int:
    """What one limit may lease of ``wanted``: at most a quarter of what is free and a twentieth of the limit."""
    return max(0, min(wanted, (limit - used) // LEASE_FREE_DIVISOR, limit // LEASE_LIMIT_DIVISOR))


def tightest(states: list[LimitState]) -> list[LimitState]:
    """Per name, the state with the fewest remaining (the one the client will hit first)."""
    best: dict[str, LimitState] = {}
    for state in states:
        current = best.get(state.name)
        if current is None or state.remaining < current.remaining:
            best[state.name] = state
    return list(best.values())


@dataclass(slots=True)
class _LeasedRequests:
    """The RPM records of one lease: ``count`` admissions stamped ``stamp``."""

    stamp: float
    count: int


@dataclass
class _Counters:
    admissions: deque[float] = field(default_factory=deque)
    leased: dict[str, _LeasedRequests] = field(default_factory=dict)
    tokens: dict[int, int] = field(default_factory=dict)
    in_flight: dict[str, float] = field(default_factory=dict)

    def requests(self) -> int:
        return len(self.admissions) + sum(r.count for r in self.leased.values())

    def oldest(self) -> float | None:
        """Stamp of the oldest record in the RPM log (when the window next frees up, minus 60 s)."""
        stamps = [r.stamp for r in self.leased.values()]
        if self.admissions:
            stamps.append(self.admissions[0])
        return min(stamps) if stamps else None


class MemoryLimiter:
    """Counters in this process. Atomic because admit() never awaits between check and commit."""

    #: In-process counters are always reachable.
    unavailable_errors: tuple[type[Exception], ...] = ()

    def __init__(self, slot_ttl_seconds: float = 960.0, clock: Callable[[], float] = time.time) -> None:
        self.slot_ttl_seconds = slot_ttl_seconds
        self.clock = clock
        self._counters: dict[tuple[str, str], _Counters] = {}
        #: Lease ids whose unused tokens were taken back, and when (a repeated return is a no-op).
        self._returned: dict[str, float] = {}

    def _get(self, scope: str, owner_id: str) -> _Counters:
        key = (scope, owner_id)
        counters = self._counters.get(key)
        if counters is None:
            counters = self._counters[key] = _Counters()
        return counters

    async def admit(self, checks: list[LimitCheck], request_id: str, tokens: int,
                    lease: LeaseAsk | None = None) -> Admitted | Denial:
        now = self.clock()
        window = int(now // WINDOW_SECONDS) * WINDOW_SECONDS
        for check in checks:
            c = self._get(check.scope, check.owner_id)
            while c.admissions and c.admissions[0] <= now - WINDOW_SECONDS:
                c.admissions.popleft()
            for lease_id in [k for k, r in c.leased.items() if r.stamp <= now - WINDOW_SECONDS or r.count <= 0]:
                del c.leased[lease_id]
            for start in [w for w in c.tokens if w < window]:
                del c.tokens[start]
            for rid in [r for r, t in c.in_flight.items() if t <= now - self.slot_ttl_seconds]:
                del c.in_flight[rid]
            if check.rpm is not None and c.requests() + 1 > check.rpm:
                oldest = c.oldest()
                retry = oldest + WINDOW_SECONDS - now if oldest is not None else WINDOW_SECONDS
                return Denial(check.scope, check.owner_id, "rpm_limit", check.rpm, retry)
            if check.tpm is not None and c.tokens.get(window, 0) + tokens > check.tpm:
                return Denial(check.scope, check.owner_id, "tpm_limit", check.tpm, window + WINDOW_SECONDS - now)
            if check.parallel is not None and len(c.in_flight) + 1 > check.parallel:
                return Denial(check.scope, check.owner_id, "max_parallel_requests", check.parallel, 1.0)
        admitted = Admitted(tpm_window_start=window, holds_parallel_slot=False)
        for check in checks:
            c = self._get(check.scope, check.owner_id)
            if check.rpm is not None:
                c.admissions.append(now)
                oldest = c.oldest()
                assert oldest is not None
                admitted.states.append(LimitState("requests", check.rpm, check.rpm - c.requests(),
                                                  oldest + WINDOW_SECONDS - now))
            if check.tpm is not None:
                used = c.tokens[window] = c.tokens.get(window, 0) + tokens
                admitted.states.append(LimitState("tokens", check.tpm, max(0, check.tpm - used),
                                                  window + WINDOW_SECONDS - now))
            if check.parallel is not None:
                c.in_flight[request_id] = now
                admitted.holds_parallel_slot = True
        admitted.states = tightest(admitted.states)
        if lease is not None:
            admitted.lease = self._grant(checks, lease, now, window)
        return admitted

    def _grant(self, checks: list[LimitCheck], ask: LeaseAsk, now: float, window: int) -> LeaseGrant | None:
        """Counts a lease in every limit of ``checks`` if each can spare enough (see the module docstring)."""
        if any(c.parallel is not None for c in checks):
            return None
        rpm_checks = [c for c in checks if c.rpm is not None]
        tpm_checks = [c for c in checks if c.tpm is not None]
        if not rpm_checks and not tpm_checks:
            return None
        requests = min(ask.requests, LEASE_MAX_REQUESTS)
        for check in rpm_checks:
            assert check.rpm is not None
            requests = lease_share(requests, check.rpm, self._get(check.scope, check.owner_id).requests())
        tokens = ask.tokens if tpm_checks else 0
        for check in tpm_checks:
            assert check.tpm is not None
            tokens = lease_share(tokens, check.tpm, self._get(check.scope, check.owner_id).tokens.get(window, 0))
        use_seconds = min(ask.use_seconds, LEASE_MAX_SECONDS)
        if tpm_checks:
            use_seconds = min(use_seconds, window + WINDOW_SECONDS - now)
        if (requests < LEASE_MIN_UNITS or (tpm_checks and tokens < max(LEASE_MIN_UNITS, ask.min_tokens))
                or use_seconds <= 0):
            return None
        recorded_at = now + use_seconds
        for check in rpm_checks:
            self._get(check.scope, check.owner_id).leased[ask.lease_id] = _LeasedRequests(recorded_at, requests)
        for check in tpm_checks:
            c = self._get(check.scope, check.owner_id)
            c.tokens[window] = c.tokens.get(window, 0) + tokens
        return LeaseGrant(ask.lease_id, requests, tuple(c.scope for c in rpm_checks), tokens,
                          tuple(c.scope for c in tpm_checks), window, use_seconds, recorded_at)

    async def release(self, scopes: list[tuple[str, str]], request_id: str, tpm_window_start: int,
                      token_delta: int) -> None:
        for scope in scopes:
            c = self._counters.get(scope)
            if c is None:
                continue
            c.in_flight.pop(request_id, None)
            if token_delta and tpm_window_start in c.tokens:
                c.tokens[tpm_window_start] = max(0, c.tokens[tpm_window_start] + token_delta)

    async def return_lease(self, returned: LeaseReturn) -> None:
        now = self.clock()
        used = max(0, returned.requests_used)
        for scope in returned.request_scopes:
            c = self._counters.get(scope)
            record = c.leased.get(returned.lease_id) if c is not None else None
            if c is None or record is None:
                continue
            record.count, record.stamp = min(record.count, used), min(record.stamp, now)
            if record.count <= 0:
                del c.leased[returned.lease_id]
        for lease_id in [k for k, t in self._returned.items() if t <= now - LEASE_RETURN_MEMORY_SECONDS]:
            del self._returned[lease_id]
        unused = returned.tokens - max(0, returned.tokens_used)
        if unused <= 0 or returned.lease_id in self._returned:
            return
        self._returned[returned.lease_id] = now
        for scope in returned.token_scopes:
            c = self._counters.get(scope)
            if c is not None and returned.tpm_window_start in c.tokens:
                c.tokens[returned.tpm_window_start] = max(0, c.tokens[returned.tpm_window_start] - unused)

    async def close(self) -> None:
        return None
