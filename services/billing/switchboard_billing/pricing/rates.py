"""A deployment's resolved prices and the cost of a request at those prices.

Prices are Decimal USD per million tokens (a cached-input price such as
$0.01875/M is 0.00001875 micro-dollars a token, so integers would not do).
The cost of a request is computed exactly in Decimal by genai-prices' own
calculation, which applies tiered prices (e.g. a higher rate for every token
once a prompt exceeds 200k tokens) and per-request fees, and only the final
total is rounded to integer micro-dollars:

* :func:`cost_micros` — the actual cost, to the nearest micro-dollar, halves up;
* :func:`max_cost_micros` — the worst case before the call, rounded up, so a
  budget reservation never holds less than the request can cost.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from genai_prices.types import ModelPrice as RateTable
from genai_prices.types import TieredPrices, calc_unit_price

from switchboard_billing.money import ceil_micros, usd_to_micros_half_up
from switchboard_billing.pricing.usage import TokenUsage

_MILLION = 1_000_000
#: genai-prices price keys of the token kinds billing distinguishes.
INPUT_KEY, OUTPUT_KEY = "input_mtok", "output_mtok"
CACHE_READ_KEY, CACHE_WRITE_KEY, REASONING_KEY = "cache_read_mtok", "cache_write_mtok", "output_reasoning_mtok"
REQUEST_KEY = "requests_kcount"


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """Prices of one deployment, USD per million tokens.

    ``cached_input``, ``cache_write`` and ``reasoning`` show the price actually
    charged for those tokens: where the provider has no separate price they
    cost the same as ``input`` (or ``output``). For tiered prices the fields
    hold the base tier and ``tiered`` is set; the cost functions apply the tiers.
    """

    input: Decimal
    output: Decimal
    cached_input: Decimal
    cache_write: Decimal
    reasoning: Decimal
    #: Flat fee per request, USD (a few providers charge one; BYOK fees use it).
    per_request: Decimal = Decimal(0)
    tiered: bool = False
    #: "catalog" (genai-prices), "config" (deployment overrides only), "catalog+config" or "byok".
    source: str = "catalog"
    #: The catalog's model id the price was found under; empty when not from the catalog.
    catalog_model: str = ""
    #: Context window in tokens if known, else 0.
    context_window: int = 0
    #: The full genai-prices rate table the cost is computed with; built from the fields above when not given.
    rates: RateTable | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.rates is None:
            table = {INPUT_KEY: self.input, OUTPUT_KEY: self.output}
            if self.cached_input != self.input:
                table[CACHE_READ_KEY] = self.cached_input
            if self.cache_write != self.input:
                table[CACHE_WRITE_KEY] = self.cache_write
            if self.reasoning != self.output:
                table[REASONING_KEY] = self.reasoning
            if self.per_request:
                table[REQUEST_KEY] = self.per_request * 1000
            object.__setattr__(self, "rates", RateTable(**table))

    @property
    def table(self) -> RateTable:
        """The genai-prices rate table (always set after construction)."""
        assert self.rates is not None
        return self.rates

    @classmethod
    def from_rates(
        cls, rates: RateTable, *, source: str, catalog_model: str = "", context_window: int = 0
    ) -> ModelPrice:
        """Summarise a genai-prices rate table; it must price input and output tokens."""
        input_price = _base(rates, INPUT_KEY)
        output_price = _base(rates, OUTPUT_KEY)
        if input_price is None or output_price is None:
            raise ValueError("a model price needs both an input and an output price")
        request_price = _base(rates, REQUEST_KEY)
        return cls(
            input=input_price,
            output=output_price,
            cached_input=_or(_base(rates, CACHE_READ_KEY), input_price),
            cache_write=_or(_base(rates, CACHE_WRITE_KEY), input_price),
            reasoning=_or(_base(rates, REASONING_KEY), output_price),
            per_request=_or(request_price, Decimal(0)) / 1000,
            tiered=any(isinstance(value, TieredPrices) for value in vars(rates).values()),
            source=source,
            catalog_model=catalog_model,
            context_window=context_window,
            rates=rates,
        )

    @classmethod
    def flat(
        cls,
        *,
        input: Decimal,
        output: Decimal,
        cached_input: Decimal | None = None,
        cache_write: Decimal | None = None,
        per_request_micros: int = 0,
        source: str = "config",
    ) -> ModelPrice:
        """A price with no tiers, from per-million figures (missing cache prices cost as input)."""
        table: dict[str, Decimal] = {INPUT_KEY: input, OUTPUT_KEY: output}
        if cached_input is not None:
            table[CACHE_READ_KEY] = cached_input
        if cache_write is not None:
            table[CACHE_WRITE_KEY] = cache_write
        if per_request_micros:
            # requests_kcount is USD per thousand requests: micros * 1000 / 1e6.
            table[REQUEST_KEY] = Decimal(per_request_micros) / 1000
        return cls.from_rates(RateTable(**table), source=source)


def cost_usd(price: ModelPrice, usage: TokenUsage) -> Decimal:
    """Exact cost of ``usage`` at ``price`` in USD, before any rounding.

    Mirrors genai-prices' ``calc_price`` for the token kinds a chat request
    reports (tests hold the two equal across the catalog) and uses its
    ``calc_unit_price`` for each kind, so tiers are applied by genai-prices
    itself; done here without building a genai ``Usage`` because it is about
    ten times faster on the settle path. A token kind without its own price
    is charged as its parent kind (cache reads as input, reasoning as output).
    """
    table = price.table
    cache_read = getattr(table, CACHE_READ_KEY, None)
    cache_write = getattr(table, CACHE_WRITE_KEY, None)
    reasoning = getattr(table, REASONING_KEY, None)
    plain_input = usage.prompt_tokens
    if cache_read is not None:
        plain_input -= usage.cached_prompt_tokens
    if cache_write is not None:
        plain_input -= usage.cache_write_tokens
    plain_output = usage.completion_tokens - (usage.reasoning_tokens if reasoning is not None else 0)
    tier_basis = usage.prompt_tokens
    total = calc_unit_price(getattr(table, INPUT_KEY, None), plain_input, tier_basis, _MILLION)
    total += calc_unit_price(getattr(table, OUTPUT_KEY, None), plain_output, tier_basis, _MILLION)
    total += calc_unit_price(cache_read, usage.cached_prompt_tokens, tier_basis, _MILLION)
    total += calc_unit_price(cache_write, usage.cache_write_tokens, tier_basis, _MILLION)
    total += calc_unit_price(reasoning, usage.reasoning_tokens, tier_basis, _MILLION)
    total += calc_unit_price(getattr(table, REQUEST_KEY, None), 1, tier_basis, 1000)
    return total


def cost_micros(price: ModelPrice | None, usage: TokenUsage) -> int | None:
    """Cost of a finished request in micro-dollars, to the nearest micro (halves up).

    ``None`` when the price is unknown: the request is recorded with an unknown
    cost, never as free.
    """
    if price is None:
        return None
    return usd_to_micros_half_up(cost_usd(price, usage))


def cache_savings_micros(price: ModelPrice | None, usage: TokenUsage) -> int:
    """What prompt caching saved on a finished request, micro-dollars (to the nearest, halves away from zero):
    its cost had every cached and cache-write token been plain input, minus its cost. Negative when writing the
    cache cost more than reading it saved (a prefix written and never read again); 0 without cached tokens or
    without a price.

    Both costs are exact (tiers included, on the same prompt size) and only their difference is rounded, so
    savings summed over many requests are not off by a micro-dollar per request.
    """
    if price is None or not (usage.cached_prompt_tokens or usage.cache_write_tokens):
        return 0
    uncached = TokenUsage(prompt_tokens=usage.prompt_tokens, completion_tokens=usage.completion_tokens,
                          reasoning_tokens=usage.reasoning_tokens)
    return usd_to_micros_half_up(cost_usd(price, uncached) - cost_usd(price, usage))


def max_cost_micros(price: ModelPrice, prompt_tokens_estimate: int, max_output_tokens: int) -> int:
    """The most a request can cost, rounded up to the micro: what a budget reservation holds.

    Assumes every prompt token falls in the dearest input kind (plain, cache
    read or cache write, at the tier the prompt size selects) and every output
    token in the dearest output kind (plain or reasoning), plus any per-request fee.
    """
    if prompt_tokens_estimate < 0 or max_output_tokens < 0:
        raise ValueError("token estimates must be 0 or more")
    input_key = _dearest(price.table, (INPUT_KEY, CACHE_READ_KEY, CACHE_WRITE_KEY), prompt_tokens_estimate)
    output_key = _dearest(price.table, (OUTPUT_KEY, REASONING_KEY), prompt_tokens_estimate)
    worst = TokenUsage(
        prompt_tokens=prompt_tokens_estimate,
        completion_tokens=max_output_tokens,
        cached_prompt_tokens=prompt_tokens_estimate if input_key == CACHE_READ_KEY else 0,
        cache_write_tokens=prompt_tokens_estimate if input_key == CACHE_WRITE_KEY else 0,
        reasoning_tokens=max_output_tokens if output_key == REASONING_KEY else 0,
    )
    return ceil_micros(cost_usd(price, worst))


def _dearest(rates: RateTable, keys: tuple[str, ...], prompt_tokens: int) -> str:
    """Of ``keys`` that the table prices, the one with the highest rate at this prompt size (first wins ties)."""
    best_key, best_rate = keys[0], Decimal(-1)
    for key in keys:
        value = getattr(rates, key, None)
        if value is None:
            continue
        rate = calc_unit_price(value, _MILLION, prompt_tokens, _MILLION)
        if rate > best_rate:
            best_key, best_rate = key, rate
    return best_key


def _or(value: Decimal | None, default: Decimal) -> Decimal:
    return default if value is None else value


def _base(rates: RateTable, key: str) -> Decimal | None:
    value = getattr(rates, key, None)
    if isinstance(value, TieredPrices):
        return value.base
    return value
