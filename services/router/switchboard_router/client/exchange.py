"""The client side of the router's Exchange RPC: router calls multiplexed on a few long-lived streams.

A unary gRPC call costs an HTTP/2 stream, metadata and trailers per request;
a message on a stream that is already open costs much less, in latency and
CPU. This client keeps a small pool of Exchange streams ("lanes") on the router
channel and spreads calls over them round-robin (with a round_robin channel
over several router replicas, each lane may land on another replica). Each
call gets an id; one reader task per lane hands every reply to its call's
waiter: a future for a whole answer, an unbounded queue for a stream (so that a
slow client never holds back the other calls of its lane).

The contract is the unary RPCs': answers, typed errors (the router sends the
``switchboard.v1.Error`` the unary RPC puts in its trailer), the deadline
(``completion_timeout_seconds``, enforced here: the call is cancelled at the
router and fails as a gRPC DEADLINE_EXCEEDED does), cancellation (a cancelled
caller cancels its call at the router). Unlike a gRPC cancel, an exchange's
cancel says why (the client left, the deadline passed, or this caller is
stopping: :meth:`RouterExchange.caller_stopping`), and the router records the
call's end accordingly. A lane that breaks fails its calls in
flight with the router-unavailable 503 and is replaced on the next call. A
router that drains (shutdown) or a lane older than ``LANE_MAX_AGE_SECONDS``
gets no new calls: the lane is closed once its calls are done, so connections
cycled by the router's max connection age never carry a lane that still has
calls. When no lane can be opened (a router without Exchange, or one
unreachable) :class:`ExchangeUnavailable` tells the caller to use the unary RPC.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from typing import Any

import grpc

from switchboard.v1 import router_pb2, router_pb2_grpc
from switchboard_common.errors import ServiceError, service_unavailable
from switchboard_common.mailbox import Mailbox
from switchboard_router.client import exchange_wire

log = logging.getLogger(__name__)

#: A lane takes new calls for this long, then is closed when its calls are done (well under the router's
#: five-minute max connection age, after which the connection's streams have a limited grace).
LANE_MAX_AGE_SECONDS = 120.0
#: Calls sent on one lane before the next lane's turn. Calls that start close together then share a lane, so that its
#: writer sends them as one message (and the router its answers), while the lanes (over several router replicas, when
#: the channel balances them) still take their turns many times a second under load.
CALLS_PER_TURN = 32
#: After a router answered UNIMPLEMENTED (an older router), the unary RPCs are used for this long.
UNSUPPORTED_BACKOFF_SECONDS = 60.0
_END = object()
_CLOSE_WRITES = object()
#: One open Exchange stream, as the client sees it.
_ExchangeCall = grpc.aio.StreamStreamCall[router_pb2.ExchangeRequest, router_pb2.ExchangeReply]


def _message_size(message: Any) -> int | None:
    """A queued ExchangeRequest's size in a batch; None for the close of writes, which never joins one."""
    return None if message is _CLOSE_WRITES else int(message.ByteSize())


def _consume_failure(task: asyncio.Task[Any]) -> None:
    if not task.cancelled():
        task.exception()


class ExchangeUnavailable(Exception):
    """No Exchange stream could be opened; the call was not sent, the unary RPC should be used."""


class ExchangedStream:
    """A streamed call on a lane: an async iterator of StreamEvent, and the handle that cancels it."""

    __slots__ = ("lane", "call_id", "queue", "timer", "finished")

    def __init__(self, lane: _Lane, call_id: int) -> None:
        self.lane = lane
        self.call_id = call_id
        self.queue: asyncio.Queue[Any] = asyncio.Queue()
        self.timer: asyncio.TimerHandle | None = None
        self.finished = False

    def __aiter__(self) -> ExchangedStream:
        return self

    async def __anext__(self) -> router_pb2.StreamEvent:
        if self.finished:
            raise StopAsyncIteration
        item = await self.queue.get()
        if isinstance(item, router_pb2.StreamEvent):
            return item
        self._finish()
        if item is _END:
            raise StopAsyncIteration
        raise item

    def cancel(self) -> None:
        """Stops the call at the router if it is still running (the client went away); idempotent."""
        if not self.finished:
            self._finish()
            self.lane.cancel(self.call_id, self.lane.owner.cut_reason)

    def _finish(self) -> None:
        self.finished = True
        if self.timer is not None:
            self.timer.cancel()

    # Called by the lane's reader.

    def deliver(self, reply: router_pb2.ExchangeReply, kind: str | None) -> bool:
        """Queues the reply's content; True when it was the call's last."""
        if kind == "event":
            self.queue.put_nowait(reply.event)
            return False
        if kind == "end":
            self.queue.put_nowait(_END)
        elif kind == "error":
            self.queue.put_nowait(ServiceError.from_proto(reply.error))
        else:
            return False
        return True

    def fail(self, error: ServiceError) -> None:
        self.queue.put_nowait(error)


class _Answer:
    """A whole-answer call on a lane: a future the reader resolves."""

    __slots__ = ("future",)

    def __init__(self, future: asyncio.Future[router_pb2.CompleteResponse]) -> None:
        self.future = future

    def deliver(self, reply: router_pb2.ExchangeReply, kind: str | None) -> bool:
        if self.future.done():
            return True
        if kind == "completion":
            self.future.set_result(reply.completion)
        elif kind == "error":
            self.future.set_exception(ServiceError.from_proto(reply.error))
        else:
            return False
        return True

    def fail(self, error: ServiceError) -> None:
        if not self.future.done():
            self.future.set_exception(error)


class _Lane:
    """One open Exchange stream: its calls in flight, a writer task and a reader task."""

    def __init__(self, owner: RouterExchange, call: _ExchangeCall,
                 loop: asyncio.AbstractEventLoop, batches: bool = False) -> None:
        self.owner = owner
        self.call = call
        self.loop = loop
        #: Whether the router reads batches (it said so when the stream opened).
        self.batches = batches
        self.waiters: dict[int, _Answer | ExchangedStream] = {}
        self.ids = itertools.count(1)
        self.opened_at = loop.time()
        self.retired = False
        self.broken = False
        self.writes_closed = False
        #: ExchangeRequest messages to send, in order, or _CLOSE_WRITES.
        self.outgoing: Mailbox[Any] = Mailbox()
        self.writer = loop.create_task(self._write())
        self.reader = loop.create_task(self._read())

    def start(self, kind: str, request: router_pb2.CompleteRequest, waiter: _Answer | ExchangedStream,
              call_id: int) -> None:
        self.waiters[call_id] = waiter
        message = router_pb2.ExchangeRequest(call_id=call_id)
        getattr(message, kind).CopyFrom(request)
        self.outgoing.put(message)

    def cancel(self, call_id: int, reason: router_pb2.CancelReason) -> None:
        """Forgets the call and, if the router may still be running it, cancels it there for ``reason``."""
        if self.waiters.pop(call_id, None) is not None and not self.broken:
            self.outgoing.put(router_pb2.ExchangeRequest(
                call_id=call_id, cancel=router_pb2.ExchangeCancel(reason=reason)))
        self._close_writes_if_idle()

    def expire(self, call_id: int) -> None:
        """The call's deadline passed: fail it as a gRPC DEADLINE_EXCEEDED does, and cancel it at the router."""
        waiter = self.waiters.get(call_id)
        if waiter is not None:
            self.cancel(call_id, router_pb2.CANCEL_REASON_DEADLINE)
            waiter.fail(service_unavailable("router", timed_out=True))

    def retire(self) -> None:
        """No new calls on this lane; it is closed once its calls are done."""
        self.retired = True
        self._close_writes_if_idle()

    def _close_writes_if_idle(self) -> None:
        if self.retired and not self.waiters and not self.writes_closed and not self.broken:
            self.writes_closed = True
            self.outgoing.put(_CLOSE_WRITES)

    async def _write(self) -> None:
        """Sends what is queued: one message, or, to a router that reads them, a batch of all that fits in one."""
        outgoing = self.outgoing
        try:
            while True:
                waiting = await outgoing.wait()
                message = waiting.popleft()
                if message is _CLOSE_WRITES:
                    await self.call.done_writing()
                    return
                if self.batches and waiting:
                    batch = exchange_wire.take_batch(message, waiting, _message_size)
                    if len(batch) > 1:
                        message = router_pb2.ExchangeRequest(batch=batch)
                await self.call.write(message)
        except (grpc.aio.AioRpcError, grpc.aio.UsageError, asyncio.InvalidStateError) as exc:
            log.debug("exchange write failed", extra={"error": repr(exc)})  # the reader reports the break

    async def _read(self) -> None:
        waiters = self.waiters
        try:
            while True:
                message = await self.call.read()
                if not isinstance(message, router_pb2.ExchangeReply):  # grpc.aio.EOF: the stream ended
                    return
                kind = message.WhichOneof("reply")
                if kind is not None:
                    self._deliver(message, kind)
                else:  # a batch, which carries nothing else (sliced: iterating would end in an IndexError)
                    for reply in message.batch[:]:
                        self._deliver(reply, reply.WhichOneof("reply"))
        except grpc.aio.AioRpcError as exc:
            # An idle lane ends quietly when its connection is closed (the router's max connection age).
            (log.warning if waiters else log.debug)(
                "router exchange stream broke",
                extra={"code": exc.code().name, "details": exc.details(), "calls_in_flight": len(waiters)})
        finally:
            self.broken = True
            self.owner.drop(self)
            self.owner.lanes.discard(self)
            self.writer.cancel()
            error = service_unavailable("router")
            for waiter in waiters.values():
                waiter.fail(error)
            waiters.clear()

    def _deliver(self, reply: router_pb2.ExchangeReply, kind: str | None) -> None:
        """Hands one reply to its call's waiter."""
        if kind == "draining":
            self.owner.drop(self)
            return
        waiters = self.waiters
        waiter = waiters.get(reply.call_id)
        if waiter is not None and waiter.deliver(reply, kind):
            del waiters[reply.call_id]
            if self.retired and not waiters:
                self._close_writes_if_idle()

    async def aclose(self) -> None:
        self.broken = True
        self.call.cancel()
        for task in (self.writer, self.reader):
            task.cancel()
        await asyncio.gather(self.writer, self.reader, return_exceptions=True)


class RouterExchange:
    """A pool of ``streams`` Exchange lanes on the router channel (see the module's docstring)."""

    def __init__(self, stub: router_pb2_grpc.RouterStub, streams: int, timeout_seconds: float,
                 open_timeout_seconds: float, metadata: tuple[tuple[str, str], ...] = ()) -> None:
        self.stub = stub
        #: The caller's credentials (a service token, or a virtual key), sent when a lane opens.
        self.metadata = metadata
        self.timeout_seconds = timeout_seconds
        self.open_timeout_seconds = open_timeout_seconds
        self.slots: list[_Lane | None] = [None] * streams
        self.opening: list[asyncio.Task[_Lane] | None] = [None] * streams
        self.lanes: set[_Lane] = set()
        self.turn = 0
        self.calls_this_turn = 0
        self.unsupported_until = 0.0
        #: Why a call this client stops now is stopped (its caller's client left, unless the caller is stopping).
        self.cut_reason: router_pb2.CancelReason = router_pb2.CANCEL_REASON_CLIENT_GONE

    def caller_stopping(self) -> None:
        """The caller is shutting down: the calls it cuts from now on are cut by its shutdown, not by their clients."""
        self.cut_reason = router_pb2.CANCEL_REASON_CALLER_SHUTDOWN

    def usable(self) -> bool:
        return bool(self.slots) and asyncio.get_running_loop().time() >= self.unsupported_until

    async def complete(self, request: router_pb2.CompleteRequest,
                       kind: str = "complete") -> router_pb2.CompleteResponse:
        """Complete (``kind`` "complete") or Embed ("embed") over a lane; raises ServiceError or ExchangeUnavailable."""
        lane = await self._lane()
        loop = lane.loop
        call_id = next(lane.ids)
        future: asyncio.Future[router_pb2.CompleteResponse] = loop.create_future()
        lane.start(kind, request, _Answer(future), call_id)
        timer = loop.call_later(self.timeout_seconds, lane.expire, call_id)
        try:
            return await future
        finally:
            timer.cancel()
            if not future.done() or future.cancelled():
                lane.cancel(call_id, self.cut_reason)  # the caller was cancelled (client gone): stop it at the router

    async def stream(self, request: router_pb2.CompleteRequest) -> tuple[router_pb2.StreamEvent, ExchangedStream]:
        """StreamComplete over a lane: its first event (awaited, so that errors before it are plain errors) and the
        stream of the following ones, which is also the handle that cancels the call."""
        lane = await self._lane()
        call_id = next(lane.ids)
        events = ExchangedStream(lane, call_id)
        lane.start("stream", request, events, call_id)
        events.timer = lane.loop.call_later(self.timeout_seconds, lane.expire, call_id)
        try:
            first = await events.__anext__()
        except BaseException:
            events.cancel()
            raise
        return first, events

    async def _lane(self) -> _Lane:
        """The next lane round-robin, opened (or replaced, when retired or old) as needed."""
        index = self.turn
        self.calls_this_turn += 1
        if self.calls_this_turn >= CALLS_PER_TURN:
            self.calls_this_turn = 0
            self.turn = (index + 1) % len(self.slots)
        lane = self.slots[index]
        if lane is not None:
            if lane.loop.time() - lane.opened_at < LANE_MAX_AGE_SECONDS:
                return lane
            self.drop(lane)
        pending = self.opening[index]
        if pending is None:
            pending = self.opening[index] = asyncio.get_running_loop().create_task(self._open(index))
            pending.add_done_callback(_consume_failure)  # its callers may all have been cancelled meanwhile
        return await asyncio.shield(pending)

    async def _open(self, index: int) -> _Lane:
        loop = asyncio.get_running_loop()
        call = self.stub.Exchange(metadata=(*self.metadata, exchange_wire.BATCHES))
        try:
            async with asyncio.timeout(self.open_timeout_seconds):
                metadata = await call.initial_metadata()
                ready_key, ready_value = exchange_wire.READY
                if (metadata.get(ready_key) if metadata is not None else None) != ready_value:
                    code = await call.code()
                    if code == grpc.StatusCode.UNIMPLEMENTED:
                        log.info("the router has no Exchange RPC; using unary calls")
                        self.unsupported_until = loop.time() + UNSUPPORTED_BACKOFF_SECONDS
                    raise ExchangeUnavailable(code.name)
        except (grpc.aio.AioRpcError, TimeoutError) as exc:
            call.cancel()
            raise ExchangeUnavailable(repr(exc)) from None
        except BaseException:
            call.cancel()
            raise
        finally:
            self.opening[index] = None
        lane = _Lane(self, call, loop, batches=exchange_wire.reads_batches(metadata))
        self.slots[index] = lane
        self.lanes.add(lane)
        return lane

    def drop(self, lane: _Lane) -> None:
        """Takes the lane out of the pool (draining, too old, or broken) and retires it."""
        for index, held in enumerate(self.slots):
            if held is lane:
                self.slots[index] = None
        lane.retire()

    async def close(self) -> None:
        for task in self.opening:
            if task is not None:
                task.cancel()
        lanes = list(self.lanes)
        self.lanes.clear()
        self.slots = [None] * len(self.slots)
        for lane in lanes:
            await lane.aclose()
