"""LiteLLM's ``config.yaml`` and ``/model/new`` bodies, read as the catalog's own grammar.

A LiteLLM proxy config (``model_list`` of ``model_name`` + ``litellm_params`` + ``model_info``,
``litellm_settings``, ``router_settings``, ``general_settings``) is converted here into the catalog
file's document (``models`` with ``deployments``, ``router_settings``, ``access_groups``), so that the
router and billing read it exactly as a Switchboard file: :func:`~switchboard_rules.catalog.file.parse_catalog_file`
does so when it sees ``model_list``, ``switchboard import-litellm`` writes the converted file, and the
admin API's ``/model/new`` converts one deployment with :func:`convert_deployment`.

What maps:

* ``litellm_params.model: <provider>/<id>`` → ``provider`` and ``model`` (LiteLLM's provider names,
  :data:`PROVIDERS`; a bare id of a well-known vendor, or ``custom_llm_provider``, names the provider);
  ``*`` in ``model_name`` and ``model`` → a wildcard entry (:mod:`~switchboard_rules.catalog.wildcards`);
* ``api_key``/``api_base``/``api_version``, ``os.environ/VAR`` → ``${VAR}``; a provider whose key is
  not given reads LiteLLM's default variable (``OPENAI_API_KEY``, ...), as LiteLLM does;
* ``rpm``/``tpm`` → ``weight`` (LiteLLM's simple-shuffle picks deployments in proportion to them);
  ``timeout`` → ``timeouts.total``, ``stream_timeout`` → ``timeouts.stream_idle``;
  ``region_name`` → ``jurisdiction``; AWS and Vertex credentials to the same keys;
* ``input_cost_per_token``-style prices (in ``litellm_params`` or ``model_info``) → the per-million
  overrides; ``model_info`` ``id``, ``max_input_tokens``, ``max_output_tokens`` (``max_tokens``),
  ``base_model`` (prices and limits looked up as), ``access_groups``; the rest of ``model_info`` is
  kept for ``/model/info``;
* ``litellm_settings``/``router_settings`` ``num_retries``, ``timeout``/``request_timeout``,
  ``cooldown_time``, ``allowed_fails``, ``retry_after``, ``routing_strategy``, ``fallbacks``,
  ``context_window_fallbacks``, ``content_policy_fallbacks``, ``default_fallbacks``,
  ``model_group_alias``.

Everything else is listed in :attr:`Converted.unsupported`, one sentence each, saying what was left
out and, where the gateway has its own way, which.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from switchboard_rules.catalog.wildcards import STAR


class LiteLLMError(ValueError):
    """A LiteLLM deployment the gateway cannot serve; the message says where and why."""


@dataclass(frozen=True, slots=True)
class Provider:
    """How one of LiteLLM's provider names is served here."""

    #: The catalog's ``provider:``.
    name: str
    #: LiteLLM's default environment variable for the key ("" when the provider needs none).
    key_env: str = ""
    #: Base URL for providers served as an OpenAI-compatible endpoint.
    api_base: str = ""
    #: Price list to look the model up in, when it is not the provider's own name.
    price_provider: str = ""


#: LiteLLM's provider prefixes (``<provider>/<model id>``) the gateway serves.
PROVIDERS: dict[str, Provider] = {
    "openai": Provider("openai", "OPENAI_API_KEY"),
    "text-completion-openai": Provider("openai", "OPENAI_API_KEY"),
    "azure": Provider("azure", "AZURE_API_KEY"),
    "azure_text": Provider("azure", "AZURE_API_KEY"),
    "anthropic": Provider("anthropic", "ANTHROPIC_API_KEY"),
    "gemini": Provider("gemini", "GEMINI_API_KEY"),
    "vertex_ai": Provider("vertex"),
    "vertex_ai_beta": Provider("vertex"),
    "bedrock": Provider("bedrock"),
    "mistral": Provider("mistral", "MISTRAL_API_KEY"),
    "codestral": Provider("mistral", "CODESTRAL_API_KEY"),
    "groq": Provider("groq", "GROQ_API_KEY"),
    "deepseek": Provider("deepseek", "DEEPSEEK_API_KEY"),
    "together_ai": Provider("together", "TOGETHERAI_API_KEY"),
    "openrouter": Provider("openrouter", "OPENROUTER_API_KEY"),
    "ollama": Provider("ollama"),
    "ollama_chat": Provider("ollama"),
    "hosted_vllm": Provider("vllm"),
    "vllm": Provider("vllm"),
    "openai_like": Provider("openai_compatible"),
    "custom_openai": Provider("openai_compatible"),
    "lm_studio": Provider("openai_compatible", api_base="http://127.0.0.1:1234/v1"),
    "xai": Provider("openai_compatible", "XAI_API_KEY", "https://api.x.ai/v1", "xai"),
    "fireworks_ai": Provider("openai_compatible", "FIREWORKS_AI_API_KEY", "https://api.fireworks.ai/inference/v1",
                             "fireworks"),
    "cerebras": Provider("openai_compatible", "CEREBRAS_API_KEY", "https://api.cerebras.ai/v1", "cerebras"),
    "perplexity": Provider("openai_compatible", "PERPLEXITYAI_API_KEY", "https://api.perplexity.ai", "perplexity"),
}
#: Our provider name → the LiteLLM prefix a deployment is shown with (``/model/info``'s ``litellm_params.model``).
LITELLM_NAMES = {"openai": "openai", "azure": "azure", "anthropic": "anthropic", "gemini": "gemini",
                 "vertex": "vertex_ai", "bedrock": "bedrock", "mistral": "mistral", "groq": "groq",
                 "deepseek": "deepseek", "together": "together_ai", "openrouter": "openrouter", "ollama": "ollama",
                 "vllm": "hosted_vllm", "openai_compatible": "openai_like", "demo": "switchboard_demo"}
#: A bare model id's vendor, when LiteLLM would infer it (``gpt-4o`` is OpenAI's).
_VENDOR_PREFIXES = (("gpt-", "openai"), ("chatgpt", "openai"), ("o1", "openai"), ("o3", "openai"),
                    ("o4", "openai"), ("text-embedding", "openai"), ("omni-moderation", "openai"),
                    ("text-moderation", "openai"), ("davinci", "openai"), ("babbage", "openai"),
                    ("claude", "anthropic"), ("gemini", "gemini"), ("mistral", "mistral"),
                    ("codestral", "mistral"), ("deepseek", "deepseek"))
#: litellm_params keys that hold credentials: write-only (sealed at rest, never shown whole).
SECRET_PARAMS = ("api_key", "aws_access_key_id", "aws_secret_access_key", "aws_session_token", "vertex_credentials",
                 "azure_ad_token", "client_secret", "azure_client_secret", "aws_web_identity_token")
#: litellm_params keys whose values (request headers) may hold credentials: shown by name only.
HEADER_PARAMS = ("extra_headers", "headers")
_ENV_PREFIX = "os.environ/"
#: litellm_params (and model_info) prices per token → the catalog's per-million overrides.
_PRICES = {"input_cost_per_token": "input_cost_per_million", "output_cost_per_token": "output_cost_per_million",
           "cache_read_input_token_cost": "cached_input_cost_per_million",
           "cache_creation_input_token_cost": "cache_write_cost_per_million"}
#: litellm_params keys carried over as they are: LiteLLM's, and the gateway's own deployment settings (a body
#: sent to /model/new may set them next to LiteLLM's; the catalog checks them).
_SAME = ("api_base", "api_version", "aws_access_key_id", "aws_secret_access_key", "aws_session_token",
         "vertex_project", "vertex_location", "vertex_credentials", "privacy_tier", "jurisdiction", "byok",
         "allow_unpriced", "price_provider", "price_model", "prompt_cache", "prompt_cache_ttl", "context_window",
         "max_output_tokens", "input_cost_per_million", "output_cost_per_million", "cached_input_cost_per_million",
         "cache_write_cost_per_million", "cache_storage_cost_per_million_hours", "byok_fee_per_million",
         "byok_fee_per_request_micros")
#: litellm_params keys read by this module (everything else is reported as not supported).
_READ = {"model", "custom_llm_provider", "api_key", "base_url", "organization", "extra_headers", "headers", "timeout",
         "stream_timeout", "rpm", "tpm", "weight", "region_name", "aws_region_name", "use_in_pass_through",
         *_SAME, *_PRICES}
#: model_info keys carried into the deployment's own settings (the rest is kept as its model_info).
_INFO_READ = ("id", "max_input_tokens", "max_output_tokens", "max_tokens", "base_model", "access_groups")
_STRATEGIES = {"simple-shuffle": "weighted_random", "least-busy": "least_inflight",
               "latency-based-routing": "lowest_latency"}
_GENERAL_ADVICE = {
    "master_key": "set SWITCHBOARD_MASTER_KEY in the gateway's environment instead",
    "database_url": "set SWITCHBOARD_DATABASE_URL (or each service's own database URL) instead",
    "store_model_in_db": "models added with /model/new are always stored; nothing to set",
}


@dataclass(frozen=True, slots=True)
class Converted:
    """A LiteLLM config as the catalog file's document, and what could not be carried over."""

    document: dict[str, Any]
    unsupported: tuple[str, ...] = ()


@dataclass(slots=True)
class _Notes:
    items: list[str] = field(default_factory=list)

    def add(self, text: str) -> None:
        if text not in self.items:
            self.items.append(text)


def is_litellm_config(raw: Any) -> bool:
    """A LiteLLM config has a ``model_list`` (and no ``models``, the catalog's own key)."""
    return isinstance(raw, Mapping) and "model_list" in raw and "models" not in raw


def env_reference(value: Any) -> Any:
    """LiteLLM's ``os.environ/VAR`` as the catalog's ``${VAR}``; other values unchanged."""
    if isinstance(value, str) and value.startswith(_ENV_PREFIX):
        return "${" + value[len(_ENV_PREFIX):] + "}"
    return value


def is_env_reference(value: Any) -> bool:
    return isinstance(value, str) and (value.startswith(_ENV_PREFIX) or (value.startswith("${") and
                                                                          value.endswith("}")))


def provider_of(model: str, custom_provider: str = "") -> tuple[str, str]:
    """(LiteLLM provider name, model id) of ``litellm_params.model``; raises LiteLLMError when unknown."""
    if custom_provider:
        prefix = custom_provider.strip()
        model = model.split("/", 1)[1] if model.startswith(prefix + "/") else model
        if prefix not in PROVIDERS:
            raise LiteLLMError(f"custom_llm_provider {prefix!r} is not served by this gateway "
                               f"(served: {', '.join(sorted(PROVIDERS))})")
        return prefix, model
    head, sep, rest = model.partition("/")
    if sep and head in PROVIDERS:
        return head, rest
    if sep:
        raise LiteLLMError(f"provider {head!r} (model {model!r}) is not served by this gateway "
                           f"(served: {', '.join(sorted(PROVIDERS))})")
    vendor = _vendor(model)
    if vendor is None:
        raise LiteLLMError(f"cannot tell which provider serves {model!r}: write it as <provider>/{model} "
                           "(for example openai/" + model + ")")
    return vendor, model


def _vendor(model: str) -> str | None:
    lowered = model.lower()
    for prefix, vendor in _VENDOR_PREFIXES:
        if lowered.startswith(prefix):
            return vendor
    return None


def per_million(value: Any, where: str) -> str:
    """A LiteLLM price per token as the catalog's exact USD-per-million text."""
    try:
        number = Decimal(str(value)) * 1_000_000
    except (InvalidOperation, ValueError):
        raise LiteLLMError(f"{where}: {value!r} is not a price per token") from None
    text = format(number.normalize(), "f")
    return text if "." not in text else text.rstrip("0").rstrip(".")


def _positive(value: Any, where: str) -> float:
    if isinstance(value, bool):
        raise LiteLLMError(f"{where}: {value!r} is not a number")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise LiteLLMError(f"{where}: {value!r} is not a number") from None
    if number <= 0:
        raise LiteLLMError(f"{where}: must be more than 0")
    return int(number) if number.is_integer() else number


def convert_deployment(model_name: str, params: Mapping[str, Any], info: Mapping[str, Any] | None = None,
                       where: str = "model") -> tuple[dict[str, Any], list[str]]:
    """One LiteLLM deployment (``model_name``, ``litellm_params``, ``model_info``) as a catalog deployment, and the
    ``litellm_params`` keys left out (not supported). Raises LiteLLMError when it cannot be served at all."""
    info = dict(info or {})
    raw_model = params.get("model")
    if not isinstance(raw_model, str) or not raw_model.strip():
        raise LiteLLMError(f"{where}.litellm_params.model: the provider and model id are required "
                           "(for example openai/gpt-4o)")
    if raw_model.strip() == STAR:
        raise LiteLLMError(f"{where}.litellm_params.model: '*' (any provider, guessed per request) is not "
                           "served; write one wildcard per provider instead (openai/*, anthropic/*, ...)")
    litellm_name, model = provider_of(raw_model.strip(), str(params.get("custom_llm_provider") or ""))
    if STAR in model and STAR not in model_name:
        raise LiteLLMError(f"{where}.litellm_params.model: {raw_model!r} has a wildcard but model_name "
                           f"{model_name!r} has none")
    provider = PROVIDERS[litellm_name]
    out: dict[str, Any] = {"provider": provider.name, "model": model}
    for key in _SAME:
        if params.get(key) is not None:
            out[key] = env_reference(params[key])
    if params.get("base_url") is not None and "api_base" not in out:
        out["api_base"] = env_reference(params["base_url"])
    if provider.api_base and "api_base" not in out:
        out["api_base"] = provider.api_base
    if provider.price_provider:
        out["price_provider"] = provider.price_provider
    if params.get("api_key") is not None:
        out["api_key"] = env_reference(params["api_key"])
    elif provider.key_env:
        out["api_key"] = "${" + provider.key_env + "}"
    if provider.name == "azure" and "api_base" not in out:
        out["api_base"] = "${AZURE_API_BASE}"
    if params.get("aws_region_name") is not None:
        out["aws_region"] = env_reference(params["aws_region_name"])
    if params.get("region_name") is not None:
        out["jurisdiction"] = str(params["region_name"])
    headers = dict(params.get("extra_headers") or params.get("headers") or {})
    organization = params.get("organization")
    if isinstance(organization, list):  # LiteLLM makes one deployment per organization; one is kept here
        raise LiteLLMError(f"{where}.litellm_params.organization: a list of organizations is not served; write one "
                           "deployment per organization")
    if organization:
        headers["openai-organization"] = str(env_reference(organization))
    if headers:
        out["headers"] = {str(k): env_reference(v) for k, v in headers.items()}
    timeouts = {}
    if params.get("timeout") is not None:
        timeouts["total"] = _positive(params["timeout"], f"{where}.litellm_params.timeout")
    if params.get("stream_timeout") is not None:
        timeouts["stream_idle"] = _positive(params["stream_timeout"], f"{where}.litellm_params.stream_timeout")
    if timeouts:
        out["timeouts"] = timeouts
    for key in ("weight", "rpm", "tpm"):  # LiteLLM's simple-shuffle weighs deployments by rpm/tpm
        if params.get(key):
            out["weight"] = _positive(params[key], f"{where}.litellm_params.{key}")
            break
    for source, place in ((info, f"{where}.model_info"), (params, f"{where}.litellm_params")):
        for key, target in _PRICES.items():
            if source.get(key) is not None:
                out[target] = per_million(source[key], f"{place}.{key}")
    if info.get("id") is not None:
        out["id"] = str(info["id"])
    if info.get("max_input_tokens") is not None:
        out["context_window"] = info["max_input_tokens"]
    output = info.get("max_output_tokens", info.get("max_tokens"))
    if output is not None:
        out["max_output_tokens"] = output
    if info.get("base_model"):
        base = str(info["base_model"])
        out["price_model"] = base.split("/", 1)[1] if base.split("/", 1)[0] in PROVIDERS else base
    kept = {k: v for k, v in info.items() if k not in _PRICES and k not in _INFO_READ}
    if kept:
        out["model_info"] = kept
    return out, sorted(k for k in params if k not in _READ)


def convert_config(raw: Mapping[str, Any], source: str = "config") -> Converted:
    """A whole LiteLLM config as the catalog file's document; deployments that cannot be served are left out
    and reported."""
    notes = _Notes()
    models: dict[str, dict[str, Any]] = {}
    groups: dict[str, list[str]] = {}
    entries = raw.get("model_list") or []
    if not isinstance(entries, list):
        raise LiteLLMError(f"{source}: model_list must be a list of deployments")
    for index, entry in enumerate(entries):
        where = f"model_list[{index}]"
        if not isinstance(entry, Mapping) or not isinstance(entry.get("model_name"), str):
            raise LiteLLMError(f"{where}: each deployment needs a model_name and litellm_params")
        name = entry["model_name"]
        params = entry.get("litellm_params") or {}
        info = entry.get("model_info") or {}
        if not isinstance(params, Mapping) or not isinstance(info, Mapping):
            raise LiteLLMError(f"{where}: litellm_params and model_info must be mappings")
        try:
            deployment, left = convert_deployment(name, params, info, where)
        except LiteLLMError as exc:
            text = str(exc) if str(exc).startswith(where) else f"{where} ({name}): {exc}"
            notes.add(f"{text}; this deployment was left out")
            continue
        if left:
            notes.add(f"{where} ({name}): litellm_params {', '.join(left)} "
                      f"{'is' if len(left) == 1 else 'are'} not supported and left out")
        for group in info.get("access_groups") or []:
            groups.setdefault(str(group), [])
            if name not in groups[str(group)]:
                groups[str(group)].append(name)
        models.setdefault(name, {"name": name, "deployments": []})["deployments"].append(deployment)
    settings: dict[str, Any] = {}
    litellm_settings = _mapping(raw, "litellm_settings")
    router_settings = _mapping(raw, "router_settings")
    _settings(litellm_settings, "litellm_settings", settings, models, notes,
              {"num_retries", "request_timeout", "fallbacks", "context_window_fallbacks", "content_policy_fallbacks",
               "default_fallbacks", "allowed_fails"})
    _settings(router_settings, "router_settings", settings, models, notes,
              {"num_retries", "timeout", "cooldown_time", "allowed_fails", "retry_after", "routing_strategy",
               "fallbacks", "context_window_fallbacks", "content_policy_fallbacks", "model_group_alias",
               "default_fallbacks"})
    for key, value in _mapping(raw, "general_settings").items():
        advice = _GENERAL_ADVICE.get(key)
        notes.add(f"general_settings.{key} is not read from the config" + (f": {advice}" if advice else ""))
        del value
    if raw.get("environment_variables"):
        notes.add("environment_variables is not read from the config: export them in the gateway's environment")
    for key in raw:
        if key not in ("model_list", "litellm_settings", "router_settings", "general_settings",
                       "environment_variables"):
            notes.add(f"{key} is not supported and left out")
    document: dict[str, Any] = {"models": list(models.values())}
    if settings:
        document["router_settings"] = settings
    if groups:
        document["access_groups"] = groups
    return Converted(document, tuple(notes.items))


def _mapping(raw: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = raw.get(key) or {}
    if not isinstance(value, Mapping):
        raise LiteLLMError(f"{key} must be a mapping")
    return value


def _settings(raw: Mapping[str, Any], section: str, settings: dict[str, Any], models: dict[str, dict[str, Any]],
              notes: _Notes, known: set[str]) -> None:
    for key, value in raw.items():
        place = f"{section}.{key}"
        if key not in known:
            if key in ("redis_host", "redis_port", "redis_password", "redis_url"):
                notes.add(f"{place} is not read from the config: set SWITCHBOARD_REDIS_URL instead")
            else:
                notes.add(f"{place} is not supported and left out")
            continue
        if key == "num_retries":
            settings["max_attempts"] = int(value) + 1
        elif key in ("timeout", "request_timeout"):
            settings["request_deadline_seconds"] = value
        elif key == "cooldown_time":
            settings["cooldown_seconds"] = value
        elif key == "allowed_fails":
            settings["cooldown_failures"] = int(value) + 1
        elif key == "retry_after":
            settings["backoff_initial_seconds"] = value
        elif key == "routing_strategy":
            strategy = _STRATEGIES.get(str(value))
            if strategy is None:
                notes.add(f"{place} {value!r} is not supported: the models use weighted_random (LiteLLM's "
                          "simple-shuffle)")
                strategy = "weighted_random"
            for model in models.values():
                model["strategy"] = strategy
        elif key in ("fallbacks", "context_window_fallbacks", "content_policy_fallbacks"):
            _fallbacks(value, key, place, models, notes)
        elif key == "default_fallbacks":
            targets = [str(v) for v in value or []]
            for name, model in models.items():
                if name not in targets and not model.get("fallbacks"):
                    model["fallbacks"] = [t for t in targets if t in models]
        elif key == "model_group_alias":
            _aliases(value, place, models, notes)


def _fallbacks(value: Any, key: str, place: str, models: dict[str, dict[str, Any]], notes: _Notes) -> None:
    for item in value or []:
        if not isinstance(item, Mapping):
            notes.add(f"{place}: {item!r} is not a mapping of model → fallbacks; left out")
            continue
        for name, targets in item.items():
            if name not in models:
                notes.add(f"{place}: {name!r} is not a model of this config; its fallbacks were left out")
                continue
            wanted = [str(t) for t in (targets if isinstance(targets, list) else [targets])]
            known = [t for t in wanted if t in models]
            for missing in set(wanted) - set(known):
                notes.add(f"{place}: {missing!r} (a fallback of {name!r}) is not a model of this config; left out")
            models[name][key] = known


def _aliases(value: Any, place: str, models: dict[str, dict[str, Any]], notes: _Notes) -> None:
    """``model_group_alias``: the alias serves the same deployments as its model (ids of their own)."""
    for alias, target in (value or {}).items():
        name = target.get("model") if isinstance(target, Mapping) else target
        if name not in models:
            notes.add(f"{place}.{alias}: {name!r} is not a model of this config; left out")
            continue
        if alias in models:
            notes.add(f"{place}.{alias}: {alias!r} is already a model of this config; the alias was left out")
            continue
        copies = []
        for index, deployment in enumerate(models[str(name)]["deployments"]):
            copies.append({**copy.deepcopy(deployment), "id": f"{alias}/{index}"})
        models[str(alias)] = {**copy.deepcopy(models[str(name)]), "name": alias, "deployments": copies}
