"""What a Gemini explicit context cache costs, to the micro-dollar: the request that made it pays its tokens at
the input price, their cached read, and their storage for the cache's lifetime (Google's price per million
tokens per hour); later requests read it at the cached-input price. Reservations hold enough for a request that
makes one."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from switchboard_billing.costing import Charge
from switchboard_billing.pricing import PriceCatalog
from switchboard_billing.pricing.config import DeploymentPricing, PricingConfigError
from switchboard_billing.pricing.rates import max_cost_micros
from tests.unit.billing.test_cache_savings import usage_event
from tests.unit.billing.test_ledger_costs import pricer

FLASH = {"provider": "gemini", "model": "gemini-2.5-flash", "prompt_cache": "explicit"}
MODELS: list[dict[str, Any]] = [
    {"name": "flash", "deployments": [FLASH]},
    {"name": "flash-plain", "deployments": [{"provider": "gemini", "model": "gemini-2.5-flash"}]},
    {"name": "pro-hour", "deployments": [{"provider": "vertex", "model": "gemini-2.5-pro", "prompt_cache": "explicit",
                                          "prompt_cache_ttl": 3600, "vertex_project": "p",
                                          "vertex_location": "europe-west4"}]},
]


def test_the_write_price_is_input_plus_read_plus_storage_for_the_lifetime() -> None:
    catalog = PriceCatalog()
    flash = catalog.price_for(FLASH)
    assert flash is not None
    # $0.30/M input + $0.03/M cached read + $1.00/M/hour storage for 5 minutes.
    assert flash.cache_write == Decimal("0.33") + Decimal(300) / 3600
    assert (flash.input, flash.cached_input) == (Decimal("0.3"), Decimal("0.03"))
    day = catalog.price_for({**FLASH, "prompt_cache_ttl": 86_400})
    assert day is not None and day.cache_write == Decimal("24.33")
    plain = catalog.price_for({"provider": "gemini", "model": "gemini-2.5-flash"})
    assert plain is not None and plain.cache_write == plain.input, "no explicit caching: no write price of its own"


@pytest.mark.parametrize(("model", "prompt", "read", "write", "completion", "charge"), [
    # The turn that made a 90k entry: 10k x 0.30 + 90k x (0.33 + 1/12) + 500 x 2.50 = 0.04145, 0.0102 more than
    # the same turn uncached (100k x 0.30 + 500 x 2.50 = 0.03125).
    ("flash", 100_000, 0, 90_000, 500, Charge(41_450, -10_200)),
    # A turn that read it: 10k x 0.30 + 90k x 0.03 + 500 x 2.50; saved 90k x 0.27.
    ("flash", 100_000, 90_000, 0, 500, Charge(6_950, 24_300)),
    # Gemini 2.5 Pro on Vertex AI, caches kept an hour: write = 1.25 + 0.125 + 4.50 = 5.875 per million.
    ("pro-hour", 100_000, 0, 90_000, 1_000, Charge(12_500 + 528_750 + 10_000, 125_000 + 10_000 - 551_250)),
    # Past 200k prompt tokens Pro's prices double, storage does not: write = 2.50 + 0.25 + 4.50 = 7.25.
    ("pro-hour", 300_000, 0, 250_000, 1_000, Charge(125_000 + 1_812_500 + 15_000, 750_000 + 15_000 - 1_952_500)),
])
def test_making_and_reading_an_entry_are_billed_exactly(model: str, prompt: int, read: int, write: int,
                                                        completion: int, charge: Charge) -> None:
    assert pricer(MODELS).event_charge(usage_event("r", model, prompt, completion, read, write)) == charge


def test_a_reservation_covers_a_request_that_makes_an_entry() -> None:
    price = PriceCatalog().price_for(FLASH)
    assert price is not None
    # The dearest input kind is the write: 100k x (0.33 + 1/12) + 1,000 x 2.50, rounded up.
    assert max_cost_micros(price, 100_000, 1_000) == 41_334 + 2_500


def test_a_model_without_a_published_storage_price_needs_one_configured() -> None:
    catalog = PriceCatalog()
    unlisted = {"provider": "gemini", "model": "gemini-3.5-flash", "prompt_cache": "explicit"}
    assert catalog.price_for(unlisted) is None
    reason = catalog.unpriced_reason(unlisted)
    assert reason is not None and "cache_storage_cost_per_million_hours" in reason and "gemini-3.5-flash" in reason
    priced = catalog.price_for({**unlisted, "cache_storage_cost_per_million_hours": "0.60"})
    assert priced is not None and priced.cache_write == Decimal("1.5") + Decimal("0.15") + Decimal("0.05")
    assert catalog.price_for({**FLASH, "cache_storage_cost_per_million_hours": "2"}).cache_write == (  # type: ignore[union-attr]
        Decimal("0.33") + 2 * Decimal(300) / 3600)
    with pytest.raises(PricingConfigError, match="cache_storage_cost_per_million_hours"):
        DeploymentPricing.from_config({**FLASH, "cache_storage_cost_per_million_hours": "-1"})
