"""Data residency end to end: jurisdictions on keys, teams and requests, the gateway's default tier and
jurisdictions, and model lists that list what succeeds.

Four real processes started with ``SWITCHBOARD_DEFAULT_PRIVACY_TIER=managed_regional_cloud`` and
``SWITCHBOARD_DEFAULT_JURISDICTIONS=ca,eu``, and a fake OpenAI provider that records every request; each
deployment has its own upstream key, so the provider's record says which deployment each call reached. The
official ``openai`` and ``anthropic`` SDKs are the clients; internal callers use the router's gRPC client.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import openai
import pytest

from switchboard_common.errors import ServiceError
from switchboard_router.client import SwitchboardRouter
from tests.conftest import FAKE_PRICES
from tests.fakes.openai_provider import FakeOpenAI
from tests.fakes.server import BackgroundServer
from tests.harness import Gateway, start_gateway
from tests.sdk_clients import anthropic_client, openai_client

#: Deployment id → (upstream behaviour, privacy tier, jurisdiction).
DEPLOYMENTS = {
    "chat-us1": ("echo", "standard", "us"), "chat-us2": ("echo", "standard", "us"),
    "chat-ca-flaky": ("flaky", "managed_regional_cloud", "ca"),
    "chat-ca-down": ("down", "managed_regional_cloud", "ca"),
    "backup-ca": ("echo", "managed_regional_cloud", "ca"), "backup-us": ("echo", "standard", "us"),
    "us-only": ("echo", "standard", "us"), "eu-zr": ("echo", "zero_retention", "eu"),
    "ca-std": ("echo", "standard", "ca"),
}
MODELS = {"chat": ["chat-us1", "chat-us2", "chat-ca-flaky", "chat-ca-down"], "backup": ["backup-ca", "backup-us"],
          "us-only": ["us-only"], "eu-zr": ["eu-zr"], "ca-std": ["ca-std"]}
IN_CA = {d for d, (_, _, place) in DEPLOYMENTS.items() if place == "ca"}


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[FakeOpenAI, str]]:
    app = FakeOpenAI()
    server = BackgroundServer(app).start()
    yield app, server.url + "/v1"
    server.stop()


@pytest.fixture(scope="module")
def provider(served: tuple[FakeOpenAI, str]) -> FakeOpenAI:
    return served[0]


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory, served: tuple[FakeOpenAI, str]) -> Iterator[Gateway]:
    def dep(dep_id: str) -> dict[str, object]:
        upstream, tier, place = DEPLOYMENTS[dep_id]
        return {"id": dep_id, "provider": "openai", "model": upstream, "api_base": served[1],
                "api_key": f"up-{dep_id}", "privacy_tier": tier, "jurisdiction": place, **FAKE_PRICES}

    models: list[dict[str, object]] = [
        {"name": name, "deployments": [dep(d) for d in deps], **({"fallbacks": ["backup"]} if name == "chat" else {})}
        for name, deps in MODELS.items()]
    gateway = start_gateway(tmp_path_factory.mktemp("residency"), models, extra_env={
        "SWITCHBOARD_DEFAULT_PRIVACY_TIER": "managed_regional_cloud", "SWITCHBOARD_DEFAULT_JURISDICTIONS": "ca,eu"})
    yield gateway
    gateway.stop()


_CLIENTS: list[Any] = []


@pytest.fixture(autouse=True)
def close_clients() -> Iterator[None]:
    yield
    while _CLIENTS:
        _CLIENTS.pop().close()


def sdk(gw: Gateway, key: str, path: str = "/v1") -> openai.OpenAI:
    client = openai_client(api_key=key, base_url=gw.base_url + path, max_retries=0, timeout=20)
    _CLIENTS.append(client)
    return client


def claude(gw: Gateway, key: str) -> anthropic.Anthropic:
    client = anthropic_client(api_key=key, base_url=gw.base_url, max_retries=0, timeout=20)
    _CLIENTS.append(client)
    return client


def reached(provider: FakeOpenAI, marker: str) -> list[str]:
    """The deployments the provider saw calls from for requests carrying ``marker`` (in order)."""
    return [r.headers["authorization"].removeprefix("Bearer up-") for r in provider.requests
            if marker in str(r.body)]


def ask(client: openai.OpenAI, model: str, marker: str, stream: bool = False, **extra: Any) -> Any:
    """A chat request (its raw response); a stream is read to its end."""
    raw = client.chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": marker}], stream=stream, **extra)
    answer = raw.parse()
    if stream:
        text = "".join(chunk.choices[0].delta.content or "" for chunk in answer if chunk.choices)
        assert text, "the stream carried no text"
    return raw


def error_of(excinfo: pytest.ExceptionInfo[openai.APIStatusError]) -> dict[str, Any]:
    return excinfo.value.body  # type: ignore[return-value]


def test_a_key_pinned_to_ca_is_served_only_in_ca_across_retries_and_fallbacks(gw: Gateway,
                                                                              provider: FakeOpenAI) -> None:
    client = sdk(gw, gw.create_key(privacy_tier="standard", jurisdictions=["ca"]))
    for i in range(6):
        marker = f"pinned-{uuid.uuid4().hex}"
        raw = ask(client, "chat", marker, stream=bool(i % 2))
        # Both Canadian deployments of "chat" fail (flaky, down); the third attempt is the fallback's Canadian one.
        assert raw.headers["x-switchboard-resolved-jurisdiction"] == "ca"
        assert raw.headers["x-switchboard-deployment"] == "backup-ca" and raw.headers["x-switchboard-attempts"] == "3"
        calls = reached(provider, marker)
        assert set(calls) <= IN_CA and set(calls) == {"chat-ca-flaky", "chat-ca-down", "backup-ca"}, calls


def test_a_request_asking_ca_never_reaches_us_and_the_ask_never_reaches_the_provider(
        gw: Gateway, provider: FakeOpenAI) -> None:
    anywhere = gw.create_key(privacy_tier="standard", jurisdictions=["*"])
    client = sdk(gw, anywhere)
    markers = []
    header = {"x-switchboard-jurisdiction": "ca"}
    for i, how in enumerate(({"extra_headers": {"x-switchboard-jurisdiction": "CA"}},
                             {"extra_body": {"jurisdiction": "ca"}}, {"extra_body": {"jurisdiction": ["ca"]}},
                             {"extra_headers": header, "extra_body": {"jurisdiction": "ca"}})):
        marker = f"asked-{uuid.uuid4().hex}"
        markers.append(marker)
        raw = ask(client, "chat", marker, stream=bool(i % 2), **how)
        assert raw.headers["x-switchboard-resolved-jurisdiction"] == "ca"
    marker = f"asked-{uuid.uuid4().hex}"
    markers.append(marker)
    message = claude(gw, anywhere).messages.with_raw_response.create(
        model="backup", max_tokens=20, messages=[{"role": "user", "content": marker}],
        extra_headers={"x-switchboard-jurisdiction": "ca"})
    assert message.headers["x-switchboard-resolved-jurisdiction"] == "ca"
    for marker in markers:
        assert reached(provider, marker) and set(reached(provider, marker)) <= IN_CA
    bodies = [r.body for r in provider.requests if any(m in str(r.body) for m in markers)]
    assert bodies and all("jurisdiction" not in body for body in bodies)
    unasked = f"unasked-{uuid.uuid4().hex}"  # the same key without an ask may be served in the US
    assert ask(client, "us-only", unasked).headers["x-switchboard-resolved-jurisdiction"] == "us"


def test_an_ask_the_key_does_not_allow_or_no_deployment_can_serve_is_refused_naming_jurisdictions(
        gw: Gateway, provider: FakeOpenAI) -> None:
    pinned = sdk(gw, gw.create_key(privacy_tier="standard", jurisdictions=["ca"]))
    marker = f"refused-{uuid.uuid4().hex}"
    with pytest.raises(openai.BadRequestError) as wider:
        ask(pinned, "chat", marker, extra_headers={"x-switchboard-jurisdiction": "us"})
    assert error_of(wider)["code"] == "jurisdiction_not_allowed"
    assert "served only in ca; the request asked for us" in error_of(wider)["message"]
    anywhere = gw.create_key(privacy_tier="standard", jurisdictions=["*"])
    with pytest.raises(openai.BadRequestError) as nowhere:
        ask(sdk(gw, anywhere), "us-only", marker, extra_body={"jurisdiction": "eu"})
    assert error_of(nowhere)["code"] == "jurisdiction_unavailable" and error_of(nowhere)["param"] == "jurisdiction"
    assert "It can be served in: us." in error_of(nowhere)["message"]
    # The request narrowed where it may be served: widening its own ask is the way out, not another key.
    assert error_of(nowhere)["message"].endswith("ask for jurisdictions it can be served in, or none (this key "
                                                 "allows: any).")
    with pytest.raises(openai.BadRequestError) as imposed:  # the key's own set is the key's: another key helps
        ask(pinned, "us-only", marker)
    assert error_of(imposed)["code"] == "jurisdiction_unavailable"
    assert error_of(imposed)["message"].endswith("or a key allowed there (a request may narrow its key's "
                                                 "jurisdictions, never widen them).")
    with pytest.raises(anthropic.BadRequestError) as in_claude_dialect:
        claude(gw, anywhere).messages.create(model="eu-zr", max_tokens=20,
                                             messages=[{"role": "user", "content": marker}],
                                             extra_headers={"x-switchboard-jurisdiction": "ca,us"})
    body = in_claude_dialect.value.body
    assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"  # type: ignore[index]
    assert "It can be served in: eu." in body["error"]["message"]  # type: ignore[index]
    with pytest.raises(openai.BadRequestError) as conflict:
        ask(sdk(gw, anywhere), "chat", marker, extra_headers={"x-switchboard-jurisdiction": "ca"},
            extra_body={"jurisdiction": "eu"})
    assert error_of(conflict)["code"] == "conflicting_jurisdiction"
    with pytest.raises(openai.BadRequestError) as unreadable:
        ask(sdk(gw, anywhere), "chat", marker, extra_body={"jurisdiction": "c a"})
    assert error_of(unreadable)["code"] == "invalid_jurisdiction"
    assert reached(provider, marker) == []


def test_the_gateway_defaults_protect_a_key_that_sets_nothing(gw: Gateway, provider: FakeOpenAI) -> None:
    key = gw.create_key(key_alias="unpinned")
    info = httpx.get(f"{gw.base_url}/key/info", headers={"Authorization": f"Bearer {key}"}).json()["info"]
    assert info["privacy_tier"] is None and info["jurisdictions"] == []
    assert info["effective"] == {"models": [], "privacy_tier": "managed_regional_cloud",
                                 "privacy_tier_source": "gateway", "jurisdictions": ["ca", "eu"],
                                 "jurisdictions_source": "gateway", "pii_policy": None}
    client = sdk(gw, key)
    for i in range(4):
        marker = f"default-{uuid.uuid4().hex}"
        assert ask(client, "chat", marker, stream=bool(i % 2)).headers["x-switchboard-privacy-tier"] != "standard"
        assert set(reached(provider, marker)) <= IN_CA
    for model in ("us-only", "ca-std"):  # standard-tier deployments only
        with pytest.raises(openai.BadRequestError) as refused:
            ask(client, model, "never")
        assert error_of(refused)["code"] == "privacy_tier_unavailable"
    assert ask(client, "eu-zr", f"default-{uuid.uuid4().hex}").headers["x-switchboard-resolved-jurisdiction"] == "eu"


def succeeds(client: openai.OpenAI, model: str) -> bool:
    try:
        ask(client, model, f"probe-{uuid.uuid4().hex}")
    except (openai.BadRequestError, openai.PermissionDeniedError):
        return False
    return True


def connect_page_models(gw: Gateway, key: str) -> set[str]:
    """The model names the dashboard's Connect Cursor page shows the key."""
    with httpx.Client(base_url=gw.base_url, timeout=15) as browser:
        token = re.search(r'name="csrf_token" value="([^"]+)"', browser.get("/ui/login").text)
        assert token is not None
        assert browser.post("/ui/login", data={"csrf_token": token.group(1), "api_key": key}).status_code == 303
        page = browser.get("/ui/connect").text
        models_page = browser.get("/ui/models").text
    [listing] = re.findall(r'<ul class="names" id="model-names">(.*?)</ul>', page, re.S)
    names = set(re.findall(r"<code>([^<]+)</code>", listing))
    assert all(f">{name}<" in models_page for name in names)
    return names


@pytest.mark.parametrize(("spec", "expected"), [
    ({}, {"chat", "backup", "eu-zr"}),
    ({"privacy_tier": "standard", "jurisdictions": ["ca"]}, {"chat", "backup", "ca-std"}),
    ({"privacy_tier": "standard", "jurisdictions": ["*"]}, set(MODELS)),
    ({"privacy_tier": "standard", "jurisdictions": "eu"}, {"eu-zr"}),
    ({"privacy_tier": "zero_retention", "jurisdictions": ["*"], "models": ["eu-zr"]}, {"eu-zr"}),
])
def test_model_lists_list_exactly_what_succeeds(gw: Gateway, spec: dict[str, Any], expected: set[str]) -> None:
    key = gw.create_key(**spec)
    client = sdk(gw, key)
    listed = {m.id for m in client.models.list()}
    assert {m.id for m in sdk(gw, key, "/cursor").models.list()} == listed
    assert listed == {m for m in MODELS if succeeds(client, m)} == expected
    assert connect_page_models(gw, key) == listed


def generate(gw: Gateway, **spec: Any) -> httpx.Response:
    return httpx.post(f"{gw.base_url}/key/generate", json=spec, headers=gw.admin(), timeout=10)


def post(gw: Gateway, path: str, **body: Any) -> httpx.Response:
    return httpx.post(f"{gw.base_url}{path}", json=body, headers=gw.admin(), timeout=10)


def test_key_writes_refuse_a_listed_model_the_key_could_never_reach(gw: Gateway) -> None:
    refused = generate(gw, models=["us-only", "chat"], privacy_tier="standard", jurisdictions=["ca"])
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "model_unreachable"
    message = refused.json()["error"]["message"]
    assert "'us-only'" in message and "'chat'" not in message and "at that tier in us" in message
    by_default = generate(gw, models=["us-only"])  # the gateway's default tier and jurisdictions apply
    assert by_default.status_code == 400 and "only below that tier (in us)" in by_default.json()["error"]["message"]
    made = generate(gw, models=["us-only", "chat"], privacy_tier="standard", jurisdictions="*")
    assert made.status_code == 200 and made.json()["effective"]["jurisdictions"] == []
    key_id = made.json()["key_id"]
    narrowed = post(gw, "/key/update", key=key_id, jurisdictions=["ca"])
    assert narrowed.status_code == 400 and "'us-only'" in narrowed.json()["error"]["message"]
    assert post(gw, "/key/regenerate", key=key_id, jurisdictions=["ca"]).status_code == 400
    info = httpx.get(f"{gw.base_url}/key/info", params={"key": key_id}, headers=gw.admin()).json()["info"]
    assert info["jurisdictions"] == ["*"]  # nothing was written
    fixed = post(gw, "/key/update", key=key_id, models=["chat"], jurisdictions=["CA"])
    assert fixed.status_code == 200 and fixed.json()["jurisdictions"] == ["ca"]
    assert post(gw, "/key/update", key=key_id, rpm_limit=5).status_code == 200
    typo = generate(gw, jurisdiction="ca")
    assert typo.status_code == 400 and typo.json()["error"]["code"] == "unknown_field"
    assert "Did you mean 'jurisdictions'?" in typo.json()["error"]["message"]
    bad = generate(gw, jurisdictions=["c a"])
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_jurisdiction"


def test_a_team_s_jurisdictions_bound_its_keys(gw: Gateway) -> None:
    team = post(gw, "/team/new", team_alias="canada-eu", jurisdictions=["ca", "eu"], privacy_tier="standard").json()
    assert team["jurisdictions"] == ["ca", "eu"]
    wider = generate(gw, team_id=team["team_id"], jurisdictions=["us"])
    assert wider.status_code == 400 and wider.json()["error"]["code"] == "jurisdiction_not_in_team"
    assert generate(gw, team_id=team["team_id"], jurisdictions="*").status_code == 400
    member = generate(gw, team_id=team["team_id"]).json()
    effective = member["effective"]
    assert effective["jurisdictions"] == ["ca", "eu"] and effective["jurisdictions_source"] == "team"
    assert effective["privacy_tier"] == "standard" and effective["privacy_tier_source"] == "team"
    pinned = generate(gw, team_id=team["team_id"], jurisdictions=["ca"]).json()
    assert pinned["effective"]["jurisdictions"] == ["ca"]
    narrowing = post(gw, "/team/update", team_id=team["team_id"], jurisdictions=["eu"])
    assert narrowing.status_code == 400 and narrowing.json()["error"]["code"] == "jurisdiction_not_in_team"
    assert post(gw, "/team/update", team_id=team["team_id"], jurisdictions=["ca"]).status_code == 200
    client = sdk(gw, member["key"])
    assert ask(client, "ca-std", f"team-{uuid.uuid4().hex}").headers["x-switchboard-resolved-jurisdiction"] == "ca"
    with pytest.raises(openai.BadRequestError):
        ask(client, "us-only", "never")


async def test_internal_callers_over_grpc_get_the_same_jurisdictions(gw: Gateway) -> None:
    address = gw.env["SWITCHBOARD_ROUTER_ADDRESS"]
    hi = [{"role": "user", "content": f"grpc-{uuid.uuid4().hex}"}]
    pinned = gw.create_key(privacy_tier="standard", jurisdictions=["ca"])
    async with SwitchboardRouter(address, api_key=pinned) as router:
        assert sorted(m.name for m in await router.list_models()) == ["backup", "ca-std", "chat"]
        assert (await router.complete("chat", hi)).route.jurisdiction == "ca"
    async with SwitchboardRouter(address, api_key=pinned, jurisdictions=["us"]) as router:
        with pytest.raises(ServiceError) as refused:
            await router.complete("chat", hi)
        assert refused.value.error.code == "jurisdiction_not_allowed"
    anywhere = gw.create_key(privacy_tier="standard", jurisdictions=["*"])
    async with SwitchboardRouter(address, api_key=anywhere, jurisdictions=["eu"]) as router:
        assert [m.name for m in await router.list_models()] == ["eu-zr"]
        assert (await router.complete("eu-zr", hi)).route.jurisdiction == "eu"
    unpinned = gw.create_key()  # the gateway's defaults apply to direct callers too
    async with SwitchboardRouter(address, api_key=unpinned) as router:
        with pytest.raises(ServiceError) as protected:
            await router.complete("us-only", hi)
        assert protected.value.error.code == "privacy_tier_unavailable"


def test_a_listed_model_shows_the_deployments_that_may_serve_the_key(gw: Gateway) -> None:
    key = gw.create_key(privacy_tier="standard", jurisdictions=["ca"])
    listing = httpx.get(f"{gw.base_url}/v1/models", headers={"Authorization": f"Bearer {key}"}).json()["data"]
    chat = next(m for m in listing if m["id"] == "chat")["switchboard"]
    assert [d["deployment_id"] for d in chat["deployments"]] == ["chat-ca-flaky", "chat-ca-down"]
    assert chat["jurisdiction"] == "ca" and chat["privacy_tier"] == "managed_regional_cloud"
    assert all(d["jurisdiction"] == "ca" and d["input_cost_per_million"] == "2.5" for d in chat["deployments"])
