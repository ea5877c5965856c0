"""Where a deployment's price comes from: the public genai-prices data, then the deployment's own config.

:class:`PriceCatalog` maps our provider names to genai-prices' providers, finds
the upstream model with genai-prices' own matching (dated ids, Bedrock region
prefixes, Azure falling back to OpenAI's list, ...), resolves the prices valid
at the request's time (some change by date or time of day) and lays the
deployment's overrides on top. A price it cannot establish is ``None``, and
whether such a deployment may serve traffic is the deployment's
``allow_unpriced`` decision, checked by :meth:`PriceCatalog.is_servable`.
"""

from __future__ import annotations

from collections.abc import Mapping
from copy import copy
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from genai_prices import data_snapshot
from genai_prices.types import ModelInfo
from genai_prices.types import ModelPrice as RateTable

from switchboard_billing.money import format_decimal
from switchboard_billing.pricing.config import OVERRIDE_KEYS, STORAGE_KEY, DeploymentPricing
from switchboard_billing.pricing.context_cache import published_storage_price, write_rate
from switchboard_billing.pricing.rates import (
    CACHE_READ_KEY,
    CACHE_WRITE_KEY,
    INPUT_KEY,
    OUTPUT_KEY,
    ModelPrice,
)

#: Our provider names → genai-prices provider ids. ``None``: no public price list (self-hosted or
#: arbitrary endpoints); such deployments are priced by config or by ``price_provider``/``price_model``.
PROVIDER_IDS: dict[str, str | None] = {
    "openai": "openai",
    "azure": "azure",
    "anthropic": "anthropic",
    "gemini": "google",
    "vertex": "google",
    "bedrock": "aws",
    "mistral": "mistral",
    "groq": "groq",
    "deepseek": "deepseek",
    "together": "together",
    "openrouter": "openrouter",
    "xai": "x-ai",
    "fireworks": "fireworks",
    "cohere": "cohere",
    "perplexity": "perplexity",
    "cerebras": "cerebras",
    "ollama": None,
    "vllm": None,
    "openai_compatible": None,
}
_RATE_KEYS = {"input": INPUT_KEY, "output": OUTPUT_KEY, "cached_input": CACHE_READ_KEY, "cache_write": CACHE_WRITE_KEY}


class UnpricedModelError(LookupError):
    """A deployment without a known price that is not allowed to serve unpriced; the message says what to set."""


@dataclass(frozen=True, slots=True)
class CatalogRow:
    """One model as the public catalog shows it: prices as USD-per-million decimal strings ("" when unknown)."""

    provider: str
    model: str
    input_per_million: str
    output_per_million: str
    cached_input_per_million: str
    cache_write_per_million: str
    #: Prices rise above a prompt size; the strings show the base tier.
    tiered: bool
    #: Tokens; 0 when unknown.
    context_window: int
    #: Tokens; 0 when unknown (genai-prices does not record output limits, so only config sets it).
    max_output_tokens: int
    #: Where the price came from ("catalog", "config", "catalog+config"); "" when unpriced.
    price_source: str


class PriceCatalog:
    """Prices for deployments, from genai-prices' bundled data (or a snapshot given for tests or updates)."""

    def __init__(self, snapshot: data_snapshot.DataSnapshot | None = None) -> None:
        self._snapshot = snapshot
        self._models: dict[tuple[str, str], ModelInfo | None] = {}

    def catalog_model(self, provider: str, model: str) -> ModelInfo | None:
        """The genai-prices model entry for our provider name and upstream model id, or None."""
        key = (provider, model)
        if key not in self._models:
            self._models[key] = self._find(provider, model)
        return self._models[key]

    def price_for(
        self, deployment: DeploymentPricing | Mapping[str, Any], *, byok: bool = False, at: datetime | None = None
    ) -> ModelPrice | None:
        """The deployment's price at ``at`` (default now), or None when it cannot be established.

        With ``byok=True`` (the caller used their own provider key) the price is
        the deployment's BYOK routing fee instead of the model's price: the same
        rate for every token kind plus a per-request fee, zero when none is set.
        """
        config = _pricing(deployment)
        if byok:
            fee = config.byok_fee
            return ModelPrice.flat(
                input=fee.per_million_tokens,
                output=fee.per_million_tokens,
                per_request_micros=fee.per_request_micros,
                source="byok",
            )
        entry = self.catalog_model(config.price_provider or config.provider, config.price_model or config.model)
        if entry is None:
            return self._config_only_price(config)
        moment = at or datetime.now(UTC)
        table = copy(entry.get_prices(moment))
        for name, value in config.overrides.items():
            setattr(table, _RATE_KEYS[name], value)
        if getattr(table, INPUT_KEY, None) is None or getattr(table, OUTPUT_KEY, None) is None:
            return None
        if not _price_explicit_cache(table, config):
            return None
        return ModelPrice.from_rates(
            table,
            source="catalog+config" if config.overrides else "catalog",
            catalog_model=entry.id,
            context_window=entry.context_window or 0,
        )

    def unpriced_reason(self, deployment: DeploymentPricing | Mapping[str, Any]) -> str | None:
        """Why the deployment has no price and which config keys would give it one; None when it is priced."""
        config = _pricing(deployment)
        if self.price_for(config) is not None:
            return None
        lookup_provider = config.price_provider or config.provider
        lookup_model = config.price_model or config.model
        entry = self.catalog_model(lookup_provider, lookup_model)
        if _storage_price(config) is None and self.price_for(replace(config, explicit_cache_ttl=None)) is not None:
            return (
                f"deployment {config.deployment_id!r} (model {config.model!r}): prompt_cache: explicit makes "
                f"context caches whose storage Google bills by the hour, and the gateway knows no storage price for "
                f"{lookup_model!r}; set {STORAGE_KEY} (USD per million tokens per hour) on the deployment"
            )
        if entry is None:
            missing = [OVERRIDE_KEYS[name] for name in ("input", "output") if name not in config.overrides]
            snapshot = self._snapshot or data_snapshot.get_snapshot()
            if _price_list_id(lookup_provider, snapshot) is None:
                where = f"provider {lookup_provider!r} has no public price list"
            else:
                where = f"the price list has no model {lookup_model!r} for provider {lookup_provider!r}"
        else:
            current = entry.get_prices(datetime.now(UTC))
            missing = [
                OVERRIDE_KEYS[name]
                for name in ("input", "output")
                if name not in config.overrides and getattr(current, _RATE_KEYS[name], None) is None
            ]
            where = f"the price list has no {' or '.join(k.split('_')[0] for k in missing)} price for {entry.id!r}"
        return (
            f"deployment {config.deployment_id!r} (model {config.model!r}): {where}; set "
            f"{' and '.join(missing)} (USD per million tokens) on the deployment, or allow_unpriced: true "
            "to serve it with its cost recorded as unknown"
        )

    def is_servable(self, deployment: DeploymentPricing | Mapping[str, Any]) -> bool:
        """True when the deployment has a price or explicitly allows serving without one."""
        config = _pricing(deployment)
        return config.allow_unpriced or self.price_for(config) is not None

    def require_servable(self, deployment: DeploymentPricing | Mapping[str, Any]) -> None:
        """Raise :class:`UnpricedModelError` (with :meth:`unpriced_reason`) unless :meth:`is_servable`."""
        config = _pricing(deployment)
        if not config.allow_unpriced and (reason := self.unpriced_reason(config)) is not None:
            raise UnpricedModelError(reason)

    def catalog_row(
        self,
        deployment: DeploymentPricing | Mapping[str, Any],
        *,
        context_window: int = 0,
        max_output_tokens: int = 0,
        at: datetime | None = None,
    ) -> CatalogRow:
        """The public catalog's view of a deployment; configured limits (non-zero) win over the price list's."""
        config = _pricing(deployment)
        price = self.price_for(config, at=at)
        entry = self.catalog_model(config.price_provider or config.provider, config.price_model or config.model)
        known_window = (entry.context_window or 0) if entry is not None else 0
        return CatalogRow(
            provider=config.provider,
            model=config.model,
            input_per_million=_text(price.input if price else None),
            output_per_million=_text(price.output if price else None),
            cached_input_per_million=_text(price.cached_input if price else None),
            cache_write_per_million=_text(price.cache_write if price else None),
            tiered=price.tiered if price else False,
            context_window=context_window or known_window,
            max_output_tokens=max_output_tokens,
            price_source=price.source if price else "",
        )

    def _find(self, provider: str, model: str) -> ModelInfo | None:
        snapshot = self._snapshot or data_snapshot.get_snapshot()
        provider_id = _price_list_id(provider, snapshot)
        if provider_id is None:
            return None
        try:
            return snapshot.find_provider_model(_model_ref(model), None, provider_id, None)[1]
        except LookupError:
            return None

    @staticmethod
    def _config_only_price(config: DeploymentPricing) -> ModelPrice | None:
        overrides = config.overrides
        if "input" not in overrides or "output" not in overrides:
            return None
        price = ModelPrice.flat(
            input=overrides["input"],
            output=overrides["output"],
            cached_input=overrides.get("cached_input"),
            cache_write=overrides.get("cache_write"),
            source="config",
        )
        if config.explicit_cache_ttl is None or "cache_write" in overrides:
            return price
        table = copy(price.table)
        if not _price_explicit_cache(table, config):
            return None
        return ModelPrice.from_rates(table, source="config")


def _storage_price(config: DeploymentPricing) -> Decimal | None:
    """What the deployment's explicit caches cost to store, USD per million tokens per hour (0 without any)."""
    if config.explicit_cache_ttl is None:
        return Decimal(0)
    if config.cache_storage_per_million_hours is not None:
        return config.cache_storage_per_million_hours
    return published_storage_price(config.price_model or config.model)


def _price_explicit_cache(table: RateTable, config: DeploymentPricing) -> bool:
    """Sets the cache-write price of a deployment that makes explicit caches (unless configured); False when the
    storage price that it needs is unknown."""
    if config.explicit_cache_ttl is None or "cache_write" in config.overrides:
        return True
    storage = _storage_price(config)
    if storage is None:
        return False
    setattr(table, CACHE_WRITE_KEY, write_rate(table, storage, config.explicit_cache_ttl))
    return True


def _price_list_id(provider: str, snapshot: data_snapshot.DataSnapshot) -> str | None:
    """genai-prices' id for one of our provider names, or a genai-prices id given as is (``price_provider``).

    Exact names only: genai-prices' own fuzzy provider matching would price a
    provider called "my-openai-proxy" as OpenAI.
    """
    name = provider.strip().lower()
    if name in PROVIDER_IDS:
        return PROVIDER_IDS[name]
    return name if any(known.id == name for known in snapshot.providers) else None


def _model_ref(model: str) -> str:
    """The part of an upstream model id the price list matches on.

    Gemini's REST form ``models/gemini-2.0-flash`` drops its prefix; a Bedrock
    inference-profile ARN (``arn:aws:bedrock:...:inference-profile/us.anthropic...``)
    keeps the profile id after the last slash.
    """
    if model.startswith("arn:"):
        return model.rsplit("/", 1)[-1]
    return model.removeprefix("models/")


def _pricing(deployment: DeploymentPricing | Mapping[str, Any]) -> DeploymentPricing:
    return deployment if isinstance(deployment, DeploymentPricing) else DeploymentPricing.from_config(deployment)


def _text(value: Decimal | None) -> str:
    return "" if value is None else format_decimal(value)
