"""Billing's view of the gateway's model catalog (SWITCHBOARD_CONFIG): its deployments with their prices.

Billing prices deployments itself, from the same file the router serves,
instead of trusting a caller to pass prices along: one file decides, and a
price cannot be changed by whoever calls Reserve/Settle. The file is read by
the shared reader (:mod:`switchboard_rules.catalog`: names, fallbacks, ids,
limits, which deployments are live); billing adds each deployment's pricing
keys (see ``pricing/config.py``).

The file is re-read when its modification time changes (checked at most every
few seconds), so a config edit reprices new requests without a restart.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from switchboard_billing.pricing import DeploymentPricing, PricingConfigError
from switchboard_rules.catalog import CatalogError, CatalogFile, load_catalog_file, parse_catalog_file

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PricedDeployment:
    """One deployment, as billing needs it."""

    id: str
    public_model: str
    pricing: DeploymentPricing
    jurisdiction: str = ""
    privacy_tier: str = "standard"
    context_window: int = 0
    max_output_tokens: int = 0
    #: The deployment accepts callers' own provider keys; the public catalog shows its BYOK fee next to its price.
    byok: bool = False


@dataclass(frozen=True, slots=True)
class PublicModel:
    name: str
    deployments: tuple[PricedDeployment, ...]
    fallbacks: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ModelCatalog:
    """The public models and their deployments, by name and by deployment id."""

    models: dict[str, PublicModel] = field(default_factory=dict)
    #: Deployment id → deployment, live or not (settlement looks every event up here).
    by_id: dict[str, PricedDeployment] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for model in self.models.values():
            for dep in model.deployments:
                self.by_id.setdefault(dep.id, dep)

    def deployment(self, deployment_id: str) -> PricedDeployment | None:
        return self.by_id.get(deployment_id)

    def candidates(self, public_model: str) -> list[PricedDeployment]:
        """Every live deployment a request for ``public_model`` may end up on: its own, then its fallbacks',
        transitively."""
        seen: set[str] = set()
        order: list[PricedDeployment] = []
        pending = [public_model]
        while pending:
            name = pending.pop(0)
            if name in seen or name not in self.models:
                continue
            seen.add(name)
            model = self.models[name]
            order.extend(model.deployments)
            pending.extend(model.fallbacks)
        return order


def parse_models(raw: Any, source: str = "config") -> ModelCatalog:
    """The priced view of a parsed config mapping (tests and reloads)."""
    return priced(parse_catalog_file(raw, source))


def load_models(path: Path) -> ModelCatalog:
    return priced(load_catalog_file(path))


def priced(file: CatalogFile) -> ModelCatalog:
    """Every deployment of the checked file with its pricing settings (a price key that is wrong is an error
    naming its place); requests are held against live deployments only, as the router serves only those."""
    models: dict[str, PublicModel] = {}
    by_id: dict[str, PricedDeployment] = {}
    for name, spec in file.models.items():
        live = []
        for dep in spec.deployments:
            try:
                pricing = DeploymentPricing.from_config(dep.config, deployment_id=dep.id)
            except PricingConfigError as exc:
                raise CatalogError(f"{dep.where}: {exc}") from None
            priced_dep = PricedDeployment(
                id=dep.id, public_model=name, pricing=pricing, jurisdiction=dep.jurisdiction,
                privacy_tier=dep.privacy_tier, context_window=dep.context_window,
                max_output_tokens=dep.max_output_tokens, byok=dep.byok)
            by_id[dep.id] = priced_dep
            if dep.live:
                live.append(priced_dep)
        models[name] = PublicModel(name, tuple(live), spec.fallbacks)
    return ModelCatalog(models, by_id)


class CatalogSource:
    """The current catalog, reloaded when the file changes; a broken edit keeps the last good one."""

    def __init__(self, path: Path | None, check_every_seconds: float = 2.0) -> None:
        self.path = path
        self.check_every = check_every_seconds
        self._catalog = ModelCatalog()
        self._mtime = -1.0
        self._checked = 0.0
        if path is not None:
            self._catalog = load_models(path)
            self._mtime = path.stat().st_mtime

    @classmethod
    def of(cls, catalog: ModelCatalog) -> CatalogSource:
        source = cls(None)
        source._catalog = catalog
        return source

    def current(self) -> ModelCatalog:
        now = time.monotonic()
        if self.path is not None and now - self._checked >= self.check_every:
            self._checked = now
            try:
                mtime = self.path.stat().st_mtime
                if mtime != self._mtime:
                    self._catalog = load_models(self.path)
                    self._mtime = mtime
                    log.info("model catalog reloaded", extra={"path": str(self.path)})
            except (OSError, CatalogError) as exc:
                log.error("model catalog not reloaded; keeping the last good one", extra={"error": str(exc)})
        return self._catalog
