"""Fan-out of key and team changes to every auth replica and every watcher.

An admin change on any replica is published here; every replica's
verification cache drops what it affects, and every ``WatchInvalidations``
stream (facades keeping their own cache) receives it. In-process on the
embedded default; over Redis pub/sub when ``SWITCHBOARD_REDIS_URL`` is set.
If the Redis subscription breaks, subscribers get ``everything=True`` and the
bus reports itself unhealthy until it is back, so caches stop trusting
themselves instead of serving stale verifications.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from switchboard.v1 import auth_pb2

if TYPE_CHECKING:
    import redis.asyncio as aioredis

log = logging.getLogger(__name__)

#: Put in a subscriber's queue to end its stream (shutdown); compared by identity.
END_OF_STREAM = auth_pb2.Invalidation()


class InvalidationBus:
    """In-process fan-out (one auth replica)."""

    def __init__(self) -> None:
        self._queues: set[asyncio.Queue[auth_pb2.Invalidation]] = set()
        self._listeners: list[Callable[[auth_pb2.Invalidation], None]] = []
        #: Bumped on every delivered change, so a cache can tell a read raced with a change.
        self.generation = 0

    @property
    def healthy(self) -> bool:
        return True

    def subscribe(self) -> asyncio.Queue[auth_pb2.Invalidation]:
        queue: asyncio.Queue[auth_pb2.Invalidation] = asyncio.Queue(maxsize=10_000)
        self._queues.add(queue)
        return queue

    def listen(self, listener: Callable[[auth_pb2.Invalidation], None]) -> None:
        """Calls ``listener`` synchronously on every change (for this process' own caches)."""
        self._listeners.append(listener)

    def unsubscribe(self, queue: asyncio.Queue[auth_pb2.Invalidation]) -> None:
        self._queues.discard(queue)

    def end_streams(self) -> None:
        """Ends every subscriber's stream (on shutdown, so watchers move to another replica at once)."""
        for queue in list(self._queues):
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(END_OF_STREAM)

    def deliver(self, change: auth_pb2.Invalidation) -> None:
        self.generation += 1
        for listener in self._listeners:
            listener(change)
        for queue in list(self._queues):
            try:
                queue.put_nowait(change)
            except asyncio.QueueFull:
                # A watcher too slow to keep up is told to drop everything rather than miss a change.
                with contextlib.suppress(asyncio.QueueEmpty):
                    while True:
                        queue.get_nowait()
                queue.put_nowait(auth_pb2.Invalidation(everything=True))

    async def publish(self, change: auth_pb2.Invalidation) -> None:
        self.deliver(change)

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None


class RedisInvalidationBus(InvalidationBus):
    """Fan-out across replicas through one Redis pub/sub channel."""

    def __init__(self, client: aioredis.Redis, channel: str) -> None:
        super().__init__()
        self.client = client
        self.channel = channel
        self._subscribed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def healthy(self) -> bool:
        return self._subscribed.is_set()

    async def publish(self, change: auth_pb2.Invalidation) -> None:
        # Delivered locally at once (this replica's cache must not wait for the round trip),
        # and to every replica (this one included, harmlessly) through Redis.
        self.deliver(change)
        await self.client.publish(self.channel, change.SerializeToString())

    async def start(self) -> None:
        self._task = asyncio.create_task(self._listen())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._subscribed.wait(), 5)

    async def _listen(self) -> None:
        while True:
            try:
                async with self.client.pubsub(ignore_subscribe_messages=True) as pubsub:
                    await pubsub.subscribe(self.channel)
                    self._subscribed.set()
                    # Whatever happened while we were not listening is unknown: start clean.
                    self.deliver(auth_pb2.Invalidation(everything=True))
                    while True:
                        message = await pubsub.get_message(timeout=30.0)
                        if message is not None and message.get("type") == "message":
                            self.deliver(auth_pb2.Invalidation.FromString(message["data"]))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # any failure of the subscription means "reconnect"
                if self._subscribed.is_set():
                    log.warning("invalidation subscription lost; caches bypassed until it is back",
                                extra={"error": repr(exc)})
                self._subscribed.clear()
                self.deliver(auth_pb2.Invalidation(everything=True))
                # Watchers (facade caches) must not trust a replica that no longer hears the others.
                self.end_streams()
                await asyncio.sleep(0.2)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
