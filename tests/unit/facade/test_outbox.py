"""The outbox journals every event before delivery, retries while billing is down, and replays dead facades."""

from __future__ import annotations

import asyncio
import fcntl
import os
from pathlib import Path

from switchboard.v1 import billing_pb2
from switchboard_facade.outbox import Outbox, read_journal


def event(i: int) -> billing_pb2.UsageEvent:
    return billing_pb2.UsageEvent(request_id=f"req_{i}", model="m")


async def test_events_survive_billing_being_down_and_are_delivered_once_back(tmp_path: Path) -> None:
    delivered: list[str] = []
    up = asyncio.Event()

    async def deliver(events: list[billing_pb2.UsageEvent]) -> None:
        if not up.is_set():
            raise ConnectionError("billing down")
        delivered.extend(e.request_id for e in events)

    box = Outbox(tmp_path, deliver, max_backoff_seconds=0.05)
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
    seed = Outbox(tmp_path, _never)
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

    async def deliver(events: list[billing_pb2.UsageEvent]) -> None:
        delivered.extend(e.request_id for e in events)

    box = Outbox(tmp_path, deliver)
    await box.start()
    for _ in range(100):
        if not dead.exists():
            break
        await asyncio.sleep(0.02)
    assert delivered == ["req_1", "req_2"]
    assert not dead.exists() and live.exists()
    await box.stop(1)
    os.close(fd)


async def _never(events: list[billing_pb2.UsageEvent]) -> None:
    raise ConnectionError("unreachable")
