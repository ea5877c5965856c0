"""The facade's HTTP server offers each request its connection (``switchboard_facade.replies.ClientConnection``).

A real uvicorn server with the facade's protocol (``http_edge.protocol_class``) on loopback, an ASGI app that uses
the connection as the fast lane does, and a raw socket as the client: a lost connection calls back the request's
work without any task reading ``receive``, a forgotten callback is not called, and a whole answer written at once
goes out in one write of the transport, with the very bytes uvicorn writes for the same answer sent through ASGI.
"""

from __future__ import annotations

import asyncio
import gc
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn
from uvicorn.protocols.http.httptools_impl import HEADER_RE, HEADER_VALUE_RE

from switchboard_facade.http_edge import EdgeLimits, protocol_class
from switchboard_facade.replies import Reply, StreamReply, client_connection, unless_client_leaves
from tests.e2e.test_edge_limits import read_answer

REQUEST = (b"POST /work HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\n"
           b"content-length: 2\r\n\r\n{}")


#: An answer as the fast lane makes them: the route's headers, and the lane's own pairs added to them.
ROUTE_HEADERS = {"x-request-id": "req-1", "x-switchboard-model": "gpt-4o", "x-litellm-key-spend": "0.000123",
                 "x-ratelimit-remaining-requests": "99", "x-spaced": "a value\twith a tab"}
LANE_PAIRS = ((b"access-control-expose-headers", b"x-request-id"), (b"vary", b"origin"))


class Recorder:
    """What the app saw and what the server wrote, across the server's thread and the test's."""

    def __init__(self) -> None:
        self.lost = threading.Event()
        self.forgotten_called = threading.Event()
        self.registered = threading.Event()
        self.writes: list[str] = []
        self.at_once: list[bool] = []
        self.wire = b""
        #: Timers the connections asked their loop for.
        self.timers = 0


class CountingLoop:
    """The server's loop, as a connection sees it: every timer it asks for is counted."""

    def __init__(self, loop: asyncio.AbstractEventLoop, recorder: Recorder) -> None:
        self._loop = loop
        self._recorder = recorder

    def call_later(self, delay: float, callback: Any, *args: Any) -> asyncio.TimerHandle:
        self._recorder.timers += 1
        return self._loop.call_later(delay, callback, *args)

    def call_at(self, when: float, callback: Any, *args: Any) -> asyncio.TimerHandle:
        self._recorder.timers += 1
        return self._loop.call_at(when, callback, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loop, name)


class RecordingTransport:
    """The server's transport, recording whether each answer went out as one call."""

    def __init__(self, transport: asyncio.Transport, recorder: Recorder) -> None:
        self._transport = transport
        self._recorder = recorder

    def write(self, data: bytes) -> None:
        self._recorder.writes.append("write")
        self._recorder.wire += data
        self._transport.write(data)

    def writelines(self, chunks: Any) -> None:
        chunks = list(chunks)
        self._recorder.writes.append("writelines")
        self._recorder.wire += b"".join(chunks)
        self._transport.writelines(chunks)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


def app_for(recorder: Recorder) -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        while (await receive()).get("more_body"):
            pass
        connection = client_connection(scope)
        assert connection is not None, "the facade's server offers the connection"
        if scope["path"] == "/wait":  # wait for the client to leave, reading nothing
            connection.on_lost(recorder.lost.set)
            forgotten = recorder.forgotten_called.set
            connection.on_lost(forgotten)
            connection.forget(forgotten)
            recorder.registered.set()
            await asyncio.sleep(30)
            return
        headers = dict(ROUTE_HEADERS)
        if scope["path"] in ("/stream", "/stream-asgi"):
            await stream_answer(scope, send, connection, recorder)
            return
        if scope["path"] == "/watched":  # as the fast lane answers: the work watched for the client leaving
            await unless_client_leaves(asyncio.sleep(0), receive, connection)
            scope["path"] = "/answer"
        if scope["path"] == "/refused":
            headers["x-injected"] = "one\r\nset-cookie: two"
        reply = Reply(b'{"ok":true}', 201, headers)
        if scope["path"] in ("/answer", "/refused"):
            lines = reply.header_lines(LANE_PAIRS)
            done = lines is not None and connection.answer_at_once(scope, reply.status_code, lines, reply.body)
            recorder.at_once.append(done)
            if done:
                return
        await send(reply.start(LANE_PAIRS))
        await send({"type": "http.response.body", "body": reply.body})
    return app


def serve(limits: EdgeLimits) -> Iterator[tuple[int, Recorder]]:
    recorder = Recorder()
    guarded = protocol_class(limits)

    class Recording(guarded):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            # The facade's server writes no access line of uvicorn's (its own is written off the loop); uvicorn
            # would write one here because pytest's log capture gives its logger handlers.
            self.access_log = False
            self.loop = CountingLoop(self.loop, recorder)

        def connection_made(self, transport: asyncio.Transport) -> None:
            super().connection_made(RecordingTransport(transport, recorder))

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(app_for(recorder), http=Recording, lifespan="off", log_level="warning",
                            access_log=False, timeout_graceful_shutdown=1)
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=lambda: asyncio.run(uv.serve(sockets=[sock])), daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not uv.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
        time.sleep(0.01)
    yield sock.getsockname()[1], recorder
    uv.should_exit = True
    thread.join(timeout=10)
    sock.close()


FRAMES = (b"data: {\"n\": 1}\n\n", b"data: [DONE]\n\n")


async def stream_answer(scope: dict[str, Any], send: Any, connection: Any, recorder: Recorder) -> None:
    """A streamed answer as the fast lane sends one: its head at once when asked (``/stream``), its frames
    through ASGI."""
    async def frames() -> Any:
        for frame in FRAMES:
            yield frame

    reply = StreamReply(frames(), dict(ROUTE_HEADERS))
    started = False
    if scope["path"] == "/stream":
        lines = reply.header_lines(LANE_PAIRS)
        started = lines is not None and connection.start_at_once(scope, reply.status_code, lines)
        recorder.at_once.append(started)
    if not started:
        await send(reply.start(LANE_PAIRS))
    async for frame in reply.frames:
        await send({"type": "http.response.body", "body": frame, "more_body": True})
    await send({"type": "http.response.body", "body": b"", "more_body": False})


def read_chunked(sock: socket.socket) -> bytes:
    """One chunked answer, head and all, as it came."""
    data = b""
    while not data.endswith(b"\r\n0\r\n\r\n"):
        piece = sock.recv(65536)
        assert piece, f"the connection closed inside the answer: {data!r}"
        data += piece
    return data


@pytest.fixture
def server() -> Iterator[tuple[int, Recorder]]:
    yield from serve(EdgeLimits())


def _at_once(recorder: Recorder, answers: int) -> list[bool]:
    """Whether each answer went out at once, as the app recorded it (after its write: the client may be faster)."""
    deadline = time.monotonic() + 5
    while len(recorder.at_once) < answers and time.monotonic() < deadline:
        time.sleep(0.01)
    return recorder.at_once


def _without_date(wire: bytes) -> bytes:
    return b"\r\n".join(line for line in wire.split(b"\r\n") if not line.startswith(b"date: "))


def test_a_whole_answer_goes_out_in_one_write_with_the_bytes_uvicorn_writes_for_it(
        server: tuple[int, Recorder]) -> None:
    port, recorder = server
    with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
        client.sendall(REQUEST.replace(b"/work", b"/asgi"))
        through_asgi = read_answer(client)
        asgi_wire, recorder.wire, recorder.writes = recorder.wire, b"", []
        for _ in range(2):  # and again on the kept-alive connection
            client.sendall(REQUEST.replace(b"/work", b"/answer"))
            answer = read_answer(client)
            assert (answer.status, answer.body, answer.closed) == (201, b'{"ok":true}', False)
            assert answer.headers == through_asgi.headers | {"date": answer.headers["date"]}
    assert _at_once(recorder, 2) == [True, True]
    assert recorder.writes == ["writelines", "writelines"]
    assert _without_date(recorder.wire) == _without_date(asgi_wire) * 2
    assert b"date: " in recorder.wire  # the server's own header is there too


def test_a_streamed_answers_head_goes_out_at_once_with_the_bytes_uvicorn_writes_for_it(
        server: tuple[int, Recorder]) -> None:
    port, recorder = server
    with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
        client.sendall(REQUEST.replace(b"/work", b"/stream-asgi"))
        through_asgi = read_chunked(client)
        for _ in range(2):  # and again on the kept-alive connection
            client.sendall(REQUEST.replace(b"/work", b"/stream"))
            at_once = read_chunked(client)
            assert _without_date(at_once) == _without_date(through_asgi)
    assert _at_once(recorder, 2) == [True, True]
    assert b"transfer-encoding: chunked\r\n" in through_asgi and b"content-length" not in through_asgi


def test_pipelined_requests_are_each_answered_at_once_in_their_order(server: tuple[int, Recorder]) -> None:
    port, recorder = server
    with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
        client.sendall(REQUEST.replace(b"/work", b"/answer") * 3)  # the second and third wait for the first's answer
        wire = b""
        while wire.count(b'{"ok":true}') < 3:
            piece = client.recv(65536)
            assert piece, f"the connection closed after {wire!r}"
            wire += piece
    assert wire.count(b"HTTP/1.1 201 Created\r\n") == 3 and wire.endswith(b'{"ok":true}')
    assert _at_once(recorder, 3) == [True, True, True]


def test_an_answer_that_cannot_go_on_the_wire_as_it_is_is_refused_by_the_server_itself(
        server: tuple[int, Recorder]) -> None:
    port, recorder = server
    with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
        client.sendall(REQUEST.replace(b"/work", b"/refused"))
        assert client.recv(65536) == b""  # uvicorn refuses the header and ends the connection: nothing injected
    assert _at_once(recorder, 1) == [False]  # handed to uvicorn's own check


def test_the_last_answer_a_connection_may_carry_says_close_and_ends_it() -> None:
    for port, recorder in serve(EdgeLimits(max_requests=1)):
        with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
            client.sendall(REQUEST.replace(b"/work", b"/answer"))
            answer = read_answer(client)
            assert (answer.status, answer.closed) == (201, True)
            assert client.recv(1) == b""
        assert _at_once(recorder, 1) == [True]


def test_an_answered_request_leaves_no_reference_cycle_for_the_garbage_collector(
        server: tuple[int, Recorder]) -> None:
    """Cycles left by every request (the request's cycle and its scope, a watch and its task) make the collector run
    every few thousand requests, for tens of milliseconds each time, with everything they hold."""
    port, recorder = server
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
            for _ in range(20):
                client.sendall(REQUEST.replace(b"/work", b"/watched"))
                assert read_answer(client).status == 201
        assert _at_once(recorder, 20) == [True] * 20
        gc.collect()
        left = {type(o).__name__ for o in gc.garbage} & {"RequestResponseCycle", "_ClientWatch", "Task", "Reply"}
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
    assert not left


@pytest.mark.parametrize("headers", [{"X-Upper": "1"}, {"x-line": "a\nb"}, {"x-name with space": "1"},
                                     {"x-snowman": "\u2603"}])
def test_header_lines_refuse_what_the_server_would_not_write(headers: dict[str, str]) -> None:
    assert Reply(b"{}", 200, headers).header_lines() is None
    assert Reply(b"{}", 200, {}).header_lines(((b"x-origin", b"a\rb"),)) is None


def test_header_lines_give_the_servers_verdict_on_every_character() -> None:
    """Each Latin-1 character in a value and in a name, as text and as the lane's byte pairs: the lines are made
    exactly when uvicorn would write the header as it is (a name must also be lower-case), asked twice (a name's
    verdict is remembered)."""
    for code in range(256):
        char = chr(code)
        value_ok = not HEADER_VALUE_RE.search(char.encode("latin-1"))
        name, name_bytes = f"x-{char}", f"x-{char}".encode("latin-1")
        name_ok = name.islower() and not HEADER_RE.search(name_bytes)
        bytes_name_ok = name_bytes.islower() and not HEADER_RE.search(name_bytes)  # bytes know ASCII case only
        for _ in range(2):
            assert (Reply(b"{}", 200, {"x-value": f"a{char}b"}).header_lines() is not None) == value_ok, repr(char)
            assert (Reply(b"{}", 200, {}).header_lines(((b"x-value", f"a{char}b".encode("latin-1")),))
                    is not None) == value_ok, repr(char)
            assert (Reply(b"{}", 200, {name: "1"}).header_lines() is not None) == name_ok, repr(char)
            assert (Reply(b"{}", 200, {}).header_lines(((name_bytes, b"1"),)) is not None) == bytes_name_ok, repr(char)


def test_a_kept_alive_connections_requests_start_no_timer_of_the_loops() -> None:
    """Each request starts and stops the head, body and idle timeouts; the connection's one timer is moved only when
    it would fire too late, so a run of requests asks the loop for none (one that fires meanwhile, every idle timeout
    of a slow run, starts over once)."""
    limits = EdgeLimits()
    for port, recorder in serve(limits):
        with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
            client.sendall(REQUEST)
            assert read_answer(client).status == 201
            first, started = recorder.timers, time.monotonic()
            for _ in range(30):
                client.sendall(REQUEST)
                assert read_answer(client).status == 201
            fired = int((time.monotonic() - started) / limits.idle_timeout) + 1
            assert recorder.timers - first <= fired, f"{recorder.timers - first} timers for 30 requests"


def test_an_idle_connection_is_closed_once_its_timeout_has_run_from_its_last_answer() -> None:
    for port, _ in serve(EdgeLimits(idle_timeout=0.5)):
        with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
            for _ in range(5):
                client.sendall(REQUEST)
                assert read_answer(client).status == 201
            client.settimeout(10)
            started = time.monotonic()
            assert client.recv(1) == b"", "the idle connection was closed"
            assert time.monotonic() - started >= 0.4, "not before its idle timeout"


def test_a_lost_connection_calls_back_the_work_of_its_request(server: tuple[int, Recorder]) -> None:
    port, recorder = server
    client = socket.create_connection(("127.0.0.1", port), timeout=5)
    client.sendall(REQUEST.replace(b"/work", b"/wait"))
    assert recorder.registered.wait(5)
    assert not recorder.lost.is_set()
    client.close()
    assert recorder.lost.wait(5), "the callback was not called when the client left"
    assert not recorder.forgotten_called.is_set()
