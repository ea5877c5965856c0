"""The hosted-gateway walkthrough's own commands, run against a gateway with its compatible settings on.

The walkthrough (Cursor with a hosted gateway that promises Canadian residency by default) gives a
contract: keys that start ``ni_live_``, a public catalog read with ``jq '.models[].model_id'``, answers
that carry ``X-NI-Custody-Path``, ``X-NI-Resolved-Jurisdiction`` and ``X-NI-Request-ID``, requests that
land at a Canadian managed-cloud tier unless the key says otherwise, and a 400 listing the models when a
model is not deployed. The gateway here runs with ``SWITCHBOARD_HEADER_ALIAS_PREFIX=x-ni-``,
``SWITCHBOARD_DEFAULT_PRIVACY_TIER=managed_canadian_cloud``, ``SWITCHBOARD_DEFAULT_JURISDICTIONS=ca``, the
walkthrough's tier names, and — after a restart of auth — ``SWITCHBOARD_KEY_PREFIX=ni_live_``, so that a
key issued before (``sk-...``) must keep working everywhere a key is read. The commands are the
walkthrough's, with its host replaced by the gateway's; ``curl`` and ``jq`` are the real tools.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import anthropic
import httpx
import openai
import pytest

from switchboard_router.client import SwitchboardRouter
from tests.conftest import FAKE_PRICES
from tests.fakes.openai_provider import FakeOpenAI
from tests.fakes.server import BackgroundServer
from tests.fakes.vertex_provider import PROJECT, FakeVertex
from tests.harness import Gateway, start_gateway
from tests.sdk_clients import openai_client

pytestmark = pytest.mark.skipif(not (shutil.which("curl") and shutil.which("jq")), reason="needs curl and jq")

SEED_HOST = "https://northerninference.ca"
TIERS = ["zero_retention", "managed_canadian_cloud", "standard"]
#: The walkthrough's model ids this gateway deploys, and where.
MODEL_IDS = ["anthropic/claude-sonnet-4.5", "openai/gpt-4o", "openai/gpt-4.1", "vertex_ai/gemini-2-5-flash"]


@pytest.fixture(scope="module")
def fakes() -> Iterator[tuple[FakeOpenAI, str, FakeVertex]]:
    app = FakeOpenAI()
    server = BackgroundServer(app).start()
    vertex = FakeVertex()
    vertex.start()
    yield app, server.url + "/v1", vertex
    vertex.stop()
    server.stop()


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory, fakes: tuple[FakeOpenAI, str, FakeVertex]) -> Iterator[Gateway]:
    _, base, vertex = fakes

    def dep(dep_id: str, tier: str, place: str) -> dict[str, object]:
        return {"id": dep_id, "provider": "openai", "model": "echo", "api_base": base, "api_key": f"up-{dep_id}",
                "privacy_tier": tier, "jurisdiction": place, **FAKE_PRICES}

    models: list[dict[str, object]] = [
        {"name": "anthropic/claude-sonnet-4.5", "deployments": [dep("sonnet-ca", "managed_canadian_cloud", "ca")]},
        {"name": "openai/gpt-4o", "deployments": [dep("gpt-4o-us", "standard", "us"),
                                                  dep("gpt-4o-ca", "managed_canadian_cloud", "ca")]},
        {"name": "openai/gpt-4.1", "deployments": [dep("gpt-4.1-us", "standard", "us")]},
        # No jurisdiction declared: Montréal's region puts it in Canada.
        {"name": "vertex_ai/gemini-2-5-flash", "deployments": [{
            "id": "gemini-mtl", "provider": "vertex", "model": "gemini-2.5-flash", "api_base": vertex.base_url,
            "vertex_project": PROJECT, "vertex_location": "northamerica-northeast1",
            "vertex_credentials": "${VERTEX_SA_JSON}", "privacy_tier": "managed_canadian_cloud"}]},
    ]
    env = {"SWITCHBOARD_HEADER_ALIAS_PREFIX": "x-ni-", "SWITCHBOARD_DEFAULT_PRIVACY_TIER": "managed_canadian_cloud",
           "SWITCHBOARD_DEFAULT_JURISDICTIONS": "ca", "VERTEX_SA_JSON": json.dumps(vertex.service_account)}
    gateway = start_gateway(tmp_path_factory.mktemp("seed"), models, extra_env=env,
                            extra_config={"privacy_tiers": TIERS})
    yield gateway
    gateway.stop()


@pytest.fixture(scope="module")
def keys(gw: Gateway) -> dict[str, str]:
    """A key issued before the prefix changed (``sk-``), then auth restarted with ``ni_live_`` and a new key."""
    old = gw.create_key(key_alias="before-the-switch")
    gw.processes["auth"].terminate()
    gw.start_service("auth", {"SWITCHBOARD_KEY_PREFIX": "ni_live_"})
    deadline = time.monotonic() + 30
    while True:
        try:
            new = gw.create_key(key_alias="cursor")
            break
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    return {"old": old, "new": new}


def shell(command: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> str:
    done = subprocess.run(["bash", "-o", "pipefail", "-c", command], capture_output=True, text=True, timeout=60,
                          env={**os.environ, **(env or {})}, cwd=cwd)
    assert done.returncode == 0, done.stderr
    return done.stdout


def seed(gw: Gateway, command: str) -> str:
    """A walkthrough command aimed at this gateway."""
    return command.replace(SEED_HOST, gw.base_url)


def test_keys_start_with_the_configured_prefix_and_older_keys_keep_working(gw: Gateway, keys: dict[str, str]) -> None:
    assert keys["old"].startswith("sk-") and keys["new"].startswith("ni_live_")
    for key, prefix in ((keys["old"], "sk-"), (keys["new"], "ni_live_")):
        info = httpx.get(f"{gw.base_url}/key/info", headers={"Authorization": f"Bearer {key}"}).json()["info"]
        assert info["key_name"] == f"{prefix}...{key[-4:]}"


def test_the_public_catalog_answers_the_walkthrough_s_jq(gw: Gateway) -> None:
    out = shell(seed(gw, f"curl {SEED_HOST}/api/billing/models | jq '.models[].model_id'"))
    assert [json.loads(line) for line in out.splitlines()] == MODEL_IDS
    catalog = httpx.get(f"{gw.base_url}/api/billing/models").json()
    assert [m["id"] for m in catalog["data"]] == MODEL_IDS  # OpenAI-style clients read data[]
    by_id = {m["model_id"]: m for m in catalog["models"]}
    assert by_id["openai/gpt-4o"]["privacy_tiers"] == ["managed_canadian_cloud", "standard"]
    assert by_id["openai/gpt-4o"]["jurisdictions"] == ["ca", "us"]
    assert by_id["openai/gpt-4o"]["input_cost_per_million"] == "2.5"
    assert by_id["vertex_ai/gemini-2-5-flash"]["jurisdictions"] == ["ca"]


def test_the_walkthrough_s_curl_gets_the_custody_headers_and_canadian_residency(gw: Gateway, keys: dict[str, str],
                                                                                 tmp_path: Path) -> None:
    command = seed(gw, """curl https://northerninference.ca/v1/chat/completions \\
-H "Authorization: Bearer $NI_API_KEY" \\
-H "Content-Type: application/json" \\
-d '{
"model": "anthropic/claude-sonnet-4.5",
"messages": [{"role": "user", "content": "say hi"}],
"max_tokens": 10
}'""")
    for key in keys.values():
        body = shell(command + " -sS -D headers.txt", {"NI_API_KEY": key}, tmp_path)
        assert json.loads(body)["choices"][0]["message"]["content"] == "say hi"
        lines = (tmp_path / "headers.txt").read_text().splitlines()
        headers = {name.strip().lower(): value.strip() for name, _, value in (line.partition(":") for line in lines[1:])
                   if name.strip()}
        assert headers["x-ni-request-id"] == headers["x-request-id"] == headers["x-switchboard-request-id"]
        assert headers["x-ni-resolved-jurisdiction"] == headers["x-switchboard-resolved-jurisdiction"] == "ca"
        assert headers["x-ni-custody-path"] == headers["x-switchboard-custody-path"]
        assert headers["x-ni-custody-path"].endswith(">openai:sonnet-ca")
        assert headers["x-ni-privacy-tier"] == "managed_canadian_cloud"


def test_requests_land_at_the_default_canadian_tier_unless_the_key_says_otherwise(gw: Gateway,
                                                                                  keys: dict[str, str]) -> None:
    client = openai_client(api_key=keys["new"], base_url=f"{gw.base_url}/cursor", max_retries=0)
    assert sorted(m.id for m in client.models.list()) == sorted(
        ["anthropic/claude-sonnet-4.5", "openai/gpt-4o", "vertex_ai/gemini-2-5-flash"])
    for _ in range(4):
        raw = client.chat.completions.with_raw_response.create(
            model="openai/gpt-4o", messages=[{"role": "user", "content": "hi"}])
        assert raw.headers["x-ni-resolved-jurisdiction"] == "ca"
        assert raw.headers["x-switchboard-deployment"] == "gpt-4o-ca"
    gemini = client.chat.completions.with_raw_response.create(
        model="vertex_ai/gemini-2-5-flash", messages=[{"role": "user", "content": "hi"}])
    assert gemini.headers["x-ni-resolved-jurisdiction"] == "ca"
    with pytest.raises(openai.BadRequestError) as not_deployed:  # 400 with the models this key can use
        client.chat.completions.create(model="gpt-5.1", messages=[{"role": "user", "content": "hi"}])
    assert "anthropic/claude-sonnet-4.5, openai/gpt-4o, vertex_ai/gemini-2-5-flash" in str(not_deployed.value)
    anywhere = httpx.post(f"{gw.base_url}/key/generate", headers=gw.admin(), timeout=10, json={
        "privacy_tier": "standard", "jurisdictions": ["*"]}).json()["key"]
    assert anywhere.startswith("ni_live_")
    listed = openai_client(api_key=anywhere, base_url=f"{gw.base_url}/v1", max_retries=0).models.list()
    assert sorted(m.id for m in listed) == sorted(MODEL_IDS)


async def test_both_key_prefixes_are_read_everywhere_a_key_is_read(gw: Gateway, keys: dict[str, str]) -> None:
    """OpenAI's Authorization, Azure's api-key and Anthropic's x-api-key headers, the Anthropic SDK, the router's
    gRPC metadata, and LiteLLM's ``api_key`` filter of the usage API."""
    hi = [{"role": "user", "content": "hi"}]
    async with httpx.AsyncClient(base_url=gw.base_url, timeout=20) as http:
        for key in keys.values():
            for header in ({"Authorization": f"Bearer {key}"}, {"api-key": key}, {"x-api-key": key}):
                answer = await http.post("/v1/chat/completions", json={"model": "openai/gpt-4o", "messages": hi},
                                         headers=header)
                assert answer.status_code == 200 and answer.headers["x-ni-resolved-jurisdiction"] == "ca"
            claude = anthropic.AsyncAnthropic(api_key=key, base_url=gw.base_url, max_retries=0)
            reply = await claude.messages.with_raw_response.create(model="anthropic/claude-sonnet-4.5", max_tokens=10,
                                                                   messages=hi)  # type: ignore[arg-type]
            assert reply.headers["x-ni-resolved-jurisdiction"] == "ca"
            await claude.close()
            async with SwitchboardRouter(gw.env["SWITCHBOARD_ROUTER_ADDRESS"], api_key=key) as router:
                assert (await router.complete("openai/gpt-4o", hi)).route.jurisdiction == "ca"
            spend = await http.get("/spend/logs", params={"api_key": key}, headers=gw.admin())
            assert spend.status_code == 200, spend.text  # the plain key was found, whatever its prefix
