"""Chunks that are ready at the same moment travel in one gRPC message (stream coalescing)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from switchboard_router.engine import StreamChunks, StreamStarted

_DONE = object()
#: Stream items read ahead of the facade at most (beyond it, the provider waits: backpressure).
_AHEAD = 256


@dataclass(frozen=True, slots=True)
class StartedWithChunks:
    """The route of a stream together with the chunks that came with the provider's first byte."""

    started: StreamStarted
    chunks: list[bytes]


def _ready_chunks(queue: asyncio.Queue[Any], merged: list[bytes]) -> tuple[list[bytes], Any]:
    """Appends the chunk batches waiting in ``queue`` to ``merged``; returns it and the first other item taken."""
    while not queue.empty():
        following = queue.get_nowait()
        if not isinstance(following, StreamChunks):
            return merged, following
        merged.extend(following.chunks)
    return merged, None


async def coalesced(items: AsyncIterator[Any], first_chunks: bool = False) -> AsyncIterator[Any]:
    """``items``, with the chunk batches that are ready at the same moment merged into one.

    A task reads the provider's stream while the caller writes the previous
    message to the facade, so chunks that arrive during a write go out together
    in the next message (one gRPC message instead of one each); the first chunk
    is never held back. With ``first_chunks``, chunks already waiting behind the
    route come with it as one :class:`StartedWithChunks`. Errors of ``items`` are
    raised here, in order.
    """
    queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=_AHEAD)

    async def pump() -> None:
        try:
            async with contextlib.aclosing(items):  # type: ignore[type-var]  # items is an async generator (has aclose)
                async for item in items:
                    await queue.put(item)
        except Exception as exc:  # handed to the caller, in order
            await queue.put(exc)
        finally:
            await queue.put(_DONE)

    task = asyncio.get_running_loop().create_task(pump())
    held: Any = None
    try:
        while True:
            item = held if held is not None else await queue.get()
            held = None
            if item is _DONE:
                return
            if isinstance(item, Exception):
                raise item
            if isinstance(item, StreamChunks) and not queue.empty():
                merged, held = _ready_chunks(queue, list(item.chunks))
                item = StreamChunks(merged)
            elif isinstance(item, StreamStarted) and first_chunks and not queue.empty():
                merged, held = _ready_chunks(queue, [])
                if merged:
                    item = StartedWithChunks(item, merged)
            yield item
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
