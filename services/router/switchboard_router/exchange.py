"""The Exchange RPC: many router calls multiplexed on one long-lived stream.

The facade sends each Complete, StreamComplete or Embed call as an
``ExchangeRequest`` on a stream it keeps open, which saves the setup of a gRPC
call (HTTP/2 stream, metadata, trailers) per request. Every call runs as its own
task through the servicer's ``answered``/``events`` (the very code the unary RPCs
run), and its replies go out through the session's single writer; a whole
answer's usage is journaled before the answer goes out. A ``cancel``
cancels the call's task, which closes its provider connection as a gRPC cancel
does, and the reason it gives is how the call's end is recorded
(:mod:`switchboard_router.call_cut`); when the stream ends or breaks, every call
still running on it is cancelled. On shutdown the hub sends ``draining`` on every stream: the facade
sends no new calls there, the calls in flight finish, and the stream ends once
the facade has closed its side and the last call is done.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import Any, Protocol

import grpc

from switchboard.v1 import common_pb2, router_pb2
from switchboard_common import grpc_metrics
from switchboard_common.errors import ServiceError, abort, grpc_code_for, service_failed
from switchboard_common.mailbox import Mailbox
from switchboard_router import call_cut, route_metrics
from switchboard_router.callers import Caller
from switchboard_router.client import exchange_wire
from switchboard_router.operations import Operation

log = logging.getLogger(__name__)

#: ExchangeRequest's call kind -> the unary RPC it stands for (metrics label it so).
_METHODS = {**{operation.value: operation.rpc for operation in Operation}, "stream": "StreamComplete"}
_CLOSE = object()
_END = router_pb2.ExchangeEnd()
#: The servicer context of an Exchange stream.
ExchangeContext = grpc.aio.ServicerContext[router_pb2.ExchangeRequest, router_pb2.ExchangeReply]
_DRAINING = router_pb2.ExchangeReply(draining=router_pb2.ExchangeDraining())


def _reply_size(item: Any) -> int | None:
    """A queued reply's size in a batch; None for the stream's close, which never joins one."""
    return None if item is _CLOSE else int(item[0].ByteSize())


class Calls(Protocol):
    """What a session needs of the servicer: the calls, raising ServiceError."""

    def answered(self, request: router_pb2.CompleteRequest, operation: Operation, caller: Caller) -> Any: ...

    def events(self, request: router_pb2.CompleteRequest,
               caller: Caller) -> AsyncGenerator[router_pb2.StreamEvent, None]: ...


class ExchangeHub:
    """The open Exchange streams of this router, so that a shutdown can drain them all."""

    def __init__(self, calls: Calls, caller_of: Callable[[ExchangeContext], Caller]) -> None:
        self.calls = calls
        #: Names the caller of a stream from its metadata (every call on it is that caller's).
        self.caller_of = caller_of
        self.sessions: set[ExchangeSession] = set()
        self.draining = False

    async def serve(self, requests: AsyncIterator[router_pb2.ExchangeRequest],
                    context: ExchangeContext) -> None:
        try:
            caller = self.caller_of(context)
        except ServiceError as err:
            await abort(context, err)
            return
        session = ExchangeSession(self.calls, context, caller,
                                  batches=exchange_wire.reads_batches(context.invocation_metadata()))
        self.sessions.add(session)
        if self.draining:
            session.drain()
        try:
            await session.run(requests)
        finally:
            self.sessions.discard(session)

    def drain(self) -> None:
        """Tells every open stream (and those opened from now on) that this router is shutting down."""
        self.draining = True
        for session in list(self.sessions):
            session.drain()


class ExchangeSession:
    """One Exchange stream: a reader that starts and cancels calls, and the one writer of their replies."""

    def __init__(self, calls: Calls, context: ExchangeContext, caller: Caller, batches: bool = False) -> None:
        self.calls = calls
        self.context = context
        self.caller = caller
        #: Whether the caller reads batches (it said so when it opened the stream).
        self.batches = batches
        self.running: dict[int, asyncio.Task[None]] = {}
        #: The reason each running call would be cut for, set by its caller's cancel before its task is cancelled.
        self.cuts: dict[int, call_cut.CallCut] = {}
        #: (reply, future set once written or None) in order, or _CLOSE.
        self.outgoing: Mailbox[Any] = Mailbox()
        self.reading_done = False
        self.draining = False

    async def run(self, requests: AsyncIterator[router_pb2.ExchangeRequest]) -> None:
        await self.context.send_initial_metadata((exchange_wire.READY, exchange_wire.BATCHES))
        loop = asyncio.get_running_loop()
        reader = loop.create_task(self._read(requests, loop))
        outgoing = self.outgoing
        try:
            while True:
                waiting = await outgoing.wait()
                item = waiting.popleft()
                if item is _CLOSE:
                    return
                if self.batches and waiting:
                    items = exchange_wire.take_batch(item, waiting, _reply_size)
                    if len(items) > 1:
                        await self.context.write(router_pb2.ExchangeReply(batch=[reply for reply, _ in items]))
                        for _, written in items:
                            if written is not None and not written.done():
                                written.set_result(None)
                        continue
                reply, written = item
                await self.context.write(reply)
                if written is not None and not written.done():
                    written.set_result(None)
        finally:
            reader.cancel()
            tasks = [reader, *self.running.values()]
            for task in tasks:
                task.cancel()
            # Let the calls close their provider connections before the stream's end is reported.
            await asyncio.gather(*tasks, return_exceptions=True)

    def drain(self) -> None:
        if not self.draining:
            self.draining = True
            self.outgoing.put((_DRAINING, None))

    async def _read(self, requests: AsyncIterator[router_pb2.ExchangeRequest],
                    loop: asyncio.AbstractEventLoop) -> None:
        try:
            async for message in requests:
                kind = message.WhichOneof("call")
                if kind is not None:
                    self._take(message, kind, loop)
                else:  # a batch, which carries nothing else (sliced: iterating would end in an IndexError)
                    for request in message.batch[:]:
                        self._take(request, request.WhichOneof("call"), loop)
        finally:
            # The facade closed its side: no new calls; the stream ends when the running ones are done.
            self.reading_done = True
            self._close_if_idle()

    def _take(self, request: router_pb2.ExchangeRequest, kind: str | None, loop: asyncio.AbstractEventLoop) -> None:
        """Starts or cancels the call one request names (a kind this router does not know is ignored)."""
        call_id = request.call_id
        if kind == "cancel":
            task = self.running.pop(call_id, None)
            if task is not None:
                cut = self.cuts.pop(call_id, None)  # the task holds it: no entry is left if it never ran
                if cut is not None:
                    cut.reason = request.cancel.reason
                task.cancel()
        elif kind is not None:
            cut = self.cuts[call_id] = call_cut.CallCut()
            self.running[call_id] = loop.create_task(self._call(call_id, kind, getattr(request, kind), cut))

    def _close_if_idle(self) -> None:
        if self.reading_done and not self.running:
            self.outgoing.put(_CLOSE)

    async def _call(self, call_id: int, kind: str, request: router_pb2.CompleteRequest,
                    cut: call_cut.CallCut) -> None:
        call_cut.CURRENT.set(cut)  # this task's own context: where the call's settlement reads why it was cut
        method = _METHODS[kind]
        grpc_metrics.call_started("router", method)
        started = time.perf_counter()
        code = grpc.StatusCode.UNKNOWN
        error: common_pb2.Error | None = None
        put = self.outgoing.put
        loop = asyncio.get_running_loop()
        try:
            if kind == "stream":
                events = self.calls.events(request, self.caller)
                try:
                    async for event in events:
                        # Wait until the event is written: chunks arriving meanwhile are coalesced into the next
                        # one, and a slow link holds the provider back, as on StreamComplete.
                        written = loop.create_future()
                        put((router_pb2.ExchangeReply(call_id=call_id, event=event), written))
                        await written
                        route_metrics.observe_response(request, event)
                finally:
                    await events.aclose()  # a cancelled call stops its provider call now, not when collected
                put((router_pb2.ExchangeReply(call_id=call_id, end=_END), None))
            else:
                answered = await self.calls.answered(request, Operation(kind), self.caller)
                # Its usage is journaled before the answer goes out: a router killed once the answer is written
                # must not leave a call the caller was answered for unbilled.
                answered.settle()
                put((router_pb2.ExchangeReply(call_id=call_id, completion=answered.response), None))
                # The metrics wait for the writer, woken by ``put``, to send the answer first.
                loop.call_soon(route_metrics.observe_response, request, answered.response)
            code = grpc.StatusCode.OK
        except ServiceError as err:
            code, error = grpc_code_for(err.kind), err.error
            put((router_pb2.ExchangeReply(call_id=call_id, error=err.error), None))
        except asyncio.CancelledError:
            code = grpc.StatusCode.CANCELLED
            raise
        except Exception as exc:  # a bug: answered as the unary RPC's unexpected failure would be
            log.exception("exchange call failed", extra={"request_id": request.request_id})
            failure = service_failed("router", f"UNKNOWN: Unexpected {type(exc)}: {exc}")
            put((router_pb2.ExchangeReply(call_id=call_id, error=failure.error), None))
        finally:
            if self.running.get(call_id) is asyncio.current_task():
                del self.running[call_id]
            if self.cuts.get(call_id) is cut:
                del self.cuts[call_id]
            loop.call_soon(grpc_metrics.record_call, "router", method, started, code, error)
            self._close_if_idle()


__all__ = ["ExchangeHub", "ExchangeSession"]
