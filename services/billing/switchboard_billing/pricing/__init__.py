"""Prices of model deployments and the cost of requests, in integer micro-dollars.

Typical use by the billing service::

    catalog = PriceCatalog()
    config = DeploymentPricing.from_config(deployment_yaml_mapping)
    catalog.require_servable(config)                 # at config load: unpriced and not allowed → error
    price = catalog.price_for(config, byok=False, at=request_started_at)
    hold = max_cost_micros(price, prompt_tokens_estimate, max_output_tokens) if price else None
    cost = cost_micros(price, TokenUsage.of(usage_message))   # None: unknown price, never 0
    saved = cache_savings_micros(price, TokenUsage.of(usage_message))  # what prompt caching saved
"""

from __future__ import annotations

from switchboard_billing.pricing.catalog import PROVIDER_IDS, CatalogRow, PriceCatalog, UnpricedModelError
from switchboard_billing.pricing.config import ByokFee, DeploymentPricing, PricingConfigError
from switchboard_billing.pricing.rates import ModelPrice, cache_savings_micros, cost_micros, cost_usd, max_cost_micros
from switchboard_billing.pricing.usage import TokenUsage

__all__ = [
    "PROVIDER_IDS",
    "ByokFee",
    "CatalogRow",
    "DeploymentPricing",
    "ModelPrice",
    "PriceCatalog",
    "PricingConfigError",
    "TokenUsage",
    "UnpricedModelError",
    "cache_savings_micros",
    "cost_micros",
    "cost_usd",
    "max_cost_micros",
]
