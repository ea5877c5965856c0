"""The ledger's later columns — custody (migration 3), sources (5), provider time (6), caching's savings (13) —
added to a ledger created before them, stored and read back.

SQLite always; PostgreSQL too when SWITCHBOARD_TEST_POSTGRES_URL is set (a fresh database per run).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
import sqlalchemy as sa

from switchboard.v1 import billing_pb2
from switchboard_billing.ledger import Ledger
from switchboard_billing.models import UsageRow
from switchboard_billing.servicer import ledger_values, record_from_row
from switchboard_common.database import make_engine

PG_URL = os.environ.get("SWITCHBOARD_TEST_POSTGRES_URL", "")
CUSTODY = ("custody_path", "pii", "pii_policy", "required_privacy_tier")
#: Columns migration 5 adds.
SOURCES = ("byok", "source", "response_id", "provisional")
#: The columns migration 6 adds (users' budgets, tags).
USERS = ("user_id", "tags")
#: Columns migration 9 adds (provider time and attempts).
PROVIDER_TIME = ("provider_ms", "attempts")
#: The column migration 13 adds (what prompt caching saved).
CACHE_SAVINGS = ("cache_savings_micros",)


def ledger_before_custody() -> sa.Table:
    """The usage_ledger table as migrations 1-2 created it before the custody columns existed."""
    columns = [sa.Column(c.name, c.type, primary_key=c.primary_key, nullable=c.nullable)
               for c in UsageRow.__table__.columns  # type: ignore[attr-defined]  # SQLModel's table
               if c.name not in CUSTODY + SOURCES + USERS + PROVIDER_TIME + CACHE_SAVINGS]
    return sa.Table("usage_ledger", sa.MetaData(), *columns)


@pytest.fixture(params=["sqlite", "postgres"])
async def dsn(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'billing.db'}"
        return
    if not PG_URL:
        pytest.skip("needs PostgreSQL: set SWITCHBOARD_TEST_POSTGRES_URL (e.g. postgresql://postgres@127.0.0.1/test)")
    name = "sb_custody_" + secrets.token_hex(5)
    admin = await asyncpg.connect(PG_URL)
    await admin.execute(f'CREATE DATABASE "{name}"')
    yield PG_URL.rsplit("/", 1)[0] + "/" + name
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await admin.close()


async def test_custody_columns_are_added_to_an_existing_ledger_and_round_trip(dsn: str) -> None:
    engine = make_engine(dsn)
    async with engine.begin() as conn:
        await conn.run_sync(lambda c: ledger_before_custody().create(c))
        await conn.execute(sa.text("INSERT INTO usage_ledger (request_id, key_id, key_alias, team_id, model, "
                                   "deployment_id, provider, upstream_model, jurisdiction, privacy_tier, "
                                   "prompt_tokens, completion_tokens, cached_prompt_tokens, cache_write_tokens, "
                                   "reasoning_tokens, usage_reported, status, http_status, error_code, stream, "
                                   "latency_ms, ttft_ms, started_at_ms, recorded_at_ms) VALUES ('req_old', 'k', '', "
                                   "'', 'm', 'd', 'openai', 'u', 'us', 'standard', 1, 1, 0, 0, 0, true, 'success', "
                                   "200, '', false, 1.0, 0.0, 1, 1)"))
    ledger = Ledger(engine)
    try:
        await ledger.migrate()
        await ledger.migrate()  # idempotent
        event = billing_pb2.UsageEvent(
            request_id="req_new", key_id="k", model="m", started_at_ms=2, status="success", http_status=200,
            custody_path="facade@h:1>router@h:2>openai:m/0", pii="card=1,email=2", pii_policy="substitute",
            required_privacy_tier="zero_retention", byok=True, source="grpc", response_id="chatcmpl-1",
            provider_ms=812.5, attempts=2)
        assert await ledger.record(ledger_values(event, 5_000, cache_savings_micros=-1_234))
        new, = await ledger.list(request_id="req_new")
        assert record_from_row(new).cache_savings_micros == -1_234
        for name in (*CUSTODY, "byok", "source", "response_id", *PROVIDER_TIME):
            assert getattr(record_from_row(new).event, name) == getattr(event, name)
        assert [r.request_id for r in await ledger.list(request_id="chatcmpl-1")] == ["req_new"]
        old, = await ledger.list(request_id="req_old")
        assert all(getattr(old, name) == "" for name in CUSTODY)
        assert (old.provider_ms, old.attempts, old.cache_savings_micros) == (0, 0, 0)
        total, = await ledger.summarize()
        assert (total.requests, total.cache_savings_micros) == (2, -1_234)
        assert len(await ledger.list()) == 2
    finally:
        await ledger.close()
