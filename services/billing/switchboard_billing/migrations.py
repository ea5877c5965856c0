"""Versioned schema migrations of the billing database."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from switchboard_billing.models import BudgetSubjectRow, ReservationRow, UsageRow
from switchboard_common.database import Migration

LOCK_ID = 0x5B_A0_02


async def _v1_ledger(conn: AsyncConnection) -> None:
    await conn.run_sync(lambda c: UsageRow.__table__.create(c, checkfirst=True))  # type: ignore[attr-defined]


async def _v2_budgets(conn: AsyncConnection) -> None:
    """Reservations, budget subjects, and the indexes that sum a key's or team's spend in a window."""
    for table in (BudgetSubjectRow.__table__, ReservationRow.__table__):  # type: ignore[attr-defined]
        await conn.run_sync(lambda c, t=table: t.create(c, checkfirst=True))
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


MIGRATIONS = [Migration(1, "usage ledger", _v1_ledger), Migration(2, "budgets and reservations", _v2_budgets),
              Migration(3, "custody facts in the ledger", _v3_custody),
              Migration(4, "no single-column key and team indexes on the ledger", _v4_lean_ledger_indexes)]
