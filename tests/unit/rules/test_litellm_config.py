"""LiteLLM ``config.yaml`` files read as the catalog: the configs of LiteLLM's own docs (proxy/configs,
proxy/load_balancing, proxy/wildcard_routing), what maps, and every setting that does not, said plainly."""

from __future__ import annotations

import pytest
import yaml

from switchboard_router.catalog.config import catalog_of
from switchboard_router.providers.registry import known_providers
from switchboard_rules.catalog import CatalogError, parse_catalog_file
from switchboard_rules.catalog.litellm import PROVIDERS, convert_deployment, per_million

#: docs.litellm.ai/docs/proxy/configs, "Quick Start".
QUICK_START = """
model_list:
  - model_name: gpt-4o ### RECEIVED MODEL NAME ###
    litellm_params: # all params accepted by litellm.completion() - https://docs.litellm.ai/docs/completion/input
      model: azure/gpt-4o-eu ### MODEL NAME sent to `litellm.completion()` ###
      api_base: https://my-endpoint-europe-berri-992.openai.azure.com/
      api_key: "os.environ/AZURE_API_KEY_EU" # does os.getenv("AZURE_API_KEY_EU")
      rpm: 6      # [OPTIONAL] Rate limit for this deployment: in requests per minute (rpm)
  - model_name: bedrock-claude-v1
    litellm_params:
      model: bedrock/anthropic.claude-instant-v1
  - model_name: gpt-4o
    litellm_params:
      model: azure/gpt-4o-ca
      api_base: https://my-endpoint-canada-berri992.openai.azure.com/
      api_key: "os.environ/AZURE_API_KEY_CA"
      rpm: 6
  - model_name: anthropic-claude
    litellm_params:
      model: bedrock/anthropic.claude-instant-v1
      ### [OPTIONAL] SET AWS REGION ###
      aws_region_name: us-east-1
  - model_name: vllm-models
    litellm_params:
      model: openai/facebook/opt-125m # the `openai/` prefix tells litellm it's openai compatible
      api_base: http://0.0.0.0:4000/v1
      api_key: none
      rpm: 1440
    model_info:
      version: 2
  - model_name: "*"
    litellm_params:
      model: "*"

litellm_settings: # module level litellm settings
  drop_params: True
  success_callback: ["langfuse"]

general_settings:
  master_key: sk-1234
  alerting: ["slack"]
"""

#: docs.litellm.ai/docs/proxy/configs, "Load Balancing".
LOAD_BALANCING = """
model_list:
  - model_name: zephyr-beta
    litellm_params:
        model: huggingface/HuggingFaceH4/zephyr-7b-beta
        api_base: http://0.0.0.0:8001
        rpm: 60
        tpm: 1000
  - model_name: gpt-4o
    litellm_params:
        model: gpt-4o
        api_key: <my-openai-key>
        rpm: 200
  - model_name: gpt-3.5-turbo-16k
    litellm_params:
        model: gpt-3.5-turbo-16k
        api_key: <my-openai-key>
        rpm: 100

litellm_settings:
  num_retries: 3
  request_timeout: 10
  fallbacks: [{"zephyr-beta": ["gpt-4o"]}]
  context_window_fallbacks: [{"zephyr-beta": ["gpt-3.5-turbo-16k"]}, {"gpt-4o": ["gpt-3.5-turbo-16k"]}]
  allowed_fails: 3

router_settings:
  routing_strategy: simple-shuffle
  model_group_alias: {"gpt-4": "gpt-4o"}
  num_retries: 2
  timeout: 30
  redis_host: <your redis host>
  redis_password: <your redis password>
  redis_port: 1992
"""

#: docs.litellm.ai/docs/wildcard_routing.
WILDCARDS = """
model_list:
  - model_name: "anthropic/*"
    litellm_params:
      model: "anthropic/*"
      api_key: os.environ/ANTHROPIC_API_KEY
  - model_name: "groq/*"
    litellm_params:
      model: "groq/*"
      api_key: os.environ/GROQ_API_KEY
  - model_name: "fo::*:static::*"
    litellm_params:
      model: "openai/fo::*:static::*"
      api_key: os.environ/OPENAI_API_KEY
"""


def read(text: str, **env: str):  # type: ignore[no-untyped-def]
    return parse_catalog_file(yaml.safe_load(text), env=env)


def test_the_quick_start_config() -> None:
    catalog = read(QUICK_START, AZURE_API_KEY_EU="k1", AZURE_API_KEY_CA="k2")
    gpt = catalog.models["gpt-4o"]
    assert [(d.provider, d.model, d.config["api_key"], d.config["weight"]) for d in gpt.deployments] == [
        ("azure", "gpt-4o-eu", "k1", 6), ("azure", "gpt-4o-ca", "k2", 6)]
    assert gpt.deployments[0].config["api_base"] == "https://my-endpoint-europe-berri-992.openai.azure.com/"
    bedrock = catalog.models["anthropic-claude"].deployments[0]
    assert (bedrock.provider, bedrock.model, bedrock.config["aws_region"]) == (
        "bedrock", "anthropic.claude-instant-v1", "us-east-1")
    vllm = catalog.models["vllm-models"].deployments[0]
    assert (vllm.provider, vllm.model, vllm.config["api_key"]) == ("openai", "facebook/opt-125m", "none")
    assert vllm.config["model_info"] == {"version": 2}
    assert "*" not in catalog.models
    assert catalog.unsupported == (
        "model_list[5].litellm_params.model: '*' (any provider, guessed per request) is not served; write one "
        "wildcard per provider instead (openai/*, anthropic/*, ...); this deployment was left out",
        "litellm_settings.drop_params is not supported and left out",
        "litellm_settings.success_callback is not supported and left out",
        "general_settings.master_key is not read from the config: set SWITCHBOARD_MASTER_KEY in the gateway's "
        "environment instead",
        "general_settings.alerting is not read from the config",
    )
    catalog_of(catalog)  # the router takes it too


def test_the_load_balancing_config() -> None:
    catalog = read(LOAD_BALANCING)
    assert set(catalog.models) == {"gpt-4o", "gpt-3.5-turbo-16k", "gpt-4"}
    assert catalog.models["gpt-4o"].deployments[0].config["api_key"] == "<my-openai-key>"
    assert catalog.models["gpt-4o"].context_window_fallbacks == ("gpt-3.5-turbo-16k",)
    # model_group_alias: the alias serves the same deployments under ids of its own
    alias = catalog.models["gpt-4"].deployments[0]
    assert (alias.id, alias.provider, alias.model) == ("gpt-4/0", "openai", "gpt-4o")
    # router_settings win over litellm_settings, as in LiteLLM
    assert catalog.router_settings == {"max_attempts": 3, "request_deadline_seconds": 30, "cooldown_failures": 4}
    router = catalog_of(catalog)
    assert router.policy.max_attempts == 3 and router.policy.cooldown_failures == 4
    assert all(m.strategy == "weighted_random" for m in router.models.values())
    assert catalog.unsupported == (
        "model_list[0] (zephyr-beta): provider 'huggingface' (model 'huggingface/HuggingFaceH4/zephyr-7b-beta') "
        "is not served by this gateway "
        f"(served: {', '.join(sorted(PROVIDERS))}); this deployment was left out",
        "litellm_settings.fallbacks: 'zephyr-beta' is not a model of this config; its fallbacks were left out",
        "litellm_settings.context_window_fallbacks: 'zephyr-beta' is not a model of this config; its fallbacks "
        "were left out",
        "router_settings.redis_host is not read from the config: set SWITCHBOARD_REDIS_URL instead",
        "router_settings.redis_password is not read from the config: set SWITCHBOARD_REDIS_URL instead",
        "router_settings.redis_port is not read from the config: set SWITCHBOARD_REDIS_URL instead",
    )


def test_the_wildcard_routing_config() -> None:
    catalog = read(WILDCARDS, ANTHROPIC_API_KEY="a", GROQ_API_KEY="g", OPENAI_API_KEY="o")
    assert {n: (m.deployments[0].provider, m.deployments[0].model) for n, m in catalog.models.items()} == {
        "anthropic/*": ("anthropic", "*"), "groq/*": ("groq", "*"), "fo::*:static::*": ("openai", "fo::*:static::*")}
    router = catalog_of(catalog)
    served = router.resolve("fo::hi::static::hi")
    assert served is not None and served.deployments[0].model == "fo::hi::static::hi"
    claude = router.resolve("anthropic/claude-sonnet-4-5")
    assert claude is not None and claude.deployments[0].model == "claude-sonnet-4-5"
    assert claude.deployments[0].max_output_tokens > 0  # the resolved model's own limit
    assert router.resolve("mistral/large") is None and router.resolve("anthropic/*") is not None


def test_a_provider_key_not_given_is_read_from_litellms_default_variable() -> None:
    config, left = convert_deployment("gpt", {"model": "openai/gpt-4o", "temperature": 0.2, "max_tokens": 20})
    assert config["api_key"] == "${OPENAI_API_KEY}" and left == ["max_tokens", "temperature"]
    azure, _ = convert_deployment("az", {"model": "azure/my-deployment", "api_version": "2024-02-01"})
    assert azure["api_base"] == "${AZURE_API_BASE}" and azure["api_key"] == "${AZURE_API_KEY}"
    xai, _ = convert_deployment("grok", {"model": "xai/grok-2"})
    assert (xai["provider"], xai["api_base"], xai["price_provider"]) == ("openai_compatible", "https://api.x.ai/v1",
                                                                         "xai")


def test_prices_limits_and_ids_from_model_info() -> None:
    config, _ = convert_deployment("m", {"model": "openai/my-model", "input_cost_per_token": 0.0000025,
                                         "output_cost_per_token": "1e-05"},
                                   {"id": "abc", "max_input_tokens": 8192, "max_tokens": 1024,
                                    "base_model": "azure/gpt-4o", "mode": "chat"})
    assert config["input_cost_per_million"] == "2.5" and config["output_cost_per_million"] == "10"
    assert (config["id"], config["context_window"], config["max_output_tokens"]) == ("abc", 8192, 1024)
    assert config["price_model"] == "gpt-4o" and config["model_info"]["mode"] == "chat"
    assert per_million(3e-06, "x") == "3"


def test_every_provider_a_config_may_name_is_served_by_the_router() -> None:
    assert {p.name for p in PROVIDERS.values()} <= set(known_providers())


@pytest.mark.parametrize(("params", "says"), [
    ({"model": "huggingface/x"}, "'huggingface'"),
    ({"model": "my-own-model"}, "write it as <provider>/my-own-model"),
    ({"model": "openai/gpt-4o", "timeout": "soon"}, "timeout"),
    ({"model": "openai/gpt-4o", "organization": ["org-1", "org-2"]}, "organization"),
])
def test_deployments_that_cannot_be_served_say_why(params: dict[str, object], says: str) -> None:
    with pytest.raises(ValueError, match=".") as info:
        convert_deployment("m", params)
    assert says in str(info.value)


def test_a_broken_litellm_config_is_a_catalog_error() -> None:
    with pytest.raises(CatalogError, match="model_list must be a list"):
        parse_catalog_file({"model_list": {"gpt-4o": {}}})
