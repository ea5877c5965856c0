"""Bring a LiteLLM config: the gateway reads a LiteLLM ``config.yaml`` as it is (``model_list`` with
``litellm_params`` and ``model_info``, ``litellm_settings``, ``router_settings``, ``general_settings``),
serves it, and says which settings it does not support; ``switchboard import-litellm`` writes the same
catalog in the gateway's own grammar."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import yaml

from switchboard_facade.cli.main import main as cli
from switchboard_rules.catalog import load_catalog_file
from tests.fakes.openai_provider import FakeOpenAI
from tests.harness import Gateway, start_gateway
from tests.sdk_clients import openai_client

UPSTREAM_KEY = "sk-from-the-environment-0042"
MESSAGES = [{"role": "user", "content": "hi"}]


def litellm_config(api_base: str) -> dict[str, Any]:
    """A LiteLLM proxy config as its docs write them (proxy/configs, proxy/reliability), on the fake provider."""
    def params(model: str, **extra: Any) -> dict[str, Any]:
        return {"model": f"openai/{model}", "api_base": api_base, "api_key": "os.environ/FAKE_OPENAI_KEY",
                "input_cost_per_token": 0.0000025, "output_cost_per_token": 0.00001, **extra}
    return {
        "model_list": [
            {"model_name": "gpt-4o", "litellm_params": params("good", rpm=60, temperature=0.2),
             "model_info": {"id": "gpt-4o-east", "max_input_tokens": 128000, "max_output_tokens": 4096,
                            "description": "our main model"}},
            {"model_name": "gpt-4o", "litellm_params": params("good", tpm=100000),
             "model_info": {"id": "gpt-4o-west"}},
            {"model_name": "unreliable", "litellm_params": params("down")},
            {"model_name": "text-embedding-3-small", "litellm_params": params("embed")},
            {"model_name": "openai/*", "litellm_params": {"model": "openai/*", "api_base": api_base,
                                                          "api_key": "os.environ/FAKE_OPENAI_KEY"}},
            {"model_name": "sagemaker-model", "litellm_params": {"model": "sagemaker/my-endpoint"}},
        ],
        "litellm_settings": {"num_retries": 1, "request_timeout": 30, "drop_params": True,
                             "success_callback": ["langfuse"], "fallbacks": [{"unreliable": ["gpt-4o"]}]},
        "router_settings": {"routing_strategy": "least-busy", "model_group_alias": {"gpt-4": "gpt-4o"},
                            "redis_host": "localhost", "cooldown_time": 30},
        "general_settings": {"master_key": "sk-1234", "database_url": "os.environ/DATABASE_URL",
                             "store_model_in_db": True},
    }


@pytest.fixture(scope="module")
def from_litellm(tmp_path_factory: pytest.TempPathFactory,
                 fake_openai: tuple[FakeOpenAI, str]) -> Iterator[Gateway]:
    gw = start_gateway(tmp_path_factory.mktemp("litellm-config"), [], document=litellm_config(fake_openai[1]),
                       extra_env={"FAKE_OPENAI_KEY": UPSTREAM_KEY})
    yield gw
    gw.stop()


def client(gw: Gateway) -> openai.OpenAI:
    return openai_client(gw.create_key(), gw.base_url + "/v1")


def test_the_litellm_config_is_served_with_its_keys_prices_fallbacks_and_aliases(
        from_litellm: Gateway, fake_openai: tuple[FakeOpenAI, str]) -> None:
    llm = client(from_litellm)
    raw = llm.chat.completions.with_raw_response.create(model="gpt-4o", messages=MESSAGES)
    assert raw.headers["x-switchboard-deployment"] in ("gpt-4o-east", "gpt-4o-west")
    assert fake_openai[0].requests[-1].headers["authorization"] == f"Bearer {UPSTREAM_KEY}"  # os.environ/VAR
    usage = raw.parse().usage
    assert usage is not None
    row = from_litellm.ledger_row(raw.headers["x-request-id"])
    assert row["spend"] == pytest.approx((usage.prompt_tokens * 2.5 + usage.completion_tokens * 10) / 1e6)
    fallen = llm.chat.completions.with_raw_response.create(model="unreliable", messages=MESSAGES)
    assert fallen.headers["x-switchboard-model"] == "gpt-4o"  # litellm_settings.fallbacks
    assert llm.chat.completions.create(model="gpt-4", messages=MESSAGES).choices  # model_group_alias
    assert llm.embeddings.create(model="text-embedding-3-small", input="hi").data
    wild = llm.chat.completions.with_raw_response.create(model="openai/gpt-4o-mini", messages=MESSAGES)
    assert fake_openai[0].requests[-1].body["model"] == "gpt-4o-mini" and wild.parse().choices


def test_the_router_says_which_settings_it_does_not_support(from_litellm: Gateway) -> None:
    log = from_litellm.processes["router"].log()
    for setting in ("litellm_params temperature is not supported", "litellm_settings.drop_params",
                    "litellm_settings.success_callback", "router_settings.redis_host",
                    "general_settings.master_key is not read from the config: set SWITCHBOARD_MASTER_KEY",
                    "model_list[5] (sagemaker-model): provider 'sagemaker'"):
        assert setting in log, setting


def test_model_info_shows_the_configs_deployments(from_litellm: Gateway) -> None:
    data = httpx.get(from_litellm.base_url + "/model/info", headers=from_litellm.admin()).json()["data"]
    east = next(m for m in data if m["model_info"]["id"] == "gpt-4o-east")
    assert east["model_name"] == "gpt-4o" and east["model_info"]["db_model"] is False
    assert east["litellm_params"]["model"] == "openai/good" and east["litellm_params"]["weight"] == 60
    assert east["model_info"]["description"] == "our main model"
    assert east["model_info"]["max_input_tokens"] == 128000 and east["model_info"]["max_output_tokens"] == 4096
    assert UPSTREAM_KEY not in httpx.get(from_litellm.base_url + "/model/info", headers=from_litellm.admin()).text


def test_import_litellm_writes_the_same_catalog(tmp_path: Path, fake_openai: tuple[FakeOpenAI, str]) -> None:
    source = tmp_path / "litellm.yaml"
    source.write_text(yaml.safe_dump(litellm_config(fake_openai[1])))
    target = tmp_path / "switchboard.yaml"
    out, err = io.StringIO(), io.StringIO()
    assert cli(["import-litellm", str(source), "--output", str(target)], out, err) == 0
    notes = err.getvalue()
    assert "not supported: litellm_settings.drop_params is not supported and left out" in notes
    assert "not supported: general_settings.database_url is not read from the config: set " \
           "SWITCHBOARD_DATABASE_URL" in notes
    written = target.read_text()
    assert written.startswith("# Converted from the LiteLLM config") and "#   - router_settings.redis_host" in written
    assert "os.environ/FAKE_OPENAI_KEY" not in written and "${FAKE_OPENAI_KEY}" in written
    converted, original = load_catalog_file(target), load_catalog_file(source)
    assert {n: [(d.id, d.provider, d.model, dict(d.config)) for d in m.deployments]
            for n, m in converted.models.items()} == {
        n: [(d.id, d.provider, d.model, dict(d.config)) for d in m.deployments] for n, m in original.models.items()}
    assert converted.router_settings == original.router_settings and converted.unsupported == ()
    assert cli(["import-litellm", str(target)], io.StringIO(), err) == 1  # not a LiteLLM config
