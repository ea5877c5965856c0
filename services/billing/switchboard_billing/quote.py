"""What a request may cost at most, and the largest answer a budget can still pay for.

Billing holds a request's worst case before the provider is called; a holder
with a lease (the facade, or the router for its gRPC callers) holds it locally,
with no round trip. Both compute it here, from the same rate card
(:class:`ModelRates`, built by billing from its prices, see ``rate_card.py``),
so a hold taken from a lease is the hold billing would have taken.

The worst case of a request is, over every deployment it may reach (its
fallbacks' included), the prompt bound at the dearest input rate of its size
tier plus the output bound at the dearest output rate, plus any per-request fee,
rounded up to the micro-dollar. Rates are USD per million tokens, which is
micro-dollars per token. The output bound of a deployment is the request's
``max_tokens`` (never above the deployment's limit), else the deployment's own
output limit, else the card's default: never its context window. Where the
caller's own provider credential carries the request (bring your own key),
the deployment's BYOK fee replaces its price.

This module imports nothing of billing's price machinery: the clients use it.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal

from switchboard_rules.byok import byok_applies


@dataclass(frozen=True, slots=True)
class RateTier:
    """Rates (micro-dollars a token) that apply from ``min_prompt_tokens`` prompt tokens on."""

    min_prompt_tokens: int
    input: Decimal
    output: Decimal


@dataclass(frozen=True, slots=True)
class DeploymentRates:
    deployment_id: str
    provider: str
    #: Most output tokens of one answer; 0: unknown (the card's default bound applies).
    max_output_tokens: int
    #: Ascending by ``min_prompt_tokens``; the first starts at 0.
    tiers: tuple[RateTier, ...]
    per_request_micros: int = 0
    #: The BYOK routing fee: micro-dollars per token (prompt and output alike), and per request.
    byok_per_token: Decimal = Decimal(0)
    byok_per_request_micros: int = 0

    def rates(self, prompt_tokens: int, byok: bool) -> tuple[Decimal, Decimal, int]:
        """(input, output micro-dollars a token, per-request micro-dollars) for a prompt of this size."""
        if byok:
            return self.byok_per_token, self.byok_per_token, self.byok_per_request_micros
        tier = self.tiers[0]
        for candidate in self.tiers:
            if prompt_tokens >= candidate.min_prompt_tokens:
                tier = candidate
        return tier.input, tier.output, self.per_request_micros

    def cost(self, prompt_tokens: int, output_tokens: int, byok: bool) -> int:
        """The most ``prompt_tokens`` in and ``output_tokens`` out cost here, micro-dollars, rounded up."""
        rate_in, rate_out, fee = self.rates(prompt_tokens, byok)
        total = rate_in * prompt_tokens + rate_out * output_tokens
        return int(total.to_integral_value(rounding=ROUND_CEILING)) + fee

    def output_bound(self, requested: int, default: int) -> int:
        """Output tokens this deployment may emit for a request that asked for ``requested`` (0: nothing)."""
        limit = self.max_output_tokens
        if requested > 0:
            return min(requested, limit) if limit else requested
        return limit or default


@dataclass(frozen=True, slots=True)
class ModelRates:
    """A public model's candidate deployments, as a rate card lists them."""

    model: str
    deployments: tuple[DeploymentRates, ...]
    #: False: a candidate is unpriced and not allowed to serve unpriced (billing refuses the model).
    servable: bool = True
    #: False: a candidate is unpriced but allowed: the cost cannot be bounded, nothing is held.
    priced: bool = True


@dataclass(frozen=True, slots=True)
class Quote:
    """A hold: its micro-dollars and the output tokens it covers (the bound the router enforces)."""

    micros: int
    output_tokens: int


def worst_case(rates: ModelRates, prompt_tokens: int, requested_output: int, byok_providers: Collection[str],
               default_output: int) -> Quote:
    """The dearest outcome of the request over its candidates, and the output bound that makes it so."""
    micros, output = 0, 0
    for dep in rates.deployments:
        bound = dep.output_bound(requested_output, default_output)
        micros = max(micros, dep.cost(prompt_tokens, bound, byok_applies(dep.provider, byok_providers)))
        output = max(output, bound)
    return Quote(micros, output)


def affordable_output(rates: ModelRates, prompt_tokens: int, free_micros: int, byok_providers: Collection[str],
                      ceiling: int) -> int:
    """The most output tokens (at most ``ceiling``) a request can be capped to so that its worst case fits in
    ``free_micros`` on every candidate; -1 when not even its prompt fits."""
    best = ceiling
    for dep in rates.deployments:
        rate_in, rate_out, fee = dep.rates(prompt_tokens, byok_applies(dep.provider, byok_providers))
        left = Decimal(free_micros - fee) - rate_in * prompt_tokens
        if left < 0:
            return -1
        if rate_out > 0:
            best = min(best, math.floor(left / rate_out))
    return best


def cap_for(rates: ModelRates, prompt_tokens: int, free_micros: int, byok_providers: Collection[str],
            full: Quote, floor: int, default_output: int) -> Quote | None:
    """The capped hold that fits ``free_micros``: its output bound is what the budget affords, never below
    ``floor`` (nor below what the client asked for when it asked for less); None when that does not fit."""
    afford = affordable_output(rates, prompt_tokens, free_micros, byok_providers, full.output_tokens)
    if afford < max(1, min(floor, full.output_tokens)):
        return None
    capped = worst_case(rates, prompt_tokens, afford, byok_providers, default_output)
    return capped if capped.micros <= free_micros else None


def per_token(per_million_usd: str) -> Decimal:
    """A rate card's "USD per million tokens" text as micro-dollars a token (the same number)."""
    return Decimal(per_million_usd or "0")


def tiers_of(pairs: Sequence[tuple[int, str, str]]) -> tuple[RateTier, ...]:
    """Tiers from (min prompt tokens, input, output per million) as a rate card sends them."""
    return tuple(RateTier(start, per_token(i), per_token(o)) for start, i, o in sorted(pairs))
