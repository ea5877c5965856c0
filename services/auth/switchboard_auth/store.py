"""Persistence of virtual keys (SQLite on the embedded default, PostgreSQL in production)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from switchboard_auth.migrations import LOCK_ID, MIGRATIONS
from switchboard_auth.models import VirtualKey
from switchboard_common.database import migrate


class KeyStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    def session(self) -> AsyncSession:
        return AsyncSession(self.engine, expire_on_commit=False)

    async def migrate(self) -> None:
        await migrate(self.engine, MIGRATIONS, LOCK_ID, "auth")

    async def insert(self, key: VirtualKey) -> None:
        async with self.session() as session:
            session.add(key)
            await session.commit()

    async def by_hash(self, key_hash: str) -> VirtualKey | None:
        async with self.session() as session:
            return (await session.exec(select(VirtualKey).where(VirtualKey.key_hash == key_hash))).first()

    async def list(self, team_id: str = "") -> list[VirtualKey]:
        query = select(VirtualKey).order_by(VirtualKey.created_at)  # type: ignore[arg-type]
        if team_id:
            query = query.where(VirtualKey.team_id == team_id)
        async with self.session() as session:
            return list((await session.exec(query)).all())

    async def close(self) -> None:
        await self.engine.dispose()
