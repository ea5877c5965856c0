"""The public catalog: every public model with its deployments' prices, limits and privacy facts."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson

from switchboard.v1 import billing_pb2
from switchboard_billing.costing import Pricer
from switchboard_billing.money import format_decimal
from switchboard_billing.pricing import DeploymentPricing


def public_catalog(pricer: Pricer, at: datetime | None = None) -> billing_pb2.GetCatalogResponse:
    """Every public model with its live deployments, then the configured ones that are not live (``not_live``)."""
    moment = at or datetime.now(UTC)
    models = []
    catalog = pricer.source.current()
    for model in catalog.models.values():
        deployments = []
        live = {dep.id for dep in model.deployments}
        configured = [*model.deployments, *(dep for dep in catalog.by_id.values()
                                            if dep.public_model == model.name and dep.id not in live)]
        for dep in configured:
            price = pricer.price(dep.pricing, byok=False, at=moment)
            fee = dep.pricing.byok_fee
            fee_set = bool(fee.per_million_tokens or fee.per_request_micros)
            reason = "" if price is not None else (pricer.prices.unpriced_reason(dep.pricing) or "")
            deployments.append(billing_pb2.CatalogDeployment(
                deployment_id=dep.id, provider=dep.pricing.provider, upstream_model=dep.pricing.model,
                jurisdiction=dep.jurisdiction, privacy_tier=dep.privacy_tier,
                context_window=dep.context_window or (price.context_window if price else 0)
                or _known_window(pricer, dep.pricing),
                max_output_tokens=dep.max_output_tokens,
                input_per_million=format_decimal(price.input) if price else "",
                output_per_million=format_decimal(price.output) if price else "",
                cached_input_per_million=format_decimal(price.cached_input) if price else "",
                cache_write_per_million=format_decimal(price.cache_write) if price else "",
                tiered=price.tiered if price else False,
                price_source=price.source if price else "",
                byok=dep.byok,
                servable=price is not None or dep.pricing.allow_unpriced,
                unpriced_reason=reason,
                # Published whenever it can be charged: with byok: true, or when the deployment sets a fee.
                byok_fee_per_million=format_decimal(fee.per_million_tokens) if dep.byok or fee_set else "",
                byok_fee_per_request_micros=fee.per_request_micros if dep.byok or fee_set else 0,
                api_base=dep.api_base, stored=dep.stored, weight=dep.weight,
                model_info_json=orjson.dumps(dict(dep.model_info)).decode() if dep.model_info else "",
                not_live=dep.id not in live,
            ))
        servable = pricer.unservable_reason(model.name, moment) is None
        models.append(billing_pb2.CatalogModel(name=model.name, deployments=deployments, fallbacks=model.fallbacks,
                                               servable=servable))
    return billing_pb2.GetCatalogResponse(models=models)


def _known_window(pricer: Pricer, pricing: DeploymentPricing) -> int:
    entry = pricer.prices.catalog_model(pricing.price_provider or pricing.provider,
                                        pricing.price_model or pricing.model)
    return (entry.context_window or 0) if entry is not None else 0
