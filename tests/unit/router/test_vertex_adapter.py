"""The Vertex AI adapter: endpoints, OAuth2 tokens from a service-account key, Gemini and Claude, through the
router's own call path (build, authorize, send, translate) against the fake Vertex AI over real HTTP."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from switchboard_router.calls import complete_once
from switchboard_router.catalog.config import CatalogError, parse_catalog
from switchboard_router.deployment import Deployment
from switchboard_router.outcomes import AttemptFailed, StreamChunks, StreamFinished, UnaryResult
from switchboard_router.providers.registry import adapter_for
from switchboard_router.providers.vertex import VertexAdapter
from switchboard_router.routing.health import HealthBoard
from switchboard_router.streaming import stream_once
from switchboard_router.upstream_http import HttpPool
from tests.fakes.vertex_provider import (  # noqa: F401  (fixtures)
    PROJECT,
    FakeVertex,
    fake_vertex_fixture,
    fake_vertex_server_fixture,
    service_account_info,
    service_account_key,
)

HI = {"model": "vertex-public", "messages": [{"role": "user", "content": "Hi"}]}


def deployment(model: str, location: str = "europe-west4", *, api_base: str = "", api_key: str | None = None,
               **extra: Any) -> Deployment:
    return Deployment(id=f"vertex/{model}", public_model="vertex-public", provider="vertex", model=model,
                      api_base=api_base, api_key=api_key,
                      extra={"vertex_project": PROJECT, "vertex_location": location, **extra})


@pytest.fixture
def key_file(tmp_path: Path, fake_vertex: FakeVertex) -> str:
    path = tmp_path / "service-account.json"
    path.write_text(json.dumps(fake_vertex.service_account))
    return str(path)


@pytest.fixture
async def pool() -> AsyncIterator[HttpPool]:
    pool = HttpPool(Deployment(id="x", public_model="x", provider="vertex", model="x", api_base="").timeouts, 10)
    yield pool
    await pool.aclose()


async def complete(pool: HttpPool, target: Deployment, body: dict[str, Any] = HI) -> UnaryResult:
    return await complete_once(pool, HealthBoard(), target, "vertex-public", body, 1, "chat")


# -- endpoints ------------------------------------------------------------------------------------------------


def test_regional_and_global_endpoints() -> None:
    adapter = VertexAdapter()
    regional = adapter.build_request(deployment("gemini-2.5-flash", "northamerica-northeast1"), HI, stream=False)
    assert regional.url == (f"https://northamerica-northeast1-aiplatform.googleapis.com/v1/projects/{PROJECT}"
                            "/locations/northamerica-northeast1/publishers/google/models/gemini-2.5-flash"
                            ":generateContent")
    streamed = adapter.build_request(deployment("gemini-2.5-flash", "global"), HI, stream=True)
    assert streamed.url == (f"https://aiplatform.googleapis.com/v1/projects/{PROJECT}/locations/global"
                            "/publishers/google/models/gemini-2.5-flash:streamGenerateContent?alt=sse")
    claude = adapter.build_request(deployment("claude-sonnet-4-5@20250929", "us-east5"), HI, stream=True)
    assert claude.url == (f"https://us-east5-aiplatform.googleapis.com/v1/projects/{PROJECT}/locations/us-east5"
                          "/publishers/anthropic/models/claude-sonnet-4-5@20250929:streamRawPredict")
    body = orjson.loads(claude.content)
    assert body["anthropic_version"] == "vertex-2023-10-16" and body["stream"] is True and "model" not in body
    assert "Authorization" not in claude.headers, "the token is added by authorize, after the request is built"


def test_catalog_requires_project_and_a_real_location() -> None:
    def catalog(**extra: Any) -> Any:
        return parse_catalog({"models": [{"name": "g", "deployments": [
            {"provider": "vertex", "model": "gemini-2.5-flash", **extra}]}]})

    with pytest.raises(CatalogError, match=r"deployments\[0\]\.vertex_project"):
        catalog(vertex_location="europe-west4")
    with pytest.raises(CatalogError, match=r"vertex_location: 'Europe West'"):
        catalog(vertex_project="p", vertex_location="Europe West")
    live = catalog(vertex_project="p", vertex_location="europe-west4", jurisdiction="eu")
    assert live.models["g"].deployments[0].jurisdiction == "eu"
    assert isinstance(adapter_for("vertex"), VertexAdapter)


# -- tokens ---------------------------------------------------------------------------------------------------


async def test_a_service_account_key_gets_one_token_for_many_calls(fake_vertex: FakeVertex, key_file: str,
                                                                  pool: HttpPool) -> None:
    target = deployment("gemini-good", api_base=fake_vertex.base_url, vertex_credentials=key_file)
    first = await complete(pool, target)
    second = await complete(pool, target)
    assert first.body["choices"][0]["message"]["content"] == "Hello from fake Gemini."
    assert second.usage.cached_prompt_tokens == 4
    assert len(fake_vertex.token_requests) == 1, "the token is kept until it is about to expire"
    assert fake_vertex.token_requests[0]["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"
    sent = fake_vertex.requests[-1]
    assert sent.path == (f"/v1/projects/{PROJECT}/locations/europe-west4/publishers/google/models/gemini-good"
                         ":generateContent")
    assert sent.headers["authorization"].startswith("Bearer ya29.fake-vertex-")


async def test_a_token_about_to_expire_is_refreshed(fake_vertex: FakeVertex, pool: HttpPool) -> None:
    fake_vertex.token_lifetime = 120  # google-auth refreshes 3 min 45 s before expiry: every call here
    target = deployment("gemini-good", api_base=fake_vertex.base_url,
                        vertex_credentials=json.dumps(fake_vertex.service_account))
    await complete(pool, target)
    await complete(pool, target)
    assert len(fake_vertex.token_requests) == 2
    tokens = [r.headers["authorization"] for r in fake_vertex.requests[-2:]]
    assert tokens[0] != tokens[1]


async def test_a_static_access_token_is_sent_as_it_is(fake_vertex: FakeVertex, pool: HttpPool) -> None:
    fake_vertex.static_tokens.add("ya29.static")
    await complete(pool, deployment("gemini-good", api_base=fake_vertex.base_url, api_key="ya29.static"))
    assert fake_vertex.requests[-1].headers["authorization"] == "Bearer ya29.static"
    assert fake_vertex.token_requests == []


async def test_a_key_google_does_not_know_fails_with_401_and_says_why(fake_vertex: FakeVertex,
                                                                     pool: HttpPool) -> None:
    _, other_pem = service_account_key()
    stranger = service_account_info(fake_vertex.token_uri, other_pem)
    with pytest.raises(AttemptFailed) as failure:
        await complete(pool, deployment("gemini-good", api_base=fake_vertex.base_url, vertex_credentials=stranger))
    error = failure.value.error
    assert error.status == 401 and not failure.value.retryable  # type: ignore[union-attr]
    assert "invalid_grant" in error.message and "service account" in error.message
    assert fake_vertex.requests == [], "no model call is made without a token"


async def test_an_unreadable_key_file_fails_the_attempt_with_the_path(fake_vertex: FakeVertex, tmp_path: Path,
                                                                     pool: HttpPool) -> None:
    missing = str(tmp_path / "nope.json")
    with pytest.raises(AttemptFailed) as failure:
        await complete(pool, deployment("gemini-good", api_base=fake_vertex.base_url, vertex_credentials=missing))
    assert failure.value.error.status == 503 and missing in failure.value.error.message  # type: ignore[union-attr]


async def test_a_project_the_token_may_not_use_is_403(fake_vertex: FakeVertex, key_file: str,
                                                      pool: HttpPool) -> None:
    target = deployment("gemini-good", api_base=fake_vertex.base_url, vertex_credentials=key_file)
    target.extra["vertex_project"] = "someone-else"
    with pytest.raises(AttemptFailed) as failure:
        await complete(pool, target)
    assert failure.value.error.status == 403  # type: ignore[union-attr]
    assert "PERMISSION_DENIED" in failure.value.error.type  # type: ignore[union-attr]


# -- Gemini and Claude streams ---------------------------------------------------------------------------------


async def test_gemini_stream(fake_vertex: FakeVertex, key_file: str, pool: HttpPool) -> None:
    target = deployment("gemini-good", api_base=fake_vertex.base_url, vertex_credentials=key_file)
    items = [item async for item in stream_once(pool, HealthBoard(), target, "vertex-public", HI, 1, True)]
    text = "".join(c["choices"][0]["delta"].get("content") or "" for item in items if isinstance(item, StreamChunks)
                   for c in map(orjson.loads, item.chunks) if c["choices"])
    assert text == "Hello from fake Gemini."
    finished = items[-1]
    assert isinstance(finished, StreamFinished) and finished.error is None
    assert finished.usage.prompt_tokens == 12 and finished.usage.reported_by_provider
    assert fake_vertex.requests[-1].query == {"alt": ["sse"]}


async def test_claude_on_vertex_whole_and_streamed_with_cache_marks(fake_vertex: FakeVertex, key_file: str,
                                                                    pool: HttpPool) -> None:
    target = deployment("claude-sonnet-4-5@20250929", "us-east5", api_base=fake_vertex.base_url,
                        vertex_credentials=key_file)
    rules = {"role": "system", "content": "House rules. " * 500}
    body = {"model": "vertex-public", "messages": [rules, {"role": "user", "content": "Hi"}]}
    whole = await complete(pool, target, body)
    assert whole.body["choices"][0]["message"]["content"] == "Hello! You said: Hi"
    sent = fake_vertex.requests[-1].json()
    assert sent["system"][0]["cache_control"] == {"type": "ephemeral"}, "Claude on Vertex gets cache marks too"
    assert sent["anthropic_version"] == "vertex-2023-10-16"
    items = [item async for item in stream_once(pool, HealthBoard(), target, "vertex-public", body, 1, True)]
    finished = items[-1]
    assert isinstance(finished, StreamFinished) and finished.error is None
    assert finished.usage.completion_tokens == whole.usage.completion_tokens
    assert fake_vertex.requests[-1].path.endswith(":streamRawPredict")


async def test_claude_errors_keep_anthropics_shape(fake_vertex: FakeVertex, key_file: str, pool: HttpPool) -> None:
    target = deployment("claude-ratelimit", api_base=fake_vertex.base_url, vertex_credentials=key_file)
    with pytest.raises(AttemptFailed) as failure:
        await complete(pool, target)
    error = failure.value.error
    assert (error.status, error.type, error.retry_after) == (429, "rate_limit_error", 7.0)  # type: ignore[union-attr]
