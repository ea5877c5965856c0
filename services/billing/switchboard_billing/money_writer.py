"""The one writer of money: holds, leases and settlements run whole, one transaction at a time per database file.

Every transaction that changes what a budget has free — a reservation, a lease
renewal or return, a release, a settlement — is a function of one connection,
run whole by :meth:`MoneyWriter.run` (SQLAlchemy statements) or, for the
settlement's prepared statements, :meth:`SqliteMoneyWriter.run_sqlite`.

* **SQLite** allows one writer at a time per file. Two connections writing
  to it (the settlement's and a pooled one for reservations) wait for each
  other's lock in SQLite's busy handler, which sleeps in steps of up to 100 ms:
  under load a reservation or heartbeat queues behind sleeps, not work. So all
  of billing's money transactions run on one thread's connection
  (:class:`~switchboard_billing.sqlite_thread.SqliteThread`), one after the
  other, each one hop from asyncio and each starting with ``BEGIN IMMEDIATE``.
  Other processes and billing's rare other writes (alert deliveries, stored
  models, audit) still meet the busy timeout, as before.
* **PostgreSQL** takes row locks (``SELECT ... FOR UPDATE``) and serves many
  writers at once: each function runs in a transaction of its own pooled
  connection (``run_sync``), so billing replicas and concurrent RPCs proceed
  side by side.

One writer per engine (:func:`writer_for`), shared by :class:`~switchboard_billing.budgets.Budgets`
and :class:`~switchboard_billing.ledger.Ledger`, closed with the ledger.
"""

from __future__ import annotations

import sqlite3
import weakref
from collections.abc import Callable
from typing import Protocol, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import StaticPool

from switchboard_billing.sqlite_thread import SqliteThread

T = TypeVar("T")


class CallerGone(Exception):
    """A transaction was rolled back because its caller stopped waiting for it (nobody receives this)."""


class MoneyWriter(Protocol):
    async def run(self, fn: Callable[[sa.Connection], T]) -> T:
        """``fn(connection)``'s result, run in one write transaction: committed when it returns, rolled back when
        it raises or when its caller stops waiting (is cancelled) before the commit."""

    async def close(self) -> None: ...


class PostgresMoneyWriter:
    """Each function in a transaction of its own pooled connection: PostgreSQL's row locks serialize per budget."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def run(self, fn: Callable[[sa.Connection], T]) -> T:
        async with self.engine.begin() as conn:
            return await conn.run_sync(fn)

    async def close(self) -> None:
        return None


class SqliteMoneyWriter:
    """Every function on one thread's connection to the file, one whole transaction at a time."""

    def __init__(self, path: str) -> None:
        self.thread = SqliteThread(path)
        #: The SQLAlchemy connection over the thread's sqlite3 connection (made, used and closed on that thread).
        self._bound: tuple[sqlite3.Connection, sa.Connection] | None = None

    async def run(self, fn: Callable[[sa.Connection], T]) -> T:
        return await self.thread.run(lambda raw: self._in_transaction(raw, fn))

    async def run_sqlite(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """``fn`` on the thread's sqlite3 connection itself (autocommit: ``fn`` begins and ends its transaction)."""
        return await self.thread.run(fn)

    def _in_transaction(self, raw: sqlite3.Connection, fn: Callable[[sa.Connection], T]) -> T:
        conn = self._connection(raw)
        with conn.begin():  # BEGIN IMMEDIATE (see _connection); COMMIT or ROLLBACK
            result = fn(conn)
            if self.thread.caller_gone():
                # Its caller gave up (its client was told the request failed): a hold made now would stay held
                # for a request never sent, so nothing it did is kept.
                raise CallerGone()
            return result

    def _connection(self, raw: sqlite3.Connection) -> sa.Connection:
        """A SQLAlchemy connection whose only DB-API connection is ``raw``; its transactions begin IMMEDIATE."""
        if self._bound is not None and self._bound[0] is raw:
            return self._bound[1]
        engine = sa.create_engine("sqlite://", creator=lambda: raw, poolclass=StaticPool)

        @event.listens_for(engine, "begin")
        def _begin_immediate(conn: sa.Connection) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        self._bound = (raw, engine.connect())
        return self._bound[1]

    async def close(self) -> None:
        """Finishes the queued functions, then closes the connection and its thread (a later ``run`` reopens)."""
        if self.thread.running:
            await self.thread.run(self._unbind)
        await self.thread.close()

    def _unbind(self, _raw: sqlite3.Connection) -> None:
        bound, self._bound = self._bound, None
        if bound is not None:
            bound[1].close()  # back to its pool of one; the thread closes the sqlite3 connection itself


_WRITERS: weakref.WeakKeyDictionary[sa.Engine, MoneyWriter] = weakref.WeakKeyDictionary()


def writer_for(engine: AsyncEngine) -> MoneyWriter:
    """The engine's money writer (one per engine, made on first use)."""
    writer = _WRITERS.get(engine.sync_engine)
    if writer is None:
        writer = _WRITERS[engine.sync_engine] = _make(engine)
    return writer


async def close_writer(engine: AsyncEngine) -> None:
    """Closes the engine's money writer, if it has one (a later :func:`writer_for` makes a new one)."""
    writer = _WRITERS.pop(engine.sync_engine, None)
    if writer is not None:
        await writer.close()


def _make(engine: AsyncEngine) -> MoneyWriter:
    if engine.dialect.name == "postgresql":
        return PostgresMoneyWriter(engine)
    if engine.dialect.name == "sqlite":
        path = engine.url.database
        if not path or path == ":memory:" or path.startswith("file:"):
            raise ValueError("billing on SQLite needs a database file path")
        return SqliteMoneyWriter(path)
    raise ValueError(f"unsupported billing database: {engine.dialect.name}")
