"""Async database engines and versioned migrations, one database per service.

A DSN decides the backend: ``postgresql://...`` (asyncpg) in production,
``sqlite:///path`` (aiosqlite) on the embedded default. Migrations are
ordered, numbered steps recorded in ``<service>_schema_migrations`` (one table
per service, so services may share a database without sharing a history);
each runs once, in a transaction, under a lock so that several replicas
starting together apply it exactly once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry


def async_dsn(dsn: str) -> str:
    """Normalises a user DSN to its async SQLAlchemy driver form."""
    if dsn.startswith(("postgres://", "postgresql://")):
        return "postgresql+asyncpg://" + dsn.split("://", 1)[1]
    if dsn.startswith("sqlite://") and "+aiosqlite" not in dsn:
        return "sqlite+aiosqlite://" + dsn[len("sqlite://"):]
    return dsn


def default_sqlite_dsn(data_dir: Path, name: str) -> str:
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    return f"sqlite+aiosqlite:///{(data_dir / name).resolve()}"


def is_sqlite(engine: AsyncEngine) -> bool:
    return engine.dialect.name == "sqlite"


def make_engine(dsn: str, pool_size: int = 10) -> AsyncEngine:
    dsn = async_dsn(dsn)
    if dsn.startswith("sqlite"):
        engine = create_async_engine(dsn, connect_args={"timeout": 30})

        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_conn: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    return create_async_engine(dsn, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    apply: Callable[[AsyncConnection], Awaitable[None]]


def migrations_table(service: str) -> sa.Table:
    return sa.Table(
        f"{service}_schema_migrations",
        sa.MetaData(),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("description", sa.String(200), nullable=False),
        sa.Column("applied_at", sa.DateTime(timezone=True), server_default=sa.func.now()),
    )


async def migrate(engine: AsyncEngine, migrations: Sequence[Migration], lock_id: int, service: str) -> list[int]:
    """Applies pending migrations in order; returns the versions applied now."""
    applied_now: list[int] = []
    table = migrations_table(service)
    async with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            await conn.execute(sa.text("SELECT pg_advisory_xact_lock(:id)"), {"id": lock_id})
        await conn.run_sync(lambda c: table.create(c, checkfirst=True))
        done = set((await conn.execute(sa.select(table.c.version))).scalars())
        for migration in sorted(migrations, key=lambda m: m.version):
            if migration.version in done:
                continue
            await migration.apply(conn)
            await conn.execute(table.insert().values(version=migration.version, description=migration.description))
            applied_now.append(migration.version)
    return applied_now
