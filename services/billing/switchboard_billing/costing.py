"""What requests cost: the worst case before the call (for reservations) and the real cost after it.

Prices come from :class:`~switchboard_billing.pricing.PriceCatalog` (genai-prices
plus the deployment's config overrides) for the deployments of the current
:class:`~switchboard_billing.deployments.ModelCatalog`. A price that cannot be
established is ``None`` and the cost is recorded as unknown, never as zero.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from switchboard.v1 import billing_pb2
from switchboard_billing.deployments import CatalogSource, PricedDeployment
from switchboard_billing.pricing import (
    DeploymentPricing,
    ModelPrice,
    PriceCatalog,
    PricingConfigError,
    TokenUsage,
    cost_micros,
    max_cost_micros,
)

log = logging.getLogger(__name__)


class UnservableModelError(LookupError):
    """A deployment of the model has no known price and its config does not allow serving it unpriced."""


@dataclass(frozen=True, slots=True)
class WorstCase:
    """The most a request can cost, over every deployment it may be served by."""

    #: Micro-dollars, rounded up; 0 when unpriced.
    micros: int
    #: False when some candidate deployment is unpriced (allowed): the cost cannot be bounded.
    priced: bool


class Pricer:
    def __init__(self, source: CatalogSource, prices: PriceCatalog | None = None,
                 default_output_tokens: int = 32_768) -> None:
        self.source = source
        self.prices = prices or PriceCatalog()
        self.default_output_tokens = default_output_tokens
        self._cache: dict[tuple[str, str, str, bool, int], ModelPrice | None] = {}
        #: (id of a price, token counts) → (that price, cost): traffic repeats few usage shapes, and computing
        #: a cost takes ~15 µs of Decimal arithmetic. The entry holds the price, so that id stays unique.
        self._costs: dict[tuple[int, int, int, int, int, int], tuple[ModelPrice, int | None]] = {}

    def price(self, pricing: DeploymentPricing, *, byok: bool, at: datetime) -> ModelPrice | None:
        """The deployment's price at ``at``; cached per minute (some providers price by time of day)."""
        key = (pricing.deployment_id, pricing.provider, pricing.model, byok, int(at.timestamp()) // 60)
        if key not in self._cache:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[key] = self.prices.price_for(pricing, byok=byok, at=at)
        return self._cache[key]

    def event_cost(self, event: billing_pb2.UsageEvent) -> int | None:
        """The real cost of a settled request in micro-dollars; None when its price is unknown."""
        at = datetime.fromtimestamp(event.started_at_ms / 1000, UTC) if event.started_at_ms else datetime.now(UTC)
        dep = self.source.current().deployment(event.deployment_id) if event.deployment_id else None
        if dep is not None:
            pricing, byok = dep.pricing, dep.byok or event.byok
        elif event.provider and event.upstream_model:
            try:
                pricing = DeploymentPricing.from_config({"provider": event.provider, "model": event.upstream_model},
                                                        deployment_id=event.deployment_id)
            except PricingConfigError:
                return None
            byok = event.byok
        else:
            # Never reached a deployment (refused or failed before routing): nothing was consumed.
            return 0 if not _consumed(event) else None
        price = self.price(pricing, byok=byok, at=at)
        if price is None:
            return None
        u = event.usage
        key = (id(price), u.prompt_tokens, u.completion_tokens, u.cached_prompt_tokens, u.cache_write_tokens,
               u.reasoning_tokens)
        known = self._costs.get(key)
        if known is not None and known[0] is price:
            return known[1]
        try:
            usage = TokenUsage.of(u)
        except ValueError as exc:
            return cost_micros(price, _plain_usage(event, exc))
        cost = cost_micros(price, usage)
        if len(self._costs) > 10_000:
            self._costs.clear()
        self._costs[key] = (price, cost)
        return cost

    def worst_case(self, public_model: str, prompt_tokens_bound: int, max_output_tokens: int, *,
                   byok: bool = False, at: datetime | None = None) -> WorstCase:
        """The dearest outcome of a request for ``public_model`` over its deployments and fallbacks.

        Raises :class:`UnservableModelError` when a candidate deployment is
        unpriced and not allowed to serve unpriced. An unknown public model
        holds nothing: the router refuses it before any provider is called.
        """
        moment = at or datetime.now(UTC)
        worst, priced = 0, True
        for dep in self.source.current().candidates(public_model):
            price = self.price(dep.pricing, byok=byok or dep.byok, at=moment)
            if price is None:
                if not dep.pricing.allow_unpriced:
                    reason = self.prices.unpriced_reason(dep.pricing) or f"deployment {dep.id!r} has no price"
                    raise UnservableModelError(reason)
                priced = False
                continue
            out = self.output_bound(dep, price, max_output_tokens)
            worst = max(worst, max_cost_micros(price, prompt_tokens_bound, out))
        return WorstCase(worst, priced)

    def output_bound(self, dep: PricedDeployment, price: ModelPrice, max_output_tokens: int) -> int:
        """max_tokens when given (never above the deployment's limit), else the deployment's output limit,
        else its context window, else the configured default."""
        limit = dep.max_output_tokens
        if max_output_tokens > 0:
            return min(max_output_tokens, limit) if limit else max_output_tokens
        return limit or dep.context_window or price.context_window or self.default_output_tokens


def _consumed(event: billing_pb2.UsageEvent) -> bool:
    return event.usage.prompt_tokens > 0 or event.usage.completion_tokens > 0


def _plain_usage(event: billing_pb2.UsageEvent, exc: ValueError) -> TokenUsage:
    """Counts that contradict each other: price every token at its plain rate rather than lose the row."""
    log.warning("inconsistent usage counts; pricing plain tokens",
                extra={"request_id": event.request_id, "error": str(exc)})
    u = event.usage
    return TokenUsage(prompt_tokens=max(0, u.prompt_tokens), completion_tokens=max(0, u.completion_tokens))
