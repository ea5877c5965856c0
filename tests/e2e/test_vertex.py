"""Vertex AI through the real gateway with the official ``openai`` SDK: Gemini in a European region and Claude in
a Canadian one, tokens from a service-account key given in the environment, exact costs at genai-prices'
``google`` prices, and a key Google refuses."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from genai_prices import Usage, calc_price

from switchboard_billing.money import usd_to_micros_half_up
from tests.fakes.vertex_provider import PROJECT, FakeVertex, service_account_info, service_account_key
from tests.harness import Gateway, start_gateway
from tests.sdk_clients import openai_client

GEMINI = "gemini-2.5-flash"
CLAUDE = "claude-sonnet-4-5@20250929"


@pytest.fixture(scope="module")
def vertex() -> Iterator[FakeVertex]:
    server = FakeVertex()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory, vertex: FakeVertex) -> Iterator[Gateway]:
    def dep(model: str, location: str, jurisdiction: str, credentials: str) -> dict[str, object]:
        return {"provider": "vertex", "model": model, "api_base": vertex.base_url, "vertex_project": PROJECT,
                "vertex_location": location, "vertex_credentials": credentials, "jurisdiction": jurisdiction}

    _, stranger = service_account_key()
    models: list[dict[str, object]] = [
        {"name": "gemini-eu", "deployments": [dep(GEMINI, "europe-west4", "eu", "${VERTEX_SA_JSON}")]},
        # No jurisdiction declared: the region (Montréal) puts it in Canada.
        {"name": "claude-ca", "deployments": [dep(CLAUDE, "northamerica-northeast1", "", "${VERTEX_SA_JSON}")]},
        {"name": "gemini-workload-identity", "deployments": [
            {**dep(GEMINI, "europe-west4", "eu", ""), "vertex_credentials": None}]},
        {"name": "gemini-eu-cached", "deployments": [
            {**dep(GEMINI, "europe-west4", "eu", "${VERTEX_SA_JSON}"), "prompt_cache": "explicit"}]},
        {"name": "gemini-revoked-key", "deployments": [
            dep(GEMINI, "europe-west4", "eu", json.dumps(service_account_info(vertex.token_uri, stranger)))]},
    ]
    host = vertex.base_url.removeprefix("http://")
    env = {"VERTEX_SA_JSON": json.dumps(vertex.service_account),
           # Application Default Credentials find the fake's metadata server, as in a GKE pod, and no gcloud login.
           "GCE_METADATA_HOST": host, "GCE_METADATA_IP": host,
           "CLOUDSDK_CONFIG": str(tmp_path_factory.mktemp("gcloud")), "GOOGLE_APPLICATION_CREDENTIALS": ""}
    gateway = start_gateway(tmp_path_factory.mktemp("vertex"), models, extra_env=env)
    yield gateway
    gateway.stop()


@pytest.fixture(scope="module")
def sdk(gw: Gateway) -> openai.OpenAI:
    return openai.OpenAI(api_key=gw.create_key(key_alias="vertex"), base_url=gw.base_url + "/v1", max_retries=0)



def exact_micros(model: str, row: dict[str, Any]) -> int:
    usage = Usage(input_tokens=row["prompt_tokens"], cache_read_tokens=row["cached_prompt_tokens"],
                  cache_write_tokens=row["cache_write_tokens"], output_tokens=row["completion_tokens"])
    return usd_to_micros_half_up(calc_price(usage, model, provider_id="google").total_price)


def test_gemini_in_europe_whole_and_streamed_billed_at_google_prices(gw: Gateway, sdk: openai.OpenAI,
                                                                     vertex: FakeVertex) -> None:
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello"}]
    raw = sdk.chat.completions.with_raw_response.create(model="gemini-eu", messages=messages)  # type: ignore[arg-type]
    completion = raw.parse()
    assert completion.choices[0].message.content == "Hello from fake Gemini."
    assert raw.headers["x-switchboard-resolved-jurisdiction"] == "eu"
    assert raw.headers["x-switchboard-provider"] == "vertex"
    sent = vertex.requests[-1]
    assert sent.path == f"/v1/projects/{PROJECT}/locations/europe-west4/publishers/google/models/{GEMINI}" \
                        ":generateContent"
    assert sent.json()["systemInstruction"] == {"parts": [{"text": "Be brief."}]}
    row = gw.ledger_row(raw.headers["x-request-id"])
    assert (row["prompt_tokens"], row["cached_prompt_tokens"]) == (12, 4)
    assert row["upstream_model"] == GEMINI and row["jurisdiction"] == "eu"
    assert row["cost_micros"] == exact_micros(GEMINI, row) > 0

    stream = sdk.chat.completions.with_raw_response.create(model="gemini-eu", messages=messages,  # type: ignore[arg-type]
                                                           stream=True, stream_options={"include_usage": True})
    chunks = list(stream.parse())
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Hello from fake Gemini."
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == completion.usage.completion_tokens  # type: ignore[union-attr]
    assert vertex.requests[-1].path.endswith(":streamGenerateContent")
    streamed = gw.ledger_row(stream.headers["x-request-id"])
    assert streamed["cost_micros"] == row["cost_micros"]
    assert len(vertex.token_requests) == 1, "one token served both calls"


def test_claude_in_canada_with_tools_billed_at_google_prices(gw: Gateway, sdk: openai.OpenAI,
                                                             vertex: FakeVertex) -> None:
    raw = sdk.chat.completions.with_raw_response.create(
        model="claude-ca", messages=[{"role": "user", "content": "Hi Claude"}], max_tokens=200)
    completion = raw.parse()
    assert completion.choices[0].message.content == "Hello! You said: Hi Claude"
    assert raw.headers["x-switchboard-resolved-jurisdiction"] == "ca"
    sent = vertex.requests[-1]
    assert sent.path.endswith(f"/locations/northamerica-northeast1/publishers/anthropic/models/{CLAUDE}:rawPredict")
    assert sent.json()["max_tokens"] == 200 and sent.json()["anthropic_version"] == "vertex-2023-10-16"
    row = gw.ledger_row(raw.headers["x-request-id"])
    assert row["upstream_model"] == CLAUDE and row["jurisdiction"] == "ca"
    assert row["cost_micros"] == exact_micros(CLAUDE, row) > 0


def test_a_key_pinned_to_canada_reaches_only_the_canadian_region(gw: Gateway, vertex: FakeVertex) -> None:
    client = openai_client(api_key=gw.create_key(jurisdictions=["ca"]), base_url=gw.base_url + "/v1", max_retries=0)
    assert [m.id for m in client.models.list()] == ["claude-ca"]
    before = len(vertex.requests)
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(model="gemini-eu", messages=[{"role": "user", "content": "x"}])
    assert refused.value.code == "jurisdiction_unavailable" and "It can be served in: eu." in refused.value.message
    assert len(vertex.requests) == before
    raw = client.chat.completions.with_raw_response.create(model="claude-ca",
                                                           messages=[{"role": "user", "content": "x"}])
    assert raw.headers["x-switchboard-resolved-jurisdiction"] == "ca"
    assert "/locations/northamerica-northeast1/" in vertex.requests[-1].path
    client.close()


def test_a_key_google_refuses_is_a_401_that_says_so(sdk: openai.OpenAI, vertex: FakeVertex) -> None:
    before = len(vertex.requests)
    with pytest.raises(openai.AuthenticationError) as info:
        sdk.chat.completions.create(model="gemini-revoked-key", messages=[{"role": "user", "content": "x"}])
    assert "invalid_grant" in info.value.message
    assert len(vertex.requests) == before, "no model call without a token"


def test_without_credentials_the_metadata_server_gives_the_token(sdk: openai.OpenAI, vertex: FakeVertex) -> None:
    completion = sdk.chat.completions.create(model="gemini-workload-identity",
                                             messages=[{"role": "user", "content": "Hi"}])
    assert completion.choices[0].message.content == "Hello from fake Gemini."
    assert vertex.requests[-1].headers["authorization"].startswith("Bearer ya29.fake-metadata-")
    assert "/computeMetadata/v1/instance/service-accounts/default/token" in vertex.metadata_requests


def test_gemini_explicit_caching_in_the_deployments_region(gw: Gateway, sdk: openai.OpenAI,
                                                           vertex: FakeVertex) -> None:
    """LiteLLM's way (a ``cache_control`` mark) on Vertex AI: the entry is made in the deployment's project and
    location, with the service account's token, and its making is billed to the request."""
    document = "The full text of a long contract. " * 300
    raw = sdk.chat.completions.with_raw_response.create(model="gemini-eu-cached", messages=[
        {"role": "system", "content": [{"type": "text", "text": document,  # type: ignore[list-item,typeddict-unknown-key]
                                        "cache_control": {"type": "ephemeral"}}]},
        {"role": "user", "content": "Summarise the contract."}])
    made = [r for r in vertex.requests if r.path.endswith("/cachedContents")]
    assert [r.path for r in made] == [f"/v1/projects/{PROJECT}/locations/europe-west4/cachedContents"]
    assert made[0].headers["authorization"].startswith("Bearer ")
    sent = vertex.requests[-1].json()
    assert sent["cachedContent"].startswith(f"projects/{PROJECT}/locations/europe-west4/cachedContents/")
    row = gw.ledger_row(raw.headers["x-request-id"])
    assert row["cache_write_tokens"] == vertex.caches.entries[sent["cachedContent"]].tokens > 0
