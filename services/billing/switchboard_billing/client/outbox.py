"""Durable delivery of usage events to billing (the outbox), for every service that settles usage.

The router settles every call it served; the facade settles the calls the
router never answered. Each keeps an outbox: every finished request appends its
usage event to this process's journal file
(one ``write`` of a length-prefixed protobuf — no fsync: a crashed process
loses nothing the kernel has taken) before anything else happens to it; a
background task delivers events to billing in batches, as the bytes the journal
holds (an event is encoded once, when it is journaled). A batch goes when its
oldest event has waited ``linger_seconds`` (50 ms) or it is full, so that busy
traffic settles many requests per billing transaction — a few hundred requests
a second make batches of tens — and a lone request waits no longer than that.
The journal is a series of segment files: a segment is truncated once every
event written to it is acknowledged, and when it passes ``segment_bytes`` under
sustained traffic (which never leaves it empty) new events go to a fresh one and
the old one is deleted once its events are acknowledged. If billing is down,
events wait on disk and in memory and are retried with backoff. On start, a
process replays the journals its kind's processes left when they died (their
file lock is free); billing's idempotency by request id makes at-least-once
delivery exactly-once in the ledger.

Calls still running have *progress records* instead (:meth:`Outbox.progress`,
:mod:`~switchboard_billing.client.progress`): a process that dies mid-stream
leaves, for each such call with no final event in its journals, the usage it
last recorded, which the next process delivers once that process's journals are
delivered — never before or instead of a journaled final event, since billing
keeps the first event of a request id.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import secrets
import struct
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from google.protobuf.message import DecodeError

from switchboard.v1 import billing_pb2
from switchboard_billing.client.progress import (
    INFLIGHT_SUFFIX,
    NEW_SUFFIX,
    InflightFile,
    locked_file,
    remove_abandoned,
)

log = logging.getLogger(__name__)

_LEN = struct.Struct(">I")
#: Sends a batch of events, each as its encoded ``UsageEvent`` (the journal's record), to billing.
Deliver = Callable[[list[bytes]], Awaitable[None]]


_SETTLE_BATCH = billing_pb2.DESCRIPTOR.services_by_name["Billing"].methods_by_name["SettleBatch"]
#: The gRPC path of SettleBatch, for a call that sends its request already encoded.
SETTLE_BATCH_METHOD = f"/{_SETTLE_BATCH.containing_service.full_name}/{_SETTLE_BATCH.name}"
#: The key of one element of ``SettleBatchRequest.events`` on the wire (its field number, length-delimited).
_EVENT_KEY = bytes([billing_pb2.SettleBatchRequest.DESCRIPTOR.fields_by_name["events"].number << 3 | 2])


def settle_batch_request(events: list[bytes]) -> bytes:
    """The encoded ``SettleBatchRequest`` of encoded events: a repeated message field is each element's key,
    length and bytes, one after another, so the events the journal holds are sent as they are."""
    parts = []
    for event in events:
        parts.append(_EVENT_KEY)
        parts.append(_varint(len(event)))
        parts.append(event)
    return b"".join(parts)


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def journal_records(path: Path) -> list[bytes]:
    """Every complete record of a journal (an encoded ``UsageEvent`` each); a torn last record is ignored."""
    data = path.read_bytes()
    records: list[bytes] = []
    pos = 0
    while pos + _LEN.size <= len(data):
        (size,) = _LEN.unpack_from(data, pos)
        end = pos + _LEN.size + size
        if end > len(data):
            break
        records.append(data[pos + _LEN.size:end])
        pos = end
    return records


def read_journal(path: Path) -> list[billing_pb2.UsageEvent]:
    """The events of a journal (or an in-flight file), decoded (to look at one; delivery sends the records as
    they are)."""
    return [billing_pb2.UsageEvent.FromString(record) for record in journal_records(path)]


def _remove(path: Path) -> None:
    """Deletes a file (a small local file system call, like the journal's writes)."""
    path.unlink(missing_ok=True)


def _request_id(record: bytes) -> str:
    """The request id of a journal's or in-flight file's record ("" for bytes that are not an event)."""
    try:
        return billing_pb2.UsageEvent.FromString(record).request_id
    except DecodeError:
        return ""


def _request_ids(records: list[bytes]) -> set[str]:
    return {_request_id(record) for record in records}


@dataclass(slots=True)
class _Segment:
    """One journal file of this process, locked while it is open."""

    path: Path
    fd: int
    #: Bytes written since it was created or last truncated.
    size: int = 0
    #: Events written to it and not acknowledged by billing yet.
    unacked: int = 0


class Outbox:
    def __init__(self, directory: Path, deliver: Deliver, batch_size: int = 256,
                 max_backoff_seconds: float = 5.0, linger_seconds: float = 0.05,
                 segment_bytes: int = 1 << 20, progress_bytes: int = 1 << 18, *, prefix: str) -> None:
        self.directory = directory
        #: Journal files are named ``<prefix>-<instance>-<random>.journal`` and the in-flight file
        #: ``<prefix>-<instance>.inflight``; a process replays its prefix's only.
        self.prefix = prefix
        #: This process's part of its files' names (its pid, and a random part: a pid is reused).
        self.instance = f"{os.getpid()}-{secrets.token_hex(4)}"
        self.deliver = deliver
        self.batch_size = batch_size
        self.max_backoff = max_backoff_seconds
        #: How long the oldest event of a batch waits for company: one billing transaction settles many requests.
        self.linger_seconds = linger_seconds
        #: Size past which new events go to a fresh journal segment (while the current one still has some
        #: waiting), so the journal stays bounded under sustained traffic.
        self.segment_bytes = segment_bytes
        #: Size past which the in-flight file is rewritten with only the latest record of each running call.
        self.progress_bytes = progress_bytes
        #: Progress records of the calls running here; made with the first one.
        self._inflight: InflightFile | None = None
        #: Encoded events journaled and not yet acknowledged, oldest first.
        self._pending: list[bytes] = []
        #: Loop time at which the oldest event not yet taken into a batch was put; None when there is none.
        self._gathering_since: float | None = None
        self._wake = asyncio.Event()
        #: Journal segments, oldest first; events are written to the last one.
        self._segments: deque[_Segment] = deque()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._recovery: asyncio.Task[None] | None = None
        self._closing = False
        self.delivered = 0

    @property
    def depth(self) -> int:
        """Events written but not yet acknowledged by billing."""
        return len(self._pending)

    @property
    def _path(self) -> Path | None:
        """The segment new events are written to."""
        return self._segments[-1].path if self._segments else None

    @property
    def _fd(self) -> int:
        return self._segments[-1].fd if self._segments else -1

    async def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._loop = asyncio.get_running_loop()
        self._segments.append(self._open_segment())
        self._task = self._loop.create_task(self._run())
        self._recovery = self._loop.create_task(self._recover())

    async def recovered(self, timeout: float) -> bool:
        """Waits up to ``timeout`` for the journals left by dead processes to be delivered (the router waits
        before it listens, so that no hold is granted against money a replay is about to charge); whether they
        were. Delivery goes on in the background either way."""
        if self._recovery is None:
            return True
        done, _ = await asyncio.wait((self._recovery,), timeout=timeout)
        return bool(done)

    def _open_segment(self) -> _Segment:
        """A new journal segment, locked before it has its journal name: a process replaying this prefix's
        journals would otherwise find it unlocked, take it for a dead process's, and delete it under the writer."""
        path = self.directory / f"{self.prefix}-{self.instance}-{secrets.token_hex(4)}.journal"
        return _Segment(path, locked_file(path, b""))

    def put(self, event: billing_pb2.UsageEvent) -> None:
        """Journals the event, then queues it for delivery. Never blocks on billing."""
        payload = event.SerializeToString()
        record = _LEN.pack(len(payload)) + payload
        segment = self._segments[-1]
        os.write(segment.fd, record)
        segment.size += len(record)
        segment.unacked += 1
        self._pending.append(payload)
        if self._inflight is not None and self._inflight.running:
            self._inflight.ended(event.request_id)  # after its final event is journaled
        if self._gathering_since is None:
            assert self._loop is not None
            self._gathering_since = self._loop.time()
            self._wake.set()
        elif len(self._pending) >= self.batch_size:
            self._wake.set()

    def progress(self, event: billing_pb2.UsageEvent) -> None:
        """Records the usage so far of a call still running, superseding its earlier progress records; its final
        event (:meth:`put`) supersedes them all. Never delivered by this process: if it dies before the call's
        final event is journaled, the next process of its kind delivers the last one."""
        if self._closing:
            return
        try:
            if self._inflight is None:
                self._inflight = InflightFile(self.directory / f"{self.prefix}-{self.instance}{INFLIGHT_SUFFIX}",
                                              self.progress_bytes)
            self._inflight.record(event.request_id, event.SerializeToString())
        except OSError as exc:  # a disk that is full: the call goes on, only its crash insurance is stale
            log.warning("progress record not written; if this process dies, the call is billed as of its last one",
                        extra={"request_id": event.request_id, "error": str(exc)})

    async def _run(self) -> None:
        assert self._loop is not None
        backoff = 0.1
        while True:
            if not self._pending:
                if self._closing:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            if self._gathering_since is not None and len(self._pending) < self.batch_size and not self._closing:
                left = self._gathering_since + self.linger_seconds - self._loop.time()
                if left > 0:
                    self._wake.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), left)
                    continue
            batch = self._pending[: self.batch_size]
            if len(batch) == len(self._pending):
                self._gathering_since = None  # events put from now on gather for the next batch
            self._rotate_if_large()
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
            self._acknowledge(len(batch))

    def _rotate_if_large(self) -> None:
        """Starts a fresh segment when the current one is large and still holds events waiting for billing."""
        current = self._segments[-1]
        if current.size >= self.segment_bytes and current.unacked:
            self._segments.append(self._open_segment())

    def _acknowledge(self, count: int) -> None:
        """Marks the oldest ``count`` events delivered: a segment left with none is deleted, or truncated if
        it is the one being written."""
        while count and self._segments:
            segment = self._segments[0]
            done = min(count, segment.unacked)
            segment.unacked -= done
            count -= done
            if segment.unacked:
                break
            if len(self._segments) > 1:
                self._segments.popleft()
                segment.path.unlink(missing_ok=True)
                os.close(segment.fd)
            else:
                os.ftruncate(segment.fd, 0)
                segment.size = 0
                break

    async def _recover(self) -> None:
        """Replays the journals, then the progress records, left by processes of this prefix that are no longer
        running."""
        settled: set[str] = set()
        for path in sorted(self.directory.glob(f"{self.prefix}-*.journal")):
            if any(path == segment.path for segment in self._segments):
                continue
            settled |= await self._replay_journal(path, wait=False)
        for path in sorted(self.directory.glob(f"{self.prefix}-*{INFLIGHT_SUFFIX}")):
            if self._inflight is None or path != self._inflight.path:
                await self._replay_progress(path, settled)
        if removed := remove_abandoned(self.directory, self.prefix):
            log.info("removed files a dead process left half made", extra={"files": removed})

    async def _replay_journal(self, path: Path, *, wait: bool) -> set[str]:
        """Delivers a dead process's journal and deletes it; the request ids it held. Skipped when its lock is
        taken (its process is alive, or another is replaying it), unless ``wait``: then once that other process
        is done (or has died), the journal is replayed here if it is still there."""
        try:
            fd = os.open(path, os.O_RDWR)
        except FileNotFoundError:
            return set()
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if not wait:
                        return set()  # its process is alive and delivers them itself
                    await asyncio.sleep(0.05)
            if os.fstat(fd).st_nlink == 0:
                return set()  # replayed by another process meanwhile
            events = journal_records(path)
            await self._deliver_all(events, path.name)
            if events:
                log.info("replayed usage journal", extra={"journal": path.name, "events": len(events)})
            _remove(path)
            return _request_ids(events)
        finally:
            os.close(fd)

    async def _replay_progress(self, path: Path, settled: set[str]) -> None:
        """Bills each call a dead process left running as its last progress record, unless the call's final event
        is in that process's journals: those are delivered first (here, or by whoever is replaying them)."""
        instance = path.name[len(self.prefix) + 1:-len(INFLIGHT_SUFFIX)]
        try:
            fd = os.open(path, os.O_RDWR)
        except FileNotFoundError:
            return
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return  # its process is alive, or another process is replaying it
            if os.fstat(fd).st_nlink == 0:
                return
            latest: dict[str, bytes] = {}
            for record in journal_records(path):
                if request_id := _request_id(record):
                    latest[request_id] = record
            for journal in sorted(self.directory.glob(f"{self.prefix}-{instance}-*.journal")):
                with contextlib.suppress(FileNotFoundError):
                    settled |= _request_ids(journal_records(journal))  # read before another replayer deletes it
                settled |= await self._replay_journal(journal, wait=True)
            lost = [record for request_id, record in latest.items() if request_id not in settled]
            await self._deliver_all(lost, path.name)
            if lost:
                log.warning("billed calls a dead process left running, from their last progress record",
                            extra={"inflight": path.name, "events": len(lost)})
            _remove(path)
            _remove(path.with_suffix(NEW_SUFFIX))  # a rewrite it did not finish
        finally:
            os.close(fd)

    async def _deliver_all(self, events: list[bytes], name: str) -> None:
        """Delivers a dead process's events in batches, retrying each with backoff until billing takes it."""
        backoff = 0.1
        for start in range(0, len(events), self.batch_size):
            while True:
                try:
                    await self.deliver(events[start:start + self.batch_size])
                    break
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    log.warning("replay of usage journal failed; will retry", extra={"journal": name,
                                                                                     "error": str(exc)})
                    await asyncio.sleep(backoff)
                    backoff = min(self.max_backoff, backoff * 2)

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
        empty = not self._pending
        while self._segments:
            segment = self._segments.popleft()
            if empty or not segment.unacked:
                segment.path.unlink(missing_ok=True)
            os.close(segment.fd)
        if self._inflight is not None:  # last: a process replaying it waits for the journals first
            self._inflight.close()
            self._inflight = None
