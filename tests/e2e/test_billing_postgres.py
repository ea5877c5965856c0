"""Billing on real PostgreSQL under concurrency and crashes (needs SWITCHBOARD_TEST_POSTGRES_URL).

* Race: 200 concurrent requests through two facades, each with its own billing
  process, both on one PostgreSQL database, against a key whose budget covers
  about 20 of them: the key's ledger total never exceeds the budget, and every
  200 answer has exactly one ledger row.
* Crash: billing is SIGKILLed in the middle of a few hundred requests and
  restarted: once the outboxes have delivered, ledger rows = successful
  responses, with no duplicate and no reservation left behind.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.conftest import fake_models
from tests.fakes.openai_provider import FakeOpenAI
from tests.fakes.server import free_port
from tests.harness import Gateway, ServiceProcess, start_gateway

PG_URL = os.environ.get("SWITCHBOARD_TEST_POSTGRES_URL", "")
pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(not PG_URL, reason="needs PostgreSQL: set SWITCHBOARD_TEST_POSTGRES_URL "
                                          "(e.g. postgresql://postgres@127.0.0.1:5432/test)"),
]
MESSAGES = [{"role": "user", "content": "hi"}]
#: gRPC address of the second billing process, to restart it where its facade expects it.
_ADDRESSES: dict[str, str] = {}


def fresh_database() -> tuple[str, str]:
    name = "sb_" + secrets.token_hex(6)

    async def create() -> None:
        admin = await asyncpg.connect(PG_URL)
        try:
            await admin.execute(f'CREATE DATABASE "{name}"')
        finally:
            await admin.close()

    asyncio.run(create())
    return PG_URL.rsplit("/", 1)[0] + "/" + name, name


def drop_database(name: str) -> None:
    async def drop() -> None:
        admin = await asyncpg.connect(PG_URL)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()

    asyncio.run(drop())


def start_process(gw: Gateway, label: str, module: str, env: dict[str, str]) -> ServiceProcess:
    """Another process of one of our services (a second replica), with its own log."""
    return gw.start_named(label, module.removeprefix("switchboard_"), env)


def wait_http(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} never became ready")


@pytest.fixture(scope="module")
def pg_gateway(tmp_path_factory: pytest.TempPathFactory,
               fake_openai: tuple[FakeOpenAI, str]) -> Iterator[tuple[Gateway, str, str]]:
    """Auth, router and facade as usual; billing moved onto a fresh PostgreSQL database; plus a second
    billing and a second facade that talks to it. Yields (gateway, second facade URL, database DSN)."""
    dsn, name = fresh_database()
    tmp: Path = tmp_path_factory.mktemp("pg-gateway")
    # 200 requests at once on a 2-core machine: give the services time rather than shedding load with 503s.
    gw = start_gateway(tmp, fake_models(fake_openai[1]), {"SWITCHBOARD_SERVICE_TIMEOUT_SECONDS": "30"})
    try:
        gw.processes["billing"].terminate()
        gw.start_service("billing", {"SWITCHBOARD_DATABASE_URL": dsn})
        billing2 = _ADDRESSES["billing2"] = f"127.0.0.1:{free_port()}"
        start_process(gw, "billing2", "switchboard_billing",
                      {"SWITCHBOARD_GRPC_LISTEN": billing2, "SWITCHBOARD_DATABASE_URL": dsn})
        port2 = free_port()
        start_process(gw, "facade2", "switchboard_facade",
                      {"SWITCHBOARD_PORT": str(port2), "SWITCHBOARD_BILLING_ADDRESS": billing2})
        gw.wait_ready()
        wait_http(f"http://127.0.0.1:{port2}/health/readiness")
        yield gw, f"http://127.0.0.1:{port2}", dsn
    finally:
        for label in ("facade2", "billing2"):
            if label in gw.processes:
                gw.processes.pop(label).terminate()
        gw.stop()
        drop_database(name)


async def fire(urls: list[str], key: str, count: int, concurrency: int, done: list[int] | None = None,
               **body: object) -> list[httpx.Response]:
    """``count`` chat requests spread over the facades, at most ``concurrency`` at a time (all at once if equal);
    ``done[0]`` counts the answers as they come."""
    gate = asyncio.Semaphore(concurrency)
    done = done if done is not None else [0]
    async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=concurrency)) as client:
        async def one(i: int) -> httpx.Response:
            async with gate:
                response = await client.post(f"{urls[i % len(urls)]}/v1/chat/completions",
                                             headers={"Authorization": f"Bearer {key}"},
                                             json={"model": "fake-good", "messages": MESSAGES, **body})
                done[0] += 1
                return response
        return await asyncio.gather(*(one(i) for i in range(count)))


async def ledger(dsn: str, request_ids: list[str]) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(dsn)
    try:
        return list(await conn.fetch("SELECT request_id, key_id, cost_micros FROM usage_ledger "
                                     "WHERE request_id = ANY($1::text[])", request_ids))
    finally:
        await conn.close()


async def scalar(dsn: str, sql: str, *args: object) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval(sql, *args) or 0)
    finally:
        await conn.close()


async def held_reservations(dsn: str) -> list[str]:
    conn = await asyncpg.connect(dsn)
    try:
        return [r["reservation_id"] for r in await conn.fetch("SELECT reservation_id FROM reservations")]
    finally:
        await conn.close()


def wait_rows(dsn: str, request_ids: list[str], timeout: float = 40) -> list[asyncpg.Record]:
    deadline = time.monotonic() + timeout
    rows: list[asyncpg.Record] = []
    while time.monotonic() < deadline:
        rows = asyncio.run(ledger(dsn, request_ids))
        if len(rows) >= len(request_ids):
            return rows
        time.sleep(0.2)
    return rows


def test_concurrent_requests_through_two_facades_and_two_billings_never_overrun(
        pg_gateway: tuple[Gateway, str, str]) -> None:
    gw, facade2, dsn = pg_gateway
    # One request costs about 100 micros (fake prices); the budget covers about 20 of them.
    probe_key = gw.create_key()
    probe = httpx.post(f"{gw.base_url}/v1/chat/completions", headers={"Authorization": f"Bearer {probe_key}"},
                       json={"model": "fake-good", "messages": MESSAGES, "max_tokens": 20}, timeout=30)
    [probe_row] = wait_rows(dsn, [probe.headers["x-request-id"]])
    budget_micros = 20 * int(probe_row["cost_micros"])
    key = gw.create_key(key_alias="race", max_budget=f"{budget_micros / 1_000_000:.6f}")

    responses = asyncio.run(fire([gw.base_url, facade2], key, 200, 200, max_tokens=20))
    statuses = [r.status_code for r in responses]
    assert set(statuses) <= {200, 429}, sorted(set(statuses))
    ok = [r.headers["x-request-id"] for r in responses if r.status_code == 200]
    assert ok and statuses.count(429) > 0, "some requests must pass and the rest be denied"
    denied = [r for r in responses if r.status_code == 429]
    assert all(r.json()["error"]["code"] == "budget_exceeded" for r in denied)
    rows = wait_rows(dsn, ok)
    assert sorted(r["request_id"] for r in rows) == sorted(ok), "every 200 has exactly one ledger row"
    key_id = rows[0]["key_id"]
    total = asyncio.run(scalar(dsn, "SELECT SUM(cost_micros) FROM usage_ledger WHERE key_id = $1", key_id))
    count = asyncio.run(scalar(dsn, "SELECT COUNT(*) FROM usage_ledger WHERE key_id = $1", key_id))
    assert count == len(ok), "denied requests leave no row"
    assert 0 < total <= budget_micros
    # Nothing stays held once every request has settled.
    assert asyncio.run(scalar(dsn, "SELECT COUNT(*) FROM reservations WHERE key_id = $1", key_id)) == 0


def test_budget_leases_through_two_facades_never_overrun_and_unused_slices_come_back(
        pg_gateway: tuple[Gateway, str, str]) -> None:
    """Each facade takes its requests' holds from budget leases billing granted it; racing through both
    facades and both billings, the ledger never exceeds the budget, and every slice ends settled or returned."""
    gw, facade2, dsn = pg_gateway
    # A leased request reports its lease unit (the worst case of its shape) as the amount reserved.
    probe_key = gw.create_key(max_budget="1000")
    probe = httpx.post(f"{gw.base_url}/v1/chat/completions", headers={"Authorization": f"Bearer {probe_key}"},
                       json={"model": "fake-good", "messages": MESSAGES, "max_tokens": 20}, timeout=30)
    unit_micros = round(float(probe.headers["x-switchboard-reserved"]) * 1_000_000)
    assert unit_micros > 0
    budget_micros = 12 * unit_micros
    key = gw.create_key(key_alias="lease-race", max_budget=f"{budget_micros / 1_000_000:.6f}")

    responses = asyncio.run(fire([gw.base_url, facade2], key, 300, 100, max_tokens=20))
    statuses = [r.status_code for r in responses]
    assert set(statuses) <= {200, 429}, sorted(set(statuses))
    ok = [r for r in responses if r.status_code == 200]
    leased = [r for r in ok if round(float(r.headers["x-switchboard-reserved"]) * 1_000_000) == unit_micros]
    assert leased, "requests must have been admitted under leases"
    rows = wait_rows(dsn, [r.headers["x-request-id"] for r in ok])
    assert len(rows) == len(ok), "every 200 has exactly one ledger row"
    key_id = rows[0]["key_id"]
    total = asyncio.run(scalar(dsn, "SELECT SUM(cost_micros) FROM usage_ledger WHERE key_id = $1", key_id))
    assert 0 < total <= budget_micros
    # Units are freed by settlements and unused ones returned (at the latest when a lease's use window ends).
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:
        left = asyncio.run(scalar(dsn, "SELECT COALESCE(SUM(amount_micros), 0) FROM reservations "
                                       "WHERE key_id = $1", key_id))
        if left == 0:
            break
        time.sleep(0.5)
    assert left == 0, f"{left} micro-dollars still held after every request settled"


def test_billing_killed_mid_load_loses_and_duplicates_nothing(pg_gateway: tuple[Gateway, str, str]) -> None:
    gw, facade2, dsn = pg_gateway
    plain = gw.create_key(key_alias="crash-plain")
    budgeted = gw.create_key(key_alias="crash-budget", max_budget="100")
    done = [0]

    def restart_billing() -> None:
        gw.start_service("billing", {"SWITCHBOARD_DATABASE_URL": dsn})
        start_process(gw, "billing2", "switchboard_billing",
                      {"SWITCHBOARD_GRPC_LISTEN": _ADDRESSES["billing2"], "SWITCHBOARD_DATABASE_URL": dsn})

    async def load() -> tuple[list[httpx.Response], int]:
        first = asyncio.create_task(fire([gw.base_url, facade2], plain, 150, 12, done))
        second = asyncio.create_task(fire([gw.base_url, facade2], budgeted, 150, 12, done, max_tokens=20))
        while done[0] < 80:  # noqa: ASYNC110  (the answers are counted by plain code, not an event)
            await asyncio.sleep(0.01)
        killed_at = done[0]
        for label in ("billing", "billing2"):
            gw.processes[label].proc.send_signal(signal.SIGKILL)
            gw.processes[label].proc.wait()
        await asyncio.sleep(0.3)
        restart_billing()
        return [*(await first), *(await second)], killed_at

    responses, killed_at = asyncio.run(load())
    assert killed_at < 300 - 60, "billing must die in the middle of the load"
    statuses = [r.status_code for r in responses]
    ok = [r.headers["x-request-id"] for r in responses if r.status_code == 200]
    # Unbudgeted requests go on without billing; budgeted ones are refused (503) while it is down.
    assert set(statuses) <= {200, 503}, sorted(set(statuses))
    assert len(ok) > 150, "every unbudgeted request and the budgeted ones reserved before the kill succeed"
    rows = wait_rows(dsn, ok)
    ids = [r["request_id"] for r in rows]
    assert len(ids) == len(set(ids)) == len(ok), f"{len(ids)} rows for {len(ok)} successful responses"
    for key_id in {r["key_id"] for r in rows}:
        count = asyncio.run(scalar(dsn, "SELECT COUNT(*) FROM usage_ledger WHERE key_id = $1", key_id))
        assert count == sum(1 for r in rows if r["key_id"] == key_id), "failed requests leave no row"
    # A reservation committed just before the kill, whose answer never reached the facade (503), stays held
    # until it expires; no successful request keeps one.
    left = asyncio.run(held_reservations(dsn))
    assert not set(left) & set(ok), "every settled request's reservation is gone"
