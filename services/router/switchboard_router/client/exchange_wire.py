"""What both ends of a router Exchange stream agree on: the metadata that opens one, and how messages are batched.

Each gRPC message on a stream costs its sender a write and its receiver a read, each a hand-off between gRPC's
poller thread and the event loop. Under load several calls' messages wait for a stream's writer at once, so the
writer sends them as one message whose ``batch`` holds them in order (``ExchangeRequest.batch``,
``ExchangeReply.batch``). Each end announces in its metadata that it reads batches, and the other sends batches
only then, so a facade and a router of different versions still understand each other during a rolling upgrade.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from typing import TypeVar

#: Initial metadata a router sends when an exchange is open (a router without Exchange answers UNIMPLEMENTED).
READY = ("switchboard-exchange", "1")
#: Metadata with which an end says it reads batches: the caller's when it opens a stream, the router's with READY.
BATCHES = ("switchboard-exchange-batches", "1")
#: A batch holds at most this many messages...
BATCH_MAX_ITEMS = 64
#: ... and at most this many bytes past its first message (far under the channels' 64 MiB message limit, so that
#: a batch of large prompts never nears it, and one large message does not hold the small ones behind it for long).
BATCH_MAX_BYTES = 1 << 20

T = TypeVar("T")


def take_batch(first: T, waiting: deque[T], size_of: Callable[[T], int | None]) -> list[T]:
    """``first`` and the messages that fit one batch with it, popped from the front of ``waiting`` in order.

    ``size_of`` gives a waiting item's serialized size, or None for an item that is not a message (a
    close, say): taking stops there, as it does at the first message that would not fit; both stay waiting."""
    batch = [first]
    room = BATCH_MAX_BYTES
    while waiting and len(batch) < BATCH_MAX_ITEMS:
        size = size_of(waiting[0])
        if size is None or size > room:
            break
        room -= size
        batch.append(waiting.popleft())
    return batch


def reads_batches(metadata: Iterable[tuple[str, str | bytes]] | None) -> bool:
    """Whether gRPC metadata (its key/value pairs) says its sender reads batches."""
    return metadata is not None and any(key == BATCHES[0] and value == BATCHES[1] for key, value in metadata)
