"""Budget leases: money a holder spends locally on its requests' holds, with no billing round trip each.

A hold per request costs a billing round trip and a serialized database write
on the request path. Instead, when a holder (the facade, or the router for its
own gRPC callers) has to reserve anyway, its ``Reserve`` also asks for a
*lease* on the request's budgets (the key's and its team's): money billing
holds for this holder by the same atomic check as any hold, so the sum of
every lease and hold never exceeds a budget, across any number of holders and
billing replicas. Later requests of the same key take their worst case from
the lease's balance here (:meth:`BudgetLeases.take`). Each request's usage
event names the lease and the micro-dollars it took; billing frees them from the
lease in the settlement's transaction, whoever settles (the router, usually).

A lease pays only for requests that started inside every budget window its
grant was checked against (``charged_from_ms``/``charged_until_ms`` of the
grant): a request is charged to the windows it started in, so a lease checked
against today's daily cap must not pay for a request that started yesterday
(its money would land on yesterday's cap, unchecked) nor for one that starts
tomorrow. A request outside the span is held by billing; one that started
before it (late, just after a window ended) leaves the lease to the requests
to come.

Leases are invisible to users:

* a request the lease cannot cover goes to billing with the lease's unused
  balance handed back in the same transaction (:meth:`BudgetLeases.handing_back`),
  so the holder's own lease never refuses its own request;
* a lease unused for ``idle_seconds`` is returned (within a second of idling).

A holder that dies frees its leases within seconds: billing keeps a lease whole
only while the holder's heartbeat (:meth:`BudgetLeases.heartbeat`, every
``heartbeat_seconds``) renews it; after that the lease covers only its
*committed* part, which each heartbeat states: the holds of the holder's
requests still in flight plus an *allowance* — what the holder may take before
its next heartbeat. The holder never takes more than that allowance between two
heartbeats (a request that would is held by billing instead), so whatever it
took is still covered if it dies, until those requests settle.

The same heartbeat renews the holds billing reserved for this holder's requests
one by one (a tight budget's, or a lease's first): each is reserved to lapse
with its holder (:meth:`BudgetLeases.holding`) and renewed until billing says it
is settled. A holder that dies after billing held a request but before the
router took the call — so that nobody will ever settle it — frees that hold
within seconds too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import grpc

from switchboard.v1 import billing_pb2

log = logging.getLogger(__name__)

#: A lease is used only while billing keeps it whole for at least this long still.
_RENEW_MARGIN_SECONDS = 1.0
#: An interval shorter than ``1/_MAX_PACE`` of a heartbeat is sized as that long (a burst in its first
#: milliseconds is not a pace).
_MAX_PACE = 8
#: The end of time, for a lease from a billing that does not bound the requests it pays for.
_ALL_TIME_END = 2**62


@dataclass(slots=True)
class Lease:
    lease_id: str
    subject: tuple[Any, ...]
    #: Micro-dollars not taken yet.
    balance: int
    #: What billing keeps whole until (monotonic, measured from before the request that granted or renewed it).
    renewed_until: float
    #: What a request taken from it reports for its budget headers.
    answer: billing_pb2.ReserveResponse
    #: Micro-dollars held by requests taken from it that have not ended.
    in_flight: int = 0
    #: Micro-dollars billing keeps covering if no heartbeat follows (in flight + allowance), as last stated.
    committed: int = 0
    #: Taken since that statement (never above ``committed - in_flight`` at that time).
    taken_since: int = 0
    #: The allowance of the current interval.
    allowance: int = 0
    #: The largest single hold taken from it (sizes the next allowance).
    largest: int = 0
    last_used: float = field(default_factory=time.monotonic)
    #: When the current interval began (the grant, or the last heartbeat's statement): ``taken_since`` over the
    #: time since then is the pace the next allowance is sized by.
    since: float = field(default_factory=time.monotonic)
    #: It pays for requests that started in ``[charged_from_ms, charged_until_ms)`` (Unix ms).
    charged_from_ms: int = 0
    charged_until_ms: int = _ALL_TIME_END

    def pays_for(self, started_at_ms: int) -> bool:
        """Whether a request that started at ``started_at_ms`` is charged to the windows this lease was checked in."""
        return self.charged_from_ms <= started_at_ms < self.charged_until_ms


class BudgetLeases:
    """This holder's leases, one per budget subject (key, team and their limits)."""

    def __init__(self, stub: Any, metadata: tuple[tuple[str, str], ...], timeout_seconds: float,
                 holder: str, max_units: int = 1024, first_units: int = 16, heartbeat_seconds: float = 0.5,
                 renew_seconds: float = 5.0, idle_seconds: float = 1.0) -> None:
        self.stub = stub
        self.metadata = metadata
        self.timeout_seconds = timeout_seconds
        self.holder = holder
        self.max_units = max_units
        self.first_units = first_units
        self.heartbeat_seconds = heartbeat_seconds
        self.renew_seconds = renew_seconds
        self.idle_seconds = idle_seconds
        self._leases: dict[tuple[Any, ...], Lease] = {}
        self._by_id: dict[str, Lease] = {}
        self._next_units: dict[tuple[Any, ...], int] = {}
        #: Per subject, the allowance its lease had at the last heartbeat (a new lease of the subject starts there).
        self._allowances: dict[tuple[Any, ...], int] = {}
        self._beat: asyncio.Task[None] | None = None
        #: The heartbeat being sent now (a request short of allowance waits for it rather than send another).
        self._sending: asyncio.Task[bool] | None = None
        #: What the requests short of allowance want to take together (the next allowance covers all of them).
        self._wanted = 0
        #: Per subject, the Reserve asking its lease now: requests the lease cannot cover yet wait for its answer
        #: rather than each send a Reserve (each would retire the lease the one before was granted).
        self._asking: dict[tuple[Any, ...], asyncio.Future[None]] = {}
        #: Request ids of the holds billing reserved for this holder's requests, renewed until billing reports them
        #: settled (a request's end is not its settlement: its usage may still be on its way to billing), each
        #: with the monotonic time its reservation expires anyway (a billing that never reports it is not waited
        #: for longer).
        self._holds: dict[str, float] = {}

    @property
    def enabled(self) -> bool:
        return self.max_units > 0

    # -- taking --------------------------------------------------------------------------------

    def take(self, subject: tuple[Any, ...], micros: int, started_at_ms: int) -> Lease | None:
        """Takes ``micros`` for one request that started at ``started_at_ms`` from the subject's lease; None when
        it cannot (ask billing)."""
        lease = self._leases.get(subject)
        if lease is None or micros <= 0 or not lease.pays_for(started_at_ms):
            return None
        now = time.monotonic()
        if now >= lease.renewed_until - _RENEW_MARGIN_SECONDS or lease.balance < micros \
                or lease.taken_since + micros > lease.allowance:
            return None
        lease.balance -= micros
        lease.in_flight += micros
        lease.taken_since += micros
        lease.largest = max(lease.largest, micros)
        lease.last_used = now
        return lease

    def short_of_allowance(self, subject: tuple[Any, ...], micros: int, started_at_ms: int) -> bool:
        """Whether the subject's lease could cover ``micros`` for a request that started at ``started_at_ms`` but
        for its allowance (a heartbeat raises it)."""
        lease = self._leases.get(subject)
        return (lease is not None and lease.balance >= micros > 0 and lease.pays_for(started_at_ms)
                and time.monotonic() < lease.renewed_until - _RENEW_MARGIN_SECONDS
                and lease.taken_since + micros > lease.allowance)

    async def raise_allowance(self, micros: int) -> bool:
        """Sends a heartbeat (after the one being sent, if any) whose allowance covers ``micros`` on top of what
        the other requests waiting for it want; False when billing did not answer it (ask billing no more)."""
        if self._sending is not None and not self._sending.done():
            if not await asyncio.shield(self._sending):  # stated before this request wanted anything
                return False
        self._wanted += micros
        if self._sending is None or self._sending.done():
            self._sending = asyncio.get_running_loop().create_task(self._send_heartbeat())
        return await asyncio.shield(self._sending)

    def lease_coming(self, subject: tuple[Any, ...]) -> asyncio.Future[None] | None:
        """The answer to the Reserve asking the subject's lease, while one is in flight."""
        asking = self._asking.get(subject)
        return asking if asking is not None and not asking.done() else None

    def ended(self, lease_id: str, micros: int) -> None:
        """A request taken from the lease ended (its settlement frees its hold at billing)."""
        lease = self._by_id.get(lease_id)
        if lease is not None:
            lease.in_flight = max(0, lease.in_flight - micros)

    def pays_for_later(self, subject: tuple[Any, ...], started_at_ms: int) -> bool:
        """Whether the subject's lease pays only for requests that start after ``started_at_ms``: a request that
        started before its span (late, just after a window ended) is held by billing alone, and the lease is kept
        for the requests to come."""
        lease = self._leases.get(subject)
        return lease is not None and started_at_ms < lease.charged_from_ms

    def handing_back(self, subject: tuple[Any, ...]) -> billing_pb2.LeaseReturn | None:
        """Retires the subject's lease for a Reserve that frees its balance in the same transaction: the return
        to send with it (None when there is nothing to hand back). Its requests in flight stay covered."""
        lease = self._leases.pop(subject, None)
        if lease is None:
            return None
        balance, lease.balance = lease.balance, 0
        self._keep_until_drained(lease)
        return billing_pb2.LeaseReturn(lease_id=lease.lease_id, micros=balance) if balance > 0 else None

    def ask(self, subject: tuple[Any, ...], unit_micros: int) -> billing_pb2.LeaseAsk | None:
        """A lease ask for the subject, sized in requests like the one asking (doubling while they come). Until
        :meth:`answered`, :meth:`lease_coming` tells other requests of the subject to wait for its answer."""
        if not self.enabled or unit_micros <= 0:
            return None
        if self.lease_coming(subject) is None:
            self._asking[subject] = asyncio.get_running_loop().create_future()
        units = self._next_units.get(subject, self.first_units)
        return billing_pb2.LeaseAsk(lease_id="lease_" + secrets.token_hex(12), micros=units * unit_micros,
                                    renew_seconds=self.renew_seconds,
                                    committed_micros=self._first_allowance(subject, unit_micros))

    def answered(self, subject: tuple[Any, ...], unreachable: Exception | None = None) -> None:
        """The Reserve that asked the subject's lease has its answer: its waiters look again, or, when billing
        was out of reach (``unreachable``), fail with that error too."""
        asking = self._asking.pop(subject, None)
        if asking is not None and not asking.done():
            if unreachable is not None:
                asking.set_exception(unreachable)
                asking.exception()  # retrieved here: a future nobody waited for is not reported as unhandled
            else:
                asking.set_result(None)

    def granted(self, subject: tuple[Any, ...], response: billing_pb2.ReserveResponse, asked_at: float,
                unit_micros: int) -> None:
        """Keeps the lease a Reserve granted (``asked_at``: monotonic time the Reserve was sent)."""
        grant = response.lease
        if not grant.lease_id or grant.micros <= 0:
            return
        answer = billing_pb2.ReserveResponse()
        answer.CopyFrom(response)
        answer.ClearField("lease")
        answer.reservation_id = grant.lease_id
        allowance = min(grant.micros, self._first_allowance(subject, unit_micros))
        lease = Lease(grant.lease_id, subject, grant.micros, asked_at + self.renew_seconds, answer,
                      committed=allowance, allowance=allowance, largest=unit_micros,
                      charged_from_ms=grant.charged_from_ms, charged_until_ms=grant.charged_until_ms or _ALL_TIME_END)
        self._leases[subject] = lease
        self._by_id[lease.lease_id] = lease
        units = self._next_units.get(subject, self.first_units)
        self._next_units[subject] = min(self.max_units, units * 2)
        self._start_heartbeat()

    def _first_allowance(self, subject: tuple[Any, ...], unit_micros: int) -> int:
        """A new lease's first allowance: eight requests like the one asking, or the pace the subject's previous
        lease had reached (a busy key's next lease would otherwise need heartbeats sent early to regain it)."""
        return max(8 * unit_micros, self._allowances.get(subject, 0))

    def _keep_until_drained(self, lease: Lease) -> None:
        """A lease no longer taken from stays known until its requests in flight end (their end is noted)."""
        if lease.in_flight <= 0:
            self._by_id.pop(lease.lease_id, None)

    # -- holds reserved one by one -------------------------------------------------------------

    def holding(self, request_id: str, ttl_seconds: float) -> None:
        """Billing reserved a hold for this request, to lapse unless renewed (``renew_seconds`` of its Reserve):
        the heartbeat renews it until billing reports it settled, or its reservation's TTL ends."""
        self._holds[request_id] = time.monotonic() + ttl_seconds
        self._start_heartbeat()

    # -- heartbeats ----------------------------------------------------------------------------

    def _start_heartbeat(self) -> None:
        if self._beat is None or self._beat.done():
            self._beat = asyncio.get_running_loop().create_task(self._heartbeats())

    async def _heartbeats(self) -> None:
        while self._by_id or self._holds:
            await asyncio.sleep(self.heartbeat_seconds)
            await self.heartbeat()

    async def heartbeat(self) -> None:
        """One heartbeat (or the one being sent already)."""
        if self._sending is None or self._sending.done():
            self._sending = asyncio.get_running_loop().create_task(self._send_heartbeat())
        await asyncio.shield(self._sending)

    async def _send_heartbeat(self) -> bool:
        """Renews every live lease, stating what each must keep covering, and every hold not yet settled, and
        returns idle leases; False when billing did not answer."""
        now = time.monotonic()
        renewals: list[billing_pb2.LeaseRenewal] = []
        lease: Lease | None
        for lease in list(self._by_id.values()):
            live = self._leases.get(lease.subject) is lease
            idle = live and now - lease.last_used >= self.idle_seconds
            if idle:
                del self._leases[lease.subject]
                live = False
            returned = 0
            if not live:
                returned, lease.balance = lease.balance, 0
                lease.allowance = 0
            else:
                # The next interval may take twice what this one took at its pace (an interval cut short by a
                # request that wanted more counts at the pace of a whole one, else each early heartbeat would
                # shrink the next allowance and bring the next one sooner), at least four requests like the
                # largest seen and what a waiting request wants; never more than the balance.
                pace = self.heartbeat_seconds / max(now - lease.since, self.heartbeat_seconds / _MAX_PACE)
                paced = max(int(2 * lease.taken_since * max(1.0, pace)), 4 * lease.largest)
                self._allowances[lease.subject] = paced
                lease.allowance = min(lease.balance, max(paced, self._wanted))
            lease.committed = lease.in_flight + lease.allowance
            lease.taken_since = 0
            lease.since = now
            renewals.append(billing_pb2.LeaseRenewal(lease_id=lease.lease_id, committed_micros=lease.committed,
                                                     return_micros=returned))
            if not live:
                self._keep_until_drained(lease)
        self._wanted = 0
        for request_id in [r for r, expires in self._holds.items() if expires <= now]:
            del self._holds[request_id]
        holds = list(self._holds)
        if not renewals and not holds:
            return True
        sent_at = time.monotonic()
        try:
            answer = await self.stub.RenewLeases(
                billing_pb2.RenewLeasesRequest(holder=self.holder, leases=renewals, renew_seconds=self.renew_seconds,
                                               holds=holds),
                timeout=self.timeout_seconds, metadata=self.metadata)
        except grpc.aio.AioRpcError as exc:
            # Not renewed: the leases stop being used when their renewal runs out (they lapse at billing too).
            log.warning("budget lease heartbeat failed", extra={"leases": len(renewals), "holds": len(holds),
                                                                "error": exc.code().name})
            return False
        for request_id in answer.unknown_holds:
            self._holds.pop(request_id, None)
        for state in answer.leases:
            lease = self._by_id.get(state.lease_id)
            if lease is None:
                continue
            if not state.known:
                self._forget(lease)
            elif self._leases.get(lease.subject) is lease:
                lease.renewed_until = sent_at + self.renew_seconds
                lease.balance = min(lease.balance, max(0, state.micros - lease.in_flight))
        return True

    def _forget(self, lease: Lease) -> None:
        if self._leases.get(lease.subject) is lease:
            del self._leases[lease.subject]
        self._by_id.pop(lease.lease_id, None)

    async def return_subject(self, subject: tuple[Any, ...]) -> bool:
        """Returns the subject's lease balance at once and waits for billing; True if there was any."""
        back = self.handing_back(subject)
        if back is None:
            return False
        await self._return(back.lease_id, back.micros)
        return True

    async def _return(self, lease_id: str, micros: int) -> None:
        try:
            await self.stub.ReturnLease(billing_pb2.ReturnLeaseRequest(lease_id=lease_id, micros=micros),
                                        timeout=self.timeout_seconds, metadata=self.metadata)
        except grpc.aio.AioRpcError as exc:
            # Never retried (a return is not idempotent): the money lapses with the lease's renewal.
            log.warning("budget lease return failed", extra={"lease_id": lease_id, "error": exc.code().name})

    async def close(self, timeout: float) -> None:
        """Returns every balance (at shutdown); requests in flight stay covered until they settle."""
        if self._beat is not None:
            self._beat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._beat
        returns = [self.handing_back(subject) for subject in list(self._leases)]
        pending = [self._return(r.lease_id, r.micros) for r in returns if r is not None]
        if pending:
            await asyncio.wait([asyncio.ensure_future(p) for p in pending], timeout=timeout)
