"""SIGTERM of ``make run``'s supervisor with streams in flight, then a start on the same data: each stream is billed
for what it produced, and recorded as cut by the service whose shutdown cut it.

The streams are longer than the shutdown grace, so the gateway has to end them itself. The supervisor stops
the gateway in order (facade, router, then auth and billing) and kills a service only after the grace it gives
its own work. The facade's grace runs out first: it cuts its HTTP stream and tells the router why
(``caller_shutdown``). The router ends its gRPC callers' calls within its own grace (``router_shutdown``). Each
is settled from what was relayed and delivered to billing, which is still up (or left in a journal, replayed by
the next start)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sqlite3
import time
from contextlib import closing
from pathlib import Path
from typing import Any

import grpc
import httpx
import orjson
import pytest

from switchboard.v1 import router_pb2, router_pb2_grpc
from switchboard_common.errors import ServiceError
from switchboard_router.client import SwitchboardRouter
from tests.e2e.test_supervisor import output, start_supervisor
from tests.fakes.openai_provider import FakeOpenAI
from tests.fakes.server import free_port

pytestmark = pytest.mark.slow

#: The services' grace: the streams (30 s) outlast it.
GRACE = "4"
#: The model whose stream outlasts the grace: a chunk of one token every 50 ms for 30 s.
ENDLESS = {"endless": "drip-30"}


async def raw_stream(address: str, key: str, got: dict[str, int], started: asyncio.Event) -> None:
    """The generated stub's StreamComplete, counting the tokens it gets (one a chunk) until the stream breaks."""
    async with grpc.aio.insecure_channel(address) as channel:
        call = router_pb2_grpc.RouterStub(channel).StreamComplete(router_pb2.CompleteRequest(
            request_id="req_raw_" + os.urandom(4).hex(), model="endless", accepts_first_chunks=True,
            body=orjson.dumps({"messages": [{"role": "user", "content": "go on"}], "stream": True})),
            metadata=(("authorization", f"Bearer {key}"),))
        try:
            async for event in call:
                kind = event.WhichOneof("event")
                chunks = event.chunks.chunks if kind == "chunks" else event.first_chunks.chunks
                got["raw"] += sum(b"tok" in chunk for chunk in chunks)
                if min(got.values()) >= 10:
                    started.set()
        except grpc.aio.AioRpcError:
            pass  # the router stopped


async def client_stream(address: str, key: str, got: dict[str, int], started: asyncio.Event) -> None:
    """The client package's SwitchboardRouter.stream, counting the tokens it gets until the stream breaks."""
    async with SwitchboardRouter(address, api_key=key) as router:
        try:
            async for chunk in router.stream("endless", [{"role": "user", "content": "go on"}]):
                got["client"] += any(c["delta"].get("content") for c in chunk["choices"])
                if min(got.values()) >= 10:
                    started.set()
        except ServiceError:
            pass


async def http_stream(base: str, key: str, got: dict[str, int], started: asyncio.Event) -> None:
    """An OpenAI-style streamed chat through the facade, counting the tokens it gets until the stream breaks."""
    body = {"model": "endless", "stream": True, "messages": [{"role": "user", "content": "go on"}]}
    async with httpx.AsyncClient(timeout=60) as client:
        try:
            async with client.stream("POST", f"{base}/v1/chat/completions", json=body,
                                     headers={"Authorization": f"Bearer {key}"}) as response:
                async for line in response.aiter_lines():
                    got["http"] += line.startswith("data: {") and "tok" in line
                    if min(got.values()) >= 10:
                        started.set()
        except httpx.HTTPError:
            pass  # the facade stopped


def ledger_rows(data_dir: Path, key_id: str) -> list[dict[str, Any]]:
    with closing(sqlite3.connect(data_dir / "billing.db", timeout=30)) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute("SELECT * FROM usage_ledger WHERE key_id = ?", (key_id,))]


def test_sigterm_with_streams_in_flight_bills_each_for_what_it_produced_and_says_who_cut_it(
        tmp_path: Path, fake_openai: tuple[FakeOpenAI, str]) -> None:
    router_port = str(free_port())
    env = {"SWITCHBOARD_SHUTDOWN_GRACE_SECONDS": GRACE, "SWITCHBOARD_ROUTER_PORT": router_port}
    proc, base = start_supervisor(tmp_path, fake_openai[1], extra_env=env, upstream_models=ENDLESS)
    address = f"127.0.0.1:{router_port}"
    try:
        master = (tmp_path / "data" / "master_key").read_text()
        made = httpx.post(f"{base}/key/generate", json={"key_alias": "streamer"},
                          headers={"Authorization": f"Bearer {master}"}, timeout=10).json()
        got = {"raw": 0, "client": 0, "http": 0}

        async def stream_then_stop() -> float:
            started = asyncio.Event()
            streams = [asyncio.create_task(raw_stream(address, made["key"], got, started)),
                       asyncio.create_task(client_stream(address, made["key"], got, started)),
                       asyncio.create_task(http_stream(base, made["key"], got, started))]
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(started.wait(), 20)
            assert min(got.values()) >= 10, f"the streams did not start: {got}\n{output(tmp_path)[-3000:]}"
            stopped = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            await asyncio.wait_for(asyncio.gather(*streams), 60)
            return stopped

        stopped = asyncio.run(stream_then_stop())
        proc.wait(timeout=60)
        took = time.monotonic() - stopped
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    first_run = output(tmp_path)
    assert proc.returncode == 0, first_run[-3000:]
    assert took < 3 * (float(GRACE) + 5) + 5, f"the stop took {took:.1f} s"
    # The next start on the same data: what the router left in its journal (if anything) is replayed.
    proc, _ = start_supervisor(tmp_path, fake_openai[1], extra_env=env, upstream_models=ENDLESS)
    try:
        deadline = time.monotonic() + 20
        while len(rows := ledger_rows(tmp_path / "data", made["key_id"])) < 3 and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    assert len(rows) == 3, f"each stream has its row: {rows}\n{first_run[-4000:]}"
    for row in rows:
        # The HTTP stream was cut by the facade's shutdown, the gRPC callers' by the router's.
        cut_by = "caller_shutdown" if row["source"] == "http" else "router_shutdown"
        assert row["status"] == "cancelled" and row["error_code"] == cut_by, row
        assert not row["provisional"], row
        assert row["cost_micros"] > 0, row
    # Each billed for what it produced: at least what its client got (one token a chunk), never all 600 tokens.
    billed = sorted(int(r["completion_tokens"]) for r in rows)
    for received, tokens in zip(sorted(got.values()), billed, strict=True):
        assert received <= tokens < 600, (got, billed)
