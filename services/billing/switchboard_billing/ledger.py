"""The usage ledger: idempotent inserts and filtered, paginated reads."""

from __future__ import annotations

import time

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from switchboard_billing.migrations import LOCK_ID, MIGRATIONS
from switchboard_billing.models import UsageRow
from switchboard_common.database import migrate


class Ledger:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def migrate(self) -> None:
        await migrate(self.engine, MIGRATIONS, LOCK_ID)

    async def record(self, row: UsageRow) -> bool:
        """Inserts the row unless its request id is already recorded; True when inserted."""
        return await self.record_many([row]) == 1

    async def record_many(self, rows: list[UsageRow]) -> int:
        """Inserts rows in one transaction, skipping request ids already recorded; returns how many were new."""
        now = int(time.time() * 1000)
        table = UsageRow.__table__  # type: ignore[attr-defined]
        insert = pg_insert if self.engine.dialect.name == "postgresql" else sqlite_insert
        recorded = 0
        async with self.engine.begin() as conn:
            for row in rows:
                row.recorded_at_ms = now
                stmt = insert(table).values(**row.model_dump()).on_conflict_do_nothing(index_elements=["request_id"])
                result = await conn.execute(stmt)
                recorded += result.rowcount or 0
        return recorded

    async def list(self, *, key_id: str = "", team_id: str = "", model: str = "", from_ms: int = 0,
                   to_ms: int = 0, limit: int = 100, before: tuple[int, str] | None = None) -> list[UsageRow]:
        query = select(UsageRow)
        if key_id:
            query = query.where(UsageRow.key_id == key_id)
        if team_id:
            query = query.where(UsageRow.team_id == team_id)
        if model:
            query = query.where(UsageRow.model == model)
        if from_ms:
            query = query.where(col(UsageRow.started_at_ms) >= from_ms)
        if to_ms:
            query = query.where(col(UsageRow.started_at_ms) < to_ms)
        if before is not None:
            started, request_id = before
            query = query.where(
                (col(UsageRow.started_at_ms) < started)
                | ((col(UsageRow.started_at_ms) == started) & (col(UsageRow.request_id) < request_id))
            )
        query = query.order_by(col(UsageRow.started_at_ms).desc(), col(UsageRow.request_id).desc()).limit(limit)
        async with AsyncSession(self.engine, expire_on_commit=False) as session:
            return list((await session.exec(query)).all())

    async def close(self) -> None:
        await self.engine.dispose()
