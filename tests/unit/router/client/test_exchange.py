"""The router Exchange stream end to end on loopback: the router's sessions and the facade's lanes."""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
import orjson
import pytest

from switchboard.v1 import common_pb2, router_pb2, router_pb2_grpc
from switchboard_common.channels import open_channel
from switchboard_common.errors import Kind, ServiceError, abort
from switchboard_router import exchange as exchange_module
from switchboard_router.call_cut import cut_outcome
from switchboard_router.callers import Caller
from switchboard_router.client import RouterClient, exchange_wire
from switchboard_router.client.exchange import CALLS_PER_TURN, ExchangeUnavailable, RouterExchange
from switchboard_router.exchange import ExchangeHub, ExchangeSession
from switchboard_router.operations import Operation
from switchboard_router.served import Answered


class FakeCalls:
    """Stands in for the servicer's answer/events; the body says what to do. Records cancellations."""

    def __init__(self) -> None:
        self.cancelled: list[str] = []
        #: The error code each cancelled call would be recorded with (what the servicer's settlement reads).
        self.cut: dict[str, str] = {}
        self.started: list[str] = []
        #: Request ids of the whole answers ready to go back, and of those settled.
        self.answered_ids: list[str] = []
        self.settled: list[str] = []

    async def answered(self, request: router_pb2.CompleteRequest, operation: Operation, caller: Caller) -> Answered:
        response = await self.answer(request, operation, caller)
        self.answered_ids.append(request.request_id)
        return Answered(response, lambda: self.settled.append(request.request_id))

    async def answer(self, request: router_pb2.CompleteRequest, operation: Operation,
                     caller: Caller) -> router_pb2.CompleteResponse:
        body = orjson.loads(request.body)
        self.started.append(request.request_id)
        try:
            await asyncio.sleep(body.get("sleep", 0))
        except asyncio.CancelledError:
            self.cancelled.append(request.request_id)
            self.cut[request.request_id] = cut_outcome(router_stopping=False).error_code
            raise
        if body.get("fail"):
            raise ServiceError(Kind.ERROR_KIND_RATE_LIMITED, "slow down", code="rpm_limit_exceeded",
                               http_status=429, retry_after_seconds=3)
        return router_pb2.CompleteResponse(body=orjson.dumps({"echo": body["n"], "op": operation.value}),
                                           usage=common_pb2.Usage(total_tokens=body["n"]))

    async def events(self, request: router_pb2.CompleteRequest,
                     caller: Caller) -> AsyncIterator[router_pb2.StreamEvent]:
        body = orjson.loads(request.body)
        if body.get("fail"):
            raise ServiceError(Kind.ERROR_KIND_NO_HEALTHY_DEPLOYMENT, "none healthy", code="no_deployment",
                               http_status=503)
        yield router_pb2.StreamEvent(route=router_pb2.RouteInfo(deployment_id=f"d{body['n']}"))
        try:
            for i in range(body.get("chunks", 3)):
                await asyncio.sleep(body.get("gap", 0.001))
                yield router_pb2.StreamEvent(chunks=router_pb2.ChunkBatch(chunks=[f"{body['n']}:{i}".encode()]))
        except (asyncio.CancelledError, GeneratorExit):
            self.cancelled.append(request.request_id)
            self.cut[request.request_id] = cut_outcome(router_stopping=False).error_code
            raise
        yield router_pb2.StreamEvent(end=router_pb2.StreamEnd(usage=common_pb2.Usage(total_tokens=body["n"])))


class Router(router_pb2_grpc.RouterServicer):
    def __init__(self, calls: FakeCalls, exchange: bool = True) -> None:
        self.calls = calls
        self.hub = ExchangeHub(calls, lambda context: Caller(trusted=True)) if exchange else None

    async def Complete(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            return await self.calls.answer(request, Operation.COMPLETE, Caller(trusted=True))
        except ServiceError as err:
            await abort(context, err)

    async def Exchange(self, requests: Any, context: grpc.aio.ServicerContext) -> None:
        if self.hub is None:
            return await super().Exchange(requests, context)  # UNIMPLEMENTED, as an older router
        await self.hub.serve(requests, context)


class Harness:
    def __init__(self) -> None:
        self.calls = FakeCalls()
        self.servers: list[grpc.aio.Server] = []
        self.port = 0
        self.router: Router | None = None

    async def start(self, exchange: bool = True) -> None:
        self.router = Router(self.calls, exchange)
        server = grpc.aio.server()
        router_pb2_grpc.add_RouterServicer_to_server(self.router, server)
        self.port = server.add_insecure_port(f"127.0.0.1:{self.port}")
        await server.start()
        self.servers.append(server)


@pytest.fixture
async def harness() -> AsyncIterator[tuple[Harness, grpc.aio.Channel]]:
    h = Harness()
    await h.start()
    channel = open_channel(f"127.0.0.1:{h.port}")
    yield h, channel
    await channel.close()
    for server in h.servers:
        await server.stop(0)


async def until(done: Callable[[], bool]) -> None:
    """Waits (up to a second) for what the router does after the caller's side has returned."""
    for _ in range(200):
        if done():
            return
        await asyncio.sleep(0.005)


async def started(h: Harness, request_id: str) -> None:
    for _ in range(400):
        if request_id in h.calls.started:
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"{request_id} never reached the router")


def request(n: int, **extra: Any) -> router_pb2.CompleteRequest:
    return router_pb2.CompleteRequest(request_id=f"r{n}", model="m", body=orjson.dumps({"n": n, **extra}))


async def test_many_concurrent_calls_each_get_their_own_answer(harness: tuple[Harness, grpc.aio.Channel]) -> None:
    h, channel = harness
    exchange = RouterExchange(router_pb2_grpc.RouterStub(channel), 2, timeout_seconds=10, open_timeout_seconds=5)
    try:
        answers = await asyncio.gather(*(exchange.complete(request(n, sleep=(n % 7) / 1000),
                                                           "embed" if n % 3 == 0 else "complete")
                                         for n in range(300)))
        for n, answer in enumerate(answers):
            assert orjson.loads(answer.body) == {"echo": n, "op": "embed" if n % 3 == 0 else "complete"}
            assert answer.usage.total_tokens == n
        assert len(exchange.lanes) == 2  # every call rode one of the two streams
        with pytest.raises(ServiceError) as refused:
            await exchange.complete(request(1, fail=True))
        assert (refused.value.error.code, refused.value.error.http_status, refused.value.error.retry_after_seconds,
                refused.value.kind) == ("rpm_limit_exceeded", 429, 3, Kind.ERROR_KIND_RATE_LIMITED)
    finally:
        await exchange.close()


async def test_a_whole_answer_is_journaled_before_it_goes_out() -> None:
    """A router killed right after writing an answer must not leave the answered call unbilled: each whole
    answer's usage is journaled before its reply is written."""
    calls = FakeCalls()
    settled_at_write: list[tuple[int, bool]] = []
    all_written = asyncio.Event()

    class RecordingContext:
        async def send_initial_metadata(self, metadata: Any) -> None:
            pass

        async def write(self, reply: router_pb2.ExchangeReply) -> None:
            if reply.HasField("completion"):
                settled_at_write.append((reply.call_id, f"r{reply.call_id}" in calls.settled))
                if len(settled_at_write) == 20:
                    all_written.set()

    async def requests() -> AsyncIterator[router_pb2.ExchangeRequest]:
        for n in range(20):
            yield router_pb2.ExchangeRequest(call_id=n, complete=request(n))
        await all_written.wait()

    session = ExchangeSession(calls, RecordingContext(), Caller(trusted=True))  # type: ignore[arg-type]
    await asyncio.wait_for(session.run(requests()), 10)
    assert settled_at_write and all(settled for _, settled in settled_at_write), settled_at_write


async def test_a_whole_answer_is_written_before_its_call_is_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    """The answer does not wait for the router's metrics of its call: they are recorded once it is on its way."""
    calls = FakeCalls()
    order: list[tuple[str, int]] = []
    all_counted = asyncio.Event()

    def counted(request: router_pb2.CompleteRequest, response: router_pb2.CompleteResponse) -> None:
        order.append(("counted", int(request.request_id[1:])))

    def recorded(service: str, method: str, started: float, code: Any, error: Any) -> None:
        order.append(("recorded", 0))
        if sum(1 for what, _ in order if what == "recorded") == 5:
            all_counted.set()

    monkeypatch.setattr(exchange_module.route_metrics, "observe_response", counted)
    monkeypatch.setattr(exchange_module.grpc_metrics, "record_call", recorded)

    class RecordingContext:
        async def send_initial_metadata(self, metadata: Any) -> None:
            pass

        async def write(self, reply: router_pb2.ExchangeReply) -> None:
            order.append(("written", reply.call_id))

    async def requests() -> AsyncIterator[router_pb2.ExchangeRequest]:
        for n in range(5):
            yield router_pb2.ExchangeRequest(call_id=n, complete=request(n))
        await all_counted.wait()

    session = ExchangeSession(calls, RecordingContext(), Caller(trusted=True))  # type: ignore[arg-type]
    await asyncio.wait_for(session.run(requests()), 10)
    for n in range(5):
        assert order.index(("written", n)) < order.index(("counted", n)), order


async def test_every_whole_answer_is_settled_once_whether_or_not_its_stream_survives(
        harness: tuple[Harness, grpc.aio.Channel]) -> None:
    """The router journals a whole answer's usage once it has written the answer, so that the caller does not wait
    for that record; a stream that breaks with answers still on their way settles them all the same."""
    h, channel = harness
    exchange = RouterExchange(router_pb2_grpc.RouterStub(channel), 1, timeout_seconds=10, open_timeout_seconds=5)
    try:
        await asyncio.gather(*(exchange.complete(request(n)) for n in range(50)))
        for _ in range(100):
            if len(h.calls.settled) == 50:
                break
            await asyncio.sleep(0.01)
        assert sorted(h.calls.settled) == sorted(f"r{n}" for n in range(50))
        # Many answers at once, and the stream dies while they are being written.
        pending = [asyncio.ensure_future(exchange.complete(request(n))) for n in range(100, 400)]
        for _ in range(5000):
            if len(h.calls.answered_ids) >= 50 + 50:
                break
            await asyncio.sleep(0.001)
        await exchange.close()
        await asyncio.gather(*pending, return_exceptions=True)
    finally:
        await exchange.close()
    for _ in range(200):
        if sorted(h.calls.settled) == sorted(h.calls.answered_ids):
            break
        await asyncio.sleep(0.01)
    assert sorted(h.calls.settled) == sorted(h.calls.answered_ids), "an answer ready to go back is always settled"
    assert len(set(h.calls.settled)) == len(h.calls.settled), "and settled once"


async def test_cancelled_caller_cancels_the_call_at_the_router(harness: tuple[Harness, grpc.aio.Channel]) -> None:
    h, channel = harness
    exchange = RouterExchange(router_pb2_grpc.RouterStub(channel), 1, timeout_seconds=10, open_timeout_seconds=5)
    try:
        task = asyncio.ensure_future(exchange.complete(request(5, sleep=10)))
        await started(h, "r5")
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await until(lambda: "r5" in h.calls.cancelled)
        assert h.calls.cancelled == ["r5"]
        # The lane is still good for the next call.
        assert orjson.loads((await exchange.complete(request(6))).body)["echo"] == 6
        # A stream's handle cancels it too.
        first, events = await exchange.stream(request(7, chunks=1000, gap=0.01))
        assert first.route.deployment_id == "d7"
        assert (await events.__anext__()).chunks.chunks == [b"7:0"]
        events.cancel()
        await until(lambda: "r7" in h.calls.cancelled)
        assert "r7" in h.calls.cancelled
        # Both are recorded as their clients having left.
        assert h.calls.cut == {"r5": "client_disconnected", "r7": "client_disconnected"}
    finally:
        await exchange.close()


async def test_calls_a_stopping_caller_cuts_are_recorded_as_cut_by_its_shutdown(
        harness: tuple[Harness, grpc.aio.Channel]) -> None:
    h, channel = harness
    exchange = RouterExchange(router_pb2_grpc.RouterStub(channel), 1, timeout_seconds=10, open_timeout_seconds=5)
    try:
        task = asyncio.ensure_future(exchange.complete(request(21, sleep=10)))
        first, events = await exchange.stream(request(22, chunks=1000, gap=0.01))
        await started(h, "r21")
        exchange.caller_stopping()  # its shutdown's grace ran out: it cancels what still runs
        task.cancel()
        events.cancel()
        await until(lambda: {"r21", "r22"} <= set(h.calls.cut))
        assert h.calls.cut == {"r21": "caller_shutdown", "r22": "caller_shutdown"}
    finally:
        await exchange.close()


async def test_deadline_is_enforced_by_the_facade(harness: tuple[Harness, grpc.aio.Channel]) -> None:
    h, channel = harness
    exchange = RouterExchange(router_pb2_grpc.RouterStub(channel), 2, timeout_seconds=0.2, open_timeout_seconds=5)
    try:
        with pytest.raises(ServiceError) as late:
            await exchange.complete(request(8, sleep=10))
        assert late.value.error.code == "router_unavailable"
        assert late.value.error.http_status == 503
        assert "did not answer in time" in late.value.message
        first, events = await exchange.stream(request(9, chunks=1000, gap=0.01))
        with pytest.raises(ServiceError) as late_stream:
            async for _ in events:
                pass
        assert "did not answer in time" in late_stream.value.message
        await until(lambda: {"r8", "r9"} <= set(h.calls.cancelled))
        assert {"r8", "r9"} <= set(h.calls.cancelled)
        # Recorded as the deadline's doing (the client was answered with the timeout), not as clients that left.
        assert h.calls.cut == {"r8": "deadline_exceeded", "r9": "deadline_exceeded"}
    finally:
        await exchange.close()


async def test_broken_stream_fails_its_calls_and_the_next_call_opens_a_new_one(
        harness: tuple[Harness, grpc.aio.Channel]) -> None:
    h, channel = harness
    exchange = RouterExchange(router_pb2_grpc.RouterStub(channel), 1, timeout_seconds=10, open_timeout_seconds=5)
    try:
        await exchange.complete(request(1))
        (old_lane,) = exchange.lanes
        task = asyncio.ensure_future(exchange.complete(request(2, sleep=10)))
        await started(h, "r2")
        await h.servers[-1].stop(0)  # the router dies with the call in flight
        with pytest.raises(ServiceError) as lost:
            await task
        assert (lost.value.error.code, lost.value.error.http_status) == ("router_unavailable", 503)
        assert "is unavailable" in lost.value.message
        await h.start()  # back on the same port
        for _ in range(100):
            try:
                answer = await exchange.complete(request(3))
                break
            except (ExchangeUnavailable, ServiceError):
                await asyncio.sleep(0.05)
        assert orjson.loads(answer.body)["echo"] == 3
        assert old_lane not in exchange.lanes and len(exchange.lanes) == 1
    finally:
        await exchange.close()


async def test_draining_router_finishes_calls_in_flight_and_gets_no_new_ones(
        harness: tuple[Harness, grpc.aio.Channel]) -> None:
    h, channel = harness
    exchange = RouterExchange(router_pb2_grpc.RouterStub(channel), 1, timeout_seconds=10, open_timeout_seconds=5)
    try:
        await exchange.complete(request(1))
        (old_lane,) = exchange.lanes
        in_flight = asyncio.ensure_future(exchange.complete(request(2, sleep=0.3)))
        await started(h, "r2")
        assert h.router is not None and h.router.hub is not None
        h.router.hub.drain()
        for _ in range(400):
            if exchange.slots[0] is not old_lane:
                break
            await asyncio.sleep(0.005)
        assert exchange.slots[0] is not old_lane  # the draining stream takes no new calls
        assert orjson.loads((await exchange.complete(request(3))).body)["echo"] == 3
        assert exchange.slots[0] is not old_lane
        assert orjson.loads((await in_flight).body)["echo"] == 2  # finished on the draining stream
        await asyncio.wait_for(old_lane.reader, 2)  # which then ended
        assert "r2" not in h.calls.cancelled
    finally:
        await exchange.close()


async def test_interleaved_streams_keep_their_order(harness: tuple[Harness, grpc.aio.Channel]) -> None:
    h, channel = harness
    exchange = RouterExchange(router_pb2_grpc.RouterStub(channel), 1, timeout_seconds=10, open_timeout_seconds=5)

    async def collect(n: int) -> list[bytes]:
        first, events = await exchange.stream(request(n, chunks=40, gap=0.0005 * (n % 3)))
        assert first.route.deployment_id == f"d{n}"
        got: list[bytes] = []
        async for event in events:
            if event.WhichOneof("event") == "chunks":
                got.extend(event.chunks.chunks)
            else:
                assert event.end.usage.total_tokens == n
        return got

    try:
        results = await asyncio.gather(*(collect(n) for n in range(1, 9)))
        for n, got in enumerate(results, start=1):
            assert got == [f"{n}:{i}".encode() for i in range(40)]
        with pytest.raises(ServiceError) as refused:
            await exchange.stream(request(1, fail=True))
        assert refused.value.error.code == "no_deployment"
    finally:
        await exchange.close()


async def test_router_without_exchange_falls_back_to_unary() -> None:
    h = Harness()
    await h.start(exchange=False)
    client = RouterClient(open_channel(f"127.0.0.1:{h.port}"), exchange_streams=1, timeout_seconds=10)
    try:
        first = request(4)
        assert orjson.loads((await client.answer(first)).body)["echo"] == 4
        assert client.exchange is not None and not client.exchange.usable()  # UNIMPLEMENTED: unary for a while
        assert orjson.loads((await client.answer(first)).body)["echo"] == 4
        with pytest.raises(ServiceError) as refused:
            await client.answer(request(2, fail=True))
        assert refused.value.error.code == "rpm_limit_exceeded"
    finally:
        await client.close()
        await h.servers[0].stop(0)


class CountingContext:
    """The servicer context of an Exchange stream, counting the messages the router writes on it."""

    def __init__(self, context: grpc.aio.ServicerContext) -> None:
        self.context = context
        self.messages: list[router_pb2.ExchangeReply] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.context, name)

    async def write(self, reply: router_pb2.ExchangeReply) -> None:
        self.messages.append(reply)
        await self.context.write(reply)


class CountingRouter(Router):
    """A router that records every message of its exchanges as it came, both ways."""

    def __init__(self, calls: FakeCalls) -> None:
        super().__init__(calls)
        self.received: list[router_pb2.ExchangeRequest] = []
        self.contexts: list[CountingContext] = []

    async def Exchange(self, requests: Any, context: grpc.aio.ServicerContext) -> None:
        async def recorded() -> AsyncIterator[router_pb2.ExchangeRequest]:
            async for message in requests:
                self.received.append(message)
                yield message

        counting = CountingContext(context)
        self.contexts.append(counting)
        assert self.hub is not None
        await self.hub.serve(recorded(), counting)  # type: ignore[arg-type]


@contextlib.asynccontextmanager
async def serving(router: router_pb2_grpc.RouterServicer) -> AsyncIterator[grpc.aio.Channel]:
    """A channel to ``router`` served on loopback; both are closed at the end."""
    server = grpc.aio.server()
    router_pb2_grpc.add_RouterServicer_to_server(router, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = open_channel(f"127.0.0.1:{port}")
    try:
        yield channel
    finally:
        await channel.close()
        await server.stop(0)


@contextlib.asynccontextmanager
async def exchange_with(router: router_pb2_grpc.RouterServicer, lanes: int = 1) -> AsyncIterator[RouterExchange]:
    """An exchange of ``lanes`` lanes to ``router`` served on loopback; all closed at the end."""
    async with serving(router) as channel:
        exchange = RouterExchange(router_pb2_grpc.RouterStub(channel), lanes, timeout_seconds=10,
                                  open_timeout_seconds=5)
        try:
            yield exchange
        finally:
            await exchange.close()


def items_of(messages: list[Any]) -> list[Any]:
    """The messages as the receiver handles them: a batch's items in its place."""
    return [item for message in messages for item in (message.batch[:] if len(message.batch) else [message])]


async def test_calls_that_wait_together_go_out_as_one_message_each_way() -> None:
    """Calls queued behind a write in flight are sent as one batch, and answers that are ready together come back
    as one: fewer gRPC messages than calls, each call still answered with its own answer, in order."""
    router = CountingRouter(FakeCalls())
    calls = CALLS_PER_TURN + 8
    async with exchange_with(router, 4) as exchange:
        answers = await asyncio.gather(*(exchange.complete(request(n)) for n in range(calls)))
        assert [orjson.loads(answer.body)["echo"] for answer in answers] == list(range(calls))
        # The first CALLS_PER_TURN calls took one lane, the rest the next one.
        assert len(router.contexts) == len(exchange.lanes) == 2
        sent = items_of(router.received)
        assert sorted(m.complete.request_id for m in sent) == sorted(f"r{n}" for n in range(calls))
        assert len(router.received) < calls and any(len(message.batch) > 1 for message in router.received)
        assert not any(len(item.batch) for item in sent)  # an item carries no batch of its own
        for context in router.contexts:  # one reply per call of the lane (call ids are the lane's own)
            ids = [reply.call_id for reply in items_of(context.messages)]
            assert len(ids) == len(set(ids))
        assert sum(len(items_of(context.messages)) for context in router.contexts) == calls
        assert sum(len(context.messages) for context in router.contexts) < calls


async def test_a_streams_events_keep_their_order_through_batches() -> None:
    router = CountingRouter(FakeCalls())

    async def collect(n: int) -> list[bytes]:
        first, events = await exchange.stream(request(n, chunks=20, gap=0))
        assert first.route.deployment_id == f"d{n}"
        return [chunk for event in [e async for e in events] for chunk in event.chunks.chunks[:]]

    async with exchange_with(router) as exchange:
        streams = await asyncio.gather(*(collect(n) for n in range(12)))
        for n, chunks in enumerate(streams):
            assert b"".join(chunks) == b"".join(f"{n}:{i}".encode() for i in range(20))
        (context,) = router.contexts
        assert any(len(message.batch) > 1 for message in context.messages)


class OlderRouter(router_pb2_grpc.RouterServicer):
    """A router from before batches: it answers each call of its exchange alone and reads no batch."""

    def __init__(self) -> None:
        self.received: list[router_pb2.ExchangeRequest] = []

    async def Exchange(self, requests: Any, context: grpc.aio.ServicerContext) -> None:
        await context.send_initial_metadata((("switchboard-exchange", "1"),))
        async for message in requests:
            self.received.append(message)
            if message.WhichOneof("call") == "complete":
                body = orjson.loads(message.complete.body)
                answer = router_pb2.CompleteResponse(body=orjson.dumps({"echo": body["n"], "op": "complete"}))
                await context.write(router_pb2.ExchangeReply(call_id=message.call_id, completion=answer))


async def test_a_router_from_before_batches_gets_every_call_alone() -> None:
    router = OlderRouter()
    async with exchange_with(router) as exchange:
        answers = await asyncio.gather(*(exchange.complete(request(n)) for n in range(40)))
        assert [orjson.loads(answer.body)["echo"] for answer in answers] == list(range(40))
        assert len(router.received) == 40 and not any(len(message.batch) for message in router.received)


async def test_a_caller_from_before_batches_gets_every_reply_alone() -> None:
    """A caller that did not say it reads batches (an older facade) gets one reply per message, even for answers
    ready together."""
    router = CountingRouter(FakeCalls())
    async with serving(router) as channel:
        call = router_pb2_grpc.RouterStub(channel).Exchange()
        try:
            metadata = await call.initial_metadata()
            assert metadata.get("switchboard-exchange") == "1"
            for n in range(1, 41):
                await call.write(router_pb2.ExchangeRequest(call_id=n, complete=request(n)))
            replies = [await call.read() for _ in range(40)]
            assert sorted(reply.call_id for reply in replies) == list(range(1, 41))
            assert not any(len(reply.batch) for reply in replies)
            await call.done_writing()
        finally:
            call.cancel()


async def test_a_batch_past_its_byte_limit_goes_out_in_several_messages() -> None:
    """Large prompts queued together are split so that no message nears the channel's size limit."""
    router = CountingRouter(FakeCalls())
    async with exchange_with(router) as exchange:
        padding = "x" * 300_000
        answers = await asyncio.gather(*(exchange.complete(request(n, pad=padding)) for n in range(12)))
        assert [orjson.loads(answer.body)["echo"] for answer in answers] == list(range(12))
        assert len(items_of(router.received)) == 12
        assert all(message.ByteSize() < 2 * exchange_wire.BATCH_MAX_BYTES for message in router.received)
        assert len(router.received) >= 12 * 300_000 // (2 * exchange_wire.BATCH_MAX_BYTES)


def test_a_batch_takes_what_fits_and_leaves_the_rest_waiting() -> None:
    close = object()
    sizes: dict[object, int | None] = {"a": 10, "b": exchange_wire.BATCH_MAX_BYTES - 1, "c": 2, close: None}
    waiting = deque(["b", "c"])
    assert exchange_wire.take_batch("a", waiting, sizes.get) == ["a", "b"]
    assert list(waiting) == ["c"]  # it would not fit
    waiting = deque(["a", close, "c"])
    assert exchange_wire.take_batch("c", waiting, sizes.get) == ["c", "a"]
    assert list(waiting) == [close, "c"]  # the close is never batched, nor what follows it
    waiting = deque(["c"] * 200)
    assert len(exchange_wire.take_batch("c", waiting, sizes.get)) == exchange_wire.BATCH_MAX_ITEMS
