"""SIGKILL of the router with a stream in flight, then a router on the same data: the stream is billed for what it
had relayed.

A stream is settled when it ends, so a router killed mid-stream (or the whole host, router and facade at once)
never settles it; its progress records (at most a second apart) are what the next router bills it as:
``cancelled``, 499, ``router_lost``, the output it had relayed at its last record — more than nothing, and no more
than its caller got. The streams of the router that follows, which record progress too, are billed once, as they
ended.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from dataclasses import dataclass

import grpc
import httpx
import orjson
import pytest

from switchboard.v1 import router_pb2, router_pb2_grpc
from tests.faults.conftest import Key, Rig, wait_ready

pytestmark = pytest.mark.slow

#: Tokens (one a chunk, a chunk every 50 ms) the caller gets before the kill: three and a half seconds of stream.
BEFORE_KILL = 70


@dataclass
class Received:
    #: Tokens of the endless model's answer (``"tok "`` a chunk).
    tokens: int = 0
    chunks: int = 0
    request_id: str = ""


async def grpc_stream(address: str, key: Key, model: str, request_id: str, got: Received,
                      enough: asyncio.Event | None = None) -> bool:
    """A key holder's StreamComplete, counting the tokens it gets; whether it ended with its StreamEnd."""
    async with grpc.aio.insecure_channel(address) as channel:
        call = router_pb2_grpc.RouterStub(channel).StreamComplete(router_pb2.CompleteRequest(
            request_id=request_id, model=model, accepts_first_chunks=True,
            body=orjson.dumps({"messages": [{"role": "user", "content": "go on"}], "stream": True})),
            metadata=(("authorization", f"Bearer {key.secret}"),))
        try:
            async for event in call:
                kind = event.WhichOneof("event")
                if kind == "end":
                    return True
                chunks = event.chunks.chunks if kind == "chunks" else event.first_chunks.chunks
                got.tokens += sum(chunk.count(b"tok") for chunk in chunks)
                got.chunks += len(chunks)
                if enough is not None and got.tokens >= BEFORE_KILL:
                    enough.set()
        except grpc.aio.AioRpcError:
            return False  # the router died
    return False


async def http_stream(base_url: str, key: Key, got: Received, enough: asyncio.Event) -> None:
    """A client of the facade streaming the endless model, counting the tokens it gets until the stream breaks."""
    body = {"model": "endless", "stream": True, "messages": [{"role": "user", "content": "go on"}]}
    async with httpx.AsyncClient(timeout=httpx.Timeout(60, connect=5)) as client:
        with contextlib.suppress(httpx.HTTPError):
            async with client.stream("POST", f"{base_url}/v1/chat/completions", json=body,
                                     headers={"Authorization": f"Bearer {key.secret}"}) as response:
                got.request_id = response.headers.get("x-request-id", "")
                async for line in response.aiter_lines():
                    got.tokens += line.count("tok")
                    if got.tokens >= BEFORE_KILL:
                        enough.set()


def rows_of(rig: Rig, key: Key, request_id: str) -> list[tuple[str, str, int, int]]:
    """The rows of a request: the facade's id, or a key holder's (which the router extends, ``<id>~<random>``)."""
    return [(str(s), str(c or ""), int(h), int(t)) for r, s, c, h, t in rig.read(
        "SELECT request_id, status, error_code, http_status, completion_tokens FROM usage_ledger WHERE key_id = ?",
        (key.key_id,)) if str(r).split("~")[0] == request_id]


def wait_for_row(rig: Rig, key: Key, request_id: str, timeout: float = 30) -> list[tuple[str, str, int, int]]:
    deadline = time.monotonic() + timeout
    while not (rows := rows_of(rig, key, request_id)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return rows


@pytest.mark.parametrize("caller", ["grpc", "http"])
def test_a_stream_cut_by_the_routers_death_is_billed_for_what_it_had_relayed(rig: Rig, caller: str) -> None:
    """``grpc``: a key holder streams from the router, which is killed. ``http``: a client streams through the
    facade, and the router and the facade are killed together (a host going down)."""
    gw = rig.gateway
    key = rig.key(f"lost-{caller}-{os.urandom(4).hex()}")
    address = gw.env["SWITCHBOARD_ROUTER_ADDRESS"]
    got = Received(request_id="req_lost_" + os.urandom(6).hex())
    victims = ["router"] if caller == "grpc" else ["router", "facade"]

    async def stream_then_kill() -> None:
        enough = asyncio.Event()
        streaming = asyncio.create_task(
            grpc_stream(address, key, "endless", got.request_id, got, enough) if caller == "grpc"
            else http_stream(gw.base_url, key, got, enough))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(enough.wait(), 20)
        assert got.tokens >= BEFORE_KILL, f"the stream did not go on: {got}\n{gw.logs()[-3000:]}"
        for victim in victims:
            gw.processes[victim].proc.send_signal(signal.SIGKILL)
        for victim in victims:
            await asyncio.to_thread(gw.processes[victim].proc.wait, 10)
        await asyncio.wait_for(streaming, 30)

    asyncio.run(stream_then_kill())
    assert got.request_id, "the facade named the request"
    for victim in reversed(victims):
        rig.restart(victim)
    wait_ready(gw.base_url)

    rows = wait_for_row(rig, key, got.request_id)
    assert len(rows) == 1, f"the stream's row, once: {rows}\n{gw.logs()[-4000:]}"
    [(status, error_code, http_status, completion_tokens)] = rows
    print(f"{caller}: billed {completion_tokens} tokens, the caller got {got.tokens}")
    assert (status, error_code, http_status) == ("cancelled", "router_lost", 499), rows
    assert 0 < completion_tokens <= got.tokens, f"billed {completion_tokens} tokens, the caller got {got.tokens}"

    # The next router's streams record progress too, and are billed once, as they ended.
    after = Received()
    request_id = "req_after_" + os.urandom(6).hex()

    async def stream_once() -> bool:
        deadline = time.monotonic() + 20
        while True:  # the restarted router may still be starting
            try:
                async with grpc.aio.insecure_channel(address) as channel:
                    await asyncio.wait_for(channel.channel_ready(), 5)
                return await grpc_stream(address, key, "drip", request_id, after)
            except TimeoutError:
                if time.monotonic() > deadline:
                    raise

    assert asyncio.run(stream_once()), "the stream after the restart ended"
    assert after.chunks > 0
    rows = wait_for_row(rig, key, request_id)
    assert [(s, c, h) for s, c, h, _ in rows] == [("success", "", 200)], rows
    assert len(rows_of(rig, key, got.request_id)) == 1
