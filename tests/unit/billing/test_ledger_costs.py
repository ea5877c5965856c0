"""Costs recorded at settlement: genai-prices parity, config overrides, BYOK fees, unknown prices; usage sums."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from genai_prices import Usage, calc_price

from switchboard.v1 import billing_pb2, common_pb2
from switchboard_billing.costing import Pricer
from switchboard_billing.ledger import Ledger
from switchboard_billing.money import usd_to_micros_half_up
from switchboard_billing.priced_models import CatalogSource, parse_models
from switchboard_billing.pricing import max_cost_micros
from switchboard_billing.quote import worst_case
from switchboard_billing.rate_card import model_rates
from switchboard_billing.servicer import row_from_event
from switchboard_common.database import make_engine
from switchboard_rules.catalog import CatalogError

AT_MS = int(datetime(2026, 1, 15, 12, 0, tzinfo=UTC).timestamp() * 1000)


def pricer(models: list[dict[str, Any]]) -> Pricer:
    return Pricer(CatalogSource.of(parse_models({"models": models})))


CATALOG = [
    {"name": "mini", "deployments": [{"provider": "openai", "model": "gpt-4o-mini", "max_output_tokens": 16384}]},
    {"name": "mini-cheap", "deployments": [{"provider": "openai", "model": "gpt-4o-mini",
                                            "input_cost_per_million": "0.1", "output_cost_per_million": 0.3}]},
    {"name": "sonnet", "deployments": [{"id": "sonnet-main", "provider": "anthropic", "model": "claude-sonnet-4-5"}],
     "fallbacks": ["mini"]},
    {"name": "local", "deployments": [{"provider": "ollama", "model": "llama3.2", "allow_unpriced": True}]},
    {"name": "local-strict", "deployments": [{"provider": "vllm", "model": "my-model"}]},
    {"name": "byok", "deployments": [{"provider": "openai", "model": "gpt-4o", "byok": True,
                                      "byok_fee_per_million": "0.5", "byok_fee_per_request_micros": 100}]},
]


def event(request_id: str, deployment_id: str, prompt: int, completion: int, cached: int = 0,
          **fields: Any) -> billing_pb2.UsageEvent:
    return billing_pb2.UsageEvent(
        request_id=request_id, key_id=fields.pop("key_id", "k1"), model=fields.pop("model", "m"),
        deployment_id=deployment_id, started_at_ms=fields.pop("started_at_ms", AT_MS), status="success",
        usage=common_pb2.Usage(prompt_tokens=prompt, completion_tokens=completion, cached_prompt_tokens=cached),
        **fields)


@pytest.mark.parametrize(("prompt", "completion", "cached"), [(1000, 200, 0), (123_456, 7_890, 100_000), (1, 1, 0)])
def test_cost_of_a_known_model_matches_genai_prices(prompt: int, completion: int, cached: int) -> None:
    cost = pricer(CATALOG).event_cost(event("r", "mini/0", prompt, completion, cached))
    reference = calc_price(Usage(input_tokens=prompt, output_tokens=completion, cache_read_tokens=cached),
                           "gpt-4o-mini", provider_id="openai",
                           genai_request_timestamp=datetime.fromtimestamp(AT_MS / 1000, UTC))
    assert cost == usd_to_micros_half_up(reference.total_price)


def test_config_overrides_win_over_the_price_list() -> None:
    # 1M input at $0.10 + 1M output at $0.30 = $0.40.
    assert pricer(CATALOG).event_cost(event("r", "mini-cheap/0", 1_000_000, 1_000_000)) == 400_000


def test_byok_is_charged_only_when_the_callers_own_credential_carried_the_request() -> None:
    p = pricer(CATALOG)
    # The caller's key: 2M tokens at $0.50/M + $0.0001 per request.
    assert p.event_cost(event("r", "byok/0", 1_500_000, 500_000, byok=True)) == 1_000_100
    # The operator's key on the same byok deployment: gpt-4o's price, 1.5M in at $2.50/M + 0.5M out at $10/M.
    assert p.event_cost(event("r", "byok/0", 1_500_000, 500_000, byok=False)) == 8_750_000
    # A deployment without a BYOK fee, carried by the caller's key: the (empty) fee, not the price.
    assert p.event_cost(event("r", "mini/0", 1_000, 1_000, byok=True)) == 0
    assert p.event_cost(event("r", "mini/0", 1_000_000, 0, byok=False)) == 150_000


def test_unknown_price_is_recorded_as_unknown_never_zero() -> None:
    p = pricer(CATALOG)
    cost = p.event_cost(event("r", "local/0", 100, 100))
    assert cost is None
    assert row_from_event(event("r", "local/0", 100, 100), cost).cost_micros is None


def test_unpriced_models_are_served_only_when_the_config_says_so() -> None:
    p = pricer(CATALOG)
    allowed = model_rates(p, "local")
    assert allowed.servable and not allowed.priced
    assert p.unservable_reason("local") is None
    assert not model_rates(p, "local-strict").servable
    assert "allow_unpriced" in (p.unservable_reason("local-strict") or "")


def test_the_rate_card_holds_what_genai_prices_would_charge_at_worst() -> None:
    p = pricer(CATALOG)
    sonnet = p.price(p.source.current().models["sonnet"].deployments[0].pricing, byok=False, at=datetime.now(UTC))
    mini = p.source.current().models["mini"].deployments[0]
    mini_price = p.price(mini.pricing, byok=False, at=datetime.now(UTC))
    assert sonnet is not None and mini_price is not None
    # Every deployment a request may reach (the fallback's included): the dearest decides.
    worst = worst_case(model_rates(p, "sonnet"), 10_000, 1_000, (), 32_768)
    assert worst.micros == max(max_cost_micros(sonnet, 10_000, 1_000), max_cost_micros(mini_price, 10_000, 1_000))
    # No max_tokens: the deployment's output limit is held (the catalog's 16,384), never its context window.
    assert worst_case(model_rates(p, "mini"), 100, 0, (), 32_768).micros == max_cost_micros(mini_price, 100, 16384)
    # Claude Sonnet 4.5's published output limit (64,000, from the model data) bounds it without a config value.
    assert worst_case(model_rates(p, "sonnet"), 100, 0, (), 32_768).output_tokens == 64_000


def test_remembered_costs_follow_the_price_and_every_token_count() -> None:
    p = pricer(CATALOG)
    shapes = [(1000, 200, 0), (1000, 200, 500), (1000, 201, 0), (1000, 200, 0), (999, 200, 0)]
    for deployment in ("mini/0", "mini-cheap/0", "byok/0", "mini/0"):
        for prompt, completion, cached in shapes:
            e = event("r", deployment, prompt, completion, cached)
            assert p.event_cost(e) == pricer(CATALOG).event_cost(e), (deployment, prompt, completion, cached)
    reasoning = event("r", "mini/0", 1000, 200)
    reasoning.usage.reasoning_tokens = 100
    assert p.event_cost(reasoning) == pricer(CATALOG).event_cost(reasoning)


def test_contradictory_counts_are_priced_plain_every_time(caplog: pytest.LogCaptureFixture) -> None:
    p = pricer(CATALOG)
    bad = event("r", "mini-cheap/0", 100, 10, cached=500)  # more cached than prompt tokens
    assert p.event_cost(bad) == p.event_cost(event("r", "mini-cheap/0", 100, 10)) == 13
    assert [r.message for r in caplog.records].count("inconsistent usage counts; pricing plain tokens") == 1
    p.event_cost(bad)
    assert [r.message for r in caplog.records].count("inconsistent usage counts; pricing plain tokens") == 2


def test_deployment_missing_from_the_config_is_priced_by_provider_and_model() -> None:
    e = event("r", "gone/0", 1000, 200, provider="openai", upstream_model="gpt-4o-mini")
    assert pricer(CATALOG).event_cost(e) == pricer(CATALOG).event_cost(event("r", "mini/0", 1000, 200))


def test_bad_pricing_config_names_the_place() -> None:
    with pytest.raises(CatalogError, match=r"models\[0\].deployments\[0\]"):
        parse_models({"models": [{"name": "x", "deployments": [{"provider": "openai", "model": "m",
                                                                "input_cost_per_million": "cheap"}]}]})


@pytest.fixture
async def ledger(tmp_path: Path) -> AsyncIterator[Ledger]:
    led = Ledger(make_engine(f"sqlite:///{tmp_path / 'ledger.db'}"))
    await led.migrate()
    yield led
    await led.close()


async def test_settle_batch_is_idempotent_and_summed_by_group(ledger: Ledger) -> None:
    p = pricer(CATALOG)
    day = 86_400_000
    events = [
        event("a", "mini-cheap/0", 1_000_000, 0, model="mini-cheap", key_id="k1"),
        event("b", "mini-cheap/0", 0, 1_000_000, model="mini-cheap", key_id="k2", started_at_ms=AT_MS + day),
        event("c", "local/0", 50, 50, model="local", key_id="k1"),
    ]
    rows = [row_from_event(e, p.event_cost(e)) for e in events]
    assert await ledger.record_many(rows) == 3
    assert await ledger.record_many([row_from_event(e, p.event_cost(e)) for e in events]) == 0
    total = await ledger.summarize()
    assert len(total) == 1 and total[0].requests == 3 and total[0].cost_micros == 400_000
    assert total[0].unpriced_requests == 1
    by_day = await ledger.summarize(group_by="day")
    assert [(g.group, g.requests, g.cost_micros) for g in by_day] == [("2026-01-15", 2, 100_000),
                                                                      ("2026-01-16", 1, 300_000)]
    by_key = await ledger.summarize(group_by="key", model="mini-cheap")
    assert [(g.group, g.cost_micros) for g in by_key] == [("k1", 100_000), ("k2", 300_000)]
    window = await ledger.summarize(from_ms=AT_MS + day)
    assert window[0].requests == 1


def test_a_repriced_deployment_is_charged_its_new_price_at_once() -> None:
    """A config reload (or a changed stored model) reprices the very next request, not the next minute's."""
    def catalog(input_price: str) -> Any:
        return parse_models({"models": [{"name": "m", "deployments": [
            {"provider": "openai", "model": "gpt-4o-mini", "input_cost_per_million": input_price,
             "output_cost_per_million": "1"}]}]})
    source = CatalogSource.of(catalog("5"))
    priced = Pricer(source)
    at = datetime.fromtimestamp(AT_MS / 1000, UTC)
    [dep] = source.current().candidates("m")
    assert priced.price(dep.pricing, byok=False, at=at).input == Decimal("5")  # type: ignore[union-attr]
    source._catalog = catalog("10")  # what a reload does
    [dep] = source.current().candidates("m")
    assert priced.price(dep.pricing, byok=False, at=at).input == Decimal("10")  # type: ignore[union-attr]


def test_a_reasoning_variant_is_held_as_its_base_model() -> None:
    """Cursor's '<model>-thinking' names, which the router serves as the base model, are not free to hold."""
    priced = pricer(CATALOG)
    thinking, base = model_rates(priced, "sonnet-thinking"), model_rates(priced, "sonnet")
    assert thinking.deployments == base.deployments and thinking.servable
