"""Versioned schema migrations of the billing database."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from switchboard_billing import charge_windows, spend_buckets
from switchboard_billing.models import (
    AlertDeliveryRow,
    AlertRow,
    BudgetSubjectRow,
    ReservationRow,
    StoredModelRow,
    StoredModelsRevisionRow,
    UsageRow,
)
from switchboard_common import audit_chain
from switchboard_common.database import Migration

LOCK_ID = 0x5B_A0_02


async def _v1_ledger(conn: AsyncConnection) -> None:
    await conn.run_sync(lambda c: UsageRow.__table__.create(c, checkfirst=True))  # type: ignore[attr-defined]  # SQLModel sets __table__ at class creation


async def _v2_budgets(conn: AsyncConnection) -> None:
    """Reservations, budget subjects, and the indexes that sum a key's or team's spend in a window."""
    for table in (BudgetSubjectRow.__table__, ReservationRow.__table__):  # type: ignore[attr-defined]  # idem
        await conn.run_sync(table.create, checkfirst=True)
    await conn.execute(sa.text(
        "CREATE INDEX IF NOT EXISTS ix_usage_ledger_key_started ON usage_ledger (key_id, started_at_ms)"))
    await conn.execute(sa.text(
        "CREATE INDEX IF NOT EXISTS ix_usage_ledger_team_started ON usage_ledger (team_id, started_at_ms)"))


_CUSTODY_COLUMNS = {"custody_path": 400, "pii": 200, "pii_policy": 20, "required_privacy_tier": 60}


async def _v3_custody(conn: AsyncConnection) -> None:
    """Custody facts per request. A ledger created by v1 from the current model already has them."""
    existing = await conn.run_sync(lambda c: {col["name"] for col in sa.inspect(c).get_columns("usage_ledger")})
    for name, length in _CUSTODY_COLUMNS.items():
        if name not in existing:
            await conn.execute(sa.text(
                f"ALTER TABLE usage_ledger ADD COLUMN {name} VARCHAR({length}) NOT NULL DEFAULT ''"))


async def _v4_lean_ledger_indexes(conn: AsyncConnection) -> None:
    """Drops the key and team indexes of the ledger: the (key/team, started_at_ms) indexes of v2 serve every
    lookup they served, and each index is written by every settled request."""
    for name in ("ix_usage_ledger_key_id", "ix_usage_ledger_team_id"):
        await conn.execute(sa.text(f"DROP INDEX IF EXISTS {name}"))


async def _add_columns(conn: AsyncConnection, table: str, columns: dict[str, str]) -> set[str]:
    """Adds the columns a table created by an older model lacks; returns those added."""
    existing = await conn.run_sync(lambda c: {col["name"] for col in sa.inspect(c).get_columns(table)})
    added = set()
    for name, ddl in columns.items():
        if name not in existing:
            await conn.execute(sa.text(f"ALTER TABLE {table} ADD COLUMN {name} {ddl}"))
            added.add(name)
    return added


async def _v5_leases_and_sources(conn: AsyncConnection) -> None:
    """Leases that lapse to what their holder committed (reservations.renewed_until_ms, committed_micros,
    holder); the ledger's byok, source, provisional rows and provider response id (indexed: /spend/logs finds
    rows by it)."""
    added = await _add_columns(conn, "reservations", {
        "renewed_until_ms": "BIGINT NOT NULL DEFAULT 0", "committed_micros": "BIGINT NOT NULL DEFAULT 0",
        "holder": "VARCHAR(120) NOT NULL DEFAULT ''"})
    if "renewed_until_ms" in added:  # holds made before leases lapsed were whole until they expired
        await conn.execute(sa.text("UPDATE reservations SET renewed_until_ms = expires_at_ms, "
                                   "committed_micros = amount_micros"))
    await _add_columns(conn, "usage_ledger", {
        "byok": "BOOLEAN NOT NULL DEFAULT FALSE", "source": "VARCHAR(10) NOT NULL DEFAULT ''",
        "response_id": "VARCHAR(120) NOT NULL DEFAULT ''", "provisional": "BOOLEAN NOT NULL DEFAULT FALSE"})
    await conn.execute(sa.text(
        "CREATE INDEX IF NOT EXISTS ix_usage_ledger_response_id ON usage_ledger (response_id)"))


async def _v6_users_and_tags(conn: AsyncConnection) -> None:
    """Users' budgets: the user owning the key on ledger rows and reservations (indexed like keys and teams), and
    the key's tags on ledger rows."""
    await _add_columns(conn, "usage_ledger", {"user_id": "VARCHAR(200) NOT NULL DEFAULT ''",
                                              "tags": "VARCHAR(2000) NOT NULL DEFAULT '[]'"})
    await _add_columns(conn, "reservations", {"user_id": "VARCHAR(200) NOT NULL DEFAULT ''"})
    await conn.execute(sa.text(
        "CREATE INDEX IF NOT EXISTS ix_usage_ledger_user_started ON usage_ledger (user_id, started_at_ms)"))
    await conn.execute(sa.text("CREATE INDEX IF NOT EXISTS ix_reservations_user_id ON reservations (user_id)"))


async def _v7_model_budgets(conn: AsyncConnection) -> None:
    """A key's budget on one model: reservations record the model they hold for when such a budget applies."""
    await _add_columns(conn, "reservations", {"model": "VARCHAR(200) NOT NULL DEFAULT ''"})


async def _v8_stored_models(conn: AsyncConnection) -> None:
    """Models added at run time (/model/new) and the revision counter replicas poll."""
    for table in (StoredModelRow.__table__, StoredModelsRevisionRow.__table__):  # type: ignore[attr-defined]  # idem
        await conn.run_sync(table.create, checkfirst=True)
    await conn.execute(sa.text("INSERT INTO stored_models_revision (id, revision) VALUES (1, 0)"))


async def _v9_provider_time(conn: AsyncConnection) -> None:
    """The provider's share of each request's latency and the provider calls it took (retries included)."""
    await _add_columns(conn, "usage_ledger", {"provider_ms": "FLOAT NOT NULL DEFAULT 0",
                                              "attempts": "INTEGER NOT NULL DEFAULT 0"})


async def _v10_alerts(conn: AsyncConnection) -> None:
    """Budget alerts and reports, and their durable delivery queue (docs/alerts.md)."""
    def create(sync_conn: sa.Connection) -> None:
        for table in (AlertRow.__table__, AlertDeliveryRow.__table__):  # type: ignore[attr-defined]  # SQLModel sets __table__ at class creation
            table.create(sync_conn, checkfirst=True)

    await conn.run_sync(create)
    await conn.execute(sa.text("CREATE INDEX IF NOT EXISTS ix_alert_deliveries_due "
                               "ON alert_deliveries (status, next_attempt_ms)"))
    await conn.execute(sa.text("CREATE INDEX IF NOT EXISTS ix_budget_alerts_subject "
                               "ON budget_alerts (scope, subject_id, created_at_ms)"))


async def _v11_audit_log(conn: AsyncConnection) -> None:
    """The audit log of models added at run time and its chain's head (switchboard_common.audit_chain)."""
    await audit_chain.create_tables(conn, audit_chain.tables("billing"))


async def _v12_spend_buckets(conn: AsyncConnection) -> None:
    """Hourly spend per budget subject, kept by triggers on the ledger and filled from it (spend_buckets.py)."""
    await conn.execute(sa.text(spend_buckets.CREATE_TABLE))
    triggers = spend_buckets.POSTGRES_TRIGGERS if conn.dialect.name == "postgresql" else spend_buckets.SQLITE_TRIGGERS
    for statement in triggers:
        await conn.execute(sa.text(statement))
    await conn.execute(sa.text("DELETE FROM spend_buckets"))
    await conn.execute(sa.text(spend_buckets.BACKFILL))


async def _v13_cache_savings(conn: AsyncConnection) -> None:
    """What prompt caching saved on each request (rows settled before this migration hold 0: not recorded then)."""
    await _add_columns(conn, "usage_ledger", {"cache_savings_micros": "BIGINT NOT NULL DEFAULT 0"})


async def _v14_lapse_clock_and_lease_windows(conn: AsyncConnection) -> None:
    """The time billing was last seen running (lapse_clock.py), started at the latest hold made (a lower bound:
    a billing upgraded after an absence makes it up), and which reservations are leases (a lease counts in
    every budget window, a request's hold only in the windows its request is charged to; budgets.py). Holds
    made before this migration are taken for leases: counted in every window until they settle."""
    await conn.execute(sa.text("CREATE TABLE IF NOT EXISTS billing_alive (id INTEGER PRIMARY KEY, "
                               "seen_ms BIGINT NOT NULL)"))
    await conn.execute(sa.text("INSERT INTO billing_alive (id, seen_ms) "
                               "SELECT 1, COALESCE(MAX(created_at_ms), 0) FROM reservations"))
    if "lease" in await _add_columns(conn, "reservations", {"lease": "BOOLEAN NOT NULL DEFAULT FALSE"}):
        await conn.execute(sa.text("UPDATE reservations SET lease = TRUE"))


async def _v15_charged_instants(conn: AsyncConnection) -> None:
    """The instants a reservation's money may be charged at (charge_windows.py). Rows made before it are given
    what the rule they were made under allowed for: a lease every instant, a request's hold the instants within
    the clock skew billing accepts of when it was made."""
    added = await _add_columns(conn, "reservations", {"charged_from_ms": "BIGINT NOT NULL DEFAULT 0",
                                                      "charged_until_ms": "BIGINT NOT NULL DEFAULT 0"})
    if "charged_from_ms" in added:
        skew = charge_windows.MAX_CLOCK_SKEW_MS
        everywhere = {"start": spend_buckets.ALL_TIME[0], "end": spend_buckets.ALL_TIME[1]}
        await conn.execute(sa.text("UPDATE reservations SET charged_from_ms = :start, charged_until_ms = :end "
                                   "WHERE lease"), everywhere)
        await conn.execute(sa.text(f"UPDATE reservations SET charged_from_ms = created_at_ms - {skew}, "
                                   f"charged_until_ms = created_at_ms + {skew + 1} WHERE NOT lease"))


MIGRATIONS = [Migration(1, "usage ledger", _v1_ledger), Migration(2, "budgets and reservations", _v2_budgets),
              Migration(3, "custody facts in the ledger", _v3_custody),
              Migration(4, "no single-column key and team indexes on the ledger", _v4_lean_ledger_indexes),
              Migration(5, "leases that lapse; byok, source and response id in the ledger", _v5_leases_and_sources),
              Migration(6, "users' budgets and tags in the ledger", _v6_users_and_tags),
              Migration(7, "the model of a hold under a key's budget on that model", _v7_model_budgets),
              Migration(8, "models added at run time", _v8_stored_models),
              Migration(9, "provider time and attempts in the ledger", _v9_provider_time),
              Migration(10, "budget alerts and their delivery queue", _v10_alerts),
              Migration(11, "audit log of models added at run time", _v11_audit_log),
              Migration(12, "hourly spend per budget subject, kept by triggers", _v12_spend_buckets),
              Migration(13, "what prompt caching saved, per request in the ledger", _v13_cache_savings),
              Migration(14, "the lapse clock billing's absence stops; leases marked",
                        _v14_lapse_clock_and_lease_windows),
              Migration(15, "the instants a hold's money is charged at", _v15_charged_instants)]
