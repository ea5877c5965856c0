"""Progress records of calls still running: the next process bills a call its dead predecessor left running as the
last record, unless the call's final event was journaled; the in-flight file stays small."""

from __future__ import annotations

import asyncio
import fcntl
import os
import struct
from pathlib import Path

from switchboard.v1 import billing_pb2
from switchboard_billing.client.outbox import Outbox


def final(request_id: str, tokens: int) -> billing_pb2.UsageEvent:
    event = billing_pb2.UsageEvent(request_id=request_id, model="m", status="success", http_status=200)
    event.usage.completion_tokens = tokens
    return event


def so_far(request_id: str, tokens: int) -> billing_pb2.UsageEvent:
    event = billing_pb2.UsageEvent(request_id=request_id, model="m", status="cancelled", http_status=499,
                                   error_code="router_lost")
    event.usage.completion_tokens = tokens
    return event


async def _billing_down(records: list[bytes]) -> None:
    raise ConnectionError("unreachable")


def die(box: Outbox) -> None:
    """The process is killed: its tasks stop, its locks are released, its files stay."""
    for task in (box._task, box._recovery):
        assert task is not None
        task.cancel()
    for segment in box._segments:
        os.close(segment.fd)
    if box._inflight is not None:
        os.close(box._inflight.fd)


async def dead_box(directory: Path) -> Outbox:
    """A router whose billing is unreachable, so that what it journals stays in its journal."""
    box = Outbox(directory, _billing_down, prefix="router", max_backoff_seconds=0.05)
    await box.start()
    return box


async def replayed(directory: Path) -> list[billing_pb2.UsageEvent]:
    """What the next router delivers of what dead ones left, once its recovery is over."""
    delivered: list[billing_pb2.UsageEvent] = []

    async def deliver(records: list[bytes]) -> None:
        delivered.extend(billing_pb2.UsageEvent.FromString(record) for record in records)

    successor = Outbox(directory, deliver, prefix="router")
    await successor.start()
    assert await successor.recovered(5)
    await successor.stop(1)
    return delivered


async def test_a_journaled_final_event_supersedes_the_progress_records_of_its_call(tmp_path: Path) -> None:
    box = await dead_box(tmp_path)
    box.progress(so_far("req_a", 3))
    box.progress(so_far("req_b", 1))  # still running when the process dies: its records stay in the file
    box.progress(so_far("req_a", 8))
    box.put(final("req_a", 10))
    die(box)
    assert [(e.request_id, e.status, e.usage.completion_tokens) for e in await replayed(tmp_path)] == [
        ("req_a", "success", 10), ("req_b", "cancelled", 1)], "the final event only, before any progress record"
    assert list(tmp_path.iterdir()) == []


async def test_a_call_left_running_is_billed_as_its_last_progress_record(tmp_path: Path) -> None:
    box = await dead_box(tmp_path)
    box.progress(so_far("req_a", 2))
    die(box)
    delivered = await replayed(tmp_path)
    assert [(e.request_id, e.error_code, e.usage.completion_tokens) for e in delivered] == [
        ("req_a", "router_lost", 2)]
    assert list(tmp_path.iterdir()) == []


async def test_only_the_latest_of_several_progress_records_is_billed(tmp_path: Path) -> None:
    box = await dead_box(tmp_path)
    for tokens in (1, 5, 9):
        box.progress(so_far("req_a", tokens))
        box.progress(so_far("req_b", tokens * 10))
    box.progress(so_far("req_a", 12))
    die(box)
    delivered = await replayed(tmp_path)
    assert sorted((e.request_id, e.usage.completion_tokens) for e in delivered) == [("req_a", 12), ("req_b", 90)]


async def test_a_torn_last_progress_record_is_ignored(tmp_path: Path) -> None:
    box = await dead_box(tmp_path)
    box.progress(so_far("req_a", 4))
    assert box._inflight is not None
    inflight = box._inflight.path
    die(box)
    payload = so_far("req_a", 7).SerializeToString()
    with open(inflight, "ab") as f:  # killed in the middle of writing the next record
        f.write(struct.pack(">I", len(payload)) + payload[: len(payload) // 2])
    delivered = await replayed(tmp_path)
    assert [(e.request_id, e.usage.completion_tokens) for e in delivered] == [("req_a", 4)]


async def test_a_live_process_delivers_no_progress_record_nor_lets_another_deliver_it(tmp_path: Path) -> None:
    delivered: list[str] = []

    async def deliver(records: list[bytes]) -> None:
        delivered.extend(billing_pb2.UsageEvent.FromString(r).error_code or "final" for r in records)

    box = Outbox(tmp_path, deliver, prefix="router", linger_seconds=0.001)
    await box.start()
    box.progress(so_far("req_a", 1))
    box.progress(so_far("req_b", 1))
    box.put(final("req_b", 2))
    assert await replayed(tmp_path) == [], "a live process's records are its own"
    for _ in range(100):
        if box.depth == 0:
            break
        await asyncio.sleep(0.01)
    assert delivered == ["final"]
    await box.stop(1)
    assert delivered == ["final"]
    assert [p.suffix for p in tmp_path.iterdir()] == [".inflight"], "a call still running stays recorded"


async def test_the_in_flight_file_stays_small_under_sustained_streaming(tmp_path: Path) -> None:
    """Streams that overlap, so that some call is always in flight, each recorded many times: the file is rewritten
    with the latest records only; once none is in flight it is empty, and a clean stop deletes it."""
    async def deliver(records: list[bytes]) -> None:
        pass

    box = Outbox(tmp_path, deliver, prefix="router", progress_bytes=4096)
    await box.start()
    largest = 0
    for i in range(2000):
        box.progress(so_far(f"req_{i}", 0))
        for tokens in range(1, 4):
            box.progress(so_far(f"req_{i}", tokens))
            box.progress(so_far(f"req_{i - 1}", tokens + 3))
        box.put(final(f"req_{i - 1}", 10))
        assert box._inflight is not None
        largest = max(largest, box._inflight.path.stat().st_size)
    assert largest <= 4096 + 100, f"{largest} bytes"
    box.put(final("req_1999", 10))
    assert box._inflight is not None
    assert box._inflight.path.stat().st_size == 0, "nothing in flight: emptied"
    await box.stop(1)
    assert list(tmp_path.iterdir()) == []


async def test_progress_records_wait_for_a_journal_another_process_is_replaying(tmp_path: Path) -> None:
    """The final event of a call is in its dead process's journal, which another process is replaying: the call's
    progress record is not delivered meanwhile, nor after."""
    box = await dead_box(tmp_path)
    box.progress(so_far("req_a", 3))
    box.progress(so_far("req_b", 1))
    box.put(final("req_a", 10))
    journal = box._segments[-1].path
    die(box)
    other = os.open(journal, os.O_RDWR)
    fcntl.flock(other, fcntl.LOCK_EX)  # another process replays it
    delivered: list[str] = []

    async def deliver(records: list[bytes]) -> None:
        delivered.extend(billing_pb2.UsageEvent.FromString(r).error_code or "final" for r in records)

    successor = Outbox(tmp_path, deliver, prefix="router")
    await successor.start()
    assert not await successor.recovered(0.3)
    assert delivered == []
    journal.unlink()  # that process delivered it
    os.close(other)
    assert await successor.recovered(5)
    assert delivered == ["router_lost"], \
        "the final event was delivered by the other process: its call's progress record never is; the other's is"
    await successor.stop(1)
    assert list(tmp_path.iterdir()) == []
