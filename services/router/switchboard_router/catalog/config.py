"""The router's catalog: the checked catalog file (:mod:`switchboard_rules.catalog`) made ready to call.

The file's grammar is checked by the shared reader; here the router adds what
only it knows (its adapters, weights, timeouts) and builds immutable
:class:`Catalog` objects. A broken file raises
:class:`~switchboard_rules.catalog.CatalogError` naming the exact place, so that
a reload can reject it and keep the running catalog.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from switchboard_router.catalog.provider_options import checked_options
from switchboard_router.deployment import Deployment, Timeouts
from switchboard_rules.catalog import (
    CatalogError,
    CatalogFile,
    DeploymentSpec,
    Stored,
    load_catalog_file,
    parse_catalog_file,
    read_document,
    with_what_fits,
)
from switchboard_rules.catalog.wildcards import fill, is_pattern, match, resolve
from switchboard_rules.model_limits import known_models, limits_for
from switchboard_rules.policies import DEFAULT_PRIVACY_TIERS
from switchboard_rules.prompt_cache import EXPLICIT

log = logging.getLogger(__name__)
#: Concrete entries of wildcard names kept per catalog (each costs a limits look-up to make).
_RESOLVED_KEPT = 4096

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
    #: Every deployment of the config, live or not, in its order (for describing the model; routing uses
    #: ``deployments``).
    configured: tuple[Deployment, ...] = ()


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
    #: Settings of a LiteLLM config the gateway does not support (logged at load).
    unsupported: tuple[str, ...] = ()
    #: Deployments added at run time that could not be served (id → why).
    rejected: tuple[tuple[str, str], ...] = ()
    #: Wildcard names resolved so far (name → concrete entry).
    _resolved: dict[str, ModelEntry] = field(default_factory=dict, init=False, compare=False, repr=False)

    def live_models(self) -> list[str]:
        return [name for name, entry in self.models.items() if entry.deployments]

    def resolve(self, name: str) -> ModelEntry | None:
        """The entry that serves ``name``: its own, else the most specific wildcard entry that matches, made
        concrete (each deployment's ``*`` filled in, its limits those of the resolved model)."""
        entry = self.models.get(name)
        if entry is not None:
            return entry
        if is_pattern(name):
            return None
        known = self._resolved.get(name)
        if known is not None:
            return known
        found = resolve((n for n in self.models if is_pattern(n)), name)
        if found is None:
            return None
        pattern, captures = found
        concrete = concrete_entry(self.models[pattern], name, captures)
        if len(self._resolved) >= _RESOLVED_KEPT:
            self._resolved.clear()
        self._resolved[name] = concrete
        return concrete


    def listed(self, include_wildcards: bool = False) -> list[tuple[str, str]]:
        """(name, wildcard it comes from or "") of every live model, as ``/v1/models`` lists them: a wildcard
        entry as the models of its provider's published list that it matches (LiteLLM lists its wildcard routes
        so), and also as itself with ``include_wildcards``."""
        out: list[tuple[str, str]] = []
        seen: set[str] = set()
        for name, entry in self.models.items():
            if not entry.deployments:
                continue
            if not is_pattern(name):
                out.append((name, ""))
                seen.add(name)
        for name, entry in self.models.items():
            if not entry.deployments or not is_pattern(name):
                continue
            if include_wildcards:
                out.append((name, name))
            for expanded in expanded_names(entry):
                if expanded not in seen:
                    seen.add(expanded)
                    out.append((expanded, name))
        return out


def expanded_names(entry: ModelEntry) -> list[str]:
    """The names a wildcard entry serves among the models its deployments' providers publish."""
    names: list[str] = []
    for d in entry.deployments:
        for known in known_models(d.provider):
            captures = match(d.model, known) if is_pattern(d.model) else None
            if captures is not None and len(captures) == entry.name.count("*"):
                name = fill(entry.name, captures)
                if name not in names:
                    names.append(name)
    return names


def concrete_entry(entry: ModelEntry, name: str, captures: tuple[str, ...]) -> ModelEntry:
    """A wildcard entry as it serves ``name``: the deployments keep their ids (and so their HTTP pools and
    health), with the model id and its limits of the resolved model."""
    deployments = []
    for d in entry.deployments:
        model = fill(d.model, captures)
        known = limits_for(d.provider, model)
        deployments.append(dataclasses.replace(d, public_model=name, model=model,
                                               context_window=d.context_window or known.context_window,
                                               max_output_tokens=d.max_output_tokens or known.max_output_tokens))
    return dataclasses.replace(entry, name=name, deployments=tuple(deployments))


def load_catalog(path: Path, stored: Sequence[Stored] = ()) -> Catalog:
    """The file's catalog with the deployments added at run time. A stored deployment the router cannot serve
    (its check fails) is left out and named in :attr:`Catalog.rejected`, never the whole catalog: the file
    alone decides whether the catalog loads."""
    if not stored:
        return catalog_of(load_catalog_file(path))
    catalog, rejected = with_what_fits(read_document(path), str(path), stored, catalog_of)
    for deployment_id, why in rejected:
        log.error("a model added at run time cannot be served; left out",
                  extra={"deployment": deployment_id, "error": why})
    return dataclasses.replace(catalog, rejected=tuple(rejected))


def parse_catalog(raw: Any, source: str = "config") -> Catalog:
    return catalog_of(parse_catalog_file(raw, source=source))


def catalog_of(file: CatalogFile) -> Catalog:
    """The router's catalog from the checked file: live deployments ready to call, the others listed with why."""
    models: dict[str, ModelEntry] = {}
    for name, spec in file.models.items():
        deployments = tuple(_deployment(dep) for dep in spec.deployments)
        for deployment, dep in zip(deployments, spec.deployments, strict=True):
            _check_retention(deployment, file.privacy_tiers, dep.where)
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
            configured=deployments,
        )
    return Catalog(models=models, policy=_policy(file.router_settings), privacy_tiers=file.privacy_tiers,
                   access_groups=file.access_groups, unsupported=file.unsupported)


#: Keys of a deployment the router reads itself; the others are the adapter's (``extra``).
_KNOWN_DEPLOYMENT_KEYS = {
    "id", "provider", "model", "api_base", "api_key", "jurisdiction", "privacy_tier", "weight", "timeouts",
    "context_window", "max_output_tokens", "model_info",
}


def _check_retention(deployment: Deployment, tiers: tuple[str, ...], where: str) -> None:
    """A deployment of the strictest privacy tier keeps nothing at its provider, so it makes no explicit prompt
    cache (which stores the prompt there for its lifetime)."""
    if tiers and deployment.privacy_tier == tiers[0] and deployment.extra.get("prompt_cache") == EXPLICIT:
        raise CatalogError(f"{where}.prompt_cache: explicit caching stores prompts at the provider for "
                           f"prompt_cache_ttl, which the strictest privacy tier ({tiers[0]!r}) rules out; remove "
                           "prompt_cache: explicit or give the deployment a looser tier")


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
    options = {k: v for k, v in raw.items() if k not in _KNOWN_DEPLOYMENT_KEYS}
    extra = checked_options(spec.provider, spec.model, options, where)
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
