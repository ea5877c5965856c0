"""The databases cut under load and restored: clean 503s while they are down, nothing lost or twice after.

SQLite: another process holds the write lock of auth's and billing's files for
longer than a billing call may take (a disk that stalls, a backup holding the
lock). PostgreSQL: auth's and billing's databases stop accepting connections
and every open one is terminated (``pg_terminate_backend``), as a failover or
a restarted server does; then they accept connections again.

While they are down, a client gets a 200 (a key cached by the facade, money its
lease holds, usage waiting in an outbox) or a 503 in its dialect — never a 500,
never internal exception text; the key whose budget has no lease (every request
held by billing) gets its 503s. Afterwards every served call has one ledger
row, none is billed twice, no budget is overspent, and nothing stays held.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import sqlite3
import time
from collections import Counter
from collections.abc import Iterator

import psycopg
import pytest

from tests.faults.conftest import (
    ROUNDS,
    Load,
    Rig,
    by_request_id,
    clean_errors,
    fault_seed,
    ledger,
    wait_ready,
)

pytestmark = pytest.mark.slow

#: Seconds of load; the cut starts between CUT_AFTER seconds into it and lasts CUT_SECONDS (longer than a billing
#: call may take, 5 s, so calls that need the database fail rather than wait it out).
LOAD_SECONDS = 10.0
CUT_AFTER = (0.8, 1.5)
CUT_SECONDS = 6.0
SETTLE_SECONDS = 20.0
RELEASE_SECONDS = 15.0


@contextlib.contextmanager
def sqlite_locked(paths: list[str]) -> Iterator[None]:
    """Holds the write lock of each SQLite file (writers wait, then fail; readers go on, as WAL allows)."""
    connections = [sqlite3.connect(path, timeout=30, isolation_level=None) for path in paths]
    try:
        for conn in connections:
            conn.execute("BEGIN IMMEDIATE")
        yield
    finally:
        for conn in connections:
            conn.execute("ROLLBACK")
            conn.close()


@contextlib.contextmanager
def postgres_cut(dsns: list[str]) -> Iterator[None]:
    """Each database refuses new connections and loses its open ones until the block ends."""
    admin_dsn = dsns[0].rpartition("/")[0] + "/postgres"
    names = [dsn.rpartition("/")[2] for dsn in dsns]
    with psycopg.connect(admin_dsn, autocommit=True) as admin:
        for name in names:
            admin.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false')
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> "
                          "pg_backend_pid()", (name,))
        try:
            yield
        finally:
            for name in names:
                admin.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true')


def test_a_database_cut_under_load_loses_nothing_and_answers_clean_503s(rig: Rig) -> None:
    seed = fault_seed()
    for round_number in range(ROUNDS):
        rng = random.Random(seed * 1000 + round_number)  # each round replays alone, whatever the others drew
        cut_round(rig, rng, f"seed {seed}, round {round_number + 1} of {ROUNDS}")


def cut_round(rig: Rig, rng: random.Random, where: str) -> None:
    gw, fake = rig.gateway, rig.fake
    tag = f"cut-{time.monotonic_ns()}"
    plain = rig.key(f"{tag}-plain")
    roomy = rig.key(f"{tag}-roomy", max_budget_micros=5_000_000)
    tight = rig.key(f"{tag}-tight", max_budget_micros=20_000)
    keys = [plain, roomy, tight]
    begun_before = set(fake.begun)
    load = Load(gw.base_url, keys, rng)
    cut_after = rng.uniform(*CUT_AFTER)
    cut = sqlite_locked([rig.billing_db, rig.auth_db]) if rig.backend == "sqlite" else postgres_cut(
        [rig.billing_db, rig.auth_db])

    # A key made before the cut and first used during it: the facade has not cached it, so auth must read it.
    fresh = rig.key(f"{tag}-fresh")
    first_use = Load(gw.base_url, [fresh], rng)

    async def load_and_cut() -> tuple[float, float]:
        running = asyncio.create_task(load.run(LOAD_SECONDS))
        await asyncio.sleep(cut_after)
        with cut:
            began = time.monotonic()
            await asyncio.sleep(1)
            await first_use.run(0.01)
            await asyncio.sleep(max(0.0, began + CUT_SECONDS - time.monotonic()))
        ended = time.monotonic()
        await running
        return began, ended

    began, ended = asyncio.run(load_and_cut())
    wait_ready(gw.base_url)
    statuses = Counter(o.status for o in load.outcomes)
    print("key first used during the cut:", [(o.status, o.body[:200]) for o in first_use.outcomes])
    context = f"{where}: {rig.backend} cut {cut_after:.2f} s into the load for {CUT_SECONDS} s; answers " \
              f"{dict(statuses)}"

    wrong = clean_errors(load.outcomes + first_use.outcomes)
    assert not wrong, f"{context}: {wrong[:5]}"
    assert not [o for o in load.outcomes if o.status == 0], f"{context}: connections broke"
    # On PostgreSQL a call to the database fails at once; on SQLite it waits for the lock until billing's
    # client gives up (5 s): the tight key's requests sent in the first moments of the lock.
    last = ended - 0.5 if rig.backend == "postgres" else ended - 5.3
    during = [o for o in load.outcomes if o.key == tight and began + 0.2 < o.started < last]
    assert during and all(o.status == 503 and "billing" in o.body for o in during), \
        f"{context}: requests held by billing while its database was down: {[o.status for o in during]}"
    second_use = Load(gw.base_url, [fresh], rng)
    asyncio.run(second_use.run(0.01))
    assert [o.status for o in second_use.outcomes] == [200], f"{context}: the key used again after the cut"
    print("503 answers:", sorted({o.body[:300] for o in load.outcomes + first_use.outcomes if o.status == 503}))
    after = [o for o in load.outcomes if o.started > ended + 1.5]
    assert after and all(o.status == 200 for o in after), \
        f"{context}: after the cut: {[(o.status, o.body[:200]) for o in after if o.status != 200]}"

    loads = (load, first_use, second_use)
    whole = {o.request_id for each in loads for o in each.outcomes if o.complete}
    deadline = time.monotonic() + SETTLE_SECONDS
    while True:
        rows = ledger(rig, [*keys, fresh])
        billed = {r.response_id for r in rows}
        missing = [a for a in fake.served if a not in begun_before and a not in billed]
        missing += sorted(whole - {r.request_id for r in rows})
        if not missing or time.monotonic() > deadline:
            break
        time.sleep(0.25)
    begun = fake.begun - begun_before
    context += f", provider served {len(set(fake.served) & begun)}, ledger rows {len(rows)}"
    assert not missing, f"{context}: served and never billed: {missing}"
    served = set(fake.served) & begun
    mismatched = [wrong for each in loads for wrong in by_request_id(each, fake, rows, served)]
    assert not mismatched, f"{context}: {mismatched[:5]}"
    answer_rows = Counter(r.response_id for r in rows if r.response_id)
    assert not [a for a, n in answer_rows.items() if n > 1], f"{context}: provider answers billed twice"
    assert set(answer_rows) <= begun, f"{context}: rows for answers no provider began"
    assert all(r.status == "success" for r in rows if r.request_id in whole), context
    for key in (roomy, tight):
        spent = sum(r.cost_micros for r in rows if r.key_id == key.key_id)
        assert key.max_budget_micros is not None and spent <= key.max_budget_micros, \
            f"{context}: key {key.key_id} spent {spent} µ$ of a {key.max_budget_micros} µ$ budget"

    deadline = ended + RELEASE_SECONDS
    held = asyncio.run(rig.held_micros(roomy))
    while held and time.monotonic() < deadline:
        time.sleep(0.25)
        held = asyncio.run(rig.held_micros(roomy))
    assert held == 0, f"{context}: {held} µ$ still held for the key with nothing in flight"
