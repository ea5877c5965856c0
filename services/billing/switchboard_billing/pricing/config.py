"""The pricing part of a deployment's configuration, read and checked once at load time.

A deployment in the gateway's YAML may carry these keys next to ``provider``
and ``model`` (or inside its ``extra`` mapping):

``input_cost_per_million`` / ``output_cost_per_million`` / ``cached_input_cost_per_million`` /
``cache_write_cost_per_million``
    USD per million tokens; each replaces just that price from the public
    catalog (or prices a model the catalog does not know). Strings or numbers;
    YAML's ``0.15`` is read as exactly 0.15.
``byok_fee_per_million`` / ``byok_fee_per_request_micros``
    What a caller using their own provider key pays the gateway instead of the
    model price: USD per million tokens (prompt + completion) and/or a flat fee
    per request in micro-dollars. Unset means no fee.
``allow_unpriced``
    Serve this deployment even though its price is unknown; its requests are
    recorded with an unknown cost, not a zero one.
``price_provider`` / ``price_model``
    Look the price up as this provider/model instead (an Azure deployment
    name, a self-hosted copy of a public model).
``prompt_cache: explicit`` / ``prompt_cache_ttl`` / ``cache_storage_cost_per_million_hours``
    The gateway makes Gemini context caches for this deployment, living
    ``prompt_cache_ttl`` seconds; their storage costs Google's published price
    (:mod:`switchboard_billing.pricing.context_cache`) unless this USD per million
    tokens per hour replaces it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from switchboard_billing.money import MoneyError, to_decimal
from switchboard_rules.prompt_cache import explicit_cache_ttl

#: Config keys of the per-million token price overrides, by the price they replace.
OVERRIDE_KEYS: dict[str, str] = {
    "input": "input_cost_per_million",
    "output": "output_cost_per_million",
    "cached_input": "cached_input_cost_per_million",
    "cache_write": "cache_write_cost_per_million",
}
#: Config key of the explicit cache storage price.
STORAGE_KEY = "cache_storage_cost_per_million_hours"
_MAX_PER_MILLION = Decimal(1_000_000)  # USD per million tokens; far above any real price, catches unit mistakes


class PricingConfigError(ValueError):
    """A deployment's pricing settings are invalid; the message names the deployment and key."""


@dataclass(frozen=True, slots=True)
class ByokFee:
    """The gateway's routing fee when the caller brings their own provider key."""

    per_million_tokens: Decimal = Decimal(0)
    per_request_micros: int = 0


@dataclass(frozen=True, slots=True)
class DeploymentPricing:
    """Everything billing needs to price one deployment's requests."""

    #: Deployment id, for messages.
    deployment_id: str
    #: Provider name as in the gateway config ("openai", "bedrock", "vllm", ...).
    provider: str
    #: The provider's own model id.
    model: str
    #: Price overrides, USD per million tokens, keyed "input", "output", "cached_input", "cache_write".
    overrides: Mapping[str, Decimal] = field(default_factory=dict)
    byok_fee: ByokFee = ByokFee()
    allow_unpriced: bool = False
    #: Look the price up under this provider/model instead of ``provider``/``model``.
    price_provider: str = ""
    price_model: str = ""
    #: The lifetime, seconds, of the explicit caches the gateway makes for this deployment; None: it makes none.
    explicit_cache_ttl: int | None = None
    #: USD per million tokens per hour of explicit cache storage, replacing the published price.
    cache_storage_per_million_hours: Decimal | None = None

    @classmethod
    def from_deployment(cls, deployment: Any) -> DeploymentPricing:
        """Read an object with ``id``, ``provider``, ``model`` and ``extra`` attributes (the router's Deployment)."""
        return cls.from_config(
            {
                "id": getattr(deployment, "id", ""),
                "provider": deployment.provider,
                "model": deployment.model,
                "extra": getattr(deployment, "extra", None) or {},
            }
        )

    @classmethod
    def from_config(cls, config: Mapping[str, Any], *, deployment_id: str = "") -> DeploymentPricing:
        """Read a deployment's config mapping (its ``extra`` mapping is read too; top-level keys win)."""
        extra = config.get("extra")
        merged: dict[str, Any] = dict(extra) if isinstance(extra, Mapping) else {}
        merged.update({k: v for k, v in config.items() if k != "extra"})
        ident = (
            deployment_id or str(merged.get("id") or "") or f"{merged.get('provider', '?')}/{merged.get('model', '?')}"
        )
        provider = merged.get("provider")
        model = merged.get("model")
        if not isinstance(provider, str) or not provider:
            raise PricingConfigError(f"deployment {ident!r}: 'provider' must be set")
        if not isinstance(model, str) or not model:
            raise PricingConfigError(f"deployment {ident!r}: 'model' must be set")

        overrides = {}
        for price, key in OVERRIDE_KEYS.items():
            if merged.get(key) is not None:
                overrides[price] = _per_million(merged[key], ident, key)
        byok_fee = ByokFee(
            per_million_tokens=(
                _per_million(merged["byok_fee_per_million"], ident, "byok_fee_per_million")
                if merged.get("byok_fee_per_million") is not None
                else Decimal(0)
            ),
            per_request_micros=_whole_micros(merged.get("byok_fee_per_request_micros"), ident),
        )
        allow_unpriced = merged.get("allow_unpriced", False)
        if not isinstance(allow_unpriced, bool):
            raise PricingConfigError(
                f"deployment {ident!r}: allow_unpriced must be true or false, got {allow_unpriced!r}"
            )
        return cls(
            deployment_id=ident,
            provider=provider,
            model=model,
            overrides=overrides,
            byok_fee=byok_fee,
            allow_unpriced=allow_unpriced,
            price_provider=_text(merged.get("price_provider"), ident, "price_provider"),
            price_model=_text(merged.get("price_model"), ident, "price_model"),
            explicit_cache_ttl=explicit_cache_ttl(merged),
            cache_storage_per_million_hours=(
                _per_million(merged[STORAGE_KEY], ident, STORAGE_KEY) if merged.get(STORAGE_KEY) is not None
                else None
            ),
        )


def _per_million(value: Any, ident: str, key: str) -> Decimal:
    try:
        number = to_decimal(value, what=key)
    except MoneyError as exc:
        raise PricingConfigError(f'deployment {ident!r}: {exc}; write USD per million tokens, e.g. "0.15"') from None
    if number < 0:
        raise PricingConfigError(f"deployment {ident!r}: {key} is negative ({value!r}); prices must be 0 or more")
    if number > _MAX_PER_MILLION:
        raise PricingConfigError(
            f"deployment {ident!r}: {key} = {value!r} USD per million tokens is implausibly large; "
            "the unit is USD per MILLION tokens"
        )
    return number


def _whole_micros(value: Any, ident: str) -> int:
    key = "byok_fee_per_request_micros"
    if value is None:
        return 0
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise PricingConfigError(
            f"deployment {ident!r}: {key} must be a whole number of micro-dollars, 0 or more "
            f"(1000 = $0.001), got {value!r}"
        )
    return value


def _text(value: Any, ident: str, key: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise PricingConfigError(f"deployment {ident!r}: {key} must be text, got {value!r}")
    return value.strip()
