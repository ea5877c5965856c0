"""Billing's view of the gateway's model catalog (SWITCHBOARD_CONFIG): its deployments with their prices.

Billing prices deployments itself, from the same file the router serves,
instead of trusting a caller to pass prices along: one file decides, and a
price cannot be changed by whoever calls Reserve/Settle. The file is read by
the shared reader (:mod:`switchboard_rules.catalog`: names, fallbacks, ids,
limits, which deployments are live); billing adds each deployment's pricing
keys (see ``pricing/config.py``).

The file is re-read when its modification time changes (checked at most every
few seconds), so a config edit reprices new requests without a restart. Models
added at run time (:mod:`switchboard_billing.model_store`) join the file's the
moment their store changes.

A wildcard entry (``openai/*``) prices each name it serves as that model: its
deployments' ``*`` filled in, the model's own price and limits
(:meth:`ModelCatalog.resolve`).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from switchboard_billing.pricing import DeploymentPricing, PricingConfigError
from switchboard_rules.catalog import (
    CatalogError,
    CatalogFile,
    Stored,
    load_catalog_file,
    parse_catalog_file,
    read_document,
    with_what_fits,
)
from switchboard_rules.catalog.wildcards import fill, is_pattern, resolve
from switchboard_rules.model_limits import limits_for
from switchboard_rules.model_names import split_thinking_suffix

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
    #: What the admin API's /model/info shows: where it is called, its weight, its free-form model_info, and
    #: whether it was added at run time.
    api_base: str = ""
    weight: float = 0.0
    model_info: Mapping[str, Any] = field(default_factory=dict)
    stored: bool = False

    def serving(self, name: str, captures: tuple[str, ...]) -> PricedDeployment:
        """This deployment of a wildcard entry as it serves ``name``: the model (and price model) its ``*``
        resolve to, with that model's limits."""
        pricing = dataclasses.replace(self.pricing, model=fill(self.pricing.model, captures),
                                      price_model=fill(self.pricing.price_model, captures))
        known = limits_for(pricing.price_provider or pricing.provider, pricing.price_model or pricing.model)
        return dataclasses.replace(self, public_model=name, pricing=pricing,
                                   context_window=self.context_window or known.context_window,
                                   max_output_tokens=self.max_output_tokens or known.max_output_tokens)


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

    def deployment(self, deployment_id: str, upstream_model: str = "") -> PricedDeployment | None:
        """The deployment of that id; a wildcard one as it served ``upstream_model`` (the router's record)."""
        dep = self.by_id.get(deployment_id)
        if dep is not None and upstream_model and is_pattern(dep.pricing.model):
            return dataclasses.replace(dep, pricing=dataclasses.replace(dep.pricing, model=upstream_model))
        return dep

    def resolve(self, public_model: str) -> PublicModel | None:
        """The model that serves ``public_model``: its own entry, else the most specific wildcard entry that
        matches, its deployments as they serve that name; a reasoning variant (``<model>-thinking``, which the
        router serves as its base model) resolves as its base model."""
        model = self._resolve(public_model)
        if model is not None:
            return model
        base, variant = split_thinking_suffix(public_model, lambda name: self._resolve(name) is not None)
        return self._resolve(base) if variant else None

    def _resolve(self, public_model: str) -> PublicModel | None:
        model = self.models.get(public_model)
        if model is not None or is_pattern(public_model):
            return model
        found = resolve((name for name in self.models if is_pattern(name)), public_model)
        if found is None:
            return None
        pattern, captures = found
        entry = self.models[pattern]
        return PublicModel(public_model, tuple(d.serving(public_model, captures) for d in entry.deployments),
                           entry.fallbacks)

    def candidates(self, public_model: str) -> list[PricedDeployment]:
        """Every live deployment a request for ``public_model`` may end up on: its own, then its fallbacks',
        transitively."""
        seen: set[str] = set()
        order: list[PricedDeployment] = []
        first = self.resolve(public_model)
        pending = [first] if first is not None else []
        while pending:
            model = pending.pop(0)
            if model.name in seen:
                continue
            seen.add(model.name)
            order.extend(model.deployments)
            pending.extend(self.models[name] for name in model.fallbacks if name in self.models)
        return order


def parse_models(raw: Any, source: str = "config", stored: Sequence[Stored] = ()) -> ModelCatalog:
    """The priced view of a parsed config mapping (tests and reloads), with deployments added at run time."""
    return priced(parse_catalog_file(raw, source, stored=stored), {dep.get("id") for _, dep in stored})


def load_models(path: Path) -> ModelCatalog:
    return priced(load_catalog_file(path))


def priced(file: CatalogFile, stored_ids: set[Any] | None = None) -> ModelCatalog:
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
            info = dep.config.get("model_info")
            priced_dep = PricedDeployment(
                id=dep.id, public_model=name, pricing=pricing, jurisdiction=dep.jurisdiction,
                privacy_tier=dep.privacy_tier, context_window=dep.context_window,
                max_output_tokens=dep.max_output_tokens, byok=dep.byok,
                api_base=str(dep.config.get("api_base") or ""), weight=_weight(dep.config.get("weight")),
                model_info=dict(info) if isinstance(info, Mapping) else {}, stored=dep.id in (stored_ids or ()))
            by_id[dep.id] = priced_dep
            if dep.live:
                live.append(priced_dep)
        models[name] = PublicModel(name, tuple(live), spec.fallbacks)
    return ModelCatalog(models, by_id)


def _weight(value: Any) -> float:
    try:
        return float(value) if value is not None and not isinstance(value, bool) else 0.0
    except (TypeError, ValueError):
        return 0.0


class StoredModels(Protocol):
    """Deployments added at run time, as :class:`CatalogSource` reads them (the model store)."""

    @property
    def revision(self) -> int: ...

    def stored(self) -> list[Stored]: ...


class CatalogSource:
    """The current catalog, reloaded when the file or the stored models change; a broken edit of the file keeps
    the last good one."""

    def __init__(self, path: Path | None, check_every_seconds: float = 2.0, store: StoredModels | None = None) -> None:
        self.path = path
        self.check_every = check_every_seconds
        self.store = store
        self._catalog = ModelCatalog()
        self._raw: Any = {"models": []}
        self._mtime = -1.0
        self._checked = 0.0
        self._revision = -1
        if path is not None:
            self._raw = read_document(path)
            self._mtime = path.stat().st_mtime
            self._catalog = self._build(self._raw)

    @classmethod
    def of(cls, catalog: ModelCatalog) -> CatalogSource:
        source = cls(None)
        source._catalog = catalog
        return source

    def _build(self, raw: Any) -> ModelCatalog:
        """The catalog of ``raw`` with the stored deployments it takes (one it does not is left out and logged,
        as the router leaves it out; the file's own errors raise)."""
        stored = self.store.stored() if self.store is not None else []
        if self.store is not None:
            self._revision = self.store.revision
        ids = {dep.get("id") for _, dep in stored}
        catalog, rejected = with_what_fits(raw, str(self.path), stored, lambda file: priced(file, ids))
        for deployment_id, why in rejected:
            log.error("a stored model is not priced; left out", extra={"deployment": deployment_id, "error": why})
        return catalog

    def check(self, stored: Sequence[Stored]) -> None:
        """Raises :class:`CatalogError` unless the file (as last read well) takes these stored deployments."""
        parse_models(self._raw, str(self.path), stored)

    def current(self, fresh: bool = False) -> ModelCatalog:
        """The catalog, the file re-read when it changed (looked at every ``check_every`` seconds, or now with
        ``fresh``: a deployment or model billing does not know may be one a router already reloaded)."""
        now = time.monotonic()
        if self.path is not None and (fresh or now - self._checked >= self.check_every):
            self._checked = now
            try:
                mtime = self.path.stat().st_mtime
                if mtime != self._mtime:
                    raw = read_document(self.path)
                    self._catalog = self._build(raw)
                    self._raw, self._mtime = raw, mtime
                    log.info("model catalog reloaded", extra={"path": str(self.path)})
            except (OSError, CatalogError) as exc:
                log.error("model catalog not reloaded; keeping the last good one", extra={"error": str(exc)})
        if self.store is not None and self.store.revision != self._revision:
            self._catalog = self._build(self._raw)  # the file was read well before: only stored ones may not fit
        return self._catalog
