"""Giving admissions back: the x-ratelimit-* headers of an admission, and its release when the request ends.

Auth admits a request against its key's and team's limits (RPM, TPM,
parallel requests) in ``Authorize`` (or the client admits it under a
rate-limit lease, see ``rate_leases``); when the request ends, the client
hands the admission back with the real token count (``ReleaseBatch``), off
the request path: the parallel slot frees and the TPM counter moves from the
estimate to the truth. Retired leases go back the same way.

A correction still waiting here when the next ``Authorize`` of the same key
(or team) goes out travels with it (:meth:`Releaser.take_corrections`), so an
admission always sees every earlier admission's real token count from this
client: TPM is overshot by at most one request per client.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import grpc

from switchboard.v1 import auth_pb2, auth_pb2_grpc, common_pb2
from switchboard_auth.wire import duration_header

log = logging.getLogger(__name__)


def rate_limit_headers(authorization: auth_pb2.AuthorizeResponse | None) -> dict[str, str]:
    """x-ratelimit-{limit,remaining,reset}-{requests,tokens} for each limit that applies to the key."""
    headers: dict[str, str] = {}
    if authorization is None:
        return headers
    for state in authorization.rate_limits[:]:  # a slice: iterating the field itself ends in an IndexError
        add_limit_headers(headers, state.name, state.limit, state.remaining, state.reset_seconds)
    return headers


def add_limit_headers(headers: dict[str, str], name: str, limit: int, remaining: int, reset_seconds: float) -> None:
    """The three x-ratelimit-* headers of one limit ("requests" or "tokens"), added to ``headers``."""
    headers[f"x-ratelimit-limit-{name}"] = str(limit)
    headers[f"x-ratelimit-remaining-{name}"] = str(max(0, remaining))
    headers[f"x-ratelimit-reset-{name}"] = duration_header(reset_seconds)


class Releaser:
    """Sends releases of finished requests, and returns of rate-limit leases, in the background; never blocks or
    fails a request.

    Everything that ends together goes to auth in one ``ReleaseBatch`` call. A parallel slot or a lease return
    frees capacity, so it waits only ``linger_seconds`` for company; a token correction alone (the real count of
    a request without a slot) may wait ``correction_linger_seconds``, and the corrections of one key, team and
    TPM window are summed as they come (:meth:`correct`), so that busy traffic costs auth one call, and one
    counter update per key, per batch, and a request admitted under a lease costs a dictionary update here.
    """

    def __init__(self, stub: auth_pb2_grpc.AuthStub, timeout_seconds: float, linger_seconds: float = 0.002,
                 batch_size: int = 256, correction_linger_seconds: float = 0.1,
                 metadata: tuple[tuple[str, str], ...] = ()) -> None:
        self.stub = stub
        self.metadata = metadata
        self.timeout_seconds = timeout_seconds
        self.linger_seconds = linger_seconds
        self.correction_linger_seconds = correction_linger_seconds
        self.batch_size = batch_size
        #: Releases of parallel slots, one per request, in the order they ended.
        self._slots: list[auth_pb2.ReleaseAdmissionRequest] = []
        #: (key id, team id, TPM window start) -> [tokens counted, real tokens] of the corrections not sent yet.
        self._corrections: dict[tuple[str, str, int], list[int]] = {}
        #: Corrections summed into ``_corrections`` since the last batch.
        self._corrections_waiting = 0
        self._returns: list[auth_pb2.RateLimitLeaseReturn] = []
        #: Set when something that frees capacity (a slot, a lease) is queued.
        self._urgent = asyncio.Event()
        self._sender: asyncio.Task[None] | None = None
        #: The lease returns of the batch being sent, and a future done when it is.
        self._sending: tuple[list[auth_pb2.RateLimitLeaseReturn], asyncio.Future[None]] | None = None

    def release(self, authorization: auth_pb2.AuthorizeResponse | None, usage: common_pb2.Usage | None) -> None:
        """Gives back an admission by auth: its parallel slot, or its token count corrected to ``usage``."""
        if authorization is None or not authorization.HasField("admission"):
            return
        admission = authorization.admission
        actual = usage.total_tokens if usage is not None else 0
        if admission.holds_parallel_slot:
            self._slots.append(auth_pb2.ReleaseAdmissionRequest(admission=admission, actual_tokens=actual))
            self._wake(urgent=True)
        elif any(state.name == "tokens" for state in authorization.rate_limits[:]):
            self.correct(admission.key_id, admission.team_id, admission.tpm_window_start, admission.counted_tokens,
                         actual)
        # RPM only: nothing to give back

    def correct(self, key_id: str, team_id: str, tpm_window_start: int, counted_tokens: int,
                actual_tokens: int) -> None:
        """Queues the correction of a request's TPM count from ``counted_tokens`` (its estimate) to
        ``actual_tokens`` (negative: unknown, the estimate stands), summed with the others of its key, team and
        window."""
        sums = self._corrections.get((key_id, team_id, tpm_window_start))
        actual = actual_tokens if actual_tokens >= 0 else counted_tokens
        if sums is None:
            self._corrections[(key_id, team_id, tpm_window_start)] = [counted_tokens, actual]
        else:
            sums[0] += counted_tokens
            sums[1] += actual
        self._corrections_waiting += 1
        self._wake(urgent=False)

    def take_corrections(self, key_id: str, team_id: str) -> list[auth_pb2.ReleaseAdmissionRequest]:
        """Takes the queued token corrections of ``key_id`` (or of any key of ``team_id``) out of the queue, summed,
        for an Authorize to carry: the admission it asks for then counts them."""
        mine = [k for k in self._corrections if k[0] == key_id or (team_id and k[1] == team_id)]
        return _correction_requests({k: self._corrections.pop(k) for k in mine})

    def return_lease(self, returned: auth_pb2.RateLimitLeaseReturn) -> None:
        """Queues the return of a retired lease's unused requests and tokens."""
        self._returns.append(returned)
        self._wake(urgent=True)

    def _wake(self, urgent: bool) -> None:
        if urgent:
            self._urgent.set()
        if self._sender is None or self._sender.done():
            self._sender = asyncio.get_running_loop().create_task(self._send_all())

    async def _send_all(self) -> None:
        while self._slots or self._corrections or self._returns:
            if (not self._urgent.is_set() and self.correction_linger_seconds > 0
                    and self._corrections_waiting + len(self._slots) < self.batch_size):
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._urgent.wait(), self.correction_linger_seconds)
            if self.linger_seconds > 0 and len(self._slots) < self.batch_size:
                await asyncio.sleep(self.linger_seconds)
            self._urgent.clear()
            slots, self._slots = self._slots[:self.batch_size], self._slots[self.batch_size:]
            corrections, self._corrections, self._corrections_waiting = self._corrections, {}, 0
            returns, self._returns = self._returns, []
            releases = slots + _correction_requests(corrections)
            if not releases and not returns:
                continue  # every estimate was right, or return_now took the returns
            done = asyncio.get_running_loop().create_future()
            self._sending = (returns, done)
            try:
                await self._send(releases, returns)
            finally:
                self._sending = None
                done.set_result(None)

    async def _send(self, batch: list[auth_pb2.ReleaseAdmissionRequest],
                    returns: list[auth_pb2.RateLimitLeaseReturn]) -> None:
        request = auth_pb2.ReleaseBatchRequest(releases=batch, lease_returns=returns)
        for attempt in range(3):
            try:
                await self.stub.ReleaseBatch(request, timeout=self.timeout_seconds, metadata=self.metadata)
                return
            except grpc.aio.AioRpcError as exc:
                if attempt == 2:
                    # The slots free themselves after parallel_slot_ttl_seconds; the TPM estimates stand;
                    # leases expire.
                    log.warning("rate-limit release failed", extra={"requests": len(batch), "leases": len(returns),
                                                                    "error": exc.code().name})
                    return
                await asyncio.sleep(0.1 * (attempt + 1))

    async def return_now(self, which: Callable[[auth_pb2.RateLimitLeaseReturn], bool]) -> bool:
        """Sends the queued lease returns that ``which`` selects at once, waits for auth to take them (and for a
        batch in flight that holds some), and tells whether there were any."""
        now = [r for r in self._returns if which(r)]
        if now:
            self._returns = [r for r in self._returns if not which(r)]
        sending = self._sending if self._sending is not None and any(which(r) for r in self._sending[0]) else None
        if now:
            try:
                await self.stub.ReleaseBatch(auth_pb2.ReleaseBatchRequest(lease_returns=now),
                                             timeout=self.timeout_seconds, metadata=self.metadata)
            except grpc.aio.AioRpcError as exc:
                log.warning("rate-limit lease return failed", extra={"leases": len(now), "error": exc.code().name})
                return False
        if sending is not None:
            await asyncio.wait([sending[1]], timeout=self.timeout_seconds)
        return bool(now) or sending is not None

    async def drain(self, timeout: float) -> None:
        self._urgent.set()
        if self._sender is not None and not self._sender.done():
            await asyncio.wait([self._sender], timeout=timeout)


def _correction_requests(sums: dict[tuple[str, str, int], list[int]]) -> list[auth_pb2.ReleaseAdmissionRequest]:
    """The summed corrections as releases for auth (none where the estimates were right)."""
    return [auth_pb2.ReleaseAdmissionRequest(
        admission=auth_pb2.Admission(key_id=key_id, team_id=team_id, counted_tokens=counted,
                                     tpm_window_start=window), actual_tokens=actual)
        for (key_id, team_id, window), (counted, actual) in sums.items() if counted != actual]
