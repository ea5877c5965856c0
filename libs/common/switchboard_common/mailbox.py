"""A single reader's mailbox: writers put without waiting, the reader waits for mail and takes what it wants.

A stream's writer task (the router Exchange's, on both ends) sends what other tasks queued for it. With
``asyncio.Queue`` it could only take items one at a time, blindly; the mailbox hands it the waiting items
themselves, so it can look at the next one before taking it (to batch what fits in one message and leave the
rest), and it costs one future per wait instead of the queue's getter and putter bookkeeping.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")


class Mailbox(Generic[T]):
    """Items in the order they were put, for one reader task at a time."""

    __slots__ = ("items", "_waiter")

    def __init__(self) -> None:
        #: The items not taken yet; the reader pops from the left.
        self.items: deque[T] = deque()
        self._waiter: asyncio.Future[None] | None = None

    def put(self, item: T) -> None:
        """Adds ``item`` and wakes the reader if it waits."""
        self.items.append(item)
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    async def wait(self) -> deque[T]:
        """The items, once there is at least one; the reader takes (pops) what it handles."""
        items = self.items
        while not items:
            waiter = self._waiter = asyncio.get_running_loop().create_future()
            try:
                await waiter
            finally:
                if self._waiter is waiter:
                    self._waiter = None
        return items
