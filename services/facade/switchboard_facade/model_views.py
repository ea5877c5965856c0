"""Deployments and model groups in LiteLLM's answer shapes (``/model/info``, ``/v2/model/info``,
``/model_group/info``), from billing's catalog (prices, limits, where each is called) and its stored models.

Each deployment is ``{"model_name", "litellm_params", "model_info"}`` as LiteLLM answers it: ``model_info``
carries LiteLLM's facts (``id``, ``db_model``, ``mode``, token limits, prices per token, ``supports_*``,
``supported_openai_params``) next to the ``model_info`` it was given; ``litellm_params`` never holds a
credential (a stored one is shown as its last four characters under ``switchboard.credentials``). The
``switchboard`` object adds this gateway's own facts (deployment id, provider, jurisdiction, privacy tier,
price source).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson

from switchboard_billing.client import CatalogDeployment, CatalogModel, GetCatalogResponse, StoredModel, StoredModels
from switchboard_rules.catalog.litellm import HEADER_PARAMS, LITELLM_NAMES, is_env_reference
from switchboard_rules.catalog.wildcards import is_pattern
from switchboard_rules.model_limits import capabilities_for
from switchboard_translate.chat_params import CHAT_PARAMS, param_support


def _loads(text: str) -> dict[str, Any]:
    value = orjson.loads(text or "{}") if text else {}
    return value if isinstance(value, dict) else {}


def per_token(per_million: str) -> float | None:
    """A catalog price (USD per million tokens, exact text) as LiteLLM's cost per token."""
    return float(Decimal(per_million) / 1_000_000) if per_million else None


def mode_of(upstream_model: str, info: dict[str, Any]) -> str:
    """LiteLLM's ``mode``: as given in model_info, else told from the model id."""
    if isinstance(info.get("mode"), str) and info["mode"]:
        return str(info["mode"])
    lowered = upstream_model.lower()
    if "embed" in lowered:
        return "embedding"
    if "moderation" in lowered:
        return "moderation"
    if "instruct" in lowered or lowered.startswith(("davinci", "babbage")):
        return "completion"
    return "chat"


def litellm_name(provider: str) -> str:
    return LITELLM_NAMES.get(provider, provider)


def supported_params(d: CatalogDeployment, mode: str) -> list[str]:
    """The OpenAI parameters a chat deployment honours: what its provider's translation neither refuses nor
    leaves out (see :mod:`switchboard_translate.chat_params`); none for other modes."""
    return list(param_support(d.provider, d.upstream_model).supported) if mode == "chat" else []


def facts(d: CatalogDeployment, info: dict[str, Any]) -> dict[str, Any]:
    """LiteLLM's model_info facts of one deployment (its cost map's, from this gateway's prices and limits)."""
    skills = capabilities_for(d.provider, d.upstream_model)
    mode = mode_of(d.upstream_model, info)
    return {
        "key": d.upstream_model,
        "mode": mode,
        "max_tokens": d.max_output_tokens or None,
        "max_input_tokens": d.context_window or None,
        "max_output_tokens": d.max_output_tokens or None,
        "input_cost_per_token": per_token(d.input_per_million),
        "output_cost_per_token": per_token(d.output_per_million),
        "cache_read_input_token_cost": per_token(d.cached_input_per_million),
        "cache_creation_input_token_cost": per_token(d.cache_write_per_million),
        "litellm_provider": litellm_name(d.provider),
        "supports_function_calling": skills.tool_call,
        "supports_parallel_function_calling": skills.tool_call,
        "supports_vision": skills.vision,
        "supports_reasoning": skills.reasoning,
        "supported_openai_params": supported_params(d, mode),
    }


def _file_params(d: CatalogDeployment) -> dict[str, Any]:
    params: dict[str, Any] = {"model": f"{litellm_name(d.provider)}/{d.upstream_model}"}
    if d.api_base:
        params["api_base"] = d.api_base
    if d.weight:
        params["weight"] = d.weight
    return params


def _without_header_values(params: dict[str, Any]) -> dict[str, Any]:
    """Headers may carry credentials (``Authorization``, ``api-key``): their values are shown as their last four
    characters, as every credential is."""
    for name in HEADER_PARAMS:
        if isinstance(params.get(name), dict):
            params[name] = {k: v if is_env_reference(v) else "..." + str(v)[-4:] for k, v in params[name].items()}
    return params


def deployment_entry(name: str, d: CatalogDeployment | None, stored: StoredModel | None) -> dict[str, Any]:
    """One deployment as a ``/model/info`` item (from the catalog, the store, or both)."""
    given = _loads(stored.model_info_json) if stored is not None else _loads(d.model_info_json if d else "")
    info: dict[str, Any] = {"id": stored.model_id if stored is not None else d.deployment_id if d else "",
                            "db_model": stored is not None}
    own: dict[str, Any] = {}
    if d is not None:
        info.update(facts(d, given))
        own = {"deployment_id": d.deployment_id, "provider": d.provider, "upstream_model": d.upstream_model,
               "jurisdiction": d.jurisdiction or None, "privacy_tier": d.privacy_tier,
               "priced": bool(d.price_source), "price_source": d.price_source or None, "live": not d.not_live}
    else:
        own = {"deployment_id": stored.model_id if stored else "", "live": False}
    info.update({k: v for k, v in given.items() if k != "id"})
    if stored is not None:
        params = _without_header_values(_loads(stored.litellm_params_json))
        own.update({"credentials": dict(stored.secret_hints), "created_at": stored.created_at_ms // 1000,
                    "created_by": stored.created_by, "updated_at": stored.updated_at_ms // 1000,
                    "updated_by": stored.updated_by})
    else:
        params = _file_params(d) if d is not None else {}
    own["source"] = "api" if stored is not None else "config"
    return {"model_name": name, "litellm_params": params, "model_info": info, "switchboard": own}


def model_entries(catalog: GetCatalogResponse, stored: StoredModels) -> list[dict[str, Any]]:
    """Every deployment: the config file's and those added at run time (live or not)."""
    by_id = {m.model_id: m for m in stored.models}
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for model in catalog.models:
        for d in model.deployments:
            seen.add(d.deployment_id)
            out.append(deployment_entry(model.name, d, by_id.get(d.deployment_id) if d.stored else None))
    for m in stored.models:
        if m.model_id not in seen:  # stored but not live (its environment variable is unset, say)
            out.append(deployment_entry(m.model_name, None, m))
    return out


def group_entry(model: CatalogModel) -> dict[str, Any]:
    """One public model as a ``/model_group/info`` item: its deployments' providers, the tightest limits and the
    dearest prices among them (a request may land on any)."""
    deployments = list(model.deployments)
    windows = [d.context_window for d in deployments if d.context_window]
    outputs = [d.max_output_tokens for d in deployments if d.max_output_tokens]
    inputs = [per_token(d.input_per_million) for d in deployments if d.input_per_million]
    output_prices = [per_token(d.output_per_million) for d in deployments if d.output_per_million]
    skills = [capabilities_for(d.provider, d.upstream_model) for d in deployments]
    first = deployments[0] if deployments else None
    mode = mode_of(first.upstream_model, _loads(first.model_info_json)) if first is not None else "chat"
    # A request may land on any deployment: the group honours what every one of them does.
    honoured = [set(supported_params(d, mode)) for d in deployments]
    group_params = [p for p in CHAT_PARAMS if all(p in h for h in honoured)] if honoured else []
    return {
        "model_group": model.name,
        "providers": sorted({litellm_name(d.provider) for d in deployments}),
        "max_input_tokens": min(windows) if windows else None,
        "max_output_tokens": min(outputs) if outputs else None,
        "input_cost_per_token": max(p for p in inputs if p is not None) if inputs else None,
        "output_cost_per_token": max(p for p in output_prices if p is not None) if output_prices else None,
        "mode": mode,
        "tpm": None,
        "rpm": None,
        "supports_parallel_function_calling": bool(skills) and all(s.tool_call for s in skills),
        "supports_vision": bool(skills) and all(s.vision for s in skills),
        "supports_function_calling": bool(skills) and all(s.tool_call for s in skills),
        "supports_reasoning": bool(skills) and all(s.reasoning for s in skills),
        "supported_openai_params": group_params,
        "is_public_model_group": False,
        "wildcard": is_pattern(model.name),
    }
