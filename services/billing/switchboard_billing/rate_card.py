"""The rate card: every public model's candidate deployments with their worst-case rates and output limits.

Billing builds it from its prices (genai-prices plus config overrides) for
:mod:`switchboard_billing.quote`, which both billing (``Reserve``) and lease
holders (``switchboard_billing.client``) use to compute holds. A deployment's
rates are given per prompt-size tier: at each tier, the dearest input kind
(plain, cache read, cache write) and the dearest output kind (plain,
reasoning), as genai-prices would charge every token of that kind once the
prompt passes the tier's start.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from decimal import Decimal

from genai_prices.types import TieredPrices, calc_unit_price

from switchboard.v1 import billing_pb2
from switchboard_billing.costing import Pricer
from switchboard_billing.money import format_decimal
from switchboard_billing.priced_models import PricedDeployment
from switchboard_billing.pricing import ModelPrice
from switchboard_billing.pricing.rates import (
    CACHE_READ_KEY,
    CACHE_WRITE_KEY,
    INPUT_KEY,
    OUTPUT_KEY,
    REASONING_KEY,
)
from switchboard_billing.quote import DeploymentRates, ModelRates, RateTier

_MILLION = 1_000_000
_INPUT_KINDS = (INPUT_KEY, CACHE_READ_KEY, CACHE_WRITE_KEY)
_OUTPUT_KINDS = (OUTPUT_KEY, REASONING_KEY)


def deployment_rates(dep: PricedDeployment, price: ModelPrice) -> DeploymentRates:
    """One priced deployment's worst-case rates, tier by tier."""
    table = price.table
    starts = {0}
    for key in (*_INPUT_KINDS, *_OUTPUT_KINDS):
        value = getattr(table, key, None)
        if isinstance(value, TieredPrices):
            starts.update(tier.start + 1 for tier in value.tiers)  # a tier applies once a prompt passes its start
    tiers = []
    for start in sorted(starts):
        rate_in = max(calc_unit_price(getattr(table, k, None), _MILLION, start, _MILLION) for k in _INPUT_KINDS)
        rate_out = max(calc_unit_price(getattr(table, k, None), _MILLION, start, _MILLION) for k in _OUTPUT_KINDS)
        tiers.append(RateTier(start, rate_in, rate_out))
    fee = dep.pricing.byok_fee
    return DeploymentRates(
        deployment_id=dep.id, provider=dep.pricing.provider, max_output_tokens=dep.max_output_tokens,
        tiers=tuple(tiers), per_request_micros=math.ceil(price.per_request * _MILLION),
        byok_per_token=fee.per_million_tokens, byok_per_request_micros=fee.per_request_micros)


def model_rates(pricer: Pricer, public_model: str, at: datetime | None = None) -> ModelRates:
    """The rates of every live deployment a request for ``public_model`` may reach (its fallbacks' included)."""
    moment = at or datetime.now(UTC)
    deployments, servable, priced = [], True, True
    candidates = pricer.source.current().candidates(public_model) \
        or pricer.source.current(fresh=True).candidates(public_model)  # a model a router may know already
    for dep in candidates:
        price = pricer.price(dep.pricing, byok=False, at=moment)
        if price is None:
            priced = False
            servable = servable and dep.pricing.allow_unpriced
            continue
        deployments.append(deployment_rates(dep, price))
    return ModelRates(public_model, tuple(deployments), servable, priced)


def rate_card(pricer: Pricer, min_output_tokens: int, at: datetime | None = None) -> billing_pb2.RateCard:
    """The card of every public model, as GetRateCard sends it."""
    moment = at or datetime.now(UTC)
    card = billing_pb2.RateCard(default_output_tokens=pricer.default_output_tokens,
                                min_output_tokens=min_output_tokens)
    for name in pricer.source.current().models:
        rates = model_rates(pricer, name, moment)
        card.models.append(billing_pb2.ModelRates(
            model=name, servable=rates.servable, priced=rates.priced,
            deployments=[billing_pb2.DeploymentRates(
                deployment_id=d.deployment_id, provider=d.provider, max_output_tokens=d.max_output_tokens,
                tiers=[billing_pb2.RateTier(min_prompt_tokens=t.min_prompt_tokens, input_per_million=_text(t.input),
                                            output_per_million=_text(t.output)) for t in d.tiers],
                per_request_micros=d.per_request_micros, byok_per_million=_text(d.byok_per_token),
                byok_per_request_micros=d.byok_per_request_micros) for d in rates.deployments]))
    return card


def _text(value: Decimal) -> str:
    return format_decimal(value)


class RateBook:
    """``model_rates`` remembered per model for a minute (prices may change by time of day) and per catalog
    (a config reload reprices at once): Reserve reads it on every request."""

    def __init__(self, pricer: Pricer) -> None:
        self.pricer = pricer
        self._rates: dict[str, ModelRates] = {}
        self._key: tuple[int, int] = (0, 0)

    def rates(self, public_model: str) -> ModelRates:
        now = datetime.now(UTC)
        key = (id(self.pricer.source.current()), int(now.timestamp()) // 60)
        if key != self._key:
            self._rates, self._key = {}, key
        found = self._rates.get(public_model)
        if found is None:
            found = self._rates[public_model] = model_rates(self.pricer, public_model, now)
        return found
