"""Two replicas of every service on PostgreSQL and Redis, behind a round-robin client.

Two facades, two auth, two billing and two router processes run on loopback; auth
shares one PostgreSQL database and one Redis key prefix, billing another database
(both made fresh for the run and removed after). Every facade reaches every replica
of a service through one balanced gRPC channel (a comma-separated address list). The
tests show, under concurrent load:

* one RPM limit and one budget hold across all replicas;
* a key revoked through one facade is refused by every facade within a second;
* SIGTERM on a facade lets an in-flight stream finish, takes no new connection,
  flushes the outbox and exits: the stream's usage is in the ledger at once;
* SIGKILL of one replica of each service in the middle of the load fails only the
  requests that were in flight on the dead processes; once the crashed facade is back
  (its outbox replayed), the ledger has exactly one row per 200 answer.

Needs SWITCHBOARD_TEST_POSTGRES_URL and SWITCHBOARD_TEST_REDIS_URL.
"""

from __future__ import annotations

import asyncio
import itertools
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from tests.conftest import FAKE_PRICES, fake_models
from tests.e2e.replicated import NEEDS_DATASTORES, datastores
from tests.fakes.openai_provider import FakeOpenAI
from tests.harness import Cluster, start_cluster

pytestmark = NEEDS_DATASTORES

MESSAGES = [{"role": "user", "content": "hi"}]
#: How long after a crash a new request may still be sent to the dead process (the kernel closes its
#: sockets at once; the peers' channels and pools notice within milliseconds, more on a busy machine).
CRASH_NOTICE_SECONDS = 0.5


@dataclass
class Env:
    cluster: Cluster
    billing_dsn: str
    auth_dsn: str


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory, fake_openai: tuple[FakeOpenAI, str]) -> Iterator[Env]:
    models = [*fake_models(fake_openai[1]), {"name": "fake-slow", "deployments": [{
        "provider": "openai", "model": "slow-0.1", "api_base": fake_openai[1], "api_key": "sk-fake-upstream",
        "jurisdiction": "us", **FAKE_PRICES}]}]
    tmp: Path = tmp_path_factory.mktemp("replicas-all")
    with datastores() as stores:
        cluster = start_cluster(tmp, models, service_env={
            **stores.service_env(), "facade": {"SWITCHBOARD_SHUTDOWN_GRACE_SECONDS": "10"}})
        try:
            yield Env(cluster, stores.billing_dsn, stores.auth_dsn)
        finally:
            cluster.gateway.stop()


# -- the client side: a round-robin balancer and concurrent load ----------------------------------------


@dataclass
class Outcome:
    """One request as the client saw it (status 0: the connection broke before an answer)."""

    status: int
    facade: int
    started: float
    ended: float
    request_id: str = ""
    body: bytes = b""
    error: str = ""


class RoundRobin:
    """The load balancer in front of the facades: the next facade for each request. A facade that
    refuses the connection never saw the request, so the balancer tries the next one."""

    def __init__(self, urls: list[str], client: httpx.AsyncClient) -> None:
        self.urls = urls
        self.client = client
        self._turn = itertools.count()

    async def chat(self, key: str, **body: Any) -> Outcome:
        first = next(self._turn)
        started = time.monotonic()
        for hop in range(len(self.urls)):
            index = (first + hop) % len(self.urls)
            try:
                response = await self.client.post(f"{self.urls[index]}/v1/chat/completions",
                                                  headers={"Authorization": f"Bearer {key}"},
                                                  json={"model": "fake-good", "messages": MESSAGES, **body})
            except httpx.ConnectError:
                continue
            except httpx.TransportError as exc:
                return Outcome(0, index, started, time.monotonic(), error=repr(exc))
            return Outcome(response.status_code, index, started, time.monotonic(),
                           response.headers.get("x-request-id", ""), response.content)
        return Outcome(0, -1, started, time.monotonic(), error="no facade accepts connections")


async def fire(urls: list[str], jobs: list[tuple[str, dict[str, Any]]], concurrency: int,
               done: list[int] | None = None) -> list[Outcome]:
    """Sends every (key, body) job through the balancer, ``concurrency`` at a time; ``done[0]`` counts answers."""
    gate = asyncio.Semaphore(concurrency)
    done = done if done is not None else [0]
    async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=2 * concurrency)) as client:
        balancer = RoundRobin(urls, client)

        async def one(key: str, body: dict[str, Any]) -> Outcome:
            async with gate:
                outcome = await balancer.chat(key, **body)
                done[0] += 1
                return outcome

        return await asyncio.gather(*(one(key, body) for key, body in jobs))


# -- reading the ledger ---------------------------------------------------------------------------------


def ledger_rows(dsn: str, request_ids: list[str]) -> list[tuple[str, str, int, str]]:
    """(request_id, key_id, cost_micros, status) of the given requests."""
    with psycopg.connect(dsn) as conn:
        return [(str(a), str(b), int(c), str(d)) for a, b, c, d in conn.execute(
            "SELECT request_id, key_id, cost_micros, status FROM usage_ledger WHERE request_id = ANY(%s)",
            (request_ids,))]


def wait_rows(dsn: str, request_ids: list[str], timeout: float = 20) -> list[tuple[str, str, int, str]]:
    deadline = time.monotonic() + timeout
    rows = ledger_rows(dsn, request_ids)
    while len({r[0] for r in rows}) < len(set(request_ids)) and time.monotonic() < deadline:
        time.sleep(0.2)
        rows = ledger_rows(dsn, request_ids)
    return rows


def scalar(dsn: str, sql: str, *args: object) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(sql, args).fetchone()
    return int(row[0] or 0) if row else 0


def create_key(env: Env, facade: int = 0, **spec: object) -> tuple[str, str]:
    gw = env.cluster.gateway
    response = httpx.post(f"{gw.base_urls[facade]}/key/generate", json=spec, headers=gw.admin(), timeout=10)
    assert response.status_code == 200, response.text
    return str(response.json()["key"]), str(response.json()["key_id"])


# -- the tests ------------------------------------------------------------------------------------------


def test_one_rpm_limit_holds_across_every_replica(env: Env) -> None:
    limit = 10
    key, _ = create_key(env, key_alias="replicas-rpm", rpm_limit=limit)
    outcomes = asyncio.run(fire(env.cluster.gateway.base_urls, [(key, {})] * (3 * limit), concurrency=10))
    statuses = [o.status for o in outcomes]
    assert statuses.count(200) == limit and statuses.count(429) == 2 * limit, statuses
    assert {o.facade for o in outcomes} == {0, 1}, "the load went through both facades"


def test_one_budget_holds_across_every_replica(env: Env) -> None:
    probe_key, _ = create_key(env, key_alias="replicas-probe")
    [probe] = asyncio.run(fire(env.cluster.gateway.base_urls, [(probe_key, {"max_tokens": 20})], 1))
    assert probe.status == 200, probe.body
    [(_, _, cost, _)] = wait_rows(env.billing_dsn, [probe.request_id])
    budget_micros = 12 * cost
    key, key_id = create_key(env, key_alias="replicas-budget", max_budget=f"{budget_micros / 1_000_000:.6f}")

    outcomes = asyncio.run(fire(env.cluster.gateway.base_urls, [(key, {"max_tokens": 20})] * 60, concurrency=15))
    statuses = [o.status for o in outcomes]
    assert set(statuses) <= {200, 429}, sorted(set(statuses))
    ok = [o.request_id for o in outcomes if o.status == 200]
    assert 0 < len(ok) <= 12 and statuses.count(429) > 0, statuses
    assert all(b'"budget_exceeded"' in o.body for o in outcomes if o.status == 429)
    rows = wait_rows(env.billing_dsn, ok)
    assert sorted(r[0] for r in rows) == sorted(ok), "every 200 has exactly one ledger row"
    assert scalar(env.billing_dsn, "SELECT COUNT(*) FROM usage_ledger WHERE key_id = %s", key_id) == len(ok)
    assert 0 < scalar(env.billing_dsn, "SELECT SUM(cost_micros) FROM usage_ledger WHERE key_id = %s",
                      key_id) <= budget_micros
    assert scalar(env.billing_dsn, "SELECT COUNT(*) FROM reservations WHERE key_id = %s", key_id) == 0


@pytest.mark.parametrize("limited", [True, False], ids=["admitted-by-auth", "verified-from-facade-cache"])
def test_a_key_revoked_on_one_replica_is_refused_by_all_within_a_second(env: Env, limited: bool) -> None:
    gw = env.cluster.gateway
    key, key_id = create_key(env, key_alias=f"replicas-revoke-{limited}", **({"rpm_limit": 1000} if limited else {}))
    # Every facade and both auth replicas (round robin) have verified, and cached, the key.
    warm = asyncio.run(fire(gw.base_urls, [(key, {})] * 8, concurrency=1))
    assert [o.status for o in warm] == [200] * 8
    response = httpx.post(f"{gw.base_urls[0]}/key/block", json={"key": key_id}, headers=gw.admin(), timeout=10)
    assert response.status_code == 200, response.text
    revoked_at = time.monotonic()
    refused: set[str] = set()
    with httpx.Client(timeout=5) as client:
        while len(refused) < len(gw.base_urls):
            for url in gw.base_urls:
                answer = client.post(f"{url}/v1/chat/completions", headers={"Authorization": f"Bearer {key}"},
                                     json={"model": "fake-good", "messages": MESSAGES})
                assert answer.status_code in (200, 401), answer.text
                if answer.status_code == 401:
                    refused.add(url)
            assert time.monotonic() - revoked_at < 1.0, f"still accepted by {set(gw.base_urls) - refused}"


def test_sigterm_lets_a_facade_finish_its_stream_and_flush_its_outbox(env: Env) -> None:
    cluster, gw = env.cluster, env.cluster.gateway
    key, _ = create_key(env, key_alias="replicas-drain")
    facade = gw.processes["facade2"]
    url = gw.base_urls[1]
    outbox = Path(cluster.launches["facade2"][1]["SWITCHBOARD_DATA_DIR"]) / "outbox"
    body = {"model": "fake-drip", "messages": MESSAGES, "stream": True, "stream_options": {"include_usage": True}}
    with httpx.Client(timeout=30) as client, client.stream(
            "POST", f"{url}/v1/chat/completions", headers={"Authorization": f"Bearer {key}"}, json=body) as stream:
        assert stream.status_code == 200
        request_id = stream.headers["x-request-id"]
        lines = stream.iter_lines()
        first = next(line for line in lines if line.startswith("data: "))
        facade.proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        with pytest.raises(httpx.ConnectError):  # no new work while draining
            httpx.get(f"{url}/health/liveness", timeout=2)
        during = asyncio.run(fire(gw.base_urls, [(key, {})] * 4, concurrency=2))
        assert [o.status for o in during] == [200] * 4 and {o.facade for o in during} == {0}
        rest = [first, *lines]
    data = [line.removeprefix("data: ") for line in rest if line.startswith("data: ")]
    assert data[-1] == "[DONE]", data[-3:]
    text = "".join(chunk.split('"content":"', 1)[1].split('"', 1)[0] for chunk in data if '"content":"' in chunk)
    assert text == "x" * 200, "the whole stream arrived"
    # The drain ends the process normally: exit status 0, logs flushed.
    assert facade.proc.wait(timeout=15) == 0, facade.log()[-2000:]
    # The router that served the stream settles it (within its outbox's linger); the facade left no journal.
    [row] = wait_rows(env.billing_dsn, [request_id])
    assert row[3] == "success" and row[2] > 0
    assert list(outbox.glob("*.journal")) == []
    cluster.start("facade2")
    cluster.wait_ready("facade2")


def test_killing_one_replica_of_each_service_fails_only_its_in_flight_requests(env: Env) -> None:
    cluster, gw = env.cluster, env.cluster.gateway
    plain, plain_id = create_key(env, key_alias="replicas-crash-plain")
    budgeted, budgeted_id = create_key(env, key_alias="replicas-crash-budget", max_budget="100")
    jobs = [(plain if i % 2 else budgeted, {"model": "fake-slow", "max_tokens": 20}) for i in range(240)]
    concurrency = 12
    victims = ("facade1", "auth1", "billing1", "router1")
    done = [0]

    async def load_and_crash() -> tuple[list[Outcome], float]:
        running = asyncio.create_task(fire(gw.base_urls, jobs, concurrency, done))
        while done[0] < 80:  # noqa: ASYNC110  (answers are counted by plain code, not an event)
            await asyncio.sleep(0.01)
        killed_at = time.monotonic()
        for label in victims:
            gw.processes[label].proc.send_signal(signal.SIGKILL)
        return await running, killed_at

    outcomes, killed_at = asyncio.run(load_and_crash())
    for label in victims:
        assert gw.processes[label].proc.wait(timeout=5) == -signal.SIGKILL
    assert done[0] == len(jobs)
    assert sum(1 for o in outcomes if o.started > killed_at) > 100, "the crash came in the middle of the load"
    failed = [o for o in outcomes if o.status != 200]
    report = [(o.status, o.facade, round(o.started - killed_at, 3), o.error or o.body[:120]) for o in failed
              if o.started > killed_at]
    # Only requests in flight when the processes died may fail: at most one per concurrent slot; and those sent
    # before the survivors noticed the deaths (the kernel closes a dead process's connections at once, but a
    # facade learns it when its event loop next reads them), none later.
    assert sum(1 for o in failed if o.started <= killed_at) <= concurrency, report
    assert all(o.started < killed_at + CRASH_NOTICE_SECONDS for o in failed), report
    # A broken connection only on the dead facade; the live one answers a clean, typed 503.
    assert all(o.facade == 0 for o in failed if o.status == 0), report
    assert all(o.status in (0, 503) for o in failed), report
    assert all(b'"error"' in o.body for o in failed if o.status == 503), report
    assert all(o.facade == 1 for o in outcomes if o.started > killed_at + CRASH_NOTICE_SECONDS)

    # The crashed facade and router come back on their data directories (restarted containers) and replay what
    # their outboxes journaled: the router settles what it served, the facade what the router never answered.
    cluster.start("router1")
    cluster.start("facade1")
    cluster.wait_ready("facade1")
    ok = [o.request_id for o in outcomes if o.status == 200]
    rows = wait_rows(env.billing_dsn, ok)
    ids = [r[0] for r in rows]
    assert len(ids) == len(set(ids)) == len(ok), f"{len(ids)} rows ({len(set(ids))} distinct) for {len(ok)} 200s"
    assert all(r[3] == "success" for r in rows)
    billed = scalar(env.billing_dsn, "SELECT COUNT(*) FROM usage_ledger WHERE key_id = ANY(%s) AND status = "
                    "'success'", [plain_id, budgeted_id])
    # A request whose answer was lost with the dead facade may be billed (the provider did the work); no other.
    lost_in_transit = sum(1 for o in failed if o.status == 0)
    assert len(ok) <= billed <= len(ok) + lost_in_transit
