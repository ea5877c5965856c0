"""Durable delivery of usage events from this facade to billing (the outbox).

Every finished request appends its usage event to this process's journal file
(one ``write`` of a length-prefixed protobuf — no fsync: a crashed process
loses nothing the kernel has taken) before anything else happens to it; a
background task delivers events to billing in batches (the first event of a
batch lingers a few milliseconds so that busy traffic settles many requests per
billing transaction) and truncates the
journal once everything written has been acknowledged. If billing is down,
events wait on disk and in memory and are retried with backoff. On start, a
facade replays the journals of facades that died (their file lock is free);
billing's idempotency by request id makes at-least-once delivery exactly-once
in the ledger.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import secrets
import struct
from collections.abc import Awaitable, Callable
from pathlib import Path

from switchboard.v1 import billing_pb2

log = logging.getLogger(__name__)

_LEN = struct.Struct(">I")
Deliver = Callable[[list[billing_pb2.UsageEvent]], Awaitable[None]]


def read_journal(path: Path) -> list[billing_pb2.UsageEvent]:
    """Reads every complete record of a journal; a torn last record is ignored."""
    data = path.read_bytes()
    events: list[billing_pb2.UsageEvent] = []
    pos = 0
    while pos + _LEN.size <= len(data):
        (size,) = _LEN.unpack_from(data, pos)
        end = pos + _LEN.size + size
        if end > len(data):
            break
        events.append(billing_pb2.UsageEvent.FromString(data[pos + _LEN.size:end]))
        pos = end
    return events


class Outbox:
    def __init__(self, directory: Path, deliver: Deliver, batch_size: int = 256,
                 max_backoff_seconds: float = 5.0, linger_seconds: float = 0.05) -> None:
        self.directory = directory
        self.deliver = deliver
        self.batch_size = batch_size
        self.max_backoff = max_backoff_seconds
        #: How long the first event of a batch waits for company: one billing transaction settles many requests.
        self.linger_seconds = linger_seconds
        self._pending: list[billing_pb2.UsageEvent] = []
        self._wake = asyncio.Event()
        self._fd = -1
        self._path: Path | None = None
        self._task: asyncio.Task[None] | None = None
        self._recovery: asyncio.Task[None] | None = None
        self._closing = False
        self.delivered = 0

    @property
    def depth(self) -> int:
        """Events written but not yet acknowledged by billing."""
        return len(self._pending)

    async def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._path = self.directory / f"facade-{os.getpid()}-{secrets.token_hex(4)}.journal"
        self._fd = os.open(self._path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        self._task = asyncio.get_running_loop().create_task(self._run())
        self._recovery = asyncio.get_running_loop().create_task(self._recover())

    def put(self, event: billing_pb2.UsageEvent) -> None:
        """Journals the event, then queues it for delivery. Never blocks on billing."""
        payload = event.SerializeToString()
        os.write(self._fd, _LEN.pack(len(payload)) + payload)
        self._pending.append(event)
        self._wake.set()

    async def _run(self) -> None:
        backoff = 0.1
        while True:
            if not self._pending:
                if self._closing:
                    return
                self._wake.clear()
                await self._wake.wait()
                if self.linger_seconds > 0 and not self._closing and len(self._pending) < self.batch_size:
                    await asyncio.sleep(self.linger_seconds)
                continue
            batch = self._pending[: self.batch_size]
            try:
                await self.deliver(batch)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # billing down or failing: keep the events and retry
                log.warning("usage delivery failed; will retry", extra={"error": str(exc), "depth": self.depth})
                if self._closing:
                    return
                await asyncio.sleep(backoff)
                backoff = min(self.max_backoff, backoff * 2)
                continue
            backoff = 0.1
            del self._pending[: len(batch)]
            self.delivered += len(batch)
            if not self._pending:
                os.ftruncate(self._fd, 0)

    async def _recover(self) -> None:
        """Replays journals left by facades that are no longer running."""
        for path in sorted(self.directory.glob("facade-*.journal")):
            if path == self._path:
                continue
            try:
                fd = os.open(path, os.O_RDWR)
            except FileNotFoundError:
                continue
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # its facade is alive and delivers them itself
                events = read_journal(path)
                backoff = 0.1
                for start in range(0, len(events), self.batch_size):
                    while True:
                        try:
                            await self.deliver(events[start:start + self.batch_size])
                            break
                        except asyncio.CancelledError:
                            raise
                        except Exception as exc:
                            log.warning("replay of usage journal failed; will retry",
                                        extra={"journal": path.name, "error": str(exc)})
                            await asyncio.sleep(backoff)
                            backoff = min(self.max_backoff, backoff * 2)
                if events:
                    log.info("replayed usage journal", extra={"journal": path.name, "events": len(events)})
                path.unlink(missing_ok=True)
            finally:
                os.close(fd)

    async def stop(self, timeout: float) -> None:
        """Tries to deliver what is pending within ``timeout``; what is left stays journaled."""
        self._closing = True
        self._wake.set()
        for task in (self._task, self._recovery):
            if task is None:
                continue
            try:
                await asyncio.wait_for(task, timeout)
            except (TimeoutError, asyncio.CancelledError):
                task.cancel()
        if self._fd >= 0:
            empty = not self._pending
            os.close(self._fd)
            self._fd = -1
            if empty and self._path is not None:
                self._path.unlink(missing_ok=True)
