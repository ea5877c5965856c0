"""The outbox journals every event before delivery, retries while billing is down, and replays dead facades."""

from __future__ import annotations

import asyncio
import fcntl
import os
from pathlib import Path

from switchboard.v1 import billing_pb2
from switchboard_billing.client.outbox import Outbox, read_journal, settle_batch_request


def event(i: int) -> billing_pb2.UsageEvent:
    return billing_pb2.UsageEvent(request_id=f"req_{i}", model="m")


def decoded(records: list[bytes]) -> list[billing_pb2.UsageEvent]:
    """What billing reads of a delivered batch: the outbox hands over the events as the journal encoded them."""
    return [billing_pb2.UsageEvent.FromString(record) for record in records]


def test_a_batch_of_journaled_events_is_the_settle_batch_request_protobuf_would_encode() -> None:
    """Events of every size (lengths of one, two and three varint bytes) and none at all: the bytes the outbox sends
    billing decode as the request, byte for byte what encoding the message itself gives."""
    events = [billing_pb2.UsageEvent(request_id=f"req_{i}", model="m" * size, tags=["t"] * (size // 50))
              for i, size in enumerate((0, 1, 100, 127, 128, 5_000, 20_000))]
    encoded = settle_batch_request([e.SerializeToString() for e in events])
    assert encoded == billing_pb2.SettleBatchRequest(events=events).SerializeToString()
    assert list(billing_pb2.SettleBatchRequest.FromString(encoded).events) == events
    assert settle_batch_request([]) == billing_pb2.SettleBatchRequest().SerializeToString()


async def test_events_survive_billing_being_down_and_are_delivered_once_back(tmp_path: Path) -> None:
    delivered: list[str] = []
    up = asyncio.Event()

    async def deliver(records: list[bytes]) -> None:
        events = decoded(records)
        if not up.is_set():
            raise ConnectionError("billing down")
        delivered.extend(e.request_id for e in events)

    box = Outbox(tmp_path, deliver, prefix="facade", max_backoff_seconds=0.05)
    await box.start()
    for i in range(5):
        box.put(event(i))
    await asyncio.sleep(0.1)
    assert delivered == [] and box.depth == 5
    journal = next(tmp_path.glob("facade-*.journal"))
    assert [e.request_id for e in read_journal(journal)] == [f"req_{i}" for i in range(5)]
    up.set()
    for _ in range(100):
        if box.depth == 0:
            break
        await asyncio.sleep(0.02)
    assert delivered == [f"req_{i}" for i in range(5)]
    assert journal.stat().st_size == 0, "a fully delivered journal is truncated"
    await box.stop(1)
    assert not list(tmp_path.glob("facade-*.journal"))


async def test_journal_of_a_dead_facade_is_replayed_and_a_live_ones_is_not(tmp_path: Path) -> None:
    seed = Outbox(tmp_path, _never, prefix="facade")
    await seed.start()
    seed.put(event(1))
    seed.put(event(2))
    dead = seed._path
    assert dead is not None
    os.close(seed._fd)  # the process "dies": its lock is released, the journal stays
    for task in (seed._task, seed._recovery):
        assert task is not None
        task.cancel()
    # A torn record at the end (crash mid-write) is ignored.
    with open(dead, "ab") as f:
        f.write(b"\x00\x00\x00\x50partial")
    live = tmp_path / "facade-1-alive.journal"
    fd = os.open(live, os.O_WRONLY | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    delivered: list[str] = []

    async def deliver(records: list[bytes]) -> None:
        events = decoded(records)
        delivered.extend(e.request_id for e in events)

    box = Outbox(tmp_path, deliver, prefix="facade")
    await box.start()
    for _ in range(100):
        if not dead.exists():
            break
        await asyncio.sleep(0.02)
    assert delivered == ["req_1", "req_2"]
    assert not dead.exists() and live.exists()
    await box.stop(1)
    os.close(fd)


async def _never(records: list[bytes]) -> None:
    raise ConnectionError("unreachable")


async def test_steady_traffic_is_delivered_in_batches_and_a_lone_event_promptly(tmp_path: Path) -> None:
    batches: list[list[str]] = []
    delivered_at: dict[str, float] = {}
    loop = asyncio.get_running_loop()

    async def deliver(records: list[bytes]) -> None:
        events = decoded(records)
        await asyncio.sleep(0.005)  # a billing round trip
        batches.append([e.request_id for e in events])
        delivered_at.update((e.request_id, loop.time()) for e in events)

    box = Outbox(tmp_path, deliver, prefix="facade", linger_seconds=0.05)
    await box.start()
    put_at = {}
    for i in range(200):  # ~1 000 events a second for 0.2 s
        put_at[f"req_{i}"] = loop.time()
        box.put(event(i))
        await asyncio.sleep(0.001)
    busy_for = loop.time() - put_at["req_0"]
    for _ in range(100):
        if box.depth == 0:
            break
        await asyncio.sleep(0.01)
    assert [r for b in batches for r in b] == [f"req_{i}" for i in range(200)], "all, in order, once"
    # One batch per linger, not one per billing round trip (that would be ten times as many).
    assert len(batches) <= busy_for / 0.05 + 2, f"{[len(b) for b in batches]} in {busy_for:.2f} s"
    assert max(delivered_at[r] - put_at[r] for r in put_at) < 0.5
    # Idle again: a lone event waits for company no longer than the linger.
    start = loop.time()
    box.put(event(999))
    for _ in range(100):
        if "req_999" in delivered_at:
            break
        await asyncio.sleep(0.005)
    assert 0.04 <= delivered_at["req_999"] - start < 0.5
    await box.stop(1)


async def test_a_full_batch_goes_without_waiting(tmp_path: Path) -> None:
    batches: list[int] = []

    async def deliver(records: list[bytes]) -> None:
        events = decoded(records)
        batches.append(len(events))

    box = Outbox(tmp_path, deliver, prefix="facade", batch_size=10, linger_seconds=10)
    await box.start()
    for i in range(25):
        box.put(event(i))
    for _ in range(50):
        if len(batches) >= 2:
            break
        await asyncio.sleep(0.01)
    assert batches == [10, 10], "full batches go at once; the 5 left wait for company"
    await box.stop(1)
    assert batches == [10, 10, 5], "stopping delivers what is left"


async def test_journal_segments_stay_bounded_under_traffic_and_survive_a_crash(tmp_path: Path) -> None:
    """Traffic that never lets the journal empty: writing moves to fresh segments and acknowledged ones are
    deleted; the segments of a facade that dies are all replayed by the next one."""
    delivered: list[str] = []
    gate = asyncio.Event()
    gate.set()

    async def deliver(records: list[bytes]) -> None:
        events = decoded(records)
        await gate.wait()
        await asyncio.sleep(0.002)
        delivered.extend(e.request_id for e in events)

    box = Outbox(tmp_path, deliver, prefix="facade", batch_size=8, linger_seconds=0.001, segment_bytes=200)
    await box.start()
    most_segments = 0
    for i in range(300):
        box.put(event(i))
        most_segments = max(most_segments, len(list(tmp_path.glob("facade-*.journal"))))
        await asyncio.sleep(0.0005)
    assert most_segments > 1, "a large segment with events waiting hands over to a fresh one"
    for _ in range(100):
        if box.depth == 0:
            break
        await asyncio.sleep(0.01)
    journals = list(tmp_path.glob("facade-*.journal"))
    assert len(journals) == 1 and journals[0].stat().st_size == 0, "acknowledged segments are deleted"
    # Billing stops answering; more events arrive; then the facade dies.
    gate.clear()
    await asyncio.sleep(0.05)
    for i in range(300, 340):
        box.put(event(i))
    await asyncio.sleep(0.02)
    assert box.depth > 0
    for task in (box._task, box._recovery):
        assert task is not None
        task.cancel()
    for segment in box._segments:
        os.close(segment.fd)  # the process is gone: its locks are released, its journal stays
    recovered: list[str] = []

    async def collect(records: list[bytes]) -> None:
        recovered.extend(e.request_id for e in decoded(records))

    successor = Outbox(tmp_path, collect, prefix="facade")
    await successor.start()
    for _ in range(100):
        if len(list(tmp_path.glob("facade-*.journal"))) == 1:  # the successor's own
            break
        await asyncio.sleep(0.02)
    assert set(delivered) | set(recovered) == {f"req_{i}" for i in range(340)}, "no event lost"
    assert len(recovered) == len(set(recovered))
    await successor.stop(1)


async def test_a_journal_segment_is_never_seen_unlocked_by_a_process_replaying_its_prefix(tmp_path: Path,
                                                                                           monkeypatch) -> None:
    """A process starting up replays every journal of its prefix whose lock is free, and deletes it. A segment
    another process is opening, if it had its journal name before its lock, would be taken for a dead one's and
    deleted under its writer (whose events would then survive no crash). Each time the outbox takes a lock, every
    journal in the directory is already locked by its writer: the first segment's, and the one a full segment
    hands over to."""
    real_flock = fcntl.flock
    unlocked: list[str] = []

    def flock_seen_by_a_replayer(fd: int, operation: int) -> None:
        if operation == fcntl.LOCK_EX:
            for journal in tmp_path.glob("facade-*.journal"):
                probe = os.open(journal, os.O_RDWR)
                try:
                    real_flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    unlocked.append(journal.name)
                except BlockingIOError:
                    pass  # its writer holds it: a replayer leaves it alone
                finally:
                    os.close(probe)
        real_flock(fd, operation)

    async def deliver(records: list[bytes]) -> None:
        await asyncio.Event().wait()  # billing never answers: the segment stays unacknowledged

    monkeypatch.setattr(fcntl, "flock", flock_seen_by_a_replayer)
    box = Outbox(tmp_path, deliver, prefix="facade", segment_bytes=50, linger_seconds=0.01)
    await box.start()
    for i in range(10):
        box.put(event(i))
    await asyncio.sleep(0.1)  # the batch goes: the full segment hands over to a fresh one first
    assert len(list(tmp_path.glob("facade-*.journal"))) > 1, "the full segments handed over to fresh ones"
    assert unlocked == []
    await box.stop(0.05)


async def test_a_file_a_dead_process_left_half_made_is_removed_and_a_live_ones_is_kept(tmp_path: Path) -> None:
    """A process that dies between creating a journal segment or an in-flight rewrite and giving it its name
    leaves a ``.new`` file nobody renames. The next process of its prefix deletes it once it is unlocked and old
    enough that no live writer can be about to rename it; a locked one, or a fresh one, is left alone."""
    abandoned, held, fresh = (tmp_path / f"facade-{name}.new" for name in ("dead-1a2b3c4d", "alive-5e6f", "new-7a8b"))
    for path in (abandoned, held, fresh):
        path.write_bytes(b"")
    for path in (abandoned, held):
        os.utime(path, (1, 1))  # long ago
    fd = os.open(held, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    other_prefix = tmp_path / "router-dead-9c0d.new"
    other_prefix.write_bytes(b"")
    os.utime(other_prefix, (1, 1))

    box = Outbox(tmp_path, _never, prefix="facade")
    await box.start()
    assert await box.recovered(2)
    assert not abandoned.exists()
    assert held.exists() and fresh.exists() and other_prefix.exists()
    await box.stop(0.05)
    os.close(fd)
