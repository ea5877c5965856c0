"""Persistence of virtual keys and teams (SQLite on the embedded default, PostgreSQL in production)."""

from __future__ import annotations

from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from switchboard_auth.migrations import LOCK_ID, MIGRATIONS
from switchboard_auth.models import Team, VirtualKey
from switchboard_common.database import migrate


class Conflict(Exception):
    """A unique constraint refused the write (duplicate id or hash)."""


class KeyStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    def session(self) -> AsyncSession:
        return AsyncSession(self.engine, expire_on_commit=False)

    async def migrate(self) -> list[int]:
        return await migrate(self.engine, MIGRATIONS, LOCK_ID, "auth")

    # -- keys ------------------------------------------------------------------------------

    async def insert(self, row: VirtualKey | Team) -> None:
        async with self.session() as session:
            session.add(row)
            try:
                await session.commit()
            except IntegrityError as exc:
                raise Conflict(str(exc.orig)) from None

    async def save(self, row: VirtualKey | Team) -> None:
        """Writes a changed row back (the row was read by this store)."""
        async with self.session() as session:
            await session.merge(row)
            try:
                await session.commit()
            except IntegrityError as exc:
                raise Conflict(str(exc.orig)) from None

    async def by_hash(self, key_hash: str) -> VirtualKey | None:
        async with self.session() as session:
            return (await session.exec(select(VirtualKey).where(VirtualKey.key_hash == key_hash))).first()

    async def by_id(self, key_id: str) -> VirtualKey | None:
        async with self.session() as session:
            return await session.get(VirtualKey, key_id)

    async def list(self, team_id: str = "") -> list[VirtualKey]:
        query = select(VirtualKey).order_by(VirtualKey.created_at, VirtualKey.key_id)  # type: ignore[arg-type]
        if team_id:
            query = query.where(VirtualKey.team_id == team_id)
        async with self.session() as session:
            return list((await session.exec(query)).all())

    # -- teams -----------------------------------------------------------------------------

    async def team(self, team_id: str) -> Team | None:
        if not team_id:
            return None
        async with self.session() as session:
            return await session.get(Team, team_id)

    async def teams(self) -> list[Team]:
        async with self.session() as session:
            query = select(Team).order_by(Team.created_at, Team.team_id)  # type: ignore[arg-type]
            return list((await session.exec(query)).all())

    async def live_key_counts(self) -> dict[str, int]:
        """Keys per team that are not revoked."""
        query = (select(VirtualKey.team_id, func.count()).where(VirtualKey.status != "revoked")
                 .group_by(VirtualKey.team_id))
        async with self.session() as session:
            return {team_id: count for team_id, count in (await session.exec(query)).all()}

    async def delete_team(self, team: Team) -> None:
        async with self.session() as session:
            row = await session.get(Team, team.team_id)
            if row is not None:
                await session.delete(row)
                await session.commit()

    async def close(self) -> None:
        await self.engine.dispose()
