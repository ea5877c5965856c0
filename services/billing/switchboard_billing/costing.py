"""What a settled request cost, and the prices of the deployments it may reach.

Prices come from :class:`~switchboard_billing.pricing.PriceCatalog` (genai-prices
plus the deployment's config overrides) for the deployments of the current
:class:`~switchboard_billing.priced_models.ModelCatalog`. A price that cannot be
established is ``None`` and the cost is recorded as unknown, never as zero. The
worst case held before a call is computed from the same prices through the
rate card (``rate_card.py``, ``quote.py``).

A request is charged the deployment's BYOK routing fee only when the caller's
own provider credential carried it (``UsageEvent.byok``, set by the router);
otherwise the model's price, whatever the deployment's ``byok`` setting.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from switchboard.v1 import billing_pb2
from switchboard_billing.priced_models import CatalogSource
from switchboard_billing.pricing import (
    DeploymentPricing,
    ModelPrice,
    PriceCatalog,
    PricingConfigError,
    TokenUsage,
    cache_savings_micros,
    cost_micros,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Charge:
    """What a settled request cost, and what prompt caching saved on it (both micro-dollars)."""

    #: None when the price is unknown (recorded as unknown, never as free).
    cost_micros: int | None
    #: Its cost had its cached and cache-write tokens been plain input, minus its cost (negative when a cache
    #: write was never read back); 0 without cached tokens or a price.
    cache_savings_micros: int = 0


_UNKNOWN = Charge(None)
_FREE = Charge(0)


class Pricer:
    def __init__(self, source: CatalogSource, prices: PriceCatalog | None = None,
                 default_output_tokens: int = 32_768) -> None:
        self.source = source
        self.prices = prices or PriceCatalog()
        #: Output tokens held for a request without max_tokens on a deployment whose output limit is unknown.
        self.default_output_tokens = default_output_tokens
        #: (deployment, byok, minute) → (the deployment's pricing it was computed for, price). A reloaded catalog
        #: or a changed stored model brings new pricing objects, so a repriced deployment misses at once.
        self._cache: dict[tuple[str, str, str, bool, int], tuple[DeploymentPricing, ModelPrice | None]] = {}
        #: (id of a price, token counts) → (that price, charge): traffic repeats few usage shapes, and computing
        #: a cost takes ~15 µs of Decimal arithmetic. The entry holds the price, so that id stays unique.
        self._costs: dict[tuple[int, int, int, int, int, int], tuple[ModelPrice, Charge]] = {}

    def price(self, pricing: DeploymentPricing, *, byok: bool, at: datetime) -> ModelPrice | None:
        """The deployment's price at ``at``; cached per minute (some providers price by time of day)."""
        key = (pricing.deployment_id, pricing.provider, pricing.model, byok, int(at.timestamp()) // 60)
        hit = self._cache.get(key)
        if hit is not None and hit[0] is pricing:
            return hit[1]
        if len(self._cache) > 10_000:
            self._cache.clear()
        price = self.prices.price_for(pricing, byok=byok, at=at)
        self._cache[key] = (pricing, price)
        return price

    def event_cost(self, event: billing_pb2.UsageEvent) -> int | None:
        """The real cost of a settled request in micro-dollars; None when its price is unknown."""
        return self.event_charge(event).cost_micros

    def event_charge(self, event: billing_pb2.UsageEvent) -> Charge:
        """The real cost of a settled request and what prompt caching saved on it, at the same price."""
        at = datetime.fromtimestamp(event.started_at_ms / 1000, UTC) if event.started_at_ms else datetime.now(UTC)
        dep = None
        if event.deployment_id:
            dep = self.source.current().deployment(event.deployment_id, event.upstream_model) \
                or self.source.current(fresh=True).deployment(event.deployment_id, event.upstream_model)
        byok = event.byok
        if dep is not None:
            pricing = dep.pricing
        elif event.provider and event.upstream_model:
            try:
                pricing = DeploymentPricing.from_config({"provider": event.provider, "model": event.upstream_model},
                                                        deployment_id=event.deployment_id)
            except PricingConfigError:
                return _UNKNOWN
        else:
            # Never reached a deployment (refused or failed before routing): nothing was consumed.
            return _FREE if not _consumed(event) else _UNKNOWN
        price = self.price(pricing, byok=byok, at=at)
        if price is None:
            return _UNKNOWN
        u = event.usage
        key = (id(price), u.prompt_tokens, u.completion_tokens, u.cached_prompt_tokens, u.cache_write_tokens,
               u.reasoning_tokens)
        known = self._costs.get(key)
        if known is not None and known[0] is price:
            return known[1]
        try:
            usage = TokenUsage.of(u)
        except ValueError as exc:
            return Charge(cost_micros(price, _plain_usage(event, exc)))
        charge = Charge(cost_micros(price, usage), cache_savings_micros(price, usage))
        if len(self._costs) > 10_000:
            self._costs.clear()
        self._costs[key] = (price, charge)
        return charge

    def unservable_reason(self, public_model: str, at: datetime | None = None) -> str | None:
        """Why a request for the model cannot be served (a candidate has no price and does not allow serving
        unpriced); None when it can."""
        moment = at or datetime.now(UTC)
        for dep in self.source.current().candidates(public_model):
            if not dep.pricing.allow_unpriced and self.price(dep.pricing, byok=False, at=moment) is None:
                return self.prices.unpriced_reason(dep.pricing) or f"deployment {dep.id!r} has no price"
        return None


def _consumed(event: billing_pb2.UsageEvent) -> bool:
    return event.usage.prompt_tokens > 0 or event.usage.completion_tokens > 0


def _plain_usage(event: billing_pb2.UsageEvent, exc: ValueError) -> TokenUsage:
    """Counts that contradict each other: price every token at its plain rate rather than lose the row."""
    log.warning("inconsistent usage counts; pricing plain tokens",
                extra={"request_id": event.request_id, "error": str(exc)})
    u = event.usage
    return TokenUsage(prompt_tokens=max(0, u.prompt_tokens), completion_tokens=max(0, u.completion_tokens))
