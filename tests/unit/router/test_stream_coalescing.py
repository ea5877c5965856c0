"""Chunk coalescing of a stream on its way to the facade (servicer.coalesced)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from switchboard_router.coalescing import StartedWithChunks, coalesced
from switchboard_router.outcomes import StreamChunks, StreamStarted

STARTED = StreamStarted(route=None, ttfb_ms=1.0)  # type: ignore[arg-type]


async def ready(*items: Any) -> AsyncIterator[Any]:
    """A provider whose whole answer is available at once."""
    for item in items:
        yield item


async def collect(items: AsyncIterator[Any], first_chunks: bool) -> list[Any]:
    out = []
    async for item in coalesced(items, first_chunks=first_chunks):
        out.append(item)
        await asyncio.sleep(0)  # the write of this message, during which the reader runs on
    return out


def chunks_of(items: list[Any]) -> list[bytes]:
    out: list[bytes] = []
    for item in items:
        if isinstance(item, StartedWithChunks):
            out += item.chunks
        elif isinstance(item, StreamChunks):
            out += item.chunks
    return out


async def test_ready_chunks_ride_with_the_route_when_the_caller_reads_them() -> None:
    items = await collect(ready(STARTED, StreamChunks([b"a"]), StreamChunks([b"b"]), "end"), first_chunks=True)
    assert isinstance(items[0], StartedWithChunks) and items[0].started is STARTED
    assert chunks_of(items) == [b"a", b"b"]  # nothing lost, nothing reordered
    assert items[-1] == "end"


async def test_without_first_chunks_the_route_is_its_own_message() -> None:
    items = await collect(ready(STARTED, StreamChunks([b"a"]), StreamChunks([b"b"]), "end"), first_chunks=False)
    assert items[0] is STARTED
    assert not any(isinstance(item, StartedWithChunks) for item in items)
    assert chunks_of(items) == [b"a", b"b"] and items[-1] == "end"


async def test_a_route_followed_by_the_end_keeps_the_end() -> None:
    items = await collect(ready(STARTED, "end"), first_chunks=True)
    assert items == [STARTED, "end"]


async def test_chunks_not_yet_arrived_are_not_waited_for() -> None:
    gate = asyncio.Event()

    async def slow() -> AsyncIterator[Any]:
        yield STARTED
        await gate.wait()
        yield StreamChunks([b"late"])

    stream = coalesced(slow(), first_chunks=True)
    first = await asyncio.wait_for(stream.__anext__(), 1)
    assert first is STARTED  # the route goes at once; the first byte's time is never held back
    gate.set()
    assert (await stream.__anext__()).chunks == [b"late"]
    await stream.aclose()
