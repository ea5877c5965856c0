"""How billing's pooled SQLite connections begin their transactions: writers take the write lock first, readers never.

SQLite has one writer per file. A read-check-write transaction that begins
DEFERRED reads a snapshot, and when it then writes after another writer
committed, it fails at once (``SQLITE_BUSY_SNAPSHOT``) instead of waiting. So
billing's pooled connections (alert deliveries' claims, stored models) begin
``BEGIN IMMEDIATE``: they queue for the write lock before they read.

A connection that only reads must not: ``BEGIN IMMEDIATE`` takes the write lock
for a ``SELECT``, so the stored-models poll (twice a second), a budget
standing or a spend report would queue behind the money writer's settlements
and holds, and make them queue behind it — in SQLite's busy handler, which
sleeps in steps of up to 100 ms. In WAL mode a reader begins DEFERRED, reads a
snapshot and neither waits for a writer nor makes one wait. Readers open their
connection with :func:`reading`; every other transaction begins IMMEDIATE.
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import AsyncIterator
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Engine, event
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

#: The execution option of a connection that only reads (set by :func:`reading`).
READS_ONLY = "switchboard_reads_only"

_IMMEDIATE: weakref.WeakSet[Engine] = weakref.WeakSet()


def use_immediate_transactions(engine: AsyncEngine) -> None:
    """SQLite: begin every transaction of the engine with BEGIN IMMEDIATE, but a reader's (:func:`reading`)."""
    if engine.dialect.name != "sqlite" or engine.sync_engine in _IMMEDIATE:
        return
    _IMMEDIATE.add(engine.sync_engine)

    @event.listens_for(engine.sync_engine, "connect")
    def _autocommit_driver(dbapi_conn: Any, _record: Any) -> None:  # a DB-API connection (untyped)
        dbapi_conn.isolation_level = None

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(conn: sa.Connection) -> None:
        conn.exec_driver_sql("BEGIN" if conn.get_execution_options().get(READS_ONLY) else "BEGIN IMMEDIATE")


@contextlib.asynccontextmanager
async def reading(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection for reads only: on SQLite its transaction begins DEFERRED (one snapshot, no write lock)."""
    async with engine.connect() as conn:
        yield await conn.execution_options(**{READS_ONLY: True})
