"""Budget leases: hold a request's worst-case cost locally, against a slice billing granted this facade.

A reservation per request costs a billing round trip and a serialized database
write on the request path. Instead, the facade asks billing for a *lease* on a
request shape (key, team, model, output cap, prompt-size bucket): ``n`` units
of that shape's worst-case cost, held as one reservation. Billing grants it by
the same atomic check as a reservation (never more than half of what is free),
so the sum of every facade's leases and every request's holds never exceeds a
budget, across any number of facades and billing replicas.

A request of that shape then takes one unit here, with no round trip. Its usage
event names the lease, and billing frees the unit in the settlement's
transaction (the real cost lands in the ledger at the same moment). Units not
used are returned when the lease is retired: when it runs out, when its use
window ends, when a reservation of the same key was refused (so idle slices
never cause a denial here), and at shutdown. A lease whose return is lost
simply holds its units until billing expires it.

When billing grants nothing (the budget is nearly spent, the model is unpriced
or costs nothing), the caller falls back to a per-request reservation, whose
answer — and denial — is exact.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from dataclasses import dataclass
from typing import Any

import grpc

from switchboard.v1 import billing_pb2

log = logging.getLogger(__name__)

#: Prompt bounds are rounded up to a power of two no smaller than this, so similar requests share a lease.
_MIN_PROMPT_BUCKET = 256
#: How long a shape that billing would not lease goes straight to per-request reservations.
_NO_LEASE_SECONDS = 1.0


def prompt_bucket(prompt_tokens_bound: int) -> int:
    """The shape's prompt bound: the next power of two (a unit of it covers every smaller prompt)."""
    return max(_MIN_PROMPT_BUCKET, 1 << max(0, prompt_tokens_bound - 1).bit_length())


@dataclass(slots=True)
class _Lease:
    lease_id: str
    key_id: str
    units_left: int
    unit_micros: int
    use_until: float
    granted_units: int
    #: What a request admitted under this lease reports (budget headers).
    answer: billing_pb2.ReserveResponse


class BudgetLeases:
    """This facade's budget leases, one live lease per request shape."""

    def __init__(self, stub: Any, timeout_seconds: float, max_units: int = 1024, first_units: int = 16,
                 use_seconds: float = 10.0) -> None:
        self.stub = stub
        self.timeout_seconds = timeout_seconds
        self.max_units = max_units
        self.first_units = first_units
        self.use_seconds = use_seconds
        self._leases: dict[tuple[Any, ...], _Lease] = {}
        self._next_units: dict[tuple[Any, ...], int] = {}
        self._no_lease_until: dict[tuple[Any, ...], float] = {}
        self._locks: dict[tuple[Any, ...], asyncio.Lock] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._sweeper: asyncio.Task[None] | None = None

    @property
    def enabled(self) -> bool:
        return self.max_units > 0

    @staticmethod
    def shape(request: billing_pb2.ReserveRequest) -> tuple[Any, ...]:
        return (request.key_id, request.team_id, request.model, request.max_output_tokens, request.byok,
                prompt_bucket(request.prompt_tokens_bound),
                request.key_limits.SerializeToString(deterministic=True),
                request.team_limits.SerializeToString(deterministic=True))

    async def take(self, request: billing_pb2.ReserveRequest) -> tuple[str, int, billing_pb2.ReserveResponse] | None:
        """(lease id, unit micro-dollars, budget answer) of a unit taken for this request; None: reserve instead."""
        shape = self.shape(request)
        lease = self._leases.get(shape)
        if lease is not None and lease.units_left > 0 and time.monotonic() < lease.use_until:
            lease.units_left -= 1
            return lease.lease_id, lease.unit_micros, lease.answer
        if time.monotonic() < self._no_lease_until.get(shape, 0.0):
            return None
        lock = self._locks.get(shape)
        if lock is None:
            lock = self._locks[shape] = asyncio.Lock()
        async with lock:
            lease = self._leases.get(shape)
            if lease is not None and lease.units_left > 0 and time.monotonic() < lease.use_until:
                lease.units_left -= 1
                return lease.lease_id, lease.unit_micros, lease.answer
            if time.monotonic() < self._no_lease_until.get(shape, 0.0):
                return None
            if lease is not None:
                self._retire(shape)
            lease = await self._grant(shape, request)
            if lease is None:
                self._no_lease_until[shape] = time.monotonic() + _NO_LEASE_SECONDS
                return None
            self._leases[shape] = lease
            lease.units_left -= 1
            return lease.lease_id, lease.unit_micros, lease.answer

    async def _grant(self, shape: tuple[Any, ...], request: billing_pb2.ReserveRequest) -> _Lease | None:
        units = self._next_units.get(shape, self.first_units)
        lease_shape = billing_pb2.ReserveRequest()
        lease_shape.CopyFrom(request)
        lease_shape.request_id = ""
        lease_shape.prompt_tokens_bound = prompt_bucket(request.prompt_tokens_bound)
        # Requests may start until the use window closes; each may then run for the request's own ttl.
        lease_shape.ttl_seconds = request.ttl_seconds + self.use_seconds
        lease_id = "lease_" + secrets.token_hex(12)
        try:
            granted = await self.stub.Lease(billing_pb2.LeaseRequest(shape=lease_shape, lease_id=lease_id,
                                                                     units=units), timeout=self.timeout_seconds)
        except grpc.aio.AioRpcError:
            return None  # the per-request reservation reports billing's state exactly
        if granted.units <= 0:
            return None
        self._next_units[shape] = min(self.max_units, units * 2)
        self._start_sweeper()
        answer = billing_pb2.ReserveResponse(reservation_id=lease_id, held_micros=granted.unit_micros,
                                             budgets=granted.budgets, priced=True,
                                             expires_at_ms=granted.expires_at_ms)
        return _Lease(lease_id, request.key_id, granted.units, granted.unit_micros,
                      time.monotonic() + self.use_seconds, granted.units, answer)

    def _retire(self, shape: tuple[Any, ...]) -> None:
        """Stops using a shape's lease and returns its unused units (in the background, once)."""
        lease = self._leases.pop(shape, None)
        if lease is None or lease.units_left <= 0:
            return
        micros, lease.units_left = lease.units_left * lease.unit_micros, 0
        task = asyncio.get_running_loop().create_task(self._return(lease.lease_id, micros))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _return(self, lease_id: str, micros: int) -> None:
        try:
            await self.stub.ReturnLease(billing_pb2.ReturnLeaseRequest(lease_id=lease_id, micros=micros),
                                        timeout=self.timeout_seconds)
        except grpc.aio.AioRpcError as exc:
            # Never retried (a return is not idempotent): the units stay held until the lease expires.
            log.warning("budget lease return failed", extra={"lease_id": lease_id, "error": exc.code().name})

    async def return_key(self, key_id: str) -> bool:
        """Returns every unused unit this facade holds for ``key_id`` and waits for billing; True if any."""
        shapes = [s for s, lease in self._leases.items() if lease.key_id == key_id and lease.units_left > 0]
        for shape in shapes:
            self._retire(shape)
        await self.drain(self.timeout_seconds)
        return bool(shapes)

    def _start_sweeper(self) -> None:
        if self._sweeper is None or self._sweeper.done():
            self._sweeper = asyncio.get_running_loop().create_task(self._sweep())

    async def _sweep(self) -> None:
        """Retires leases whose use window closed, so idle slices go back to the budget."""
        while self._leases:
            await asyncio.sleep(self.use_seconds / 2)
            now = time.monotonic()
            for shape in [s for s, lease in self._leases.items() if now >= lease.use_until]:
                self._retire(shape)

    async def drain(self, timeout: float) -> None:
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=timeout)

    async def close(self, timeout: float) -> None:
        """Returns every unused unit (at shutdown)."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        for shape in list(self._leases):
            self._retire(shape)
        await self.drain(timeout)
