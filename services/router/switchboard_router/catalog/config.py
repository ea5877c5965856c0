"""The router's catalog: the checked catalog file (:mod:`switchboard_rules.catalog`) made ready to call.

The file's grammar is checked by the shared reader; here the router adds what
only it knows (its adapters, weights, timeouts) and builds immutable
:class:`Catalog` objects. A broken file raises
:class:`~switchboard_rules.catalog.CatalogError` naming the exact place, so that
a reload can reject it and keep the running catalog.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from switchboard_router.catalog.provider_options import checked_options
from switchboard_router.deployment import Deployment, Timeouts
from switchboard_rules.catalog import CatalogError, CatalogFile, DeploymentSpec, load_catalog_file, parse_catalog_file
from switchboard_rules.policies import DEFAULT_PRIVACY_TIERS

__all__ = ["Catalog", "CatalogError", "ModelEntry", "RouterPolicy", "catalog_of", "load_catalog", "parse_catalog"]


@dataclass(frozen=True, slots=True)
class ModelEntry:
    """A public model name and how to serve it."""

    name: str
    deployments: tuple[Deployment, ...]
    strategy: str = "weighted_random"
    fallbacks: tuple[str, ...] = ()
    context_window_fallbacks: tuple[str, ...] = ()
    content_policy_fallbacks: tuple[str, ...] = ()
    #: Deployments left out because their credentials are not in the environment: id → reason.
    unavailable: tuple[tuple[str, str], ...] = ()
    owned_by: str = "switchboard"


@dataclass(frozen=True, slots=True)
class RouterPolicy:
    """Catalog-wide retry and cool-down policy."""

    max_attempts: int = 3
    backoff_initial_seconds: float = 0.2
    backoff_max_seconds: float = 5.0
    cooldown_failures: int = 3
    cooldown_seconds: float = 30.0
    #: Seconds a request may spend on attempts before its answer starts, retries and fallbacks included
    #: (0: no deadline). The first attempt always keeps its deployment's own timeouts.
    request_deadline_seconds: float = 120.0


@dataclass(frozen=True, slots=True)
class Catalog:
    models: dict[str, ModelEntry]
    policy: RouterPolicy = RouterPolicy()
    privacy_tiers: tuple[str, ...] = DEFAULT_PRIVACY_TIERS
    access_groups: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def live_models(self) -> list[str]:
        return [name for name, entry in self.models.items() if entry.deployments]


def load_catalog(path: Path) -> Catalog:
    return catalog_of(load_catalog_file(path))


def parse_catalog(raw: Any, source: str = "config") -> Catalog:
    return catalog_of(parse_catalog_file(raw, source=source))


def catalog_of(file: CatalogFile) -> Catalog:
    """The router's catalog from the checked file: live deployments ready to call, the others listed with why."""
    models: dict[str, ModelEntry] = {}
    for name, spec in file.models.items():
        deployments = tuple(_deployment(dep) for dep in spec.deployments)
        models[name] = ModelEntry(
            name=name,
            deployments=tuple(d for d, spec_dep in zip(deployments, spec.deployments, strict=True) if spec_dep.live),
            strategy=spec.strategy,
            fallbacks=spec.fallbacks,
            context_window_fallbacks=spec.context_window_fallbacks,
            content_policy_fallbacks=spec.content_policy_fallbacks,
            unavailable=tuple((dep.id, f"environment variable(s) {', '.join(dep.missing_env)} not set")
                              for dep in spec.deployments if not dep.live),
            owned_by=spec.owned_by,
        )
    return Catalog(models=models, policy=_policy(file.router_settings), privacy_tiers=file.privacy_tiers,
                   access_groups=file.access_groups)


#: Keys of a deployment the router reads itself; the others are the adapter's (``extra``).
_KNOWN_DEPLOYMENT_KEYS = {
    "id", "provider", "model", "api_base", "api_key", "jurisdiction", "privacy_tier", "weight", "timeouts",
    "context_window", "max_output_tokens",
}


def _deployment(spec: DeploymentSpec) -> Deployment:
    from switchboard_router.providers.registry import known_providers

    where, raw = spec.where, spec.config
    if spec.provider not in known_providers():
        raise CatalogError(f"{where}.provider: {spec.provider!r} is not a known provider "
                           f"({', '.join(known_providers())})")
    weight = _number(raw.get("weight", 1.0), f"{where}.weight")
    if weight <= 0:
        raise CatalogError(f"{where}.weight: must be positive")
    timeouts_raw = raw.get("timeouts") or {}
    if not isinstance(timeouts_raw, dict):
        raise CatalogError(f"{where}.timeouts: must be a mapping (connect, first_byte, total, stream_idle)")
    tkw = {}
    for key in ("connect", "first_byte", "total", "stream_idle"):
        if key in timeouts_raw:
            value = _number(timeouts_raw[key], f"{where}.timeouts.{key}")
            if value <= 0:
                raise CatalogError(f"{where}.timeouts.{key}: must be positive seconds")
            tkw[key] = value
    extra = checked_options(spec.provider, {k: v for k, v in raw.items() if k not in _KNOWN_DEPLOYMENT_KEYS}, where)
    return Deployment(
        id=spec.id,
        public_model=spec.public_model,
        provider=spec.provider,
        model=spec.model,
        api_base=str(raw.get("api_base") or ""),
        api_key=str(raw["api_key"]) if raw.get("api_key") else None,
        extra=extra,
        jurisdiction=spec.jurisdiction,
        privacy_tier=spec.privacy_tier,
        weight=weight,
        timeouts=Timeouts(**tkw),
        context_window=spec.context_window,
        max_output_tokens=spec.max_output_tokens,
    )


def _policy(raw: Mapping[str, Any]) -> RouterPolicy:
    kw: dict[str, Any] = {}
    for key, kind in (("max_attempts", int), ("backoff_initial_seconds", float), ("backoff_max_seconds", float),
                      ("cooldown_failures", int), ("cooldown_seconds", float), ("request_deadline_seconds", float)):
        if key in raw:
            value = _number(raw[key], f"router_settings.{key}")
            if value < 0:
                raise CatalogError(f"router_settings.{key}: must not be negative")
            kw[key] = kind(value)
    return RouterPolicy(**kw)


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        try:
            return float(str(value))
        except ValueError:
            raise CatalogError(f"{where}: {value!r} is not a number") from None
    return float(value)
