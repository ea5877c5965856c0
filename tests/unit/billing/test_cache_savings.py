"""What prompt caching saved, to the micro-dollar: each request's cost had its cached and cache-write tokens been
plain input, minus its cost, at the prices genai-prices publishes (Anthropic reads at a tenth of input and writes
at 1.25×, Bedrock's Claude the same on its regional prices, OpenAI and Gemini reads at their discount and no
write price), in the ledger and in its sums."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from switchboard.v1 import billing_pb2, common_pb2
from switchboard_billing.costing import Charge
from switchboard_billing.ledger import Ledger
from switchboard_billing.servicer import row_from_event
from switchboard_common.database import make_engine
from tests.unit.billing.test_ledger_costs import AT_MS, pricer

MODELS = [
    {"name": "sonnet", "deployments": [{"provider": "anthropic", "model": "claude-sonnet-4-5"}]},
    {"name": "bedrock-sonnet", "deployments": [{"provider": "bedrock", "aws_region_name": "us-east-1",
                                                "model": "anthropic.claude-sonnet-4-5-20250929-v1:0"}]},
    {"name": "gpt-4o", "deployments": [{"provider": "openai", "model": "gpt-4o"}]},
    {"name": "flash", "deployments": [{"provider": "gemini", "model": "gemini-2.5-flash"}]},
    {"name": "local", "deployments": [{"provider": "ollama", "model": "llama3.2", "allow_unpriced": True}]},
]


def usage_event(request_id: str, model: str, prompt: int, completion: int, read: int = 0,
                write: int = 0) -> billing_pb2.UsageEvent:
    return billing_pb2.UsageEvent(
        request_id=request_id, key_id="k1", model=model, deployment_id=f"{model}/0", started_at_ms=AT_MS,
        status="success", usage=common_pb2.Usage(prompt_tokens=prompt, completion_tokens=completion,
                                                 cached_prompt_tokens=read, cache_write_tokens=write))


@pytest.mark.parametrize(("model", "read", "write", "charge"), [
    # Sonnet 4.5: input $3/M, cache read $0.30, write $3.75, output $15.
    # 90k read: 10k x 3 + 90k x 0.30 + 500 x 15 = 0.0645; saved 90k x (3 - 0.30) = 0.243.
    ("sonnet", 90_000, 0, Charge(64_500, 243_000)),
    # A prefix written and not read: it cost 95k x (3.75 - 3) = 0.07125 more.
    ("sonnet", 0, 95_000, Charge(378_750, -71_250)),
    ("sonnet", 80_000, 15_000, Charge(102_750, 216_000 - 11_250)),
    # Bedrock us-east-1 prices Sonnet 4.5 10% above Anthropic: input 3.30, read 0.33, write 4.125.
    ("bedrock-sonnet", 90_000, 0, Charge(70_950, 267_300)),
    ("bedrock-sonnet", 0, 95_000, Charge(416_625, -78_375)),
    # gpt-4o: input $2.50/M, cached $1.25; OpenAI has no write price (writes cost as input: nothing saved).
    ("gpt-4o", 90_000, 0, Charge(142_500, 112_500)),
    ("gpt-4o", 0, 95_000, Charge(255_000, 0)),
    # Gemini 2.5 Flash: input $0.30/M, cached $0.03.
    ("flash", 90_000, 0, Charge(6_950, 24_300)),
    # No cached tokens: nothing saved; no price: the cost is unknown and nothing is claimed saved.
    ("sonnet", 0, 0, Charge(307_500, 0)),
    ("local", 90_000, 0, Charge(None, 0)),
])
def test_savings_are_exact_per_provider(model: str, read: int, write: int, charge: Charge) -> None:
    assert pricer(MODELS).event_charge(usage_event("r", model, 100_000, 500, read, write)) == charge


def test_savings_use_the_price_tier_of_the_whole_prompt() -> None:
    # Above 200k prompt tokens Sonnet 4.5 costs input $6/M, read $0.60, write $7.50, output $22.50:
    # saved 250k x (6 - 0.60) - 10k x (7.50 - 6) = 1.35 - 0.015.
    charge = pricer(MODELS).event_charge(usage_event("r", "sonnet", 300_000, 1_000, 250_000, 10_000))
    assert charge == Charge(487_500, 1_335_000)


@pytest.fixture
async def ledger(tmp_path: Path) -> AsyncIterator[Ledger]:
    led = Ledger(make_engine(f"sqlite:///{tmp_path / 'ledger.db'}"))
    await led.migrate()
    yield led
    await led.close()


async def test_the_ledger_keeps_each_requests_savings_and_sums_them(ledger: Ledger) -> None:
    p = pricer(MODELS)
    events = [usage_event("a", "sonnet", 100_000, 500, 90_000), usage_event("b", "sonnet", 100_000, 500, 0, 95_000),
              usage_event("c", "gpt-4o", 100_000, 500, 90_000), usage_event("d", "flash", 1_000, 10)]
    rows = []
    for e in events:
        charge = p.event_charge(e)
        rows.append(row_from_event(e, charge.cost_micros, charge.cache_savings_micros))
    assert await ledger.record_many(rows) == 4
    total, = await ledger.summarize()
    assert (total.cached_prompt_tokens, total.cache_write_tokens) == (180_000, 95_000)
    assert total.cache_savings_micros == 243_000 - 71_250 + 112_500
    by_model = {g.group: g.cache_savings_micros for g in await ledger.summarize(group_by="model")}
    assert by_model == {"flash": 0, "gpt-4o": 112_500, "sonnet": 243_000 - 71_250}
