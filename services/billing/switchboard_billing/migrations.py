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


MIGRATIONS = [Migration(1, "usage ledger", _v1_ledger), Migration(2, "budgets and reservations", _v2_budgets)]
