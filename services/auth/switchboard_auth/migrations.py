"""Versioned schema migrations of the auth database."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from switchboard_auth.models import VirtualKey
from switchboard_common.database import Migration

#: Advisory lock id used while migrating (PostgreSQL).
LOCK_ID = 0x5B_A0_01


async def _v1_keys(conn: AsyncConnection) -> None:
    await conn.run_sync(lambda c: VirtualKey.__table__.create(c, checkfirst=True))  # type: ignore[attr-defined]


MIGRATIONS = [Migration(1, "virtual keys", _v1_keys)]
