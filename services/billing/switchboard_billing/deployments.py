"""Billing's reading of the gateway's model catalog (the ``models:`` section of SWITCHBOARD_CONFIG).

Billing prices deployments itself, from the same YAML file the router serves,
instead of trusting the facade to pass prices along: one file decides, and a
price cannot be changed by whoever calls Reserve/Settle. Only what pricing
needs is read — public names, fallbacks, each deployment's id, provider, model,
limits, privacy facts and pricing keys (see ``pricing/config.py``); routing
details are the router's business. Deployment ids follow the router's rule:
the ``id`` key, else ``"<public model>/<index>"``.

The file is re-read when its modification time changes (checked at most every
few seconds), so a config edit reprices new requests without a restart.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from switchboard_billing.pricing import DeploymentPricing, PricingConfigError

log = logging.getLogger(__name__)

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class CatalogConfigError(ValueError):
    """The models section cannot be priced; the message names the place."""


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
    #: Callers of this deployment bring their own provider key: it is charged the routing fee only.
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
    #: Deployment id → deployment (settlement looks every event up here).
    by_id: dict[str, PricedDeployment] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.by_id:
            self.by_id.update({dep.id: dep for model in self.models.values() for dep in model.deployments})

    def deployment(self, deployment_id: str) -> PricedDeployment | None:
        return self.by_id.get(deployment_id)

    def candidates(self, public_model: str) -> list[PricedDeployment]:
        """Every deployment a request for ``public_model`` may end up on: its own, then its fallbacks', transitively."""
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


def _expand(value: Any) -> Any:
    if isinstance(value, str):
        return _VAR.sub(lambda m: os.environ.get(m.group(1)) or (m.group(2) or ""), value)
    if isinstance(value, list):
        return [_expand(v) for v in value]
    if isinstance(value, dict):
        return {k: _expand(v) for k, v in value.items()}
    return value


def _int(value: Any, where: str) -> int:
    if value is None:
        return 0
    try:
        number = int(str(value))
    except ValueError:
        raise CatalogConfigError(f"{where}: {value!r} is not a whole number of tokens") from None
    if number < 0:
        raise CatalogConfigError(f"{where}: must not be negative")
    return number


def parse_models(raw: Any, source: str = "config") -> ModelCatalog:
    """The priced view of a parsed config mapping."""
    if not isinstance(raw, Mapping):
        raise CatalogConfigError(f"{source}: the top level must be a mapping with a 'models' list")
    models_raw = raw.get("models") or []
    if not isinstance(models_raw, list):
        raise CatalogConfigError(f"{source}: 'models' must be a list")
    models: dict[str, PublicModel] = {}
    for i, entry in enumerate(models_raw):
        where = f"models[{i}]"
        if not isinstance(entry, Mapping) or not isinstance(entry.get("name"), str):
            raise CatalogConfigError(f"{where}: each model needs a 'name' and 'deployments'")
        name = entry["name"]
        deployments = []
        for j, dep_raw in enumerate(entry.get("deployments") or []):
            dwhere = f"{where}.deployments[{j}]"
            if not isinstance(dep_raw, Mapping):
                raise CatalogConfigError(f"{dwhere}: a deployment must be a mapping")
            dep = _expand(dict(dep_raw))
            dep_id = str(dep.get("id") or f"{name}/{j}")
            try:
                pricing = DeploymentPricing.from_config(dep, deployment_id=dep_id)
            except PricingConfigError as exc:
                raise CatalogConfigError(f"{dwhere}: {exc}") from None
            byok = dep.get("byok", False)
            if not isinstance(byok, bool):
                raise CatalogConfigError(f"{dwhere}.byok: must be true or false")
            deployments.append(PricedDeployment(
                id=dep_id, public_model=name, pricing=pricing, jurisdiction=str(dep.get("jurisdiction") or ""),
                privacy_tier=str(dep.get("privacy_tier") or "standard"),
                context_window=_int(dep.get("context_window"), f"{dwhere}.context_window"),
                max_output_tokens=_int(dep.get("max_output_tokens"), f"{dwhere}.max_output_tokens"),
                byok=byok,
            ))
        fallbacks = entry.get("fallbacks") or []
        if not isinstance(fallbacks, list):
            raise CatalogConfigError(f"{where}.fallbacks: must be a list of model names")
        models[name] = PublicModel(name, tuple(deployments), tuple(str(f) for f in fallbacks))
    return ModelCatalog(models)


def load_models(path: Path) -> ModelCatalog:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise CatalogConfigError(f"config file {path} does not exist (set SWITCHBOARD_CONFIG)") from None
    except yaml.YAMLError as exc:
        raise CatalogConfigError(f"{path}: not valid YAML: {exc}") from None
    return parse_models(raw, str(path))


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
            except (OSError, CatalogConfigError) as exc:
                log.error("model catalog not reloaded; keeping the last good one", extra={"error": str(exc)})
        return self._catalog
