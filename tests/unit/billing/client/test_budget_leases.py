"""Budget leases as a holder (a facade, or the router for its gRPC callers) keeps them, against a real billing
gRPC server on loopback: later requests of a key are held with no round trip, money a holder no longer needs
goes back within about a second of idling, and a holder's own lease never refuses its own request."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
import sqlalchemy as sa

from switchboard.v1 import auth_pb2, billing_pb2, billing_pb2_grpc, common_pb2
from switchboard_billing.budgets import Budgets
from switchboard_billing.client import BillingClient, Hold
from switchboard_billing.client.billing_client import BillingClientSettings
from switchboard_billing.costing import Pricer
from switchboard_billing.ledger import Ledger
from switchboard_billing.priced_models import CatalogSource, parse_models
from switchboard_billing.servicer import BillingServicer
from switchboard_common.database import default_sqlite_dsn, make_engine
from switchboard_common.errors import ServiceError

#: One model at 1 µ$ a token in and out, with a known output limit: a request's hold is its bounds' sum.
CATALOG = {"models": [{"name": "m", "deployments": [{
    "provider": "openai", "model": "gpt-4o-mini", "input_cost_per_million": 1, "output_cost_per_million": 1,
    "max_output_tokens": 10000}]}]}


class CountingBilling(BillingServicer):
    reserves = 0
    #: Seconds each Reserve waits before it is served (a billing whose database is locked).
    stall = 0.0
    #: The holds each heartbeat renewed.
    renewed_holds: list[list[str]] = []
    #: Answer heartbeats as a billing that predates hold renewal would: no hold is ever reported unknown.
    forget_holds = False

    async def RenewLeases(self, request, context):  # type: ignore[no-untyped-def]
        CountingBilling.renewed_holds.append(list(request.holds))
        answer = await super().RenewLeases(request, context)
        if CountingBilling.forget_holds:
            answer.ClearField("unknown_holds")
        return answer

    async def Reserve(self, request, context):  # type: ignore[no-untyped-def]
        CountingBilling.reserves += 1
        await asyncio.sleep(CountingBilling.stall)
        return await super().Reserve(request, context)


@dataclass
class Billing:
    address: str
    engine: sa.ext.asyncio.AsyncEngine

    async def held(self) -> int:
        async with self.engine.connect() as conn:
            return int((await conn.execute(sa.text(
                "SELECT COALESCE(SUM(amount_micros), 0) FROM reservations"))).scalar_one())


@pytest.fixture
async def billing(tmp_path: Path) -> AsyncIterator[Billing]:
    engine = make_engine(default_sqlite_dsn(tmp_path, "billing.db"))
    ledger = Ledger(engine)
    await ledger.migrate()
    servicer = CountingBilling(ledger, Budgets(engine), Pricer(CatalogSource.of(parse_models(CATALOG))))
    CountingBilling.reserves, CountingBilling.stall, CountingBilling.renewed_holds = 0, 0.0, []
    server = grpc.aio.server()
    billing_pb2_grpc.add_BillingServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    yield Billing(f"127.0.0.1:{port}", engine)
    await server.stop(0)
    await ledger.close()


def key(budget_micros: int) -> auth_pb2.KeyContext:
    return auth_pb2.KeyContext(key_id="key_lease", key_alias="lease",
                               limits=auth_pb2.Limits(max_budget_micros=budget_micros))


async def hold(client: BillingClient, n: int, budget: int, output: int = 90) -> Hold:
    """One request's hold: a 10-token prompt bound and ``output`` tokens."""
    return await client.hold(request_id=f"req_{n}", key=key(budget), model="m", prompt_tokens_bound=10,
                             max_output_tokens=output, started_at_ms=int(time.time() * 1000))


def finish(client: BillingClient, n: int, held: Hold, cost_tokens: int = 10) -> None:
    """The request ends (its holder ends the hold) and its usage goes to billing, as a served call's does."""
    client.end(held)
    client.settle(held.stamp(billing_pb2.UsageEvent(
        request_id=f"req_{n}", key_id="key_lease", model="m", deployment_id="m/0", status="success",
        started_at_ms=1, usage=common_pb2.Usage(prompt_tokens=cost_tokens // 2, completion_tokens=cost_tokens // 2))))


async def test_a_roomy_budget_is_leased_and_later_requests_need_no_round_trip(
        billing: Billing, holder: BillingClient) -> None:
    first = await hold(holder, 0, 1_000_000)
    assert (first.lease_id, first.micros) == ("", 100) and CountingBilling.reserves == 1
    assert await billing.held() > 100, "the first Reserve also took a lease"
    taken = [await hold(holder, n, 1_000_000) for n in range(1, 6)]
    assert all(t.lease_id for t in taken) and CountingBilling.reserves == 1


async def test_an_idle_lease_goes_back_within_about_a_second(billing: Billing, holder: BillingClient) -> None:
    first = await hold(holder, 0, 1_000_000)
    second = await hold(holder, 1, 1_000_000)
    assert second.lease_id
    finish(holder, 0, first)
    finish(holder, 1, second)
    loop = asyncio.get_running_loop()
    started = loop.time()
    while await billing.held() > 0:
        assert loop.time() - started < 3, "unused lease money must go back once its holder is idle"
        await asyncio.sleep(0.05)


async def test_a_holders_own_lease_never_refuses_its_request(billing: Billing, holder: BillingClient) -> None:
    """Budget for 20 requests of 100 µ$: the lease taken with the first keeps money the holder's own larger
    request needs; it is handed back in that request's Reserve, which is served."""
    budget = 2_000
    await hold(holder, 0, budget, output=90)
    held_with_lease = await billing.held()
    assert held_with_lease > 100
    big = budget - held_with_lease + 50  # fits only if the lease's unused money comes back
    served = await hold(holder, 1, budget, output=big - 10)
    assert served.micros == big and not served.lease_id


async def test_spend_never_passes_the_budget_under_concurrency(billing: Billing, holder: BillingClient) -> None:
    budget = 5_000
    outcomes = await asyncio.gather(*(hold(holder, n, budget) for n in range(80)), return_exceptions=True)
    held = [o for o in outcomes if isinstance(o, Hold)]
    refused = [o for o in outcomes if isinstance(o, ServiceError)]
    assert len(held) + len(refused) == 80 and refused
    assert sum(h.micros for h in held) <= budget
    assert await billing.held() <= budget


async def test_a_burst_of_requests_for_a_new_key_sends_one_reserve_not_one_each(
        billing: Billing, holder: BillingClient) -> None:
    """Sixty-four requests of a key arrive together (Cursor's agent fanning out, a load test): the first asks billing
    for the hold and a lease, the others wait for that answer and take from the lease — or from a heartbeat that
    raises its allowance for all of them at once — instead of each sending a Reserve that retires the lease the one
    before it was granted. A lease that runs dry is replaced by one twice its size: a handful of Reserves."""
    held = await asyncio.gather(*(hold(holder, n, 10_000_000) for n in range(64)))
    assert all(h.micros == 100 for h in held)
    assert CountingBilling.reserves <= 4, CountingBilling.reserves
    assert sum(1 for h in held if h.lease_id) >= 60
    for n, h in enumerate(held):
        finish(holder, n, h)


async def test_steady_traffic_renews_its_leases_at_the_heartbeat_pace_only(
        billing: Billing, holder: BillingClient) -> None:
    """A key busy at a steady pace (here about 400 requests a second for 2.5 s, through leases that run dry and are
    replaced by bigger ones) is renewed by the regular heartbeat, every half second: the allowance between two
    heartbeats follows the pace, so no request has to wait for a heartbeat sent early to raise it, and billing
    is not asked to renew many times a second."""
    loop = asyncio.get_running_loop()
    started, n = loop.time(), 0
    while loop.time() - started < 2.5:
        held = await hold(holder, n, 1_000_000_000)
        finish(holder, n, held)
        n += 1
        await asyncio.sleep(0.0025)
    heartbeats = len(CountingBilling.renewed_holds)
    assert n > 300 and CountingBilling.reserves >= 4, (n, CountingBilling.reserves)
    leases = CountingBilling.reserves
    assert heartbeats <= 2.5 / 0.5 + 3, f"{heartbeats} heartbeats for {n} requests and {leases} leases"


async def test_requests_waiting_for_a_lease_billing_cannot_grant_fail_together_with_a_clear_error(
        billing: Billing, tmp_path: Path) -> None:
    """Billing's database is locked: the Reserve asking the key's lease times out, and the requests waiting for it
    are told billing is unavailable at the same moment (a 503 their clients retry), not each after a Reserve of
    their own."""
    CountingBilling.stall = 2.0
    channel = grpc.aio.insecure_channel(billing.address)
    client = BillingClient(channel, holder="facade@stalled", outbox_dir=tmp_path / "stalled-outbox",
                           settings=BillingClientSettings(timeout_seconds=0.5))
    await client.start()
    try:
        loop = asyncio.get_running_loop()
        started = loop.time()
        outcomes = await asyncio.gather(*(hold(client, n, 10_000_000) for n in range(16)), return_exceptions=True)
        elapsed = loop.time() - started
    finally:
        await client.close(0.1)
        await channel.close()
    assert all(isinstance(o, ServiceError) and o.error.code == "billing_unavailable" for o in outcomes), outcomes
    assert CountingBilling.reserves == 1 and elapsed < 1.0, (CountingBilling.reserves, elapsed)


async def test_a_hold_billing_reserved_alone_is_renewed_until_it_is_settled(
        billing: Billing, holder: BillingClient) -> None:
    """A tight budget is held request by request. Each hold lapses unless its holder renews it, so a holder that
    dies before the router takes its call does not leave the money held until the reservation TTL; a live holder
    renews it until billing has its settlement, and then stops."""
    held = await hold(holder, 0, 1_000)
    assert held.lease_id == "" and held.micros == 100

    async def renewed_until() -> tuple[int, int]:
        async with billing.engine.connect() as conn:
            row = (await conn.execute(sa.text("SELECT renewed_until_ms, expires_at_ms FROM reservations "
                                              "WHERE reservation_id = 'req_0'"))).one()
            return int(row[0]), int(row[1])

    first, expires = await renewed_until()
    assert first < expires - 60_000, "reserved to lapse with its holder, not to live until the TTL"
    loop = asyncio.get_running_loop()
    started = loop.time()
    while (await renewed_until())[0] <= first:
        assert loop.time() - started < 3, "the holder's heartbeat must renew the hold"
        await asyncio.sleep(0.05)
    holder.end(held)
    await asyncio.sleep(3 * holder.settings.lease_heartbeat_seconds)
    assert "req_0" in CountingBilling.renewed_holds[-1], \
        "a request's end is not its settlement: the hold is renewed until billing has the usage"
    finish(holder, 0, held)
    while await billing.held() > 0:
        assert loop.time() - started < 5, "the settlement frees the hold"
        await asyncio.sleep(0.05)
    beats = len(CountingBilling.renewed_holds)
    await asyncio.sleep(3 * holder.settings.lease_heartbeat_seconds)
    assert all("req_0" not in beat for beat in CountingBilling.renewed_holds[beats + 1:]), \
        "once billing reports it settled, the holder stops renewing it"


async def test_a_hold_billing_never_reports_is_renewed_no_longer_than_its_reservation_lives(
        billing: Billing, holder: BillingClient) -> None:
    """A billing that does not know hold renewal (an older replica during an upgrade) never reports a hold
    settled: the holder stops renewing it when its reservation would have expired anyway, so the set it renews
    does not grow for the life of the process."""
    CountingBilling.forget_holds = True
    try:
        holder.leases.holding("req_old_billing", ttl_seconds=4 * holder.settings.lease_heartbeat_seconds)
        await asyncio.sleep(2 * holder.settings.lease_heartbeat_seconds)
        assert "req_old_billing" in CountingBilling.renewed_holds[-1]
        await asyncio.sleep(4 * holder.settings.lease_heartbeat_seconds)
        beats = len(CountingBilling.renewed_holds)
        assert sum("req_old_billing" in beat for beat in CountingBilling.renewed_holds) <= 4
        await asyncio.sleep(3 * holder.settings.lease_heartbeat_seconds)
        assert len(CountingBilling.renewed_holds) == beats, "nothing left to renew: the heartbeat stopped"
    finally:
        CountingBilling.forget_holds = False
