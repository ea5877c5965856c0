"""Versioned schema migrations of the billing database."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from switchboard_billing.models import UsageRow
from switchboard_common.database import Migration

LOCK_ID = 0x5B_A0_02


async def _v1_ledger(conn: AsyncConnection) -> None:
    await conn.run_sync(lambda c: UsageRow.__table__.create(c, checkfirst=True))  # type: ignore[attr-defined]


MIGRATIONS = [Migration(1, "usage ledger", _v1_ledger)]
