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
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

WINDOW_SECONDS = 60


@dataclass(frozen=True, slots=True)
class LimitCheck:
    """The limits of one scope ("key" or "team") that a request must fit in; None means no limit."""

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


@dataclass(slots=True)
class Admitted:
    tpm_window_start: int
    holds_parallel_slot: bool
    states: list[LimitState] = field(default_factory=list)


class Limiter(Protocol):
    async def admit(self, checks: list[LimitCheck], request_id: str, tokens: int) -> Admitted | Denial: ...

    async def release(self, scopes: list[tuple[str, str]], request_id: str, tpm_window_start: int,
                      token_delta: int) -> None: ...

    async def close(self) -> None: ...


def tightest(states: list[LimitState]) -> list[LimitState]:
    """Per name, the state with the fewest remaining (the one the client will hit first)."""
    best: dict[str, LimitState] = {}
    for state in states:
        current = best.get(state.name)
        if current is None or state.remaining < current.remaining:
            best[state.name] = state
    return list(best.values())


@dataclass
class _Counters:
    admissions: deque[float] = field(default_factory=deque)
    tokens: dict[int, int] = field(default_factory=dict)
    in_flight: dict[str, float] = field(default_factory=dict)


class MemoryLimiter:
    """Counters in this process. Atomic because admit() never awaits between check and commit."""

    def __init__(self, slot_ttl_seconds: float = 960.0, clock: Callable[[], float] = time.time) -> None:
        self.slot_ttl_seconds = slot_ttl_seconds
        self.clock = clock
        self._counters: dict[tuple[str, str], _Counters] = {}

    def _get(self, scope: str, owner_id: str) -> _Counters:
        key = (scope, owner_id)
        counters = self._counters.get(key)
        if counters is None:
            counters = self._counters[key] = _Counters()
        return counters

    async def admit(self, checks: list[LimitCheck], request_id: str, tokens: int) -> Admitted | Denial:
        now = self.clock()
        window = int(now // WINDOW_SECONDS) * WINDOW_SECONDS
        for check in checks:
            c = self._get(check.scope, check.owner_id)
            while c.admissions and c.admissions[0] <= now - WINDOW_SECONDS:
                c.admissions.popleft()
            for start in [w for w in c.tokens if w < window]:
                del c.tokens[start]
            for rid in [r for r, t in c.in_flight.items() if t <= now - self.slot_ttl_seconds]:
                del c.in_flight[rid]
            if check.rpm is not None and len(c.admissions) + 1 > check.rpm:
                retry = c.admissions[0] + WINDOW_SECONDS - now if c.admissions else WINDOW_SECONDS
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
                admitted.states.append(LimitState("requests", check.rpm, check.rpm - len(c.admissions),
                                                  c.admissions[0] + WINDOW_SECONDS - now))
            if check.tpm is not None:
                used = c.tokens[window] = c.tokens.get(window, 0) + tokens
                admitted.states.append(LimitState("tokens", check.tpm, max(0, check.tpm - used),
                                                  window + WINDOW_SECONDS - now))
            if check.parallel is not None:
                c.in_flight[request_id] = now
                admitted.holds_parallel_slot = True
        admitted.states = tightest(admitted.states)
        return admitted

    async def release(self, scopes: list[tuple[str, str]], request_id: str, tpm_window_start: int,
                      token_delta: int) -> None:
        for scope in scopes:
            c = self._counters.get(scope)
            if c is None:
                continue
            c.in_flight.pop(request_id, None)
            if token_delta and tpm_window_start in c.tokens:
                c.tokens[tpm_window_start] = max(0, c.tokens[tpm_window_start] + token_delta)

    async def close(self) -> None:
        return None
