"""The catalog file (``SWITCHBOARD_CONFIG``): read once, the same way, by every service that needs it.

The router serves the models it lists and billing prices them; neither trusts
the other to pass the file's facts along, so both parse it here. A broken file
raises :class:`CatalogError` naming the exact place
(``models[2].deployments[0].provider``), so that a reload can reject it and keep
the running catalog.

What is checked here is the file's own grammar: names, lists, tiers,
fallbacks, deployment ids, token limits, ``${VAR}`` references. What a service
alone knows (the router's adapters and timeouts, billing's price keys) it checks
on top, naming places with :attr:`DeploymentSpec.where`.

A deployment whose ``${VAR}`` names an unset environment variable is not an
error: the shipped config lists every provider, and only those whose keys are
exported go live (:attr:`DeploymentSpec.live`).

A LiteLLM ``config.yaml`` (it has a ``model_list``) is read too: it is converted
first (:mod:`switchboard_rules.catalog.litellm`), and what it sets that the gateway
does not support is listed in :attr:`CatalogFile.unsupported`. Models added at run
time (the admin API's ``/model/new``) join the file's with :func:`with_stored`.
A model name with ``*`` is a wildcard entry (:mod:`switchboard_rules.catalog.wildcards`).
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import yaml

from switchboard_rules.catalog.envsubst import expand
from switchboard_rules.catalog.litellm import LiteLLMError, convert_config, is_litellm_config
from switchboard_rules.catalog.wildcards import STAR, is_pattern
from switchboard_rules.jurisdictions import JurisdictionError, of_google_region, parse_jurisdictions
from switchboard_rules.model_limits import limits_for
from switchboard_rules.policies import DEFAULT_PRIVACY_TIERS

#: How a model spreads requests over its deployments.
STRATEGIES = ("weighted_random", "least_inflight", "lowest_latency")
#: Keys of a model entry.
_MODEL_KEYS = {"name", "deployments", "strategy", "fallbacks", "context_window_fallbacks",
               "content_policy_fallbacks", "owned_by"}


class CatalogError(ValueError):
    """The catalog file is invalid; the message says where and why."""


def refuse_to_start(service: str, exc: CatalogError) -> NoReturn:
    """A service that cannot start on this catalog says exactly where it is wrong, without a traceback, and exits
    with status 2 (the router and billing both read the file at start)."""
    sys.stderr.write(f"switchboard {service}: the model catalog is invalid: {exc}\n")
    raise SystemExit(2) from None


async def refusing_invalid_catalog(service: str, serving: Awaitable[None]) -> None:
    """Runs a service's ``serve()``, ending its start as :func:`refuse_to_start` says if the catalog is invalid."""
    try:
        await serving
    except CatalogError as exc:
        refuse_to_start(service, exc)


@dataclass(frozen=True, slots=True)
class DeploymentSpec:
    """One deployment as the file states it."""

    #: Stable id: the ``id`` key, else ``"<public model>/<index>"``.
    id: str
    public_model: str
    #: Where it stands in the file, for error messages (``models[0].deployments[1]``).
    where: str
    provider: str
    #: The provider's own model id.
    model: str
    #: Every key of the deployment as written, ``${VAR}`` expanded (adapter and price settings included).
    config: Mapping[str, Any]
    #: Where it processes requests (lower-case): the file's ``jurisdiction``, else the one its Google Cloud region
    #: (``vertex_location``) implies; empty when neither says.
    jurisdiction: str = ""
    privacy_tier: str = "standard"
    #: Tokens the deployment accepts, and the most it emits in one answer: the file's value, else the
    #: model's published figure (models.dev), else 0 (unknown).
    context_window: int = 0
    max_output_tokens: int = 0
    #: The deployment accepts callers' own provider keys (its catalog entry shows the BYOK routing fee).
    byok: bool = False
    #: ``${VAR}`` references whose variable is unset: the deployment is not live.
    missing_env: tuple[str, ...] = ()

    @property
    def live(self) -> bool:
        return not self.missing_env


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """A public model name and its deployments (live or not)."""

    name: str
    where: str
    deployments: tuple[DeploymentSpec, ...]
    strategy: str = "weighted_random"
    fallbacks: tuple[str, ...] = ()
    context_window_fallbacks: tuple[str, ...] = ()
    content_policy_fallbacks: tuple[str, ...] = ()
    owned_by: str = "switchboard"

    @property
    def live_deployments(self) -> tuple[DeploymentSpec, ...]:
        return tuple(d for d in self.deployments if d.live)

    @property
    def is_wildcard(self) -> bool:
        return is_pattern(self.name)


@dataclass(frozen=True, slots=True)
class CatalogFile:
    """The whole file."""

    models: dict[str, ModelSpec]
    #: The ``router_settings`` mapping as written (the router reads its policy from it).
    router_settings: Mapping[str, Any] = field(default_factory=dict)
    #: Privacy tiers, strictest first.
    privacy_tiers: tuple[str, ...] = DEFAULT_PRIVACY_TIERS
    #: Access group name → model names.
    access_groups: dict[str, tuple[str, ...]] = field(default_factory=dict)
    source: str = "config"
    #: Settings of a LiteLLM config that were not carried over, one sentence each (empty for the gateway's own).
    unsupported: tuple[str, ...] = ()

    def deployments(self) -> list[DeploymentSpec]:
        return [d for m in self.models.values() for d in m.deployments]


def load_catalog_file(path: Path, stored: Sequence[Stored] = ()) -> CatalogFile:
    """Reads and checks the file at ``path`` (with the deployments added at run time); raises
    :class:`CatalogError`."""
    return parse_catalog_file(read_document(path), source=str(path), stored=stored)


def parse_catalog_file(raw: Any, source: str = "config", env: Mapping[str, str] | None = None,
                       stored: Sequence[Stored] = ()) -> CatalogFile:
    """Checks a parsed YAML document; ``env`` replaces the process environment for ``${VAR}`` (tests)."""
    unsupported: tuple[str, ...] = ()
    if is_litellm_config(raw):
        try:
            converted = convert_config(raw, source)
        except LiteLLMError as exc:
            raise CatalogError(str(exc)) from None
        raw, unsupported = converted.document, converted.unsupported
    if not isinstance(raw, Mapping):
        raise CatalogError(f"{source}: the top level must be a mapping with a 'models' list")
    if stored:
        raw = _with_stored(raw, stored)
    models_raw = raw.get("models") or []
    if not isinstance(models_raw, list):
        raise CatalogError(f"{source}: 'models' must be a list")
    tiers = tuple(_str_list(raw.get("privacy_tiers"), "privacy_tiers") or DEFAULT_PRIVACY_TIERS)
    settings = raw.get("router_settings") or {}
    if not isinstance(settings, Mapping):
        raise CatalogError("router_settings must be a mapping")
    models: dict[str, ModelSpec] = {}
    ids: dict[str, str] = {}
    for i, model_raw in enumerate(models_raw):
        model = _model(model_raw, f"models[{i}]", tiers, env)
        if model.name in models:
            raise CatalogError(f"{model.where}.name: model name {model.name!r} is defined twice")
        for dep in model.deployments:
            if dep.id in ids:
                raise CatalogError(f"{dep.where}.id: deployment id {dep.id!r} is already used by {ids[dep.id]}")
            ids[dep.id] = dep.where
        models[model.name] = model
    for model in models.values():
        for key in ("fallbacks", "context_window_fallbacks", "content_policy_fallbacks"):
            for fb in getattr(model, key):
                if fb not in models:
                    raise CatalogError(f"{model.where}.{key}: {fb!r} is not a model of this config")
    groups_raw = raw.get("access_groups") or {}
    if not isinstance(groups_raw, Mapping):
        raise CatalogError("access_groups must map a group name to a list of model names")
    groups = {str(k): tuple(_str_list(v, f"access_groups.{k}")) for k, v in groups_raw.items()}
    return CatalogFile(models=models, router_settings=dict(settings), privacy_tiers=tiers, access_groups=groups,
                       source=source, unsupported=unsupported)


def read_document(path: Path) -> Any:
    """The parsed YAML of the file at ``path`` (not yet checked); raises :class:`CatalogError`."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CatalogError(f"config file {path} does not exist (set SWITCHBOARD_CONFIG)") from None
    except OSError as exc:
        raise CatalogError(f"config file {path} cannot be read: {exc.strerror}") from None
    try:
        return yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise CatalogError(f"{path}: not valid YAML: {exc}") from None


#: A deployment added at run time: (public model name, deployment mapping in the file's grammar).
Stored = tuple[str, Mapping[str, Any]]
T = TypeVar("T")


def with_what_fits(raw: Any, source: str, stored: Sequence[Stored],
                   build: Callable[[CatalogFile], T]) -> tuple[T, list[tuple[str, str]]]:
    """``build`` of the file with every stored deployment it takes (a service's own checks included), and the
    (id, reason) of those it does not: they are left out, never the file, which stays the source of what it
    declares (a file edit that reuses a stored deployment's id wins over it). Raises :class:`CatalogError` only
    for the file's own errors."""
    try:
        return build(parse_catalog_file(raw, source=source, stored=stored)), []
    except CatalogError:
        if not stored:
            raise
        build(parse_catalog_file(raw, source=source))  # the file alone: its own errors are fatal
    kept: list[Stored] = []
    rejected: list[tuple[str, str]] = []
    for item in stored:
        try:
            build(parse_catalog_file(raw, source=source, stored=[*kept, item]))
        except CatalogError as exc:
            rejected.append((str(item[1].get("id") or item[0]), str(exc)))
            continue
        kept.append(item)
    return build(parse_catalog_file(raw, source=source, stored=kept)), rejected


def _with_stored(raw: Mapping[str, Any], stored: Sequence[Stored]) -> dict[str, Any]:
    """The document with deployments added at run time: each joins the model of its name when the file
    declares one (that model's routing settings stay the file's), else a model of its own."""
    base = dict(raw)
    models = [dict(m) if isinstance(m, Mapping) else m for m in (base.get("models") or [])]
    by_name = {m.get("name"): m for m in models if isinstance(m, dict)}
    for name, deployment in stored:
        model = by_name.get(name)
        if model is None:
            model = by_name[name] = {"name": name, "deployments": []}
            models.append(model)
        model["deployments"] = [*(model.get("deployments") or []), dict(deployment)]
    base["models"] = models
    return base


def _model(raw: Any, where: str, tiers: tuple[str, ...], env: Mapping[str, str] | None) -> ModelSpec:
    if not isinstance(raw, Mapping):
        raise CatalogError(f"{where}: each model must be a mapping with 'name' and 'deployments'")
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        raise CatalogError(f"{where}.name: a non-empty public model name is required")
    strategy = raw.get("strategy", "weighted_random")
    if strategy not in STRATEGIES:
        raise CatalogError(f"{where}.strategy: {strategy!r} is not one of {', '.join(STRATEGIES)}")
    deps_raw = raw.get("deployments")
    if not isinstance(deps_raw, list) or not deps_raw:
        raise CatalogError(f"{where}.deployments: a non-empty list of deployments is required")
    deployments = tuple(_deployment(dep, f"{where}.deployments[{j}]", name, j, tiers, env)
                        for j, dep in enumerate(deps_raw))
    return ModelSpec(
        name=name, where=where, deployments=deployments, strategy=str(strategy),
        fallbacks=tuple(_str_list(raw.get("fallbacks"), f"{where}.fallbacks")),
        context_window_fallbacks=tuple(_str_list(raw.get("context_window_fallbacks"),
                                                 f"{where}.context_window_fallbacks")),
        content_policy_fallbacks=tuple(_str_list(raw.get("content_policy_fallbacks"),
                                                 f"{where}.content_policy_fallbacks")),
        owned_by=str(raw.get("owned_by") or "switchboard"),
    )


def _deployment(raw: Any, where: str, public: str, index: int, tiers: tuple[str, ...],
                env: Mapping[str, str] | None) -> DeploymentSpec:
    if not isinstance(raw, Mapping):
        raise CatalogError(f"{where}: a deployment must be a mapping with 'provider' and 'model'")
    missing: set[str] = set()
    config: dict[str, Any] = expand(dict(raw), missing, env)
    provider = config.get("provider")
    if not isinstance(provider, str) or not provider.strip():
        raise CatalogError(f"{where}.provider: the provider's name is required (e.g. openai, anthropic)")
    model = config.get("model")
    if not isinstance(model, str) or not model:
        raise CatalogError(f"{where}.model: the provider's model id is required")
    if model.count(STAR) > public.count(STAR):
        raise CatalogError(f"{where}.model: {model!r} has more '*' than the model name {public!r}: each '*' of "
                           "the model is filled with what a '*' of the name matched")
    tier = str(config.get("privacy_tier") or "standard")
    if tier not in tiers:
        raise CatalogError(f"{where}.privacy_tier: {tier!r} is not one of {', '.join(tiers)}")
    byok = config.get("byok", False)
    if not isinstance(byok, bool):
        raise CatalogError(f"{where}.byok: must be true or false")
    dep_id = config.get("id") or f"{public}/{index}"
    if not isinstance(dep_id, str):
        raise CatalogError(f"{where}.id: must be a string")
    context_window = _tokens(config.get("context_window"), f"{where}.context_window")
    max_output = _tokens(config.get("max_output_tokens"), f"{where}.max_output_tokens")
    if not context_window or not max_output:
        known = limits_for(str(config.get("price_provider") or provider), str(config.get("price_model") or model))
        context_window = context_window or known.context_window
        max_output = max_output or known.max_output_tokens
    return DeploymentSpec(
        id=dep_id, public_model=public, where=where, provider=provider, model=model, config=config,
        jurisdiction=_jurisdiction(config, where), privacy_tier=tier, context_window=context_window,
        max_output_tokens=max_output, byok=byok, missing_env=tuple(sorted(missing)),
    )


def _jurisdiction(config: Mapping[str, Any], where: str) -> str:
    """The declared jurisdiction, or the one the deployment's Google Cloud region implies; a declaration that
    contradicts the region is refused (a key pinned to one place must never reach another)."""
    declared = config.get("jurisdiction")
    try:
        names = parse_jurisdictions(str(declared) if declared else None, f"{where}.jurisdiction")
    except JurisdictionError as exc:
        raise CatalogError(str(exc)) from None
    if len(names) > 1 or names == ("*",):
        raise CatalogError(f"{where}.jurisdiction: a deployment is in one jurisdiction (got {declared!r})")
    location = config.get("vertex_location")
    implied = of_google_region(location) if isinstance(location, str) else ""
    if names and implied and names[0] != implied:
        raise CatalogError(f"{where}.jurisdiction: {names[0]!r} contradicts vertex_location {location!r}, which is "
                           f"in {implied!r}; declare {implied!r} or leave jurisdiction out")
    return names[0] if names else implied


def _tokens(value: Any, where: str) -> int:
    if value is None or value == "":
        return 0
    if isinstance(value, bool):
        raise CatalogError(f"{where}: {value!r} is not a whole number of tokens")
    try:
        number = int(str(value))
    except ValueError:
        raise CatalogError(f"{where}: {value!r} is not a whole number of tokens") from None
    if number < 0 or number > 1 << 40:
        raise CatalogError(f"{where}: must be between 0 and {1 << 40} tokens")
    return number


def _str_list(value: Any, where: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise CatalogError(f"{where}: must be a list of strings")
    return list(value)
