"""Writing a batch of settlements: ledger rows, their reservations and lease units, in one transaction.

A batch costs a fixed handful of statements whatever its size, prepared once
and reused, instead of a few per event:

* the rows whose request id is not in the ledger yet are inserted (a redelivered
  event records nothing; neither does a duplicate inside the batch); a row that
  replaces a *provisional* one (the facade's record of a call the router did
  not answer, replaced by the router's own) overwrites it, and frees nothing
  again;
* the reservations the batch's requests held (``Reserve``) are deleted;
* each lease named by a *new* row is debited once by the sum of its units
  (a lease at 0 is over and deleted), so a replay frees nothing twice.

SQLite runs the transaction as one function on the connection of billing's one
writer (:mod:`~switchboard_billing.money_writer`), starting with
``BEGIN IMMEDIATE`` so that no other writer comes between the check for known
ids and the insert. PostgreSQL runs it as one statement (one implicit
transaction, one round trip) of data-modifying CTEs over JSON documents, with
``ON CONFLICT (request_id)`` deciding which rows are new (or replace a
provisional one) even when two replicas settle the same event at once; a lease
the batch empties is deleted by a second statement (until then it holds 0).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import operator
import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from itertools import chain
from typing import Any, Protocol

import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from switchboard_billing.alert_detect import AlertPolicy, detect_pg, detect_sqlite, lock_subjects_pg
from switchboard_billing.alert_rules import NewAlert, Watch, charged_instants
from switchboard_billing.models import UsageRow
from switchboard_billing.money_writer import CallerGone, SqliteMoneyWriter, writer_for

log = logging.getLogger(__name__)

_LEDGER: sa.Table = UsageRow.__table__  # type: ignore[attr-defined]  # SQLModel sets __table__ at class creation
#: The ledger's columns.
COLUMNS: tuple[str, ...] = tuple(c.name for c in _LEDGER.columns)
_as_tuple = operator.itemgetter(*COLUMNS)


@dataclass(slots=True)
class Batch:
    """What one settlement transaction writes."""

    #: Ledger rows, each a mapping of every column in :data:`COLUMNS`; one per request id.
    rows: list[Mapping[str, Any]]
    #: Request ids whose own reservation (from ``Reserve``) the settlement deletes.
    reserved: list[str] = field(default_factory=list)
    #: (request id, lease id, micro-dollars) of requests admitted under a lease: freed if the row is new.
    units: list[tuple[str, str, int]] = field(default_factory=list)
    #: Budgets to check for alerts once the rows are in (alert_detect.py), in lock order.
    watches: list[Watch] = field(default_factory=list)
    #: Filled by the write: the alerts this batch raised.
    raised: list[NewAlert] = field(default_factory=list)

    def debits(self, new_ids: set[str]) -> dict[str, int]:
        """Micro-dollars to free per lease: the units of the rows that were new."""
        out: dict[str, int] = {}
        for request_id, lease_id, micros in self.units:
            if request_id in new_ids:
                out[lease_id] = out.get(lease_id, 0) + micros
        return out


class Settlements(Protocol):
    async def write(self, batch: Batch) -> set[str]:
        """Commits the batch; returns the request ids it recorded (new, or replacing a provisional row)."""

    async def close(self) -> None: ...


def for_engine(engine: AsyncEngine, alerts: AlertPolicy | None = None) -> Settlements:
    """The settlement writer of the engine's database; with ``alerts``, it raises budget alerts too."""
    if engine.dialect.name == "postgresql":
        return PostgresSettlements(engine, alerts)
    writer = writer_for(engine)  # refuses a database billing cannot run on
    assert isinstance(writer, SqliteMoneyWriter)
    return SqliteSettlements(writer, alerts)


# --- SQLite -------------------------------------------------------------------------------------------------

_IDS = "SELECT value FROM json_each(?)"
_SQLITE_KNOWN = f"SELECT request_id, provisional FROM usage_ledger WHERE request_id IN ({_IDS})"
#: Rows per INSERT statement, largest first: a batch's new rows go in as few multi-row statements as these sizes
#: allow (100 rows: one of 64, two of 16, one of 4). ``sqlite3`` lets go of the GIL around every step of a
#: statement and takes it back after: ``executemany`` did that once per row, and each time the writer thread
#: waited for the GIL the busy event loop held (up to the interpreter's switch interval), so a batch of 80 rows
#: took milliseconds of wall time and many thread switches, and the rows cost more CPU than their SQL. One
#: statement of many rows is one step: one hand-over of the GIL, and a third less work per row even without
#: contention. The sizes are few, so their statements stay prepared in the connection's cache.
INSERT_CHUNKS: tuple[int, ...] = (64, 16, 4, 1)
_ROW_PLACES = f"({', '.join('?' * len(COLUMNS))})"
_SQLITE_INSERTS = {size: f"INSERT INTO usage_ledger ({', '.join(COLUMNS)}) VALUES {', '.join([_ROW_PLACES] * size)}"
                   for size in INSERT_CHUNKS}
_REPLACED = tuple(c for c in COLUMNS if c != "request_id")
_SQLITE_REPLACE = (f"UPDATE usage_ledger SET {', '.join(f'{c} = ?' for c in _REPLACED)} "
                   "WHERE request_id = ? AND provisional")
_as_replacement = operator.itemgetter(*_REPLACED, "request_id")
_SQLITE_FREE_HELD = f"DELETE FROM reservations WHERE reservation_id IN ({_IDS})"
_SQLITE_DEBIT = ("UPDATE reservations SET amount_micros = max(amount_micros - ?1, 0), "
                 "committed_micros = max(committed_micros - ?1, 0) WHERE reservation_id = ?2")
_SQLITE_DROP_SPENT = f"DELETE FROM reservations WHERE amount_micros <= 0 AND reservation_id IN ({_IDS})"


def write_sqlite(conn: sqlite3.Connection, batch: Batch, alerts: AlertPolicy | None = None,
                 caller_gone: Callable[[], bool] = lambda: False) -> set[str]:
    """The batch's transaction on a SQLite connection in autocommit mode; returns the recorded request ids.
    With ``alerts``, the same transaction raises the alerts the new spend crosses (``batch.raised``). Rolled back
    when ``caller_gone()`` says at its end that nobody waits for it any more (the sender redelivers the batch)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        known = dict(conn.execute(_SQLITE_KNOWN, (json.dumps([row["request_id"] for row in batch.rows]),)))
        new_rows = [row for row in batch.rows if row["request_id"] not in known]
        replacing = [row for row in batch.rows if known.get(row["request_id"]) and not row["provisional"]]
        _insert_rows(conn, new_rows)
        conn.executemany(_SQLITE_REPLACE, map(_as_replacement, replacing))
        if batch.reserved:
            conn.execute(_SQLITE_FREE_HELD, (json.dumps(batch.reserved),))
        new_ids = {row["request_id"] for row in new_rows}
        debits = batch.debits(new_ids)
        if debits:
            leases = sorted(debits)
            conn.executemany(_SQLITE_DEBIT, [(debits[lease_id], lease_id) for lease_id in leases])
            conn.execute(_SQLITE_DROP_SPENT, (json.dumps(leases),))
        if alerts is not None and batch.watches and (new_ids or replacing):
            batch.raised = detect_sqlite(conn, batch.watches, alerts, charged_instants([*new_rows, *replacing]))
        if caller_gone():
            raise CallerGone()
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return new_ids | {row["request_id"] for row in replacing}


def _insert_rows(conn: sqlite3.Connection, rows: list[Mapping[str, Any]]) -> None:
    """Inserts ``rows`` in order, in multi-row statements of the :data:`INSERT_CHUNKS` sizes (within the
    connection's limit on parameters per statement)."""
    most = conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // len(COLUMNS)
    start = 0
    for size in INSERT_CHUNKS:
        if size > most:
            continue
        statement = _SQLITE_INSERTS[size]
        while len(rows) - start >= size:
            conn.execute(statement, list(chain.from_iterable(map(_as_tuple, rows[start:start + size]))))
            start += size


class SqliteSettlements:
    """Settles through the database's money writer, between its reservations and lease renewals, never beside them."""

    def __init__(self, writer: SqliteMoneyWriter, alerts: AlertPolicy | None = None) -> None:
        self.writer = writer
        self.alerts = alerts

    async def write(self, batch: Batch) -> set[str]:
        return await self.writer.run_sqlite(
            lambda conn: write_sqlite(conn, batch, self.alerts, self.writer.thread.caller_gone))

    async def close(self) -> None:
        await self.writer.close()


# --- PostgreSQL ---------------------------------------------------------------------------------------------

#: One statement: insert the new rows, free the batch's own reservations, debit each lease by the units of
#: its new rows. The debit matches the lease by id alone (``GREATEST`` keeps it at 0 or more), so when a
#: concurrent settlement commits a debit first, PostgreSQL re-applies this one to the committed amount;
#: a debit that would have to choose between updating and deleting could match neither after such a recheck.
#: Returns the new request ids, and the leases the batch emptied (``request_id`` NULL).
_PG_SETTLE = f"""
WITH new AS (
    INSERT INTO usage_ledger ({', '.join(COLUMNS)})
    SELECT {', '.join(COLUMNS)} FROM json_populate_recordset(NULL::usage_ledger, $1::json)
    ON CONFLICT (request_id) DO UPDATE SET {', '.join(f'{c} = EXCLUDED.{c}' for c in COLUMNS if c != 'request_id')}
    WHERE usage_ledger.provisional AND NOT EXCLUDED.provisional
    RETURNING request_id, (xmax = 0) AS inserted
), debits AS (
    SELECT u.lease_id, sum(u.micros)::int8 AS micros
    FROM json_to_recordset($2::json) AS u(request_id text, lease_id text, micros int8)
    JOIN new ON new.request_id = u.request_id AND new.inserted
    GROUP BY u.lease_id
), freed AS (
    DELETE FROM reservations WHERE reservation_id IN (SELECT json_array_elements_text($3::json))
), debited AS (
    UPDATE reservations r SET amount_micros = GREATEST(r.amount_micros - d.micros, 0),
                              committed_micros = GREATEST(r.committed_micros - d.micros, 0) FROM debits d
    WHERE r.reservation_id = d.lease_id
    RETURNING r.reservation_id, r.amount_micros
)
SELECT request_id, NULL AS emptied FROM new
UNION ALL
SELECT NULL, reservation_id FROM debited WHERE amount_micros <= 0"""
#: A lease at 0 is over: deleted (in a statement of its own; until then it holds nothing).
_PG_DROP_EMPTIED = "DELETE FROM reservations WHERE reservation_id = ANY($1::text[]) AND amount_micros <= 0"


def pg_arguments(batch: Batch) -> tuple[str, str, str]:
    """The statement's three JSON documents: the rows, the lease units, the ids whose reservation is freed.

    JSON, not one array per column: asyncpg encodes arrays element by element in Python, a JSON
    document is one string that PostgreSQL parses into the columns' own types (too long still fails)."""
    units = [{"request_id": r, "lease_id": lease, "micros": micros} for r, lease, micros in batch.units]
    return (orjson.dumps(batch.rows).decode(), orjson.dumps(units).decode(), orjson.dumps(batch.reserved).decode())


class PostgresSettlements:
    """Settles on the engine's PostgreSQL through the asyncpg connection under one pooled SQLAlchemy connection.

    The connection is kept for the next batch: checking one out of the pool and
    pinging it costs several round trips, more than the settlement itself. Its
    statements run one at a time, each on its own outside any SQLAlchemy
    transaction (so each commits itself), and asyncpg keeps the statement
    prepared. After a failure the connection is dropped and the next batch
    takes a fresh one.
    """

    def __init__(self, engine: AsyncEngine, alerts: AlertPolicy | None = None) -> None:
        self.engine = engine
        self.alerts = alerts
        self._conn: AsyncConnection | None = None
        self._lock = asyncio.Lock()

    async def write(self, batch: Batch) -> set[str]:
        if not batch.rows:
            return set()
        arguments = pg_arguments(batch)
        async with self._lock:
            if self._conn is None:
                self._conn = await self.engine.connect()
            try:
                driver: Any = (await self._conn.get_raw_connection()).driver_connection  # asyncpg's (untyped)
                if self.alerts is not None and batch.watches:
                    rows = await self._settle_watched(driver, batch, arguments, self.alerts)
                else:
                    rows = await driver.fetch(_PG_SETTLE, *arguments)
            except BaseException:
                await self._drop(invalidate=True)
                raise
            emptied = [r[1] for r in rows if r[0] is None]
            if emptied:
                try:
                    await driver.execute(_PG_DROP_EMPTIED, emptied)
                except Exception as exc:  # the settlement is committed; an empty lease holds nothing meanwhile
                    log.warning("deleting emptied leases failed", extra={"error": str(exc)})
                    await self._drop(invalidate=True)
        return {r[0] for r in rows if r[0] is not None}

    @staticmethod
    async def _settle_watched(driver: Any, batch: Batch, arguments: tuple[str, str, str],
                              alerts: AlertPolicy) -> list[Any]:
        """The settlement of a batch with watched budgets, in one explicit transaction: lock the subjects (before
        any reservation, as Reserve does), settle, then raise the alerts the new spend crosses."""
        async with driver.transaction():
            anchors = await lock_subjects_pg(driver, batch.watches, int(alerts.now().timestamp() * 1000))
            rows: list[Any] = await driver.fetch(_PG_SETTLE, *arguments)
            recorded = {r[0] for r in rows if r[0] is not None}
            if recorded:
                batch.raised = await detect_pg(driver, batch.watches, anchors, alerts, charged_instants(
                    row for row in batch.rows if row["request_id"] in recorded))
        return rows

    async def _drop(self, *, invalidate: bool) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        with contextlib.suppress(Exception):  # already broken: the pool replaces it
            if invalidate:
                await conn.invalidate()
            await conn.close()

    async def close(self) -> None:
        async with self._lock:
            await self._drop(invalidate=False)
