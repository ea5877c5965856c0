"""Models added at run time, as billing's callers see them: the admin API writes them, routers watch them.

:class:`StoredModelsClient` is the admin API's half (put, delete, list). :class:`ModelWatch` is the
router's: it keeps a ``WatchModels`` stream open to billing, reopening it (with a short backoff) when
billing restarts or moves, and hands every new set of stored deployments to its listener, so that a
model added on any facade is served by every router within a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from switchboard.v1 import billing_pb2, common_pb2
from switchboard_common import audit_origin

log = logging.getLogger(__name__)

AuditActor = common_pb2.AuditActor


class StoredModelsClient:
    def __init__(self, stub: Any, query: Callable[[Any, Any], Awaitable[Any]]) -> None:
        self.stub = stub
        #: Calls one billing RPC with the caller's identity and deadline (BillingClient._query).
        self.query = query

    async def _call(self, method: str, request: Any) -> Any:
        return await self.query(getattr(self.stub, method), request)

    async def put(self, model: billing_pb2.StoredModel, *, actor: str, create_only: bool = False,
                  update_only: bool = False, who: AuditActor | None = None) -> billing_pb2.StoredModel:
        """Stores one deployment; raises ServiceError (invalid settings, id taken or unknown, the file's).
        ``who`` (the caller as auth verified it) and the origin of the admin request running
        (:mod:`switchboard_common.audit_origin`) go into billing's audit log with the change."""
        return await self._call("PutModel", billing_pb2.PutModelRequest(  # type: ignore[no-any-return]  # the stub's answer
            model=model, actor=actor, create_only=create_only, update_only=update_only, audit_actor=who,
            origin=audit_origin.message()))

    async def delete(self, model_id: str, who: AuditActor | None = None) -> billing_pb2.StoredModel:
        return await self._call("DeleteModel", billing_pb2.DeleteModelRequest(  # type: ignore[no-any-return]  # idem
            model_id=model_id, audit_actor=who, origin=audit_origin.message()))

    async def audit(self, query: common_pb2.AuditQuery) -> list[common_pb2.AuditEntry]:
        """Rows of billing's audit log, newest first. Billing checks no credential: ask for admins only."""
        return list((await self._call("ListAudit", query)).entries)

    async def verify_audit(self) -> common_pb2.AuditVerification:
        """Checks billing's audit chain. Billing checks no credential: ask for admins only."""
        return await self._call("VerifyAudit",  # type: ignore[no-any-return]  # idem
                                billing_pb2.VerifyBillingAuditRequest())

    async def list(self) -> billing_pb2.StoredModels:
        return await self._call("ListStoredModels",  # type: ignore[no-any-return]  # idem
                                billing_pb2.ListStoredModelsRequest())


class ModelWatch:
    """Follows billing's stored deployments; ``listener`` gets every set, the first one included."""

    def __init__(self, stub: Any, metadata: tuple[tuple[str, str], ...],
                 listener: Callable[[billing_pb2.StoredModels], Awaitable[None]], retry_seconds: float = 0.5) -> None:
        self.stub = stub
        self.metadata = metadata
        self.listener = listener
        self.retry_seconds = retry_seconds
        #: Set once a first set has been handed to the listener.
        self.received = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self, wait_seconds: float) -> None:
        """Starts following; waits up to ``wait_seconds`` for the first set (billing may be down: the router then
        serves the file alone until it answers)."""
        self._task = asyncio.get_running_loop().create_task(self._follow())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.received.wait(), wait_seconds)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _follow(self) -> None:
        revision = -1
        while True:
            call = self.stub.WatchModels(billing_pb2.WatchModelsRequest(), metadata=self.metadata)
            try:
                async for models in call:
                    if models.revision != revision or not self.received.is_set():
                        revision = models.revision
                        try:
                            await self.listener(models)
                        except Exception:  # a listener's bug must not end the watch
                            log.exception("stored models not applied")
                        self.received.set()
            except grpc.aio.AioRpcError as exc:
                log.debug("stored models watch broke; reopening", extra={"error": exc.code().name})
            finally:
                call.cancel()
            await asyncio.sleep(self.retry_seconds)
