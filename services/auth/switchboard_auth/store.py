"""Persistence of virtual keys, teams and users (SQLite on the embedded default, PostgreSQL in production)."""

from __future__ import annotations

import asyncio
import builtins
from collections.abc import Sequence

from sqlalchemy import delete, func
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from switchboard_auth.migrations import LOCK_ID, MIGRATIONS
from switchboard_auth.models import Team, UiSession, User, VirtualKey
from switchboard_common import audit_chain
from switchboard_common.database import migrate

Row = VirtualKey | Team | User
#: Auth's audit log (keys, teams, members, users).
AUDIT = audit_chain.tables("auth")


class Conflict(Exception):
    """A unique constraint refused the write (duplicate id or hash)."""


class KeyStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        #: Appends of this process wait here rather than on the database's lock (the head row serializes
        #: replicas; see switchboard_common.audit_chain).
        self._append = asyncio.Lock()

    def session(self) -> AsyncSession:
        return AsyncSession(self.engine, expire_on_commit=False)

    async def migrate(self) -> list[int]:
        return await migrate(self.engine, MIGRATIONS, LOCK_ID, "auth")

    # -- changes ---------------------------------------------------------------------------

    async def commit(self, change: audit_chain.Change, insert: Sequence[Row] = (), save: Sequence[Row] = (),
                     delete: Sequence[Row] = ()) -> None:
        """Writes one administrative change and its audit row in one transaction: both commit, or neither.

        Raises :class:`Conflict` when a unique constraint refuses a write (nothing is written then)."""
        async with self._append, self.session() as session:
            try:
                await audit_chain.append(await session.connection(), AUDIT, change)
                for row in insert:
                    session.add(row)
                for row in save:
                    await session.merge(row)
                for row in delete:
                    stored = await session.get(type(row), _primary_key(row))
                    if stored is not None:
                        await session.delete(stored)
                await session.commit()
            except IntegrityError as exc:
                await session.rollback()
                raise Conflict(str(exc.orig)) from None

    # -- keys ------------------------------------------------------------------------------

    async def insert(self, row: VirtualKey | Team | User | UiSession) -> None:
        async with self.session() as session:
            session.add(row)
            try:
                await session.commit()
            except IntegrityError as exc:
                raise Conflict(str(exc.orig)) from None

    async def save(self, row: VirtualKey | Team | User) -> None:
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

    async def live_with_alias(self, alias: str) -> list[VirtualKey]:
        """The keys that are not revoked with ``alias`` (aliases are unique among them)."""
        query = select(VirtualKey).where(VirtualKey.key_alias == alias, VirtualKey.status != "revoked")
        async with self.session() as session:
            return list((await session.exec(query)).all())

    async def list(self, team_id: str = "", user_id: str = "") -> list[VirtualKey]:
        query = select(VirtualKey).order_by(col(VirtualKey.created_at), col(VirtualKey.key_id))
        if team_id:
            query = query.where(VirtualKey.team_id == team_id)
        if user_id:
            query = query.where(VirtualKey.user_id == user_id)
        async with self.session() as session:
            return list((await session.exec(query)).all())

    # -- teams -----------------------------------------------------------------------------

    async def team(self, team_id: str) -> Team | None:
        if not team_id:
            return None
        async with self.session() as session:
            return await session.get(Team, team_id)

    async def teams(self) -> builtins.list[Team]:
        async with self.session() as session:
            query = select(Team).order_by(col(Team.created_at), col(Team.team_id))
            return list((await session.exec(query)).all())

    async def live_key_counts(self, by: str = "team_id") -> dict[str, int]:
        """Keys per team (or per user, ``by="user_id"``) that are not revoked."""
        column = getattr(VirtualKey, by)
        query = select(column, func.count()).where(VirtualKey.status != "revoked").group_by(column)
        async with self.session() as session:
            return {owner: count for owner, count in (await session.exec(query)).all()}

    # -- users -----------------------------------------------------------------------------

    async def user(self, user_id: str) -> User | None:
        if not user_id:
            return None
        async with self.session() as session:
            return await session.get(User, user_id)

    async def users(self, user_role: str = "") -> builtins.list[User]:
        query = select(User).order_by(col(User.created_at), col(User.user_id))
        if user_role:
            query = query.where(User.user_role == user_role)
        async with self.session() as session:
            return list((await session.exec(query)).all())

    async def delete_user(self, user: User) -> None:
        async with self.session() as session:
            row = await session.get(User, user.user_id)
            if row is not None:
                await session.delete(row)
                await session.commit()

    async def delete_team(self, team: Team) -> None:
        async with self.session() as session:
            row = await session.get(Team, team.team_id)
            if row is not None:
                await session.delete(row)
                await session.commit()

    # -- dashboard sessions ----------------------------------------------------------------

    async def ui_session(self, session_hash: str) -> UiSession | None:
        async with self.session() as session:
            return await session.get(UiSession, session_hash)

    async def end_ui_sessions(self, session_hash: str = "", expired_before: int = 0) -> None:
        """Deletes one session (by hash) and every session that expired before ``expired_before``."""
        async with self.session() as session:
            if session_hash:
                await session.exec(delete(UiSession).where(col(UiSession.session_hash) == session_hash))
            if expired_before:
                await session.exec(delete(UiSession).where(col(UiSession.expires_at) < expired_before))
            await session.commit()

    async def close(self) -> None:
        await self.engine.dispose()


def _primary_key(row: Row) -> str:
    return row.key_id if isinstance(row, VirtualKey) else row.team_id if isinstance(row, Team) else row.user_id
