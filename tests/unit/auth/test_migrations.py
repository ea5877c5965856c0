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
    assert key.jurisdictions == [] and key.key_prefix == "sk-"  # issued before prefixes were configurable
    assert await store.teams() == []
    await store.close()


async def test_limits_and_budgets_beyond_32_bits_are_stored_and_read_back(dsn: str) -> None:
    """Token limits in the billions and budgets above $2,147 (in micro-dollars) fit the columns on every store."""
    from switchboard_auth.models import Team, VirtualKey

    store = KeyStore(make_engine(dsn))
    await store.migrate()
    big = {"rpm_limit": 10_000_000_000, "tpm_limit": 10_000_000_000, "max_parallel_requests": 3_000_000_000,
           "max_budget_micros": 1_000_000_000_000, "max_daily_spend_micros": 5_000_000_000_000}
    await store.insert(VirtualKey(key_id="key_big", key_hash="h" * 64, last_four="abcd", **big))
    await store.insert(Team(team_id="team_big", **big))
    key, team = await store.by_id("key_big"), await store.team("team_big")
    assert key is not None and team is not None
    assert {name: getattr(key, name) for name in big} == big
    assert {name: getattr(team, name) for name in big} == big
    await store.close()


async def test_dashboard_sessions_are_stored_by_hash_and_expired_ones_swept(dsn: str) -> None:
    """Migration 9: the sessions table on every store; one session ends alone, expired ones go together."""
    from switchboard_auth.models import UiSession

    store = KeyStore(make_engine(dsn))
    await store.migrate()
    for name, expires in (("a" * 64, 100), ("b" * 64, 5_000_000_000), ("c" * 64, 5_000_000_000)):
        await store.insert(UiSession(session_hash=name, kind="user", subject="ann@example.com", label="Ann",
                                     created_at=1, expires_at=expires))
    found = await store.ui_session("b" * 64)
    assert found is not None and found.subject == "ann@example.com" and found.expires_at == 5_000_000_000
    await store.end_ui_sessions("b" * 64, expired_before=1_000)
    assert await store.ui_session("a" * 64) is None and await store.ui_session("b" * 64) is None
    assert await store.ui_session("c" * 64) is not None
    await store.close()
