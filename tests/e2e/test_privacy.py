"""Privacy end to end: PII policies, privacy tiers and custody headers through the running gateway.

Four real processes and a fake OpenAI provider that records every request it receives; the official
``openai`` SDK is the client. The last test searches every file the gateway wrote (data directory and
logs) for the original values.
"""

from __future__ import annotations

import json
import math
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from switchboard_router.privacy import scan_request
from tests.conftest import FAKE_PRICES
from tests.fakes.openai_provider import FakeOpenAI
from tests.fakes.server import BackgroundServer
from tests.harness import Gateway, start_gateway
from tests.sdk_clients import openai_client

EMAIL = "jane.doe@example.com"
CARD = "4111 1111 1111 1111"
SECRET = "sk-proj-" + "Q1w2E3r4T5y6U7i8O9p0A1s2D3f4G5h6J7k8L9z0X1c2V3b4"
TOOL_EMAIL = "billing.lead@corp-example.org"
IBAN = "GB82 WEST 1234 5698 7654 32"
ORIGINALS = (EMAIL, CARD, SECRET, TOOL_EMAIL, IBAN)
CUSTODY_RE = re.compile(r"^facade@[^>@]+:\d+>router@[^>@]+:\d+>openai:(?P<deployment>[\w/.-]+)$")


@pytest.fixture(scope="module")
def provider() -> Iterator[tuple[FakeOpenAI, str]]:
    app = FakeOpenAI()
    server = BackgroundServer(app).start()
    yield app, server.url + "/v1"
    server.stop()


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory, provider: tuple[FakeOpenAI, str]) -> Iterator[Gateway]:
    base = provider[1]

    def dep(model: str, dep_id: str, tier: str, jurisdiction: str) -> dict[str, object]:
        return {"id": dep_id, "provider": "openai", "model": model, "api_base": base, "api_key": "sk-upstream",
                "privacy_tier": tier, "jurisdiction": jurisdiction, **FAKE_PRICES}

    models = [
        {"name": "fake-echo", "deployments": [dep("echo", "echo/std", "standard", "us")]},
        {"name": "tiered-echo", "deployments": [dep("echo", "tiered/std", "standard", "us"),
                                                dep("echo", "tiered/mrc", "managed_regional_cloud", "ca"),
                                                dep("echo", "tiered/zr", "zero_retention", "eu")]},
        {"name": "standard-only", "deployments": [dep("echo", "only/std", "standard", "us")]},
        {"name": "regional-only", "deployments": [dep("echo", "regional/mrc", "managed_regional_cloud", "ca")]},
        {"name": "privacy-embed", "deployments": [dep("embed", "embed/zr", "zero_retention", "eu")]},
        {"name": "zr-down", "fallbacks": ["standard-only"],
         "deployments": [dep("down", "down/zr", "zero_retention", "eu")]},
    ]
    gateway = start_gateway(tmp_path_factory.mktemp("privacy-gateway"), models)
    yield gateway
    gateway.stop()


_OPEN_CLIENTS: list[openai.OpenAI] = []


def client(gw: Gateway, key: str) -> openai.OpenAI:
    sdk = openai_client(api_key=key, base_url=f"{gw.base_url}/v1", max_retries=0, timeout=20)
    _OPEN_CLIENTS.append(sdk)
    return sdk


@pytest.fixture(autouse=True)
def close_clients() -> Iterator[None]:
    yield
    while _OPEN_CLIENTS:
        _OPEN_CLIENTS.pop().close()


def received(provider: FakeOpenAI, marker: str) -> list[dict[str, Any]]:
    """Bodies the provider received for the requests carrying ``marker``."""
    return [r.body for r in provider.requests if marker in json.dumps(r.body)]


def conversation(marker: str, padding: int = 0) -> list[dict[str, Any]]:
    """A chat with values in user text, in an assistant tool call and in a tool result."""
    return [
        {"role": "user", "content": f"{marker} find the invoice of {TOOL_EMAIL}"},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "call_1", "type": "function", "function": {
            "name": "find_invoice", "arguments": json.dumps({"customer": TOOL_EMAIL, "iban": IBAN})}}]},
        {"role": "tool", "tool_call_id": "call_1",
         "content": json.dumps({"card": CARD, "owner": TOOL_EMAIL, "note": f"api key {SECRET}"})},
        {"role": "user",
         "content": f"{marker} Reply to {EMAIL}: card {CARD} is charged, key {SECRET} rotated." + "!" * padding},
    ]


def last_user_text(marker: str, padding: int = 0) -> str:
    return str(conversation(marker, padding)[-1]["content"])


def straddles(text: str, pieces: int) -> bool:
    """Whether cutting ``text`` in ``pieces`` equal parts (as the fake streams it) splits a placeholder."""
    step = math.ceil(len(text) / pieces)
    spans = [(m.start(), m.end()) for m in re.finditer(r"\[\[[A-Z]+_\d+\]\]", text)]
    return any(start < cut < end for start, end in spans for cut in range(step, len(text), step))


def assert_clean(bodies: list[dict[str, Any]]) -> None:
    assert bodies, "the provider received nothing for this request"
    for body in bodies:
        raw = json.dumps(body)
        for original in ORIGINALS:
            assert original not in raw and json.dumps(original)[1:-1] not in raw, original


def test_substitute_unary_hides_values_everywhere_and_restores_the_answer(
        gw: Gateway, provider: tuple[FakeOpenAI, str]) -> None:
    key = gw.create_key(pii_policy="substitute")
    marker = uuid.uuid4().hex
    raw = client(gw, key).chat.completions.with_raw_response.create(model="fake-echo",
                                                                    messages=conversation(marker))  # type: ignore[arg-type]
    answer = raw.parse()
    assert answer.choices[0].message.content == last_user_text(marker)
    bodies = received(provider[0], marker)
    assert_clean(bodies)
    sent = bodies[0]["messages"]
    arguments = json.loads(sent[1]["tool_calls"][0]["function"]["arguments"])  # still valid JSON
    assert arguments["customer"].startswith("[[EMAIL_") and arguments["iban"].startswith("[[IBAN_")
    assert json.loads(sent[2]["content"])["card"].startswith("[[CARD_")
    assert raw.headers["x-switchboard-pii"] == "card=1,email=2,iban=1,secret=1"
    assert raw.headers["x-switchboard-request-id"].startswith("req_")


def test_substitute_stream_restores_placeholders_split_across_chunks(
        gw: Gateway, provider: tuple[FakeOpenAI, str]) -> None:
    key = gw.create_key(pii_policy="substitute")
    marker = uuid.uuid4().hex
    # The fake streams the echoed text in four equal pieces; pad the text so that a cut falls inside a
    # placeholder (computed with the router's own substitution, then checked on what the provider got).
    padding = next(n for n in range(40) if straddles(
        scan_request({"messages": conversation(marker, n)}, "substitute").body["messages"][-1]["content"], 4))
    with client(gw, key).chat.completions.with_streaming_response.create(
            model="fake-echo", messages=conversation(marker, padding), stream=True) as response:  # type: ignore[arg-type]
        assert response.headers["x-switchboard-pii"] == "card=1,email=2,iban=1,secret=1"
        pieces = [c.choices[0].delta.content or "" for c in response.parse() if c.choices]
    assert "".join(pieces) == last_user_text(marker, padding)
    bodies = received(provider[0], marker)
    assert_clean(bodies)
    assert straddles(bodies[0]["messages"][-1]["content"], 4)


def test_mask_replaces_values_for_good(gw: Gateway, provider: tuple[FakeOpenAI, str]) -> None:
    key = gw.create_key(pii_policy="mask")
    marker = uuid.uuid4().hex
    raw = client(gw, key).chat.completions.with_raw_response.create(model="fake-echo",
                                                                    messages=conversation(marker))  # type: ignore[arg-type]
    content = raw.parse().choices[0].message.content or ""
    assert "[[EMAIL]]" in content and "[[CARD]]" in content and "[[SECRET]]" in content
    assert not any(original in content for original in ORIGINALS)
    assert_clean(received(provider[0], marker))
    assert raw.headers["x-switchboard-pii"] == "card=1,email=2,iban=1,secret=1"


def test_block_refuses_naming_kinds_and_counts_only(gw: Gateway, provider: tuple[FakeOpenAI, str]) -> None:
    key = gw.create_key(pii_policy="block")
    marker = uuid.uuid4().hex
    for stream in (False, True):
        with pytest.raises(openai.BadRequestError) as caught:
            client(gw, key).chat.completions.create(model="fake-echo", messages=conversation(marker),  # type: ignore[arg-type]
                                                    stream=stream)
        message = caught.value.message
        assert "2 email" in message and "1 card" in message and "1 secret" in message and "1 iban" in message
        assert not any(original in message for original in ORIGINALS)
        assert caught.value.code == "pii_blocked"
        # What was found is stated on the refusal and in its ledger row, as for a served request.
        assert caught.value.response.headers["x-switchboard-pii"] == "card=1,email=2,iban=1,secret=1"
        row = gw.ledger_row(caught.value.response.headers["x-switchboard-request-id"])
        assert (row["status"], row["pii"], row["pii_policy"]) == ("error", "card=1,email=2,iban=1,secret=1", "block")
    assert received(provider[0], marker) == []
    clean = client(gw, key).chat.completions.with_raw_response.create(
        model="fake-echo", messages=[{"role": "user", "content": f"{marker} nothing personal"}])
    assert clean.headers["x-switchboard-pii"] == "none"


def test_policy_off_passes_values_through_and_says_so(gw: Gateway, provider: tuple[FakeOpenAI, str]) -> None:
    key = gw.create_key()
    marker = uuid.uuid4().hex
    visible = "plain.visible@example.net"
    raw = client(gw, key).chat.completions.with_raw_response.create(
        model="fake-echo", messages=[{"role": "user", "content": f"{marker} {visible}"}])
    assert raw.headers["x-switchboard-pii"] == "off"
    assert visible in json.dumps(received(provider[0], marker))


def test_pinned_key_is_served_only_at_its_tier_or_stricter(gw: Gateway, provider: tuple[FakeOpenAI, str]) -> None:
    key = gw.create_key(privacy_tier="managed_regional_cloud")
    sdk = client(gw, key)
    seen = set()
    for _ in range(12):
        raw = sdk.chat.completions.with_raw_response.create(model="tiered-echo",
                                                            messages=[{"role": "user", "content": "hi"}])
        deployment = raw.headers["x-switchboard-deployment"]
        seen.add(deployment)
        match = CUSTODY_RE.match(raw.headers["x-switchboard-custody-path"])
        assert match and match["deployment"] == deployment
        assert raw.headers["x-switchboard-privacy-tier"] in ("managed_regional_cloud", "zero_retention")
        assert raw.headers["x-switchboard-resolved-jurisdiction"] == {"tiered/mrc": "ca", "tiered/zr": "eu"}[deployment]
    assert seen <= {"tiered/mrc", "tiered/zr"}
    # The request may tighten the pin, by header or by body field ...
    for extra in ({"extra_headers": {"x-switchboard-privacy-tier": "zero_retention"}},
                  {"extra_body": {"privacy_tier": "zero_retention"}}):
        raw = sdk.chat.completions.with_raw_response.create(model="tiered-echo",
                                                            messages=[{"role": "user", "content": "hi"}], **extra)
        assert raw.headers["x-switchboard-deployment"] == "tiered/zr"
    # ... never loosen it.
    for extra in ({"extra_headers": {"x-switchboard-privacy-tier": "standard"}},
                  {"extra_body": {"privacy_tier": "standard"}}):
        with pytest.raises(openai.BadRequestError) as caught:
            sdk.chat.completions.create(model="tiered-echo", messages=[{"role": "user", "content": "hi"}], **extra)
        assert "pinned to privacy tier 'managed_regional_cloud'" in caught.value.message


def test_no_qualifying_deployment_is_a_clear_error_never_a_silent_route(
        gw: Gateway, provider: tuple[FakeOpenAI, str]) -> None:
    key = gw.create_key(privacy_tier="zero_retention")
    marker = uuid.uuid4().hex
    with pytest.raises(openai.BadRequestError) as caught:
        client(gw, key).chat.completions.create(model="standard-only",
                                                messages=[{"role": "user", "content": marker}])
    assert "'zero_retention'" in caught.value.message and caught.value.code == "privacy_tier_unavailable"
    # The zero-retention deployment fails; its fallback model is standard-only: retries and the fallback
    # must not leave the tier.
    for stream in (False, True):
        with pytest.raises(openai.APIStatusError):
            client(gw, key).chat.completions.create(model="zr-down", stream=stream,
                                                    messages=[{"role": "user", "content": marker}])
    models = {body["model"] for body in received(provider[0], marker)}
    assert models == {"down"}


def test_a_tier_no_deployment_meets_is_refused_with_advice_that_fits_where_the_tier_came_from(
        gw: Gateway) -> None:
    """A looser key cannot help a request that itself asked for the stricter tier: the advice is then to ask for
    a looser one; only a tier the key imposes is met by a key with a looser tier."""
    pinned = client(gw, gw.create_key(privacy_tier="managed_regional_cloud"))
    hi = [{"role": "user", "content": "hi"}]
    with pytest.raises(openai.BadRequestError) as asked:
        pinned.chat.completions.create(model="regional-only", messages=hi,
                                       extra_body={"privacy_tier": "zero_retention"})
    assert asked.value.code == "privacy_tier_unavailable" and "'zero_retention'" in asked.value.message
    assert "ask for a looser privacy tier (this key is pinned to 'managed_regional_cloud'" in asked.value.message
    assert "a key with a looser tier" not in asked.value.message
    with pytest.raises(openai.BadRequestError) as unpinned:
        client(gw, gw.create_key()).chat.completions.create(
            model="regional-only", messages=hi, extra_headers={"x-switchboard-privacy-tier": "zero_retention"})
    assert "ask for a looser privacy tier, or none." in unpinned.value.message
    assert "a key with a looser tier" not in unpinned.value.message
    # The key's own pin, asked again or not asked at all, is the key's: a key with a looser tier is the way out.
    for extra in ({}, {"extra_body": {"privacy_tier": "managed_regional_cloud"}}):
        with pytest.raises(openai.BadRequestError) as imposed:
            pinned.chat.completions.create(model="standard-only", messages=hi, **extra)
        assert imposed.value.code == "privacy_tier_unavailable"
        assert imposed.value.message.endswith("or a key with a looser tier.")


def test_unpinned_key_takes_the_tier_from_the_request(gw: Gateway, provider: tuple[FakeOpenAI, str]) -> None:
    key = gw.create_key()
    sdk = client(gw, key)
    marker = uuid.uuid4().hex
    raw = sdk.chat.completions.with_raw_response.create(model="tiered-echo",
                                                        messages=[{"role": "user", "content": marker}],
                                                        extra_body={"privacy_tier": "zero_retention"})
    assert raw.headers["x-switchboard-deployment"] == "tiered/zr"
    assert all("privacy_tier" not in body for body in received(provider[0], marker))
    with pytest.raises(openai.BadRequestError) as unknown:
        sdk.chat.completions.create(model="tiered-echo", messages=[{"role": "user", "content": "hi"}],
                                    extra_headers={"x-switchboard-privacy-tier": "top_secret"})
    assert "zero_retention, managed_regional_cloud, standard" in unknown.value.message
    with pytest.raises(openai.BadRequestError) as conflict:
        sdk.chat.completions.create(model="tiered-echo", messages=[{"role": "user", "content": "hi"}],
                                    extra_headers={"x-switchboard-privacy-tier": "standard"},
                                    extra_body={"privacy_tier": "zero_retention"})
    assert conflict.value.code == "conflicting_privacy_tier"


def test_streamed_answer_carries_custody_headers(gw: Gateway) -> None:
    key = gw.create_key(privacy_tier="zero_retention", pii_policy="substitute")
    with httpx.stream("POST", f"{gw.base_url}/v1/chat/completions", headers={"Authorization": f"Bearer {key}"},
                      json={"model": "tiered-echo", "stream": True,
                            "messages": [{"role": "user", "content": f"mail {EMAIL}"}]}, timeout=20) as response:
        body = response.read().decode()
    assert response.status_code == 200
    headers = response.headers
    assert CUSTODY_RE.match(headers["x-switchboard-custody-path"])["deployment"] == "tiered/zr"  # type: ignore[index]
    assert headers["x-switchboard-privacy-tier"] == "zero_retention"
    assert headers["x-switchboard-resolved-jurisdiction"] == "eu"
    assert headers["x-switchboard-pii"] == "email=1"
    assert headers["x-switchboard-request-id"].startswith("req_")
    assert EMAIL in body  # restored for the client


def test_anthropic_messages_and_embeddings_get_the_same_privacy(
        gw: Gateway, provider: tuple[FakeOpenAI, str]) -> None:
    key = gw.create_key(pii_policy="substitute")
    marker = uuid.uuid4().hex
    auth = {"Authorization": f"Bearer {key}", "x-switchboard-privacy-tier": "zero_retention"}
    message = httpx.post(f"{gw.base_url}/v1/messages", headers=auth, timeout=20, json={
        "model": "tiered-echo", "max_tokens": 100,
        "messages": [{"role": "user", "content": f"{marker} write to {EMAIL}"}]})
    assert message.status_code == 200, message.text
    assert message.json()["content"][0]["text"] == f"{marker} write to {EMAIL}"
    assert message.headers["x-switchboard-deployment"] == "tiered/zr"
    assert message.headers["x-switchboard-pii"] == "email=1"
    vectors = httpx.post(f"{gw.base_url}/v1/embeddings", headers=auth, timeout=20,
                         json={"model": "privacy-embed", "input": [f"{marker} card {CARD}"]})
    assert vectors.status_code == 200, vectors.text
    assert vectors.headers["x-switchboard-pii"] == "card=1"
    assert_clean(received(provider[0], marker))


def test_zz_nothing_the_gateway_wrote_contains_an_original_value(gw: Gateway) -> None:
    """Runs last in this module: ledger, outbox journal, databases and logs of every service."""
    roots = [gw.data_dir, gw.data_dir.parent / "logs"]
    files = [p for root in roots for p in Path(root).rglob("*") if p.is_file()]
    assert any(p.suffix == ".log" for p in files) and len(files) > 2
    needles = [form.encode() for original in ORIGINALS for form in (original, json.dumps(original)[1:-1])]
    for path in files:
        data = path.read_bytes()
        for needle in needles:
            assert needle not in data, (path, needle)
