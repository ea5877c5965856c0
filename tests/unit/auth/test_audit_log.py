"""Auth's audit log on SQLite and PostgreSQL: the hash chain catches an edited, deleted, inserted or cut-off row;
pruning keeps it verifiable through its checkpoint; a change and its row commit together (a refused write leaves
neither); and two auth replicas appending at once on PostgreSQL never fork the chain."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import time
from collections.abc import AsyncIterator
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa

from switchboard_auth.models import VirtualKey
from switchboard_auth.store import AUDIT, Conflict, KeyStore
from switchboard_common import audit_chain
from switchboard_common.audit_chain import Change, Query
from switchboard_common.audit_origin import Origin
from switchboard_common.database import default_sqlite_dsn, make_engine

POSTGRES_URL = os.environ.get("SWITCHBOARD_TEST_POSTGRES_URL", "")


def _fresh_postgres() -> tuple[str, str]:
    name = "sb_audit_" + secrets.token_hex(6)
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return POSTGRES_URL.rpartition("/")[0] + "/" + name, name


def _drop_postgres(name: str) -> None:
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgres"])
async def dsn(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield default_sqlite_dsn(tmp_path, "auth.db")
        return
    if not POSTGRES_URL:
        pytest.skip("SWITCHBOARD_TEST_POSTGRES_URL is not set (e.g. postgresql://postgres@127.0.0.1:5432/test)")
    url, name = _fresh_postgres()
    yield url
    _drop_postgres(name)


def change(n: int, action: str = "key.update") -> Change:
    return Change("master", "master", "", action, "key", f"key_{n}", {"rpm_limit": n}, {"rpm_limit": n + 1},
                  Origin(f"req_{n}", "203.0.113.7", "test/1.0", "api"))


async def store_with_rows(dsn: str, rows: int) -> KeyStore:
    store = KeyStore(make_engine(dsn))
    await store.migrate()
    for n in range(1, rows + 1):
        await store.commit(change(n))
    return store


async def execute(store: KeyStore, sql: str, **params: object) -> None:
    async with store.engine.begin() as conn:
        await conn.execute(sa.text(sql), params)


async def test_an_untouched_chain_verifies_and_every_row_links_to_the_one_before(dsn: str) -> None:
    store = await store_with_rows(dsn, 5)
    check = await audit_chain.verify(store.engine, AUDIT)
    assert check.ok and check.rows_checked == 5 and check.head_seq == 5
    rows = list(reversed(await audit_chain.query(store.engine, AUDIT, Query(limit=10))))
    assert [r["seq"] for r in rows] == [1, 2, 3, 4, 5]
    assert rows[0]["prev_hash"] == "" and all(b["prev_hash"] == a["hash"] for a, b in zip(rows, rows[1:], strict=False))
    assert check.head_hash == rows[-1]["hash"]
    assert rows[2]["client_ip"] == "203.0.113.7" and rows[2]["request_id"] == "req_3"
    await store.close()


@pytest.mark.parametrize("tamper, broken", [
    ("UPDATE auth_audit_log SET after_json = '{}' WHERE seq = 3", 3),
    ("UPDATE auth_audit_log SET actor_key_id = 'key_someone_else' WHERE seq = 2", 2),
    ("UPDATE auth_audit_log SET at_ms = at_ms - 1000 WHERE seq = 4", 4),
    ("DELETE FROM auth_audit_log WHERE seq = 3", 4),
    ("DELETE FROM auth_audit_log WHERE seq = 1", 2),
    ("DELETE FROM auth_audit_log WHERE seq = 5", 0),
])
async def test_a_changed_or_deleted_row_breaks_the_chain_at_that_row(dsn: str, tamper: str, broken: int) -> None:
    store = await store_with_rows(dsn, 5)
    await execute(store, tamper)
    check = await audit_chain.verify(store.engine, AUDIT)
    assert not check.ok and check.first_broken_seq == broken, check
    assert check.reason
    await store.close()


async def test_a_row_rewritten_with_a_fresh_hash_is_caught_at_the_next_row(dsn: str) -> None:
    store = await store_with_rows(dsn, 4)
    row = (await audit_chain.query(store.engine, AUDIT, Query(target_id="key_2")))[0]
    forged = {**row, "after_json": '{"rpm_limit":1000000}'}
    await execute(store, "UPDATE auth_audit_log SET after_json = :a, hash = :h WHERE seq = 2",
                  a=forged["after_json"], h=audit_chain.row_hash(row["prev_hash"], forged))
    check = await audit_chain.verify(store.engine, AUDIT)
    assert not check.ok and check.first_broken_seq == 3 and "row 2" in check.reason
    await store.close()


async def test_pruning_keeps_the_chain_verifiable_and_deleting_old_rows_by_hand_does_not(dsn: str) -> None:
    store = await store_with_rows(dsn, 6)
    await execute(store, "UPDATE auth_audit_log SET at_ms = 1000 WHERE seq <= 4")  # old rows...
    # ...whose hashes no longer match: a real clock never goes back, so prune a copy made the honest way.
    await store.close()
    store = KeyStore(make_engine(dsn))
    async with store.engine.begin() as conn:
        await conn.execute(sa.text("DELETE FROM auth_audit_log"))
        await conn.execute(sa.text("UPDATE auth_audit_head SET seq = 0, hash = ''"))
    for n in range(1, 7):
        async with store.engine.begin() as conn:
            await audit_chain.append(conn, AUDIT, change(n), now_ms=1000 if n <= 4 else int(time.time() * 1000))
    assert await audit_chain.prune(store.engine, AUDIT, older_than_ms=2000) == 4
    check = await audit_chain.verify(store.engine, AUDIT)
    assert check.ok and check.rows_checked == 3 and check.head_seq == 7, check
    checkpoint = (await audit_chain.query(store.engine, AUDIT, Query(action="audit.prune")))[0]
    assert json.loads(checkpoint["after_json"])["pruned_through_seq"] == 4
    assert await audit_chain.prune(store.engine, AUDIT, older_than_ms=2000) == 0  # nothing old: no new row
    await store.commit(change(8))
    assert (await audit_chain.verify(store.engine, AUDIT)).ok
    # Rows deleted without a checkpoint that records them: caught.
    await execute(store, "DELETE FROM auth_audit_log WHERE seq <= 5")
    check = await audit_chain.verify(store.engine, AUDIT)
    assert not check.ok and check.first_broken_seq == 6 and "deleted" in check.reason
    await store.close()


async def test_a_refused_write_leaves_neither_the_change_nor_its_row(dsn: str) -> None:
    store = await store_with_rows(dsn, 1)
    await store.commit(change(2, "key.create"), insert=[VirtualKey(key_id="key_a", key_hash="h" * 64,
                                                                   last_four="abcd")])
    with pytest.raises(Conflict):  # the same hash again: the unique constraint refuses it
        await store.commit(change(3, "key.create"), insert=[VirtualKey(key_id="key_b", key_hash="h" * 64,
                                                                       last_four="abcd")])
    assert await store.by_id("key_b") is None
    check = await audit_chain.verify(store.engine, AUDIT)
    assert check.ok and check.head_seq == 2
    await store.commit(change(4))
    assert (await audit_chain.verify(store.engine, AUDIT)).head_seq == 3  # no gap where the refused row was
    await store.close()


async def test_two_replicas_appending_at_once_on_postgres_never_fork_the_chain() -> None:
    if not POSTGRES_URL:
        pytest.skip("SWITCHBOARD_TEST_POSTGRES_URL is not set (e.g. postgresql://postgres@127.0.0.1:5432/test)")
    url, name = _fresh_postgres()
    try:
        first = KeyStore(make_engine(url))
        await first.migrate()
        second = KeyStore(make_engine(url))  # another replica: its own engine, pool and in-process lock

        async def writes(store: KeyStore, base: int) -> None:
            await asyncio.gather(*(store.commit(change(base + n)) for n in range(40)))

        checks: list[audit_chain.Verification] = []

        async def verifying(done: asyncio.Event) -> None:
            while not done.is_set():  # a check while others append reads one consistent state
                checks.append(await audit_chain.verify(second.engine, AUDIT))

        done = asyncio.Event()
        checker = asyncio.ensure_future(verifying(done))
        await asyncio.gather(writes(first, 1000), writes(second, 2000))
        done.set()
        await checker
        assert checks and all(c.ok for c in checks), [c for c in checks if not c.ok]
        check = await audit_chain.verify(first.engine, AUDIT)
        assert check.ok and check.rows_checked == 80 and check.head_seq == 80, check
        rows = await audit_chain.query(first.engine, AUDIT, Query(limit=100))
        assert sorted(r["seq"] for r in rows) == list(range(1, 81))
        assert len({r["prev_hash"] for r in rows}) == 80, "no two rows follow the same row"
        assert {r["target_id"] for r in rows} == {f"key_{b + n}" for b in (1000, 2000) for n in range(40)}
        await first.close()
        await second.close()
    finally:
        _drop_postgres(name)
