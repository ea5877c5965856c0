"""An append-only, tamper-evident audit log in a service's own database: the table, the hash chain, appends that
never fork it, queries, verification and pruning that keeps it verifiable.

Each service that makes administrative changes (auth: keys, teams, users; billing: models added at run time)
keeps one log in its own database and appends the change's row in the change's own transaction, so a change
and its row commit or fail together. The rules of the chain live here once:

* a row's ``hash`` is SHA-256 over the previous row's hash and the row's canonical content (:func:`row_hash`),
  so editing, inserting, reordering or deleting a row breaks every link after it;
* appends are serialized by a single-row head (``audit_head``): every append first updates that row, which takes
  its row lock on PostgreSQL (a second auth replica waits until the first commits) and the write lock on SQLite,
  then reads the head's seq and hash; the head also detects rows cut off the end;
* pruning (retention) deletes the oldest rows and appends a checkpoint row naming the last pruned seq and its
  hash (the anchor the first kept row links to); the checkpoint is itself chained, so a forged anchor breaks.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from switchboard_common.audit_origin import MAX_USER_AGENT, Origin

#: Shown instead of a secret's value in a row's before/after.
REDACTED = "[redacted]"
#: The action of a checkpoint row written by pruning.
PRUNED = "audit.prune"
#: Rows read per page while verifying.
_PAGE = 1000


@dataclass(frozen=True)
class Tables:
    """One service's log: ``<service>_audit_log`` (the rows) and ``<service>_audit_head`` (one row, id 1, with the
    newest row's seq and hash). Named per service, so that services sharing one database keep separate logs."""

    log: sa.Table
    head: sa.Table


_TABLES: dict[str, Tables] = {}


def tables(service: str) -> Tables:
    """The tables of ``service``'s log (frozen shape: the services' migrations create them as they are here)."""
    if service not in _TABLES:
        meta = sa.MetaData()
        log = sa.Table(
            f"{service}_audit_log", meta,
            sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
            sa.Column("at_ms", sa.BigInteger, nullable=False, index=True),
            sa.Column("actor_kind", sa.String(20), nullable=False),
            sa.Column("actor_key_id", sa.String(80), nullable=False, index=True),
            sa.Column("actor_user_id", sa.String(200), nullable=False, index=True),
            sa.Column("action", sa.String(60), nullable=False, index=True),
            sa.Column("target_type", sa.String(20), nullable=False),
            sa.Column("target_id", sa.Text, nullable=False),
            sa.Column("before_json", sa.Text, nullable=False),
            sa.Column("after_json", sa.Text, nullable=False),
            sa.Column("request_id", sa.String(80), nullable=False),
            sa.Column("client_ip", sa.String(64), nullable=False),
            sa.Column("user_agent", sa.String(MAX_USER_AGENT), nullable=False),
            sa.Column("channel", sa.String(20), nullable=False),
            sa.Column("prev_hash", sa.String(64), nullable=False),
            sa.Column("hash", sa.String(64), nullable=False),
        )
        head = sa.Table(
            f"{service}_audit_head", meta,
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
            sa.Column("seq", sa.BigInteger, nullable=False),
            sa.Column("hash", sa.String(64), nullable=False),
        )
        _TABLES[service] = Tables(log, head)
    return _TABLES[service]


#: The columns hashed, in this order (the canonical content of a row).
CONTENT = ("seq", "at_ms", "actor_kind", "actor_key_id", "actor_user_id", "action", "target_type", "target_id",
           "before_json", "after_json", "request_id", "client_ip", "user_agent", "channel")


async def create_tables(conn: AsyncConnection, t: Tables) -> None:
    """The migration step of a service adopting the log: both tables and the empty head."""
    await conn.run_sync(lambda c: t.log.metadata.create_all(c, tables=[t.log, t.head], checkfirst=True))
    await conn.execute(t.head.insert().values(id=1, seq=0, hash=""))


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no spaces: the same text for the same value, whatever the dict order."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def row_hash(prev_hash: str, row: Mapping[str, Any]) -> str:
    content = canonical_json({name: row[name] for name in CONTENT})
    return hashlib.sha256((prev_hash + "\n" + content).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Change:
    """One administrative change, as it goes into the log."""

    actor_kind: str
    actor_key_id: str
    actor_user_id: str
    action: str
    target_type: str
    target_id: str
    before: Mapping[str, Any] = field(default_factory=dict)
    after: Mapping[str, Any] = field(default_factory=dict)
    origin: Origin = Origin()


async def append(conn: AsyncConnection, t: Tables, change: Change, now_ms: int | None = None) -> dict[str, Any]:
    """Appends the change's row inside the caller's open transaction, after taking the head (call it before the
    change's own writes, so every writer takes the head first and none waits on another's rows); returns the row.
    The row commits or rolls back with the caller's transaction."""
    bumped = await conn.execute(t.head.update().where(t.head.c.id == 1).values(seq=t.head.c.seq + 1))
    if bumped.rowcount != 1:
        raise RuntimeError("the audit log's head row is missing; run the service's migrations")
    seq, prev = (await conn.execute(sa.select(t.head.c.seq, t.head.c.hash).where(t.head.c.id == 1))).one()
    origin = change.origin
    row: dict[str, Any] = {
        "seq": int(seq), "at_ms": int(time.time() * 1000) if now_ms is None else now_ms,
        "actor_kind": change.actor_kind, "actor_key_id": change.actor_key_id[:80],
        "actor_user_id": change.actor_user_id[:200], "action": change.action, "target_type": change.target_type,
        "target_id": change.target_id, "before_json": canonical_json(dict(change.before)),
        "after_json": canonical_json(dict(change.after)), "request_id": origin.request_id[:80],
        "client_ip": origin.client_ip[:64], "user_agent": origin.user_agent[:MAX_USER_AGENT],
        "channel": origin.channel[:20], "prev_hash": prev,
    }
    row["hash"] = row_hash(prev, row)
    await conn.execute(t.log.insert().values(**row))
    await conn.execute(t.head.update().where(t.head.c.id == 1).values(hash=row["hash"]))
    return row


@dataclass(frozen=True, slots=True)
class Query:
    """Filters of :func:`query` (empty: any)."""

    actor: str = ""
    action: str = ""
    target_type: str = ""
    target_id: str = ""
    since_ms: int = 0
    until_ms: int = 0
    limit: int = 100
    before_seq: int = 0


#: Most rows one query returns.
MAX_QUERY_ROWS = 10_000


async def query(engine: AsyncEngine, tables_: Tables, q: Query) -> list[dict[str, Any]]:
    """Rows matching every filter, newest first."""
    t = tables_.log.c
    stmt = sa.select(tables_.log).order_by(t.seq.desc()).limit(max(1, min(q.limit or 100, MAX_QUERY_ROWS)))
    if q.actor:
        stmt = stmt.where(sa.or_(t.actor_key_id == q.actor, t.actor_user_id == q.actor))
    if q.action:
        stmt = stmt.where(t.action.startswith(q.action, autoescape=True) if q.action.endswith(".")
                          else t.action == q.action)
    if q.target_type:
        stmt = stmt.where(t.target_type == q.target_type)
    if q.target_id:
        stmt = stmt.where(sa.or_(t.target_id == q.target_id,
                                 t.target_id.startswith(q.target_id + ",", autoescape=True),
                                 t.target_id.endswith("," + q.target_id, autoescape=True),
                                 t.target_id.contains("," + q.target_id + ",", autoescape=True)))
    if q.since_ms:
        stmt = stmt.where(t.at_ms >= q.since_ms)
    if q.until_ms:
        stmt = stmt.where(t.at_ms < q.until_ms)
    if q.before_seq:
        stmt = stmt.where(t.seq < q.before_seq)
    async with engine.connect() as conn:
        return [dict(r._mapping) for r in (await conn.execute(stmt)).all()]


@dataclass(frozen=True, slots=True)
class Verification:
    ok: bool
    rows_checked: int
    first_broken_seq: int = 0
    reason: str = ""
    head_seq: int = 0
    head_hash: str = ""


def _anchor(row: Mapping[str, Any]) -> tuple[int, str] | None:
    """(last pruned seq, its hash) named by a checkpoint row; None for any other row."""
    if row["action"] != PRUNED:
        return None
    try:
        after = json.loads(row["after_json"])
        return int(after["pruned_through_seq"]), str(after["anchor_hash"])
    except (ValueError, KeyError, TypeError):
        return None


async def verify(engine: AsyncEngine, t: Tables) -> Verification:
    """Walks the chain oldest first: every row's hash must match its content and its predecessor's hash, seqs
    must follow each other, the first row must be the genesis (seq 1, no predecessor) or the row after a prune
    that a checkpoint in the chain records, and the head must name the newest row.

    It reads one consistent state while changes go on: a snapshot on PostgreSQL (REPEATABLE READ), the head's lock
    on SQLite (appends and prunings wait until it is done)."""
    async with _consistent(engine, t) as conn:
        head_seq, head_hash = (await conn.execute(sa.select(t.head.c.seq, t.head.c.hash)
                                                  .where(t.head.c.id == 1))).one()
        first = (await conn.execute(sa.select(t.log).order_by(t.log.c.seq).limit(1))).first()
        if first is None:
            ok = head_seq == 0
            return Verification(ok, 0, 0, "" if ok else f"the head names row {head_seq} but the log has no rows",
                                head_seq, head_hash)
        checked, prev, last_seq = 0, None, 0
        start = dict(first._mapping)
        anchors: dict[int, str] = {}
        after_seq = start["seq"] - 1
        while True:
            page = (await conn.execute(sa.select(t.log).where(t.log.c.seq > after_seq)
                                       .order_by(t.log.c.seq).limit(_PAGE))).all()
            if not page:
                break
            for r in page:
                row = dict(r._mapping)
                seq = row["seq"]
                if prev is None:
                    expected_prev = ""
                else:
                    if seq != prev["seq"] + 1:
                        return Verification(False, checked, seq, f"row {seq} follows row {prev['seq']}: rows "
                                            f"{prev['seq'] + 1} to {seq - 1} are missing", head_seq, head_hash)
                    expected_prev = prev["hash"]
                if prev is not None and row["prev_hash"] != expected_prev:
                    return Verification(False, checked, seq, f"row {seq} does not link to row {prev['seq']} "
                                        f"(row {prev['seq']} or the link of row {seq} was changed)", head_seq,
                                        head_hash)
                if row_hash(row["prev_hash"], row) != row["hash"]:
                    return Verification(False, checked, seq, f"row {seq}'s content does not match its hash "
                                        "(the row was changed)", head_seq, head_hash)
                anchor = _anchor(row)
                if anchor is not None:
                    anchors[anchor[0]] = anchor[1]
                prev, last_seq = row, seq
                checked += 1
            after_seq = last_seq
        first_seq = start["seq"]
        if first_seq == 1:
            if start["prev_hash"] != "":
                return Verification(False, checked, 1, "row 1 names a predecessor, but it is the first row",
                                    head_seq, head_hash)
        elif anchors.get(first_seq - 1) != start["prev_hash"]:
            return Verification(False, checked, first_seq, f"the log starts at row {first_seq} but no checkpoint "
                                f"in it records pruning rows up to {first_seq - 1} with the hash row {first_seq} "
                                "links to (rows were deleted)", head_seq, head_hash)
        assert prev is not None
        if (head_seq, head_hash) != (prev["seq"], prev["hash"]):
            return Verification(False, checked, 0, f"the head names row {head_seq}, but the newest row is "
                                f"{prev['seq']} (rows were cut off the end, or the head was changed)",
                                head_seq, head_hash)
        return Verification(True, checked, 0, "", head_seq, head_hash)


@contextlib.asynccontextmanager
async def _consistent(engine: AsyncEngine, t: Tables) -> AsyncIterator[AsyncConnection]:
    """A connection that reads one state of the log, whatever is appended or pruned meanwhile (nothing is
    written: the transaction is rolled back)."""
    async with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            conn = await conn.execution_options(isolation_level="REPEATABLE READ")
        async with conn.begin() as tx:
            if engine.dialect.name != "postgresql":
                await conn.execute(t.head.update().where(t.head.c.id == 1).values(seq=t.head.c.seq))
            yield conn
            await tx.rollback()


async def prune(engine: AsyncEngine, t: Tables, older_than_ms: int, now_ms: int | None = None) -> int:
    """Deletes the rows committed before ``older_than_ms`` (up to the newest such change) and appends a checkpoint
    naming the last one deleted and its hash; returns how many rows were deleted (0: no change old enough, no
    checkpoint)."""
    async with engine.begin() as conn:
        await conn.execute(t.head.update().where(t.head.c.id == 1).values(seq=t.head.c.seq))  # the head's lock
        # The newest old row that is a change (old checkpoints go with the changes before it; a checkpoint alone
        # is never replaced by another, so an idle log does not churn).
        last = (await conn.execute(sa.select(t.log.c.seq, t.log.c.hash)
                                   .where(t.log.c.at_ms < older_than_ms, t.log.c.action != PRUNED)
                                   .order_by(t.log.c.seq.desc()).limit(1))).first()
        if last is None:
            return 0
        deleted = (await conn.execute(t.log.delete().where(t.log.c.seq <= last.seq))).rowcount
        await append(conn, t, Change("system", "", "", PRUNED, "audit", "",
                                  after={"pruned_through_seq": int(last.seq), "anchor_hash": last.hash,
                                         "rows_deleted": int(deleted), "older_than_ms": older_than_ms}),
                     now_ms)
        return int(deleted)


async def keep_for(engine: AsyncEngine, t: Tables, retention_days: float, interval_seconds: float = 3600.0) -> None:
    """Runs until cancelled: every ``interval_seconds`` (and once at start), prunes the rows older than
    ``retention_days`` (see :func:`prune`). Several replicas may run it: the head's lock serializes them, and a
    prune that finds nothing old writes nothing."""
    log = logging.getLogger(__name__)
    while True:
        try:
            cutoff = int((time.time() - retention_days * 86_400) * 1000)
            deleted = await prune(engine, t, cutoff)
            if deleted:
                log.info("audit log pruned", extra={"log": t.log.name, "rows_deleted": deleted,
                                                    "retention_days": retention_days})
        except Exception:  # a database outage must not end retention for good
            log.exception("audit log pruning failed; retrying later")
        await asyncio.sleep(interval_seconds)
