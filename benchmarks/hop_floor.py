"""What one hop costs on this machine, before any of Switchboard's own work: CPU and latency per round trip.

Prints numbers; asserts nothing. Run from the repository root:

    python benchmarks/hop_floor.py [--round-trips 20000]

A short chat through the gateway crosses two hops besides the client's: the facade's call to the router (a message
each way on an open ``Router.Exchange`` stream) and the router's HTTP/1.1 request to the provider, and the facade
serves the client's HTTP/1.1 request. Each is measured here alone, between two processes on loopback, with the
libraries and settings the gateway uses (grpcio's ``grpc.aio`` on uvloop, on the gateway's gRPC engine and with its
channel and server options; uvicorn with httptools as the server and the router's provider pool as the client, both on uvloop), a
payload the size of a short chat's (``--body-bytes 100000``: a long prompt's), at concurrency 1 (one round trip at a
time) and 16 (16 tasks, each with its own stream or connection, as the gateway's goals are read at concurrency 16):

- ``grpc bidi``: one ``ExchangeRequest`` written and one ``ExchangeReply`` read on an open stream;
- ``grpc unary``: one unary call (for comparison: what the exchange saves);
- ``http/1.1``: one keep-alive POST, the router's provider pool (``switchboard_router.upstream_http``) to a bare ASGI
  app on uvicorn.

CPU is user + system time of each process (the client's own, the server's read from /proc) divided by the round
trips. The sum of a bidi round trip and an HTTP round trip on both sides is the floor of the CPU a request costs
the gateway's processes with the architecture's two hops, whatever the code around them does.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "protos/gen"))
sys.path.insert(0, str(ROOT / "libs/common"))
sys.path.insert(0, str(ROOT / "services/router"))

# The gateway's gRPC I/O engine, chosen before grpc is imported, unless GRPC_EXPERIMENTS says otherwise.
from switchboard_common.grpc_engine import choose_io_engine  # noqa: E402

choose_io_engine()

from switchboard.v1 import router_pb2, router_pb2_grpc  # noqa: E402
from switchboard_common.channels import CHANNEL_OPTIONS  # noqa: E402

BODY = (b'{"model":"bench-model","messages":[{"role":"user","content":"Say hello in one short sentence."}],'
        b'"max_tokens":16}')
ANSWER = (b'{"id":"chatcmpl-1","object":"chat.completion","created":0,"model":"bench-model","choices":[{"index":0,'
          b'"message":{"role":"assistant","content":"Hello! How can I help you today?"},"finish_reason":"stop"}],'
          b'"usage":{"prompt_tokens":14,"completion_tokens":9,"total_tokens":23}}')


def _cpu_self() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _cpu_of(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _Router(router_pb2_grpc.RouterServicer):
    async def Exchange(self, requests: Any, context: Any) -> None:
        async for request in requests:
            await context.write(router_pb2.ExchangeReply(
                call_id=request.call_id, completion=router_pb2.CompleteResponse(body=ANSWER)))

    async def Complete(self, request: Any, context: Any) -> Any:
        return router_pb2.CompleteResponse(body=ANSWER)


async def _serve_grpc(port: int) -> None:
    import grpc

    from switchboard_common.grpc_server import SERVER_OPTIONS

    server = grpc.aio.server(options=SERVER_OPTIONS)
    router_pb2_grpc.add_RouterServicer_to_server(_Router(), server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await server.wait_for_termination()


async def _asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(ANSWER)).encode())]})
    await send({"type": "http.response.body", "body": ANSWER})


def _serve_http(port: int) -> None:
    import uvicorn

    uvicorn.run(_asgi, host="127.0.0.1", port=port, loop="uvloop", http="httptools", log_level="error",
                access_log=False, lifespan="off")


async def _concurrently(c: int, n: int, one: Any) -> float:
    """Seconds for ``n`` round trips made by ``c`` tasks (each ``one(count)`` makes ``count``), after a warm-up."""
    await asyncio.gather(*(one(max(1, n // 10 // c)) for _ in range(c)))
    started = time.perf_counter()
    await asyncio.gather(*(one(n // c) for _ in range(c)))
    return time.perf_counter() - started


def padded_body(size: int) -> bytes:
    """A chat body of about ``size`` bytes (its message padded), for the cost of a long prompt's hop."""
    filler = max(0, size - len(BODY))
    return BODY.replace(b"Say hello in one short sentence.", b"Say hello in one short sentence. " + b"x" * filler)


async def _grpc_bidi(port: int, n: int, c: int, body: bytes) -> float:
    import grpc

    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=CHANNEL_OPTIONS) as channel:
        stub = router_pb2_grpc.RouterStub(channel)
        request = router_pb2.ExchangeRequest(call_id=1, complete=router_pb2.CompleteRequest(
            request_id="r", model="bench-model", body=body))
        calls = [stub.Exchange() for _ in range(c)]
        free = list(calls)

        async def trips(count: int) -> None:
            call = free.pop()
            for _ in range(count):
                await call.write(request)
                await call.read()
            free.append(call)

        elapsed = await _concurrently(c, n, trips)
        for call in calls:
            call.cancel()
        return elapsed


async def _grpc_unary(port: int, n: int, c: int, body: bytes) -> float:
    import grpc

    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=CHANNEL_OPTIONS) as channel:
        complete = router_pb2_grpc.RouterStub(channel).Complete
        request = router_pb2.CompleteRequest(request_id="r", model="bench-model", body=body)

        async def trips(count: int) -> None:
            for _ in range(count):
                await complete(request)

        return await _concurrently(c, n, trips)


async def _http(port: int, n: int, c: int, body: bytes) -> float:
    from switchboard_router.deployment import Timeouts
    from switchboard_router.providers.base import UpstreamRequest
    from switchboard_router.upstream_http import HttpPool

    request = UpstreamRequest("POST", f"http://127.0.0.1:{port}/v1/chat/completions",
                              {"content-type": "application/json"}, body)
    pool = HttpPool(Timeouts(connect=5, first_byte=30), c)

    async def trips(count: int) -> None:
        for _ in range(count):
            await pool.fetch(request)

    try:
        return await _concurrently(c, n, trips)
    finally:
        await pool.aclose()


def _measure(kind: str, n: int, c: int, body: bytes = BODY) -> tuple[float, float, float]:
    """(latency µs, client CPU µs, server CPU µs) per round trip; latency is the mean time of one round trip as
    each task sees it."""
    import uvloop

    port = _free_port()
    server = subprocess.Popen([sys.executable, __file__, "--serve", kind.split()[0], str(port)])
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        client = {"grpc bidi": _grpc_bidi, "grpc unary": _grpc_unary, "http/1.1": _http}[kind]
        cpu_client, cpu_server = _cpu_self(), _cpu_of(server.pid)
        elapsed = uvloop.run(client(port, n, c, body))
        cpu_client, cpu_server = _cpu_self() - cpu_client, _cpu_of(server.pid) - cpu_server
        done = n // c * c
        trips = done + max(1, n // 10 // c) * c  # the warm-up is in the CPU figures too
        return elapsed / done * c * 1e6, cpu_client / trips * 1e6, cpu_server / trips * 1e6
    finally:
        server.terminate()
        server.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--round-trips", type=int, default=20000)
    parser.add_argument("--concurrency", default="1,16", help="comma-separated task counts")
    parser.add_argument("--body-bytes", type=int, default=0,
                        help="request body of about this many bytes (default: a short chat's); 100000 for a long prompt")
    parser.add_argument("--serve", nargs=2, metavar=("KIND", "PORT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        kind, port = args.serve[0], int(args.serve[1])
        if kind == "grpc":
            import uvloop

            uvloop.run(_serve_grpc(port))
        else:
            _serve_http(port)
        return
    body = padded_body(args.body_bytes) if args.body_bytes else BODY
    print(f"GRPC_EXPERIMENTS={os.environ.get('GRPC_EXPERIMENTS', '')!r} (the gateway's gRPC I/O engine unless set); "
          f"request body {len(body)} bytes")
    print(f"{'hop':<12} {'tasks':>5} {'latency µs':>11} {'client CPU µs':>14} {'server CPU µs':>14} {'both µs':>8}")
    for c in (int(part) for part in args.concurrency.split(",")):
        for kind in ("grpc bidi", "grpc unary", "http/1.1"):
            n = args.round_trips if kind != "grpc unary" else args.round_trips // 4
            latency, client, server = _measure(kind, n, c, body)
            print(f"{kind:<12} {c:5d} {latency:11.0f} {client:14.0f} {server:14.0f} {client + server:8.0f}", flush=True)


if __name__ == "__main__":
    main()
