"""The fault-injection suite's gateways, load and ledger, shared by its test modules.

One gateway (the four real services, :func:`tests.harness.start_gateway`) per
backend for the whole suite: ``sqlite`` (the embedded default, one data
directory) and ``postgres`` (PostgreSQL for auth and billing, Redis for auth;
skipped without ``SWITCHBOARD_TEST_POSTGRES_URL`` and
``SWITCHBOARD_TEST_REDIS_URL``). Behind it one fake OpenAI provider that counts
the answers it began and served by their id, which the ledger keeps as each
row's ``response_id``: provider calls and ledger rows are matched by it.

Faults strike at random instants drawn from one seed per test: the seed is
printed on failure (pytest shows the captured output); set
``SWITCHBOARD_FAULTS_SEED`` to replay it and ``SWITCHBOARD_FAULTS_ROUNDS``
to run more rounds than the default.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import sqlite3
import time
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import httpx
import psycopg
import pytest

from switchboard_auth.client import Limits
from switchboard_billing.client import BillingClient
from switchboard_common.identity import TOKEN_METADATA_KEY
from tests.conftest import FAKE_PRICES
from tests.e2e.replicated import POSTGRES_URL, REDIS_URL, datastores
from tests.fakes.openai_provider import FakeOpenAI
from tests.fakes.server import BackgroundServer
from tests.harness import SERVICE_TOKENS, Gateway, start_gateway

#: Rounds of each fault per test (scale up by hand: SWITCHBOARD_FAULTS_ROUNDS=20).
ROUNDS = int(os.environ.get("SWITCHBOARD_FAULTS_ROUNDS", "1"))
#: Requests a second the load sends, and the most it keeps in flight.
RATE = 30.0
CONCURRENCY = 24
#: Words that would mean internal exception text reached a client.
INTERNAL_TEXT = ("Traceback", "sqlalchemy", "sqlite3", "asyncpg", "psycopg", "OperationalError",
                 "ConnectionRefusedError", "StatusCode.", "grpc._", "AioRpcError", "Errno", 'File "/')


def fault_seed() -> int:
    """The seed of one test's random instants: SWITCHBOARD_FAULTS_SEED, else a fresh one (printed)."""
    seed = int(os.environ.get("SWITCHBOARD_FAULTS_SEED") or random.SystemRandom().randrange(1, 2**31))
    print(f"fault seed: SWITCHBOARD_FAULTS_SEED={seed}")
    return seed


# -- the gateway ------------------------------------------------------------------------------------------


@dataclass
class Rig:
    """A gateway under test, its fake provider, and where its billing database is."""

    backend: str
    gateway: Gateway
    fake: FakeOpenAI
    #: The billing database: a SQLite file's path, or a PostgreSQL DSN.
    billing_db: str
    auth_db: str

    def read(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Rows of a query on the billing database (``?`` placeholders)."""
        if self.backend == "sqlite":
            with closing(sqlite3.connect(self.billing_db, timeout=30)) as conn:
                return list(conn.execute(sql, args).fetchall())
        with psycopg.connect(self.billing_db) as conn:
            return list(conn.execute(sql.replace("?", "%s"), args).fetchall())

    def restart(self, name: str) -> None:
        """Starts a service again on its address and data (as a restarted container)."""
        self.gateway.start_service(name)

    def key(self, alias: str, max_budget_micros: int | None = None) -> Key:
        spec: dict[str, object] = {"key_alias": alias}
        if max_budget_micros is not None:
            spec["max_budget"] = max_budget_micros / 1_000_000
        response = httpx.post(f"{self.gateway.base_url}/key/generate", json=spec, headers=self.gateway.admin(),
                              timeout=10)
        response.raise_for_status()
        return Key(str(response.json()["key"]), str(response.json()["key_id"]), max_budget_micros)

    async def held_micros(self, key: Key) -> int:
        """What billing holds against the key's budget now (holds and leases), as its GetBudgets says."""
        address = self.gateway.env["SWITCHBOARD_BILLING_ADDRESS"]
        async with grpc.aio.insecure_channel(address) as channel:
            client = BillingClient(channel, holder="faults-test", outbox_dir=Path("/nonexistent"),
                                   metadata=((TOKEN_METADATA_KEY, SERVICE_TOKENS["facade"]),))
            [standing] = await client.standings([("key", key.key_id, Limits(
                max_budget_micros=key.max_budget_micros or 0))])
        return int(standing.held_micros)


@dataclass(frozen=True)
class Key:
    secret: str
    key_id: str
    max_budget_micros: int | None = None


@pytest.fixture(scope="session")
def counting_fake() -> Iterator[tuple[FakeOpenAI, str]]:
    app = FakeOpenAI()
    server = BackgroundServer(app).start()
    yield app, server.url + "/v1"
    server.stop()


def fault_models(api_base: str) -> list[dict[str, object]]:
    """A provider answering in 0.2 s (whole or streamed), one streaming for 2.5 s (50 chunks), and one streaming
    for 30 s (a chunk every 50 ms)."""
    def dep(model: str) -> dict[str, object]:
        return {"provider": "openai", "model": model, "api_base": api_base, "api_key": "sk-fake-upstream",
                "jurisdiction": "us", **FAKE_PRICES}
    return [{"name": "quick", "deployments": [dep("slow-0.2")]},
            {"name": "drip", "deployments": [dep("drip")]},
            {"name": "endless", "deployments": [dep("drip-30")]}]


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
def rig(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
        counting_fake: tuple[FakeOpenAI, str]) -> Iterator[Rig]:
    backend = str(request.param)
    tmp: Path = tmp_path_factory.mktemp(f"faults-{backend}")
    router = {"max_attempts": 1, "cooldown_failures": 0}
    if backend == "sqlite":
        gw = start_gateway(tmp, fault_models(counting_fake[1]), router_settings=router)
        try:
            yield Rig(backend, gw, counting_fake[0], str(gw.data_dir / "billing.db"), str(gw.data_dir / "auth.db"))
        finally:
            gw.stop()
        return
    if not (POSTGRES_URL and REDIS_URL):
        pytest.skip("needs SWITCHBOARD_TEST_POSTGRES_URL and SWITCHBOARD_TEST_REDIS_URL (e.g. "
                    "postgresql://postgres@127.0.0.1:5432/test and redis://127.0.0.1:6379/0)")
    with datastores() as stores:
        env = {k: v for service_env in stores.service_env().values() for k, v in service_env.items()}
        gw = start_gateway(tmp, fault_models(counting_fake[1]), extra_env=env, router_settings=router)
        try:
            yield Rig(backend, gw, counting_fake[0], stores.billing_dsn, stores.auth_dsn)
        finally:
            gw.stop()


# -- the load ---------------------------------------------------------------------------------------------


@dataclass
class Outcome:
    """One request as its client saw it (status 0: no answer; the connection broke or was refused)."""

    key: Key
    stream: bool
    #: "openai" (/v1/chat/completions) or "anthropic" (/v1/messages).
    dialect: str
    started: float
    ended: float = 0.0
    status: int = 0
    request_id: str = ""
    body: str = ""
    error: str = ""
    #: A stream that ended with [DONE] and no error event (a whole answer).
    complete: bool = False


@dataclass
class Load:
    """Bounded concurrent load on one facade: ``RATE`` requests a second, at most ``CONCURRENCY`` in flight,
    streams and whole answers, spread over the given keys."""

    base_url: str
    keys: list[Key]
    rng: random.Random
    outcomes: list[Outcome] = field(default_factory=list)
    in_flight: int = 0
    #: Each request's prompt is "fault load <tag> <n>": the fake provider's record of it names the request.
    tag: str = field(default_factory=lambda: os.urandom(4).hex())

    def outcome_of(self, prompt: str) -> Outcome | None:
        """The request whose prompt this is (None: another load's)."""
        head, _, n = prompt.rpartition(" ")
        if head != f"fault load {self.tag}" or not n.isdigit() or not 0 < int(n) <= len(self.outcomes):
            return None
        return self.outcomes[int(n) - 1]

    async def run(self, seconds: float) -> None:
        gate = asyncio.Semaphore(CONCURRENCY)
        limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
        async with httpx.AsyncClient(timeout=httpx.Timeout(30, connect=2), limits=limits) as client:
            tasks: list[asyncio.Task[None]] = []
            end = time.monotonic() + seconds
            n = 0
            while time.monotonic() < end:
                await gate.acquire()
                key = self.keys[n % len(self.keys)]
                stream = n % 2 == 1
                model = "drip" if stream and self.rng.random() < 0.3 else "quick"
                dialect = "anthropic" if n % 5 == 3 else "openai"  # with every key, whole and streamed
                tasks.append(asyncio.create_task(self._one(client, gate, key, model, stream, dialect)))
                n += 1
                await asyncio.sleep(1 / RATE)
            await asyncio.gather(*tasks)

    async def _one(self, client: httpx.AsyncClient, gate: asyncio.Semaphore, key: Key, model: str,
                   stream: bool, dialect: str) -> None:
        outcome = Outcome(key, stream, dialect, time.monotonic())
        self.outcomes.append(outcome)
        self.in_flight += 1
        prompt = f"fault load {self.tag} {len(self.outcomes)}"
        body: dict[str, Any] = {"model": model, "max_tokens": 100, "messages": [{"role": "user", "content": prompt}]}
        if stream:
            body["stream"] = True
            if dialect == "openai":
                body["stream_options"] = {"include_usage": True}
        path = "/v1/chat/completions" if dialect == "openai" else "/v1/messages"
        headers = {"Authorization": f"Bearer {key.secret}"} if dialect == "openai" else {
            "x-api-key": key.secret, "anthropic-version": "2023-06-01"}
        try:
            async with client.stream("POST", self.base_url + path, json=body, headers=headers) as response:
                outcome.status = response.status_code
                outcome.request_id = response.headers.get("x-request-id", "")
                outcome.body = (await response.aread()).decode(errors="replace")
            if stream and outcome.status == 200 and dialect == "openai":
                events = [line[6:] for line in outcome.body.split("\n") if line.startswith("data: ")]
                outcome.complete = bool(events) and events[-1] == "[DONE]" and not any(
                    e.startswith('{"error"') for e in events)
            elif stream and outcome.status == 200:
                outcome.complete = "event: message_stop" in outcome.body and "event: error" not in outcome.body
            else:
                outcome.complete = outcome.status == 200
        except httpx.TransportError as exc:
            outcome.error = repr(exc)
        finally:
            outcome.ended = time.monotonic()
            self.in_flight -= 1
            gate.release()


def wait_ready(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health/readiness", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} not ready after {timeout} s")


#: The statuses a client may get under faults: success, a budget 429, a service 503; and the provider's own
#: failures (502, 504), which a loaded loopback provider sometimes has (a pooled connection it closed as it was
#: reused). Never a 500.
ANSWERS = (200, 429, 502, 503, 504)


def clean_errors(outcomes: list[Outcome]) -> list[str]:
    """What is wrong with the answers the clients got: a status not in :data:`ANSWERS`, internal text, or an
    error that is not one of the client's dialect with a message."""
    wrong = []
    for o in outcomes:
        if o.status == 0:
            continue
        if any(word in o.body for word in INTERNAL_TEXT):
            wrong.append(f"{o.status} with internal text: {o.body[:300]}")
        if o.status not in ANSWERS:
            wrong.append(f"unexpected {o.status}: {o.body[:300]}")
        if o.status != 200 and not is_error_json(o.body, o.dialect):
            wrong.append(f"{o.status} without an error in the {o.dialect} dialect: {o.body[:300]}")
    return wrong


def is_error_json(body: str, dialect: str) -> bool:
    """An error in the client's dialect: OpenAI's ``{"error": {"message", "type", ...}}``, Anthropic's
    ``{"type": "error", "error": {"type", "message"}}``; with a message saying something."""
    try:
        answer = json.loads(body)
    except ValueError:
        return False
    error = answer.get("error") if isinstance(answer, dict) else None
    if not isinstance(error, dict) or not str(error.get("message") or "").strip() or "type" not in error:
        return False
    return dialect == "openai" or answer.get("type") == "error"


@dataclass(frozen=True)
class Row:
    request_id: str
    key_id: str
    response_id: str
    status: str
    cost_micros: int
    provisional: bool
    error_code: str

    @property
    def abandoned(self) -> bool:
        """A call the router gave up because its caller went away (billed for its prompt: its answer is unknown)."""
        return self.status == "cancelled" and self.error_code == "client_disconnected" and not self.response_id


def ledger(rig: Rig, keys: list[Key]) -> list[Row]:
    """The ledger rows of the given keys."""
    marks = ",".join("?" * len(keys))
    return [Row(str(a), str(b), str(c or ""), str(d), int(e or 0), bool(f), str(g or ""))
            for a, b, c, d, e, f, g in rig.read(
                "SELECT request_id, key_id, response_id, status, cost_micros, provisional, error_code "
                f"FROM usage_ledger WHERE key_id IN ({marks})", tuple(k.key_id for k in keys))]


def by_request_id(load: Load, fake: FakeOpenAI, rows: list[Row], served: set[str]) -> list[str]:
    """What does not match by request id, both ways: a served answer whose request the client can name (it got an
    ``x-request-id``) must be billed under that id with that answer; a row naming a provider answer must be the row
    of the request that answer was for."""
    wrong = []
    by_request = {r.request_id: r for r in rows}
    for answer in sorted(served):
        outcome = load.outcome_of(fake.prompts.get(answer, ""))
        if outcome is None or not outcome.request_id:
            continue
        row = by_request.get(outcome.request_id)
        if row is None or row.response_id != answer:
            wrong.append(f"answer {answer} served request {outcome.request_id}, whose row is {row}")
    for row in rows:
        outcome = load.outcome_of(fake.prompts.get(row.response_id, "")) if row.response_id else None
        if outcome is not None and outcome.request_id and outcome.request_id != row.request_id:
            wrong.append(f"row {row.request_id} names answer {row.response_id}, served for {outcome.request_id}")
    return wrong
