"""Raising budget alerts inside the settlement's transaction, once per crossing on any number of replicas.

The settlement transaction (:mod:`switchboard_billing.settlement`) that records
new spend for watched subjects also sums each subject's spend in each watched
window (from its hourly buckets, :mod:`switchboard_billing.spend_buckets`) and
inserts every alert the spend now stands at (:mod:`alert_rules`),
with one delivery row per configured webhook — the durable queue the delivery
worker drains. The alert's idempotency key is the table's primary key and the
insert is ``ON CONFLICT DO NOTHING``: the transaction that inserts it raised
it, and no other ever will.

No crossing is missed either. SQLite serializes writers (``BEGIN IMMEDIATE``),
so the sums see every settlement before. On PostgreSQL the transaction first
locks the subjects' ``budget_subjects`` rows (in the order reservations lock
them, before touching any reservation, so it never deadlocks with one); a
concurrent settlement of the same subject waits, then sums in a fresh snapshot
that includes this one's rows. And because the alert is in the same
transaction as the spend, a crash loses neither without the other.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import Any

from switchboard_billing.alert_rules import NewAlert, Watch, checks_covering, crossings
from switchboard_billing.spend_buckets import numbered, spent_params, spent_sql
from switchboard_rules.alert_thresholds import DEFAULT_THRESHOLDS
from switchboard_rules.windows import Clock

#: The scopes a usage event watches.
_SCOPES = ("key", "team", "user")
_ALERT_COLUMNS = tuple(NewAlert.__dataclass_fields__)


@dataclass(frozen=True, slots=True)
class AlertPolicy:
    """What the gateway alerts on, and where alerts go."""

    thresholds: tuple[int, ...] = DEFAULT_THRESHOLDS
    #: Names of the configured webhooks: each alert gets one delivery row per name.
    webhooks: tuple[str, ...] = ()
    tz: tzinfo = UTC
    #: What time it is (tests pass a ManualClock); None: the system clock.
    clock: Clock | None = field(default=None)

    def now(self) -> datetime:
        return self.clock.now() if self.clock is not None else datetime.now(UTC)


def _ms(instant: datetime) -> int:
    return int(instant.timestamp() * 1000)


# --- SQLite (on the settlement's connection, inside its BEGIN IMMEDIATE) -------------------------------------

_SQLITE_SUM = {scope: f"SELECT {spent_sql(scope)}" for scope in _SCOPES}
_SQLITE_ANCHOR = "SELECT anchor_ms FROM budget_subjects WHERE subject = ?"
_SQLITE_NEW_SUBJECT = "INSERT INTO budget_subjects (subject, anchor_ms) VALUES (?, ?) ON CONFLICT DO NOTHING"
_SQLITE_ALERT = (f"INSERT INTO budget_alerts ({', '.join(_ALERT_COLUMNS)}) "
                 f"VALUES ({', '.join('?' * len(_ALERT_COLUMNS))}) ON CONFLICT DO NOTHING RETURNING idempotency_key")
_SQLITE_DELIVERY = ("INSERT INTO alert_deliveries (idempotency_key, webhook, status, attempts, next_attempt_ms, "
                    "claimed_until_ms, delivered_at_ms, last_error) VALUES (?, ?, 'pending', 0, ?, 0, 0, '') "
                    "ON CONFLICT DO NOTHING")


def _sqlite_anchor(conn: sqlite3.Connection, subject: str, now_ms: int) -> int:
    row = conn.execute(_SQLITE_ANCHOR, (subject,)).fetchone()
    if row is None:
        conn.execute(_SQLITE_NEW_SUBJECT, (subject, now_ms))
        row = conn.execute(_SQLITE_ANCHOR, (subject,)).fetchone()
    return int(row[0])


def insert_alert_sqlite(conn: sqlite3.Connection, alert: NewAlert, webhooks: tuple[str, ...]) -> bool:
    """Records the alert and queues it for every webhook unless its key is known; True when new."""
    values = alert.values()
    if conn.execute(_SQLITE_ALERT, [values[c] for c in _ALERT_COLUMNS]).fetchone() is None:
        return False
    conn.executemany(_SQLITE_DELIVERY, [(alert.idempotency_key, name, alert.created_at_ms) for name in webhooks])
    return True


def detect_sqlite(conn: sqlite3.Connection, watches: list[Watch], policy: AlertPolicy,
                  charged: Mapping[str, set[int]] | None = None) -> list[NewAlert]:
    """The alerts the watched subjects' spend raises now, recorded and queued; run inside the transaction.
    ``charged``: the instants each subject's settled requests were charged at (their windows are checked too)."""
    now = policy.now()
    now_ms = _ms(now)
    raised = []
    for watch in watches:
        anchor_ms = _sqlite_anchor(conn, watch.subject, now_ms)
        for check in checks_covering(watch, (charged or {}).get(watch.subject, ()), now, anchor_ms, policy.tz):
            spent = int(conn.execute(_SQLITE_SUM[watch.scope], spent_params(
                watch.scope, watch.subject_id, check.start_ms, check.end_ms)).fetchone()[0])
            for alert in crossings(watch, check, spent, policy.thresholds, now_ms):
                if insert_alert_sqlite(conn, alert, policy.webhooks):
                    raised.append(alert)
    return raised


# --- PostgreSQL (asyncpg, inside the settlement's explicit transaction) -------------------------------------

_PG_NEW_SUBJECTS = ("INSERT INTO budget_subjects (subject, anchor_ms) SELECT s, $2 FROM unnest($1::text[]) AS s "
                    "ON CONFLICT (subject) DO NOTHING")
#: Rows are locked in the sort's order: key < team < user, as budgets.py locks a reservation's.
_PG_LOCK = ('SELECT subject, anchor_ms FROM budget_subjects WHERE subject = ANY($1::text[]) '
            'ORDER BY subject COLLATE "C" FOR UPDATE')
_PG_ALERT = (f"INSERT INTO budget_alerts ({', '.join(_ALERT_COLUMNS)}) "
             f"VALUES ({', '.join(f'${i + 1}' for i in range(len(_ALERT_COLUMNS)))}) "
             "ON CONFLICT (idempotency_key) DO NOTHING RETURNING idempotency_key")
_PG_DELIVERY = ("INSERT INTO alert_deliveries (idempotency_key, webhook, status, attempts, next_attempt_ms, "
                "claimed_until_ms, delivered_at_ms, last_error) "
                "SELECT $1, name, 'pending', 0, $3, 0, 0, '' FROM unnest($2::text[]) AS name "
                "ON CONFLICT DO NOTHING")


async def lock_subjects_pg(driver: Any, watches: list[Watch], now_ms: int) -> dict[str, int]:
    """Locks the watched subjects' rows in lock order (creating missing ones); their anchors by subject."""
    subjects = [w.subject for w in watches]
    anchors = {r[0]: int(r[1]) for r in await driver.fetch(_PG_LOCK, subjects)}
    missing = sorted(set(subjects) - set(anchors))
    if missing:
        await driver.execute(_PG_NEW_SUBJECTS, missing, now_ms)
        anchors = {r[0]: int(r[1]) for r in await driver.fetch(_PG_LOCK, subjects)}
    return anchors


async def insert_alert_pg(driver: Any, alert: NewAlert, webhooks: tuple[str, ...]) -> bool:
    values = alert.values()
    if await driver.fetchval(_PG_ALERT, *[values[c] for c in _ALERT_COLUMNS]) is None:
        return False
    if webhooks:
        await driver.execute(_PG_DELIVERY, alert.idempotency_key, list(webhooks), alert.created_at_ms)
    return True


async def detect_pg(driver: Any, watches: list[Watch], anchors: dict[str, int], policy: AlertPolicy,
                    charged: Mapping[str, set[int]] | None = None) -> list[NewAlert]:
    """:func:`detect_sqlite` on PostgreSQL, after :func:`lock_subjects_pg` in the same transaction: every watched
    window's spend in one statement (one round trip), then the alerts it raises."""
    now = policy.now()
    now_ms = _ms(now)
    checks = [(watch, check) for watch in watches
              for check in checks_covering(watch, (charged or {}).get(watch.subject, ()), now,
                                           anchors[watch.subject], policy.tz)]
    if not checks:
        return []
    parts: list[str] = []
    params: dict[str, object] = {}
    for i, (watch, check) in enumerate(checks):
        parts.append(spent_sql(watch.scope, f"_{i}"))
        params.update(spent_params(watch.scope, watch.subject_id, check.start_ms, check.end_ms, f"_{i}"))
    sql, args = numbered(f"SELECT {', '.join(parts)}", params)
    sums = await driver.fetchrow(sql, *args)
    raised = []
    for (watch, check), spent in zip(checks, sums, strict=True):
        for alert in crossings(watch, check, int(spent), policy.thresholds, now_ms):
            if await insert_alert_pg(driver, alert, policy.webhooks):
                raised.append(alert)
    return raised
