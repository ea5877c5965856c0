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
    """Sends Release for finished requests in the background; never blocks or fails a request."""

    def __init__(self, stub: auth_pb2_grpc.AuthStub, timeout_seconds: float) -> None:
        self.stub = stub
        self.timeout_seconds = timeout_seconds
        self._tasks: set[asyncio.Task[None]] = set()

    def release(self, authorization: auth_pb2.AuthorizeResponse | None, usage: common_pb2.Usage | None) -> None:
        if authorization is None or not authorization.HasField("admission"):
            return
        admission = authorization.admission
        counts_tokens = any(state.name == "tokens" for state in authorization.rate_limits)
        if not admission.holds_parallel_slot and not counts_tokens:
            return  # RPM only: nothing to give back
        actual = usage.total_tokens if usage is not None else 0
        task = asyncio.get_running_loop().create_task(self._send(admission, actual))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self, admission: auth_pb2.Admission, actual_tokens: int) -> None:
        request = auth_pb2.ReleaseAdmissionRequest(admission=admission, actual_tokens=actual_tokens)
        for attempt in range(3):
            try:
                await self.stub.Release(request, timeout=self.timeout_seconds)
                return
            except grpc.aio.AioRpcError as exc:
                if attempt == 2:
                    # The slot frees itself after parallel_slot_ttl_seconds; the TPM estimate stands.
                    log.warning("rate-limit release failed", extra={"request_id": admission.request_id,
                                                                    "error": exc.code().name})
                    return
                await asyncio.sleep(0.1 * (attempt + 1))

    async def drain(self, timeout: float) -> None:
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=timeout)
