"""Versioned migrations: a database made by the first release upgrades in place, keys intact."""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa

from switchboard_auth.migrations import LOCK_ID, MIGRATIONS
from switchboard_auth.store import KeyStore
from switchboard_common.database import default_sqlite_dsn, make_engine, migrate

POSTGRES_URL = os.environ.get("SWITCHBOARD_TEST_POSTGRES_URL", "")


@pytest.fixture(params=["sqlite", "postgres"])
async def dsn(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield default_sqlite_dsn(tmp_path, "auth.db")
        return
    if not POSTGRES_URL:
        pytest.skip("SWITCHBOARD_TEST_POSTGRES_URL is not set (e.g. postgresql://postgres@127.0.0.1:5432/test)")
    name = "sb_mig_" + secrets.token_hex(6)
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield POSTGRES_URL.rpartition("/")[0] + "/" + name
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def test_a_first_release_database_upgrades_with_its_keys(dsn: str) -> None:
    engine = make_engine(dsn)
    assert await migrate(engine, MIGRATIONS[:1], LOCK_ID, "auth") == [1]
    async with engine.begin() as conn:
        await conn.execute(sa.text(
            "INSERT INTO virtual_keys (key_id, key_hash, key_alias, last_four, team_id, models, rpm_limit, "
            "budget_duration, privacy_tier, pii_policy, metadata, created_at, expires_at, status) VALUES "
            "('key_old', 'h' , 'old', 'abcd', '', '[]', 5, '', '', '', '{}', 1, 0, 'active')"))
    store = KeyStore(engine)
    assert await store.migrate() == [m.version for m in MIGRATIONS[1:]]
    assert await store.migrate() == []
    key = await store.by_id("key_old")
    assert key is not None and key.rpm_limit == 5 and key.is_admin is False and key.updated_at == 0
    assert await store.teams() == []
    await store.close()
