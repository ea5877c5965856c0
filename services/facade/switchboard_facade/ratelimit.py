"""Rate limits at the HTTP edge: the x-ratelimit-* headers of every answer, and the release of an admission.

Auth admits a request against its key's and team's limits (RPM, TPM,
parallel requests) in ``Authorize``; when the request ends, the facade hands
the admission back with the real token count (``Release``), off the request
path: the parallel slot frees and the TPM counter moves from the estimate to
the truth.
"""

from __future__ import annotations

import asyncio
import logging

import grpc

from switchboard.v1 import auth_pb2, auth_pb2_grpc, common_pb2

log = logging.getLogger(__name__)


def duration_header(seconds: float) -> str:
    """OpenAI's x-ratelimit-reset-* format: ``250ms``, ``12s``, ``1m30s``."""
    if seconds < 1:
        return f"{max(0, int(seconds * 1000))}ms"
    whole = int(seconds + 0.999)
    minutes, rest = divmod(whole, 60)
    return f"{minutes}m{rest}s" if minutes else f"{rest}s"


def rate_limit_headers(authorization: auth_pb2.AuthorizeResponse | None) -> dict[str, str]:
    """x-ratelimit-{limit,remaining,reset}-{requests,tokens} for each limit that applies to the key."""
    headers: dict[str, str] = {}
    if authorization is None:
        return headers
    for state in authorization.rate_limits:
        headers[f"x-ratelimit-limit-{state.name}"] = str(state.limit)
        headers[f"x-ratelimit-remaining-{state.name}"] = str(max(0, state.remaining))
        headers[f"x-ratelimit-reset-{state.name}"] = duration_header(state.reset_seconds)
    return headers


class Releaser:
    """Sends releases of finished requests in the background; never blocks or fails a request.

    Requests that end together are released in one ``ReleaseBatch`` call: the first waits
    ``linger_seconds`` for company, so that busy traffic costs auth one call per batch.
    """

    def __init__(self, stub: auth_pb2_grpc.AuthStub, timeout_seconds: float, linger_seconds: float = 0.002,
                 batch_size: int = 256) -> None:
        self.stub = stub
        self.timeout_seconds = timeout_seconds
        self.linger_seconds = linger_seconds
        self.batch_size = batch_size
        self._queue: list[auth_pb2.ReleaseAdmissionRequest] = []
        self._sender: asyncio.Task[None] | None = None

    def release(self, authorization: auth_pb2.AuthorizeResponse | None, usage: common_pb2.Usage | None) -> None:
        if authorization is None or not authorization.HasField("admission"):
            return
        admission = authorization.admission
        counts_tokens = any(state.name == "tokens" for state in authorization.rate_limits)
        if not admission.holds_parallel_slot and not counts_tokens:
            return  # RPM only: nothing to give back
        actual = usage.total_tokens if usage is not None else 0
        self._queue.append(auth_pb2.ReleaseAdmissionRequest(admission=admission, actual_tokens=actual))
        if self._sender is None or self._sender.done():
            self._sender = asyncio.get_running_loop().create_task(self._send_all())

    async def _send_all(self) -> None:
        while self._queue:
            if self.linger_seconds > 0 and len(self._queue) < self.batch_size:
                await asyncio.sleep(self.linger_seconds)
            batch, self._queue = self._queue[:self.batch_size], self._queue[self.batch_size:]
            await self._send(batch)

    async def _send(self, batch: list[auth_pb2.ReleaseAdmissionRequest]) -> None:
        request = auth_pb2.ReleaseBatchRequest(releases=batch)
        for attempt in range(3):
            try:
                await self.stub.ReleaseBatch(request, timeout=self.timeout_seconds)
                return
            except grpc.aio.AioRpcError as exc:
                if attempt == 2:
                    # The slots free themselves after parallel_slot_ttl_seconds; the TPM estimates stand.
                    log.warning("rate-limit release failed", extra={"requests": len(batch),
                                                                    "error": exc.code().name})
                    return
                await asyncio.sleep(0.1 * (attempt + 1))

    async def drain(self, timeout: float) -> None:
        if self._sender is not None and not self._sender.done():
            await asyncio.wait([self._sender], timeout=timeout)
