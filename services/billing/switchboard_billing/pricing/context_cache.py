"""What writing a Gemini explicit context cache costs (deployments with ``prompt_cache: explicit``).

Google bills an explicit cache three ways: its tokens once at the standard input price when it is made, its
storage by the hour for its lifetime, and every read at the cached-input price. The router bills the making
to the first request that succeeds with the cache, as that request's cache-write tokens, and that request has
also read those tokens from the cache. So one Gemini cache-write token costs

    input price + cached-input price + storage price per hour × lifetime in hours

with input and cached-input at the tier the request's prompt size selects (Gemini Pro's prices step up past
200k tokens; storage does not). genai-prices has no storage prices: Google's published ones are below, and a
deployment's ``cache_storage_cost_per_million_hours`` replaces them or prices a model they do not list.
"""

from __future__ import annotations

from decimal import Decimal

from genai_prices.types import ModelPrice as RateTable
from genai_prices.types import Tier, TieredPrices

#: Google's storage prices for explicit caches, USD per million tokens per hour, by model family (first
#: match wins; the Gemini API's and Vertex AI's price lists agree).
STORAGE_PER_MILLION_HOURS: tuple[tuple[str, Decimal], ...] = (
    ("gemini-3.1-pro", Decimal("4.50")),
    ("gemini-3-pro", Decimal("4.50")),
    ("gemini-3-flash", Decimal("1.00")),
    ("gemini-2.5-pro", Decimal("4.50")),
    ("gemini-2.5-flash", Decimal("1.00")),  # Flash and Flash-Lite
    ("gemini-2.0-flash", Decimal("1.00")),
)

_SECONDS_PER_HOUR = 3600


def published_storage_price(model: str) -> Decimal | None:
    """Google's storage price for the model's explicit caches (Vertex ids included), or None when not listed."""
    family = model.rsplit("/", 1)[-1]
    return next((price for prefix, price in STORAGE_PER_MILLION_HOURS if family.startswith(prefix)), None)


def write_rate(table: RateTable, storage_per_million_hours: Decimal, ttl_seconds: int) -> Decimal | TieredPrices:
    """The cache-write price, USD per million tokens, of an explicit cache at ``table``'s input prices."""
    storage = storage_per_million_hours * ttl_seconds / _SECONDS_PER_HOUR
    plain: Decimal | TieredPrices | None = getattr(table, "input_mtok", None)
    read: Decimal | TieredPrices | None = getattr(table, "cache_read_mtok", None)
    read = plain if read is None else read
    if plain is None:
        raise ValueError("an explicit cache's write price needs the model's input price")
    if not isinstance(plain, TieredPrices) and not isinstance(read, TieredPrices):
        return plain + _at(read, 0) + storage
    starts = sorted({tier.start for price in (plain, read) if isinstance(price, TieredPrices) for tier in price.tiers})
    return TieredPrices(base=_at(plain, 0) + _at(read, 0) + storage,
                        tiers=[Tier(start=start, price=_at(plain, start + 1) + _at(read, start + 1) + storage)
                               for start in starts])


def _at(price: Decimal | TieredPrices | None, prompt_tokens: int) -> Decimal:
    """The per-million rate of ``price`` for a prompt of ``prompt_tokens`` (a tier applies above its start)."""
    if price is None:
        return Decimal(0)
    if not isinstance(price, TieredPrices):
        return price
    rate = price.base
    for tier in price.tiers:
        if prompt_tokens > tier.start:
            rate = tier.price
    return rate
