"""Parsing and validation of the catalog YAML into immutable :class:`Catalog` objects.

A broken config raises :class:`ConfigError` with a message naming the exact
place (``models[2].deployments[0].provider``) so that a reload can reject it
and keep the running catalog.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from switchboard_router.catalog.envsubst import expand
from switchboard_router.catalog.provider_options import checked_options
from switchboard_router.deployment import Deployment, Timeouts

STRATEGIES = ("weighted_random", "least_inflight", "lowest_latency")
DEFAULT_TIERS = ("zero_retention", "managed_regional_cloud", "standard")


class ConfigError(ValueError):
    """The catalog YAML is invalid; the message says where and why."""


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


@dataclass(frozen=True, slots=True)
class Catalog:
    models: dict[str, ModelEntry]
    policy: RouterPolicy = RouterPolicy()
    privacy_tiers: tuple[str, ...] = DEFAULT_TIERS
    access_groups: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def live_models(self) -> list[str]:
        return [name for name, entry in self.models.items() if entry.deployments]


def load_catalog(path: Path) -> Catalog:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(f"config file {path} does not exist (set SWITCHBOARD_CONFIG)") from exc
    try:
        raw = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    return parse_catalog(raw, source=str(path))


def parse_catalog(raw: Any, source: str = "config") -> Catalog:
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: the top level must be a mapping with a 'models' list")
    models_raw = raw.get("models") or []
    if not isinstance(models_raw, list):
        raise ConfigError(f"{source}: 'models' must be a list")
    tiers = tuple(_str_list(raw.get("privacy_tiers"), "privacy_tiers") or DEFAULT_TIERS)
    policy = _policy(raw.get("router_settings") or {})
    models: dict[str, ModelEntry] = {}
    for i, model_raw in enumerate(models_raw):
        where = f"models[{i}]"
        entry = _model(model_raw, where, tiers)
        if entry.name in models:
            raise ConfigError(f"{where}: model name {entry.name!r} is defined twice")
        models[entry.name] = entry
    groups_raw = raw.get("access_groups") or {}
    if not isinstance(groups_raw, dict):
        raise ConfigError("access_groups must map a group name to a list of model names")
    groups = {str(k): tuple(_str_list(v, f"access_groups.{k}")) for k, v in groups_raw.items()}
    for name, entry in models.items():
        for fb in (*entry.fallbacks, *entry.context_window_fallbacks, *entry.content_policy_fallbacks):
            if fb not in models:
                raise ConfigError(f"model {name!r}: fallback {fb!r} is not a model of this config")
    return Catalog(models=models, policy=policy, privacy_tiers=tiers, access_groups=groups)


def _model(raw: Any, where: str, tiers: tuple[str, ...]) -> ModelEntry:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: each model must be a mapping with 'name' and 'deployments'")
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"{where}.name: a non-empty public model name is required")
    strategy = raw.get("strategy", "weighted_random")
    if strategy not in STRATEGIES:
        raise ConfigError(f"{where}.strategy: {strategy!r} is not one of {', '.join(STRATEGIES)}")
    deps_raw = raw.get("deployments")
    if not isinstance(deps_raw, list) or not deps_raw:
        raise ConfigError(f"{where}.deployments: a non-empty list of deployments is required")
    deployments: list[Deployment] = []
    unavailable: list[tuple[str, str]] = []
    for j, dep_raw in enumerate(deps_raw):
        dwhere = f"{where}.deployments[{j}]"
        missing: set[str] = set()
        expanded = expand(dep_raw, missing)
        dep = _deployment(expanded, dwhere, name, j, tiers)
        if missing:
            unavailable.append((dep.id, f"environment variable(s) {', '.join(sorted(missing))} not set"))
        else:
            deployments.append(dep)
    return ModelEntry(
        name=name,
        deployments=tuple(deployments),
        strategy=strategy,
        fallbacks=_names(raw, "fallbacks", where),
        context_window_fallbacks=_names(raw, "context_window_fallbacks", where),
        content_policy_fallbacks=_names(raw, "content_policy_fallbacks", where),
        unavailable=tuple(unavailable),
        owned_by=str(raw.get("owned_by") or "switchboard"),
    )


_KNOWN_DEPLOYMENT_KEYS = {
    "id", "provider", "model", "api_base", "api_key", "jurisdiction", "privacy_tier", "weight", "timeouts",
    "context_window", "max_output_tokens",
}


def _deployment(raw: Any, where: str, public: str, index: int, tiers: tuple[str, ...]) -> Deployment:
    from switchboard_router.providers.registry import known_providers

    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: a deployment must be a mapping with 'provider' and 'model'")
    provider = raw.get("provider")
    if provider not in known_providers():
        raise ConfigError(f"{where}.provider: {provider!r} is not a known provider ({', '.join(known_providers())})")
    model = raw.get("model")
    if not isinstance(model, str) or not model:
        raise ConfigError(f"{where}.model: the provider's model id is required")
    tier = str(raw.get("privacy_tier") or "standard")
    if tier not in tiers:
        raise ConfigError(f"{where}.privacy_tier: {tier!r} is not one of {', '.join(tiers)}")
    weight = _number(raw.get("weight", 1.0), f"{where}.weight")
    if weight <= 0:
        raise ConfigError(f"{where}.weight: must be positive")
    timeouts_raw = raw.get("timeouts") or {}
    if not isinstance(timeouts_raw, dict):
        raise ConfigError(f"{where}.timeouts: must be a mapping (connect, first_byte, total, stream_idle)")
    tkw = {}
    for key in ("connect", "first_byte", "total", "stream_idle"):
        if key in timeouts_raw:
            value = _number(timeouts_raw[key], f"{where}.timeouts.{key}")
            if value <= 0:
                raise ConfigError(f"{where}.timeouts.{key}: must be positive seconds")
            tkw[key] = value
    extra = checked_options(provider, {k: v for k, v in raw.items() if k not in _KNOWN_DEPLOYMENT_KEYS}, where)
    return Deployment(
        id=str(raw.get("id") or f"{public}/{index}"),
        public_model=public,
        provider=provider,
        model=model,
        api_base=str(raw.get("api_base") or ""),
        api_key=str(raw["api_key"]) if raw.get("api_key") else None,
        extra=extra,
        jurisdiction=str(raw.get("jurisdiction") or ""),
        privacy_tier=tier,
        weight=weight,
        timeouts=Timeouts(**tkw),
        context_window=int(_number(raw.get("context_window", 0), f"{where}.context_window")),
        max_output_tokens=int(_number(raw.get("max_output_tokens", 0), f"{where}.max_output_tokens")),
    )


def _policy(raw: Any) -> RouterPolicy:
    if not isinstance(raw, dict):
        raise ConfigError("router_settings must be a mapping")
    kw: dict[str, Any] = {}
    for key, kind in (("max_attempts", int), ("backoff_initial_seconds", float), ("backoff_max_seconds", float),
                      ("cooldown_failures", int), ("cooldown_seconds", float)):
        if key in raw:
            value = _number(raw[key], f"router_settings.{key}")
            if value < 0:
                raise ConfigError(f"router_settings.{key}: must not be negative")
            kw[key] = kind(value)
    return RouterPolicy(**kw)


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        try:
            return float(str(value))
        except ValueError:
            raise ConfigError(f"{where}: {value!r} is not a number") from None
    return float(value)


def _names(raw: dict[str, Any], key: str, where: str) -> tuple[str, ...]:
    return tuple(_str_list(raw.get(key), f"{where}.{key}"))


def _str_list(value: Any, where: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where}: must be a list of strings")
    return list(value)
