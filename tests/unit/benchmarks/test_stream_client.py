"""The benchmark's stream client behaves as real HTTP clients do: an answer carrying ``Connection: close`` (a server's
per-connection request limit) ends the connection, and the next request opens a new one instead of failing."""

from __future__ import annotations

import asyncio

from benchmarks.stream_client import run_load

EVENTS = b'data: {"choices":[{"delta":{"content":"hi"}}]}\n\ndata: [DONE]\n\n'


async def test_an_answer_that_closes_the_connection_costs_no_error() -> None:
    connections = 0

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        for served in range(1, 4):  # three requests per connection, the last answer says so
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError):
                break
            length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length"))
            await reader.readexactly(length)
            close = b"connection: close\r\n" if served == 3 else b""
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n" + close +
                         b"content-length: " + str(len(EVENTS)).encode() + b"\r\n\r\n" + EVENTS)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        result = await run_load(f"http://127.0.0.1:{port}/v1/chat/completions", b"{}", "x", 1, 0.5)
    finally:
        server.close()
        await server.wait_closed()
    assert not result.errors, result.errors
    assert len(result.samples) >= 6 and connections >= 2
