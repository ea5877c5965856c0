"""A holder's lease pays only for requests charged to the budget windows it was checked in: around midnight, a
request that started the day before is never taken from the new day's lease, nor one of the new day from the last
day's — against a real billing gRPC server on loopback whose clock the test sets."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest

from switchboard.v1 import auth_pb2, billing_pb2, billing_pb2_grpc
from switchboard_billing.budgets import Budgets
from switchboard_billing.charge_windows import MAX_CLOCK_SKEW_MS
from switchboard_billing.client import BillingClient, Hold
from switchboard_billing.costing import Pricer
from switchboard_billing.ledger import Ledger
from switchboard_billing.models import UsageRow
from switchboard_billing.priced_models import CatalogSource, parse_models
from switchboard_common.database import default_sqlite_dsn, make_engine
from switchboard_common.errors import ServiceError
from switchboard_rules.windows import ManualClock
from tests.unit.billing.client.test_budget_leases import CATALOG, CountingBilling

MIDNIGHT = datetime(2026, 3, 11, tzinfo=UTC)
#: $1.00 a day.
DAILY = auth_pb2.Limits(max_daily_spend_micros=1_000_000)


def at(instant: datetime) -> int:
    return int(instant.timestamp() * 1000)


@dataclass
class Billing:
    address: str
    clock: ManualClock
    ledger: Ledger
    stub: billing_pb2_grpc.BillingStub


@pytest.fixture
async def billing(tmp_path: Path) -> AsyncIterator[Billing]:
    engine = make_engine(default_sqlite_dsn(tmp_path, "billing.db"))
    ledger = Ledger(engine)
    await ledger.migrate()
    clock = ManualClock(MIDNIGHT)
    servicer = CountingBilling(ledger, Budgets(engine, clock), Pricer(CatalogSource.of(parse_models(CATALOG))))
    CountingBilling.reserves, CountingBilling.stall, CountingBilling.renewed_holds = 0, 0.0, []
    server = grpc.aio.server()
    billing_pb2_grpc.add_BillingServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    yield Billing(f"127.0.0.1:{port}", clock, ledger, billing_pb2_grpc.BillingStub(channel))
    await channel.close()
    await server.stop(0)
    await ledger.close()


KEY = auth_pb2.KeyContext(key_id="key_day", key_alias="day", limits=DAILY)


async def hold(client: BillingClient, n: int, started: datetime) -> Hold:
    """A request of 100 µ$ (10 prompt tokens, 90 output) that started at ``started`` by the holder's clock."""
    return await client.hold(request_id=f"req_{n}", key=KEY, model="m", prompt_tokens_bound=10,
                             max_output_tokens=90, started_at_ms=at(started))


async def test_a_request_started_before_midnight_is_not_taken_from_the_new_days_lease(
        billing: Billing, holder: BillingClient) -> None:
    """Today's cap has 50 µ$ left. Just after midnight a request of the new day is held with a lease (the new day is
    roomy); a request that started before midnight and arrives now is charged to today: taken from that lease, it
    would pass today's cap unchecked. It goes to billing, which refuses it, and the lease stays for the new day."""
    await billing.ledger.record_new([UsageRow(request_id="earlier", key_id="key_day", model="m", cost_micros=999_950,
                                              started_at_ms=at(MIDNIGHT - timedelta(hours=1)))])
    billing.clock.set(MIDNIGHT + timedelta(milliseconds=20))
    first = await hold(holder, 0, MIDNIGHT + timedelta(milliseconds=10))
    assert first.micros == 100 and CountingBilling.reserves == 1
    with pytest.raises(ServiceError) as refused:
        await hold(holder, 1, MIDNIGHT - timedelta(milliseconds=5))
    assert refused.value.error.code == "budget_exceeded" and CountingBilling.reserves == 2
    following = await hold(holder, 2, MIDNIGHT + timedelta(milliseconds=30))
    assert following.lease_id and CountingBilling.reserves == 2, "the new day's lease was kept"


async def test_a_request_of_the_new_day_is_not_taken_from_the_last_days_lease(
        billing: Billing, holder: BillingClient) -> None:
    billing.clock.set(MIDNIGHT - timedelta(milliseconds=50))
    await hold(holder, 0, MIDNIGHT - timedelta(milliseconds=100))
    yesterdays = await hold(holder, 1, MIDNIGHT - timedelta(milliseconds=60))
    assert yesterdays.lease_id and CountingBilling.reserves == 1
    billing.clock.set(MIDNIGHT + timedelta(milliseconds=20))
    new_day = await hold(holder, 2, MIDNIGHT + timedelta(milliseconds=10))
    assert not new_day.lease_id and CountingBilling.reserves == 2
    following = await hold(holder, 3, MIDNIGHT + timedelta(milliseconds=15))
    assert following.lease_id and following.lease_id != yesterdays.lease_id and CountingBilling.reserves == 2


async def test_a_holder_whose_clock_is_far_off_dates_its_request_by_billings_bound(
        billing: Billing, holder: BillingClient) -> None:
    billing.clock.set(MIDNIGHT + timedelta(minutes=30))
    slow = await hold(holder, 0, MIDNIGHT)
    assert slow.started_at_ms == at(billing.clock.now()) - MAX_CLOCK_SKEW_MS
    on_time = await hold(holder, 1, billing.clock.now() - timedelta(seconds=2))
    assert on_time.started_at_ms == at(billing.clock.now() - timedelta(seconds=2))


async def test_billing_leases_only_to_a_holder_that_dates_its_requests(billing: Billing) -> None:
    """A holder that does not say when its requests start could take from a lease for a request of any window."""
    def request(n: int, started_at_ms: int) -> billing_pb2.ReserveRequest:
        return billing_pb2.ReserveRequest(
            request_id=f"raw_{n}", key_id="key_day", key_limits=billing_pb2.BudgetLimits(max_daily_spend_micros=10**6),
            model="m", prompt_tokens_bound=10, max_output_tokens=90, started_at_ms=started_at_ms,
            lease_ask=billing_pb2.LeaseAsk(lease_id=f"lease_{n}", micros=1_600, renew_seconds=5.0,
                                           committed_micros=800))

    undated = await billing.stub.Reserve(request(0, 0))
    assert undated.held_micros == 100 and not undated.lease.lease_id
    assert undated.charged_at_ms == at(billing.clock.now())
    dated = await billing.stub.Reserve(request(1, at(MIDNIGHT + timedelta(seconds=1))))
    assert dated.lease.lease_id == "lease_1" and dated.charged_at_ms == at(MIDNIGHT + timedelta(seconds=1))
    assert (dated.lease.charged_from_ms, dated.lease.charged_until_ms) == (at(MIDNIGHT),
                                                                          at(MIDNIGHT + timedelta(days=1)))
