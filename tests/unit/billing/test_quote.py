"""Holds priced from a rate card: the worst case over every deployment a request may reach, and the cap a
nearly spent budget can still pay for."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from switchboard_billing.quote import (
    DeploymentRates,
    ModelRates,
    RateTier,
    affordable_output,
    cap_for,
    worst_case,
)

#: gpt-4o: $2.50 / $10 per million tokens, at most 16,384 output tokens.
GPT4O = DeploymentRates("gpt-4o/0", "openai", 16_384, (RateTier(0, Decimal("2.5"), Decimal("10")),),
                        byok_per_token=Decimal("0.01"))
#: A dearer fallback with tiers: $3 / $15, doubled past 200k prompt tokens, 64,000 output tokens.
TIERED = DeploymentRates("claude/0", "anthropic", 64_000, (RateTier(0, Decimal("3"), Decimal("15")),
                                                          RateTier(200_001, Decimal("6"), Decimal("22.5"))))
MODEL = ModelRates("gpt-4o", (GPT4O,))


def test_without_max_tokens_the_bound_is_the_models_real_output_limit_not_its_context_window() -> None:
    quote = worst_case(MODEL, 1_000, 0, (), default_output=32_768)
    assert quote.output_tokens == 16_384
    assert quote.micros == 1_000 * 2.5 + 16_384 * 10 == 166_340  # $0.17, where the context window held $1.28


def test_max_tokens_bounds_the_hold_and_never_exceeds_the_deployment_limit() -> None:
    assert worst_case(MODEL, 1_000, 100, (), 32_768) == worst_case(MODEL, 1_000, 100, (), 32_768)
    assert worst_case(MODEL, 1_000, 100, (), 32_768).micros == 2_500 + 1_000
    assert worst_case(MODEL, 0, 100_000, (), 32_768).output_tokens == 16_384


def test_an_unknown_output_limit_takes_the_default() -> None:
    unknown = ModelRates("x", (DeploymentRates("x/0", "vllm", 0, (RateTier(0, Decimal(1), Decimal(1)),)),))
    assert worst_case(unknown, 0, 0, (), 8_000).output_tokens == 8_000


def test_the_dearest_candidate_decides_and_tiers_follow_the_prompt() -> None:
    both = ModelRates("gpt-4o", (GPT4O, TIERED))
    short = worst_case(both, 1_000, 0, (), 32_768)
    assert short.output_tokens == 64_000 and short.micros == 3_000 + 64_000 * 15
    long = worst_case(both, 300_000, 1_000, (), 32_768)
    assert long.micros == 300_000 * 6 + 1_000 * Decimal("22.5")


def test_byok_holds_the_routing_fee_only_where_the_callers_credential_applies() -> None:
    assert worst_case(MODEL, 1_000, 1_000, {"openai"}, 32_768).micros == 20  # 2,000 tokens at $0.01/M
    assert worst_case(MODEL, 1_000, 1_000, {"anthropic"}, 32_768).micros == 2_500 + 10_000
    bedrock = ModelRates("b", (DeploymentRates("b/0", "bedrock", 1_000, (RateTier(0, Decimal(1), Decimal(1)),),
                                               byok_per_token=Decimal(0)),))
    assert worst_case(bedrock, 10, 10, {"bedrock"}, 32_768).micros == 20, "Bedrock never runs on a caller's key"


def test_a_nearly_spent_budget_caps_the_answer_to_what_it_can_pay_for() -> None:
    full = worst_case(MODEL, 1_000, 0, (), 32_768)
    capped = cap_for(MODEL, 1_000, 50_000, (), full, floor=1_024, default_output=32_768)
    assert capped is not None and capped.output_tokens == (50_000 - 2_500) // 10 == 4_750
    assert capped.micros <= 50_000
    assert cap_for(MODEL, 1_000, 12_000, (), full, floor=1_024, default_output=32_768) is None, "below the floor"
    assert affordable_output(MODEL, 1_000, 12_000, (), 16_384) == 950
    assert affordable_output(MODEL, 1_000, 2_000, (), 16_384) == -1, "not even the prompt fits"


def test_a_client_that_asked_for_less_than_the_floor_is_not_capped_below_its_ask() -> None:
    full = worst_case(MODEL, 1_000, 16, (), 32_768)
    assert cap_for(MODEL, 1_000, full.micros - 1, (), full, floor=1_024, default_output=32_768) is None


@given(prompt=st.integers(0, 400_000), asked=st.integers(0, 100_000), free=st.integers(0, 10_000_000))
def test_a_cap_always_fits_what_is_free_and_never_raises_the_bound(prompt: int, asked: int, free: int) -> None:
    both = ModelRates("m", (GPT4O, TIERED))
    full = worst_case(both, prompt, asked, (), 32_768)
    capped = cap_for(both, prompt, free, (), full, floor=1, default_output=32_768)
    if capped is not None:
        assert capped.micros <= free
        assert 1 <= capped.output_tokens <= full.output_tokens
        assert worst_case(both, prompt, capped.output_tokens, (), 32_768) == capped
