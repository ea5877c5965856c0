"""The facade's HTTP server offers each request its connection (``switchboard_facade.replies.ClientConnection``).

A real uvicorn server with the facade's protocol (``http_edge.protocol_class``) on loopback, an ASGI app that uses
the connection as the fast lane does, and a raw socket as the client: a lost connection calls back the request's
work without any task reading ``receive``, a forgotten callback is not called, and a whole answer whose head was
held goes out in one write of the transport.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn

from switchboard_facade.http_edge import EdgeLimits, protocol_class
from switchboard_facade.replies import client_connection
from tests.e2e.test_edge_limits import read_answer

REQUEST = (b"POST /work HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\n"
           b"content-length: 2\r\n\r\n{}")


class Recorder:
    """What the app saw and what the server wrote, across the server's thread and the test's."""

    def __init__(self) -> None:
        self.lost = threading.Event()
        self.forgotten_called = threading.Event()
        self.registered = threading.Event()
        self.writes: list[str] = []


class RecordingTransport:
    """The server's transport, recording whether each answer went out as one call."""

    def __init__(self, transport: asyncio.Transport, recorder: Recorder) -> None:
        self._transport = transport
        self._recorder = recorder

    def write(self, data: bytes) -> None:
        self._recorder.writes.append("write")
        self._transport.write(data)

    def writelines(self, chunks: Any) -> None:
        self._recorder.writes.append("writelines")
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
        connection.hold_head()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", b"11")]})
        await send({"type": "http.response.body", "body": b'{"ok":true}'})
    return app


@pytest.fixture
def server() -> Iterator[tuple[int, Recorder]]:
    recorder = Recorder()
    guarded = protocol_class(EdgeLimits())

    class Recording(guarded):  # type: ignore[misc, valid-type]
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


def test_a_whole_answer_whose_head_was_held_goes_out_in_one_write(server: tuple[int, Recorder]) -> None:
    port, recorder = server
    with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
        for _ in range(2):  # and again on the kept-alive connection
            client.sendall(REQUEST.replace(b"/work", b"/answer"))
            answer = read_answer(client)
            assert (answer.status, answer.body, answer.closed) == (200, b'{"ok":true}', False)
    assert recorder.writes == ["writelines", "writelines"]


def test_a_lost_connection_calls_back_the_work_of_its_request(server: tuple[int, Recorder]) -> None:
    port, recorder = server
    client = socket.create_connection(("127.0.0.1", port), timeout=5)
    client.sendall(REQUEST.replace(b"/work", b"/wait"))
    assert recorder.registered.wait(5)
    assert not recorder.lost.is_set()
    client.close()
    assert recorder.lost.wait(5), "the callback was not called when the client left"
    assert not recorder.forgotten_called.is_set()
