from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from genai_prices import Usage, calc_price
from genai_prices.data import providers as genai_providers
from genai_prices.types import TieredPrices
from hypothesis import given, settings
from hypothesis import strategies as st

from switchboard_billing.money import ceil_micros, usd_to_micros_half_up
from switchboard_billing.pricing import (
    PROVIDER_IDS,
    ByokFee,
    DeploymentPricing,
    ModelPrice,
    PriceCatalog,
    PricingConfigError,
    TokenUsage,
    UnpricedModelError,
    cost_micros,
    cost_usd,
    max_cost_micros,
)

AT = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
CATALOG = PriceCatalog()

#: (our provider name, upstream model id) pairs the public price list knows, across providers.
KNOWN = [
    ("openai", "gpt-4o"),
    ("openai", "gpt-4o-mini-2024-07-18"),
    ("openai", "o3-mini"),
    ("azure", "gpt-4o"),
    ("anthropic", "claude-3-5-sonnet-20241022"),
    ("anthropic", "claude-sonnet-4-5"),
    ("gemini", "gemini-2.5-pro"),
    ("gemini", "models/gemini-1.5-flash"),
    ("bedrock", "us.anthropic.claude-3-5-sonnet-20241022-v2:0"),
    ("bedrock", "meta.llama3-70b-instruct-v1:0"),
    ("mistral", "mistral-large-latest"),
    ("groq", "llama-3.3-70b-versatile"),
    ("deepseek", "deepseek-chat"),
    ("together", "meta-llama/Llama-3.3-70B-Instruct-Turbo"),
    ("openrouter", "anthropic/claude-3.5-sonnet"),
    ("perplexity", "sonar"),
]

USAGES = [
    TokenUsage(prompt_tokens=1_000, completion_tokens=500),
    TokenUsage(prompt_tokens=12_345, completion_tokens=678, cached_prompt_tokens=10_000),
    TokenUsage(prompt_tokens=40_000, completion_tokens=2_000, cached_prompt_tokens=5_000, cache_write_tokens=30_000),
    TokenUsage(prompt_tokens=3_000, completion_tokens=9_000, reasoning_tokens=8_000),
    TokenUsage(prompt_tokens=250_000, completion_tokens=4_000, cached_prompt_tokens=100_000, reasoning_tokens=1_000),
    TokenUsage(prompt_tokens=1, completion_tokens=1),
    TokenUsage(prompt_tokens=0, completion_tokens=0),
]


def deployment(provider: str, model: str, **settings: Any) -> DeploymentPricing:
    return DeploymentPricing.from_config({"id": f"{provider}-test", "provider": provider, "model": model, **settings})


def genai_usage(usage: TokenUsage) -> Usage:
    return Usage(
        input_tokens=usage.prompt_tokens,
        output_tokens=usage.completion_tokens,
        cache_read_tokens=usage.cached_prompt_tokens,
        cache_write_tokens=usage.cache_write_tokens,
        output_reasoning_tokens=usage.reasoning_tokens,
    )


# --- the catalog agrees with genai-prices ----------------------------------------------------


@pytest.mark.parametrize(("provider", "model"), KNOWN)
@pytest.mark.parametrize("usage", USAGES, ids=lambda u: f"p{u.prompt_tokens}-c{u.completion_tokens}")
def test_cost_matches_genai_prices_calc_price(provider: str, model: str, usage: TokenUsage) -> None:
    price = CATALOG.price_for(deployment(provider, model), at=AT)
    assert price is not None, f"{provider}/{model} should be in the price list"
    assert price.source == "catalog"
    genai_id = PROVIDER_IDS[provider]
    assert genai_id is not None
    reference = calc_price(
        genai_usage(usage), model.removeprefix("models/"), provider_id=genai_id, genai_request_timestamp=AT
    )
    assert cost_usd(price, usage) == reference.total_price
    assert cost_micros(price, usage) == usd_to_micros_half_up(reference.total_price)


@pytest.mark.parametrize("when", [datetime(2026, 1, 15, 3, tzinfo=UTC), datetime(2026, 1, 15, 20, tzinfo=UTC)])
def test_prices_are_resolved_at_the_request_time(when: datetime) -> None:
    # Some prices change with the time of day (off-peak) or on a date; the request time decides.
    usage = TokenUsage(prompt_tokens=100_000, completion_tokens=20_000, cached_prompt_tokens=50_000)
    price = CATALOG.price_for(deployment("deepseek", "deepseek-chat"), at=when)
    assert price is not None
    reference = calc_price(genai_usage(usage), "deepseek-chat", provider_id="deepseek", genai_request_timestamp=when)
    assert cost_usd(price, usage) == reference.total_price


def test_every_catalog_model_of_our_providers_costs_what_genai_prices_says() -> None:
    rng = random.Random(20260115)
    wanted = {genai_id for genai_id in PROVIDER_IDS.values() if genai_id}
    checked = 0
    for provider in genai_providers:
        if provider.id not in wanted:
            continue
        for model in provider.models:
            table = model.get_prices(AT)
            if getattr(table, "input_mtok", None) is None or getattr(table, "output_mtok", None) is None:
                continue  # not a chat price (images, embeddings): the catalog reports these as unpriced
            price = ModelPrice.from_rates(table, source="catalog")
            prompt = rng.choice([0, 17, 4_321, 199_999, 200_001, 1_500_000])
            cached = rng.randint(0, prompt // 2)
            completion = rng.randint(0, 64_000)
            usage = TokenUsage(prompt, completion, cached, rng.randint(0, prompt - cached), rng.randint(0, completion))
            expected = model.calc_price(genai_usage(usage), provider, genai_request_timestamp=AT).total_price
            assert cost_usd(price, usage) == expected, f"{provider.id}/{model.id}"
            checked += 1
    assert checked > 1000


def test_tiered_prices_apply_to_every_token_above_the_threshold() -> None:
    price = CATALOG.price_for(deployment("anthropic", "claude-sonnet-4-5"), at=AT)
    assert price is not None and price.tiered
    input_tiers = price.table.input_mtok
    assert isinstance(input_tiers, TieredPrices)
    threshold = input_tiers.tiers[0].start
    below = TokenUsage(prompt_tokens=threshold, completion_tokens=0)
    above = TokenUsage(prompt_tokens=threshold + 1, completion_tokens=0)
    assert cost_usd(price, below) == input_tiers.base * threshold / 1_000_000
    assert cost_usd(price, above) == input_tiers.tiers[0].price * (threshold + 1) / 1_000_000
    assert cost_usd(price, above) > cost_usd(price, below) * 3 / 2


def test_cache_and_reasoning_prices_fall_back_to_input_and_output() -> None:
    price = ModelPrice.flat(input=Decimal(2), output=Decimal(8))
    assert (price.cached_input, price.cache_write, price.reasoning) == (Decimal(2), Decimal(2), Decimal(8))
    usage = TokenUsage(
        prompt_tokens=1_000_000,
        completion_tokens=1_000_000,
        cached_prompt_tokens=400_000,
        cache_write_tokens=100_000,
        reasoning_tokens=900_000,
    )
    assert cost_micros(price, usage) == 10_000_000
    cheaper_cache = ModelPrice.flat(
        input=Decimal(2), output=Decimal(8), cached_input=Decimal("0.5"), cache_write=Decimal("2.5")
    )
    # 500k plain input at 2, 400k cached at 0.5, 100k written at 2.5, 1M output at 8.
    assert cost_micros(cheaper_cache, usage) == 1_000_000 + 200_000 + 250_000 + 8_000_000


def test_a_directly_built_price_costs_by_its_fields() -> None:
    price = ModelPrice(
        input=Decimal(1),
        output=Decimal(4),
        cached_input=Decimal("0.1"),
        cache_write=Decimal(1),
        reasoning=Decimal(6),
        per_request=Decimal("0.002"),
    )
    usage = TokenUsage(
        prompt_tokens=1_000_000, completion_tokens=1_000_000, cached_prompt_tokens=1_000_000, reasoning_tokens=500_000
    )
    assert cost_micros(price, usage) == 100_000 + 2_000_000 + 3_000_000 + 2_000


def test_rounding_is_half_up_to_the_micro_dollar() -> None:
    half = ModelPrice.flat(input=Decimal("0.5"), output=Decimal(0))
    assert cost_usd(half, TokenUsage(prompt_tokens=1, completion_tokens=0)) == Decimal("0.0000005")
    assert cost_micros(half, TokenUsage(prompt_tokens=1, completion_tokens=0)) == 1
    just_under = ModelPrice.flat(input=Decimal("0.4999"), output=Decimal(0))
    assert cost_micros(just_under, TokenUsage(prompt_tokens=1, completion_tokens=0)) == 0
    sub_micro = ModelPrice.flat(input=Decimal("0.01875"), output=Decimal(0))
    assert cost_micros(sub_micro, TokenUsage(prompt_tokens=80, completion_tokens=0)) == 2  # 1.5 micros → 2


@given(
    input_price=st.decimals(min_value=0, max_value=100, places=5),
    output_price=st.decimals(min_value=0, max_value=100, places=5),
    prompt=st.integers(min_value=0, max_value=2_000_000),
    completion=st.integers(min_value=0, max_value=200_000),
)
def test_flat_cost_is_the_exact_formula_rounded_half_up(
    input_price: Decimal, output_price: Decimal, prompt: int, completion: int
) -> None:
    price = ModelPrice.flat(input=input_price, output=output_price)
    exact = (input_price * prompt + output_price * completion) / 1_000_000
    assert cost_micros(price, TokenUsage(prompt, completion)) == usd_to_micros_half_up(exact)


# --- unknown prices --------------------------------------------------------------------------


def test_unknown_price_is_none_never_zero() -> None:
    config = deployment("vllm", "my-finetune")
    assert CATALOG.price_for(config) is None
    assert cost_micros(None, TokenUsage(prompt_tokens=10, completion_tokens=10)) is None
    assert CATALOG.price_for(deployment("openai", "no-such-model-xyz")) is None


@pytest.mark.parametrize("provider", ["ollama", "vllm", "openai_compatible"])
def test_self_hosted_providers_have_no_public_price(provider: str) -> None:
    # Even a model name the price list knows: a self-hosted copy is not billed at a vendor's price.
    assert CATALOG.price_for(deployment(provider, "gpt-4o")) is None


@pytest.mark.parametrize(
    ("provider", "model"),
    [
        ("openai", "gpt-4o"),
        ("azure", "gpt-4o"),
        ("anthropic", "claude-3-5-haiku-latest"),
        ("gemini", "gemini-2.0-flash"),
        ("bedrock", "anthropic.claude-3-5-sonnet-20241022-v2:0"),
        ("mistral", "mistral-small-latest"),
        ("groq", "llama-3.1-8b-instant"),
        ("deepseek", "deepseek-reasoner"),
        ("together", "meta-llama/Llama-3.3-70B-Instruct-Turbo"),
        ("openrouter", "openai/gpt-4o"),
    ],
)
def test_each_public_provider_is_mapped(provider: str, model: str) -> None:
    price = CATALOG.price_for(deployment(provider, model), at=AT)
    assert price is not None
    assert price.input > 0 and price.output > 0


def test_unpriced_deployment_is_not_servable_and_the_error_says_what_to_set() -> None:
    config = deployment("vllm", "my-finetune")
    assert not CATALOG.is_servable(config)
    reason = CATALOG.unpriced_reason(config)
    assert reason is not None
    assert "my-finetune" in reason
    assert "input_cost_per_million" in reason and "output_cost_per_million" in reason
    assert "allow_unpriced" in reason
    with pytest.raises(UnpricedModelError, match="my-finetune"):
        CATALOG.require_servable(config)


def test_allow_unpriced_serves_with_unknown_cost() -> None:
    config = deployment("ollama", "llama3.2", allow_unpriced=True)
    assert CATALOG.is_servable(config)
    CATALOG.require_servable(config)
    assert CATALOG.price_for(config) is None


def test_priced_deployment_is_servable() -> None:
    config = deployment("openai", "gpt-4o")
    assert CATALOG.is_servable(config)
    assert CATALOG.unpriced_reason(config) is None
    CATALOG.require_servable(config)


def test_half_an_override_for_an_unknown_model_names_the_missing_key() -> None:
    config = deployment("vllm", "my-finetune", input_cost_per_million="0.2")
    assert CATALOG.price_for(config) is None
    reason = CATALOG.unpriced_reason(config)
    assert reason is not None and "output_cost_per_million" in reason
    assert "set input_cost_per_million" not in reason


# --- overrides -------------------------------------------------------------------------------


def test_overrides_price_an_unknown_model() -> None:
    config = deployment(
        "vllm",
        "my-finetune",
        input_cost_per_million="0.20",
        output_cost_per_million=0.6,
        cached_input_cost_per_million="0.05",
    )
    price = CATALOG.price_for(config)
    assert price is not None
    assert (price.input, price.output, price.cached_input, price.cache_write) == (
        Decimal("0.20"),
        Decimal("0.6"),
        Decimal("0.05"),
        Decimal("0.20"),
    )
    assert price.source == "config"
    usage = TokenUsage(prompt_tokens=1_000_000, completion_tokens=1_000_000, cached_prompt_tokens=1_000_000)
    assert cost_micros(price, usage) == 650_000


def test_overrides_win_over_the_catalog_one_price_at_a_time() -> None:
    catalog_price = CATALOG.price_for(deployment("openai", "gpt-4o"), at=AT)
    config = deployment("openai", "gpt-4o", input_cost_per_million="1", cache_write_cost_per_million=3)
    price = CATALOG.price_for(config, at=AT)
    assert catalog_price is not None and price is not None
    assert price.input == Decimal(1)
    assert price.cache_write == Decimal(3)
    assert price.output == catalog_price.output
    assert price.cached_input == catalog_price.cached_input
    assert price.source == "catalog+config"
    usage = TokenUsage(
        prompt_tokens=2_000_000, completion_tokens=0, cached_prompt_tokens=1_000_000, cache_write_tokens=500_000
    )
    expected = Decimal(1) * Decimal("0.5") + catalog_price.cached_input + 3 * Decimal("0.5")
    assert cost_micros(price, usage) == usd_to_micros_half_up(expected)


def test_an_override_replaces_a_tiered_price_with_a_flat_one() -> None:
    config = deployment("anthropic", "claude-sonnet-4-5", input_cost_per_million="2", output_cost_per_million="10")
    price = CATALOG.price_for(config, at=AT)
    assert price is not None
    assert cost_micros(price, TokenUsage(prompt_tokens=1_000_000, completion_tokens=0)) == 2_000_000


def test_overrides_are_read_from_extra_too() -> None:
    config = DeploymentPricing.from_config(
        {"provider": "vllm", "model": "m", "extra": {"input_cost_per_million": "1", "output_cost_per_million": "2"}}
    )
    assert config.overrides == {"input": Decimal(1), "output": Decimal(2)}


def test_yaml_floats_are_read_exactly() -> None:
    config = deployment("vllm", "m", input_cost_per_million=0.15, output_cost_per_million=0.075)
    assert config.overrides["input"] == Decimal("0.15")
    assert config.overrides["output"] == Decimal("0.075")


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("input_cost_per_million", -1, "negative"),
        ("output_cost_per_million", "-0.5", "negative"),
        ("input_cost_per_million", float("nan"), "finite"),
        ("input_cost_per_million", "NaN", "finite"),
        ("cached_input_cost_per_million", "inf", "finite"),
        ("cache_write_cost_per_million", "cheap", "not a decimal number"),
        ("input_cost_per_million", True, "boolean"),
        ("input_cost_per_million", 5_000_000, "MILLION"),
        ("byok_fee_per_million", -2, "negative"),
        ("byok_fee_per_request_micros", 1.5, "whole number"),
        ("byok_fee_per_request_micros", -1, "whole number"),
        ("allow_unpriced", "yes", "true or false"),
        ("price_model", 3, "text"),
    ],
)
def test_bad_pricing_config_is_rejected_with_the_deployment_and_key(key: str, value: object, message: str) -> None:
    with pytest.raises(PricingConfigError, match=message) as caught:
        deployment("openai", "gpt-4o", **{key: value})
    assert "openai-test" in str(caught.value)
    if key.endswith("per_million"):
        assert key in str(caught.value)


def test_provider_and_model_are_required() -> None:
    with pytest.raises(PricingConfigError, match="'model' must be set"):
        DeploymentPricing.from_config({"provider": "openai"})
    with pytest.raises(PricingConfigError, match="'provider' must be set"):
        DeploymentPricing.from_config({"model": "gpt-4o"})


def test_price_model_prices_an_azure_deployment_name_or_a_self_hosted_copy() -> None:
    assert CATALOG.price_for(deployment("azure", "prod-chat-eu")) is None
    aliased = CATALOG.price_for(deployment("azure", "prod-chat-eu", price_model="gpt-4o-mini"), at=AT)
    direct = CATALOG.price_for(deployment("openai", "gpt-4o-mini"), at=AT)
    assert aliased is not None and direct is not None
    assert (aliased.input, aliased.output) == (direct.input, direct.output)
    together_model = "meta-llama/Llama-3.3-70B-Instruct-Turbo"
    mirrored = CATALOG.price_for(
        deployment("vllm", "/models/llama", price_provider="together", price_model=together_model), at=AT
    )
    assert mirrored is not None and mirrored.catalog_model == "meta-llama/Llama-3.3-70B-Instruct-Turbo"


# --- bring your own key ----------------------------------------------------------------------


def test_byok_charges_the_routing_fee_instead_of_the_model_price() -> None:
    config = deployment("openai", "gpt-4o", byok_fee_per_million="0.10", byok_fee_per_request_micros=250)
    assert config.byok_fee == ByokFee(per_million_tokens=Decimal("0.10"), per_request_micros=250)
    fee = CATALOG.price_for(config, byok=True)
    assert fee is not None and fee.source == "byok"
    usage = TokenUsage(
        prompt_tokens=600_000, completion_tokens=400_000, cached_prompt_tokens=300_000, reasoning_tokens=100_000
    )
    assert cost_micros(fee, usage) == 100_000 + 250
    full = CATALOG.price_for(config)
    assert full is not None and cost_micros(full, usage) != cost_micros(fee, usage)


def test_byok_fee_applies_to_models_without_a_public_price() -> None:
    fee = CATALOG.price_for(deployment("vllm", "x", byok_fee_per_request_micros="1000"), byok=True)
    assert fee is not None
    assert cost_micros(fee, TokenUsage(prompt_tokens=5, completion_tokens=5)) == 1_000
    assert max_cost_micros(fee, 1_000_000, 1_000_000) == 1_000


def test_byok_without_a_configured_fee_is_free() -> None:
    fee = CATALOG.price_for(deployment("openai", "gpt-4o"), byok=True)
    assert fee is not None
    assert cost_micros(fee, TokenUsage(prompt_tokens=1_000_000, completion_tokens=1_000_000)) == 0


# --- worst-case reservations -----------------------------------------------------------------


@pytest.mark.parametrize(("provider", "model"), KNOWN)
@settings(max_examples=40)
@given(
    prompt=st.integers(min_value=0, max_value=400_000),
    output=st.integers(min_value=0, max_value=64_000),
    data=st.data(),
)
def test_max_cost_bounds_every_actual_cost(
    provider: str, model: str, prompt: int, output: int, data: st.DataObject
) -> None:
    price = CATALOG.price_for(deployment(provider, model), at=AT)
    assert price is not None
    hold = max_cost_micros(price, prompt, output)
    cached = data.draw(st.integers(min_value=0, max_value=prompt))
    written = data.draw(st.integers(min_value=0, max_value=prompt - cached))
    completion = data.draw(st.integers(min_value=0, max_value=output))
    reasoning = data.draw(st.integers(min_value=0, max_value=completion))
    actual = cost_micros(price, TokenUsage(prompt, completion, cached, written, reasoning))
    assert actual is not None and actual <= hold


def test_max_cost_rounds_up_and_takes_the_dearest_input_kind() -> None:
    price = ModelPrice.flat(
        input=Decimal(3), output=Decimal(15), cached_input=Decimal("0.3"), cache_write=Decimal("3.75")
    )
    # All prompt tokens as cache writes at 3.75, plus all output at 15.
    assert max_cost_micros(price, 1_000, 100) == ceil_micros(Decimal("0.00375") + Decimal("0.0015"))
    sub_micro = ModelPrice.flat(input=Decimal("0.01875"), output=Decimal(0))
    assert max_cost_micros(sub_micro, 1, 0) == 1
    assert cost_micros(sub_micro, TokenUsage(prompt_tokens=1, completion_tokens=0)) == 0
    with pytest.raises(ValueError, match="0 or more"):
        max_cost_micros(price, -1, 0)


def test_max_cost_uses_the_reasoning_price_when_dearer() -> None:
    price = ModelPrice(
        input=Decimal(1), output=Decimal(2), cached_input=Decimal(1), cache_write=Decimal(1), reasoning=Decimal(10)
    )
    assert max_cost_micros(price, 0, 1_000_000) == 10_000_000


def test_max_cost_includes_a_per_request_fee() -> None:
    price = CATALOG.price_for(deployment("perplexity", "sonar"), at=AT)
    assert price is not None and price.per_request > 0
    assert max_cost_micros(price, 0, 0) == ceil_micros(price.per_request)


# --- public catalog rows ---------------------------------------------------------------------


def test_catalog_row_shows_prices_as_decimal_strings() -> None:
    row = CATALOG.catalog_row(deployment("openai", "gpt-4o-mini"), at=AT)
    price = CATALOG.price_for(deployment("openai", "gpt-4o-mini"), at=AT)
    assert price is not None
    assert Decimal(row.input_per_million) == price.input
    assert Decimal(row.output_per_million) == price.output
    assert Decimal(row.cached_input_per_million) == price.cached_input
    assert "E" not in row.cached_input_per_million
    assert row.context_window == CATALOG.catalog_model("openai", "gpt-4o-mini").context_window  # type: ignore[union-attr]
    assert row.context_window > 0
    assert row.max_output_tokens == 0
    assert row.price_source == "catalog"


def test_catalog_row_keeps_sub_cent_prices_exact() -> None:
    row = CATALOG.catalog_row(
        deployment("vllm", "m", input_cost_per_million="0.00001875", output_cost_per_million="0.075")
    )
    assert (row.input_per_million, row.output_per_million) == ("0.00001875", "0.075")


def test_catalog_row_prefers_configured_limits_and_leaves_unknowns_empty() -> None:
    row = CATALOG.catalog_row(deployment("ollama", "llama3.2"), context_window=131_072, max_output_tokens=8_192)
    assert (row.context_window, row.max_output_tokens) == (131_072, 8_192)
    assert row.input_per_million == row.output_per_million == row.cached_input_per_million == ""
    assert row.price_source == ""
    tiered = CATALOG.catalog_row(deployment("gemini", "gemini-2.5-pro"), at=AT)
    assert tiered.tiered


# --- usage -----------------------------------------------------------------------------------


def test_usage_of_reads_a_proto_like_object() -> None:
    @dataclass
    class Counts:
        prompt_tokens: int = 100
        completion_tokens: int = 50
        total_tokens: int = 150
        cached_prompt_tokens: int = 20
        cache_write_tokens: int = 10
        reasoning_tokens: int = 5

    assert TokenUsage.of(Counts()) == TokenUsage(100, 50, 20, 10, 5)
    assert TokenUsage.of(Counts()).total_tokens == 150


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"prompt_tokens": -1, "completion_tokens": 0}, "0 or more"),
        (
            {"prompt_tokens": 10, "completion_tokens": 0, "cached_prompt_tokens": 8, "cache_write_tokens": 3},
            "exceed prompt_tokens",
        ),
        ({"prompt_tokens": 10, "completion_tokens": 5, "reasoning_tokens": 6}, "exceed completion_tokens"),
        ({"prompt_tokens": 1.5, "completion_tokens": 0}, "whole number"),
        ({"prompt_tokens": True, "completion_tokens": 0}, "whole number"),
    ],
)
def test_contradictory_usage_is_rejected(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TokenUsage(**fields)


# --- provider and model names ----------------------------------------------------------------


def test_provider_names_match_exactly_not_fuzzily() -> None:
    # genai-prices would match any provider id containing "openai"; an unknown name must not get OpenAI's price.
    assert CATALOG.price_for(deployment("my-openai-proxy", "gpt-4o")) is None
    reason = CATALOG.unpriced_reason(deployment("my-openai-proxy", "gpt-4o"))
    assert reason is not None and "'my-openai-proxy' has no public price list" in reason


def test_price_provider_accepts_our_names_and_price_list_ids() -> None:
    ours = CATALOG.price_for(
        deployment("vllm", "gemma", price_provider="gemini", price_model="gemini-2.0-flash"), at=AT
    )
    theirs = CATALOG.price_for(
        deployment("vllm", "gemma", price_provider="google", price_model="gemini-2.0-flash"), at=AT
    )
    assert ours is not None and theirs is not None
    assert (ours.input, ours.output) == (theirs.input, theirs.output)


def test_bedrock_inference_profile_arn_is_priced_by_its_profile_id() -> None:
    arn = "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-5-sonnet-20241022-v2:0"
    by_arn = CATALOG.price_for(deployment("bedrock", arn), at=AT)
    by_id = CATALOG.price_for(deployment("bedrock", "us.anthropic.claude-3-5-sonnet-20241022-v2:0"), at=AT)
    assert by_arn is not None and by_id is not None
    assert by_arn.catalog_model == by_id.catalog_model


def test_pricing_is_read_from_the_routers_deployment_object() -> None:
    from switchboard_router.deployment import Deployment

    routed = Deployment(
        id="chat/0",
        public_model="chat",
        provider="vllm",
        model="qwen",
        api_base="http://127.0.0.1:8000/v1",
        extra={"input_cost_per_million": "0.1", "output_cost_per_million": "0.3", "allow_unpriced": False},
    )
    config = DeploymentPricing.from_deployment(routed)
    assert (config.deployment_id, config.provider, config.model) == ("chat/0", "vllm", "qwen")
    price = CATALOG.price_for(config)
    assert price is not None and (price.input, price.output) == (Decimal("0.1"), Decimal("0.3"))
