"""Bring your own key end to end: a key's own provider credential is stored sealed, never shown or logged,
sent to the provider instead of the operator's, and billed with the routing fee only."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import FAKE_PRICES
from tests.fakes.openai_provider import FakeOpenAI
from tests.fakes.server import BackgroundServer
from tests.harness import Gateway, start_gateway

OWN = "sk-own-" + "Zq7" * 12
TEAM_OWN = "sk-team-" + "Kp4" * 12
OPERATOR = "sk-operator-upstream"
FERNET_KEY = "l4Jb3Xz8f9hH6qk0n1mPq2rS3tU4vW5xY6zA7bC8dE0="


@pytest.fixture(scope="module")
def provider() -> Iterator[FakeOpenAI]:
    app = FakeOpenAI()
    server = BackgroundServer(app).start()
    app.url = server.url + "/v1"  # type: ignore[attr-defined]
    yield app
    server.stop()


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory, provider: FakeOpenAI) -> Iterator[Gateway]:
    models = [{"name": name, "deployments": [{
        "provider": "openai", "model": upstream, "api_base": provider.url, "api_key": OPERATOR,  # type: ignore[attr-defined]
        "byok_fee_per_request_micros": 100, **FAKE_PRICES}]}
        for name, upstream in (("byok-echo", "echo"), ("byok-leak", "leak-401"), ("byok-leak-text", "leak-text-403"))]
    gateway = start_gateway(tmp_path_factory.mktemp("byok-gateway"), models,
                            extra_env={"SWITCHBOARD_ENCRYPTION_KEY": FERNET_KEY})
    yield gateway
    gateway.stop()


def chat(gw: Gateway, key: str, text: str) -> httpx.Response:
    return httpx.post(f"{gw.base_url}/v1/chat/completions", headers={"Authorization": f"Bearer {key}"}, timeout=20,
                      json={"model": "byok-echo", "messages": [{"role": "user", "content": text}]})


def ledger_row(gw: Gateway, key: str, request_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    while True:
        rows = httpx.get(f"{gw.base_url}/spend/logs", headers={"Authorization": f"Bearer {key}"}, timeout=10).json()
        found = [r for r in rows if r["request_id"] == request_id]
        if found or time.monotonic() > deadline:
            assert found, "the request never reached the ledger"
            return found[0]
        time.sleep(0.1)


def test_own_credential_is_used_instead_of_the_operators_and_billed_as_byok(
        gw: Gateway, provider: FakeOpenAI) -> None:
    created = httpx.post(f"{gw.base_url}/key/generate", headers=gw.admin(), timeout=10,
                         json={"key_alias": "byok", "provider_credentials": {"openai": OWN}})
    assert created.status_code == 200, created.text
    assert OWN not in created.text
    assert created.json()["provider_credentials"] == {"openai": "..." + OWN[-4:]}
    key = created.json()["key"]
    plain = gw.create_key(key_alias="operator-paid")

    own_answer = chat(gw, key, "byok-1")
    assert own_answer.status_code == 200, own_answer.text
    seen = {r.body["messages"][-1]["content"]: r.headers["authorization"] for r in provider.requests}
    assert seen["byok-1"] == f"Bearer {OWN}"
    operator_answer = chat(gw, plain, "byok-2")
    assert {r.body["messages"][-1]["content"]: r.headers["authorization"]
            for r in provider.requests}["byok-2"] == f"Bearer {OPERATOR}"

    own_row = ledger_row(gw, key, own_answer.headers["x-request-id"])
    paid_row = ledger_row(gw, plain, operator_answer.headers["x-request-id"])
    assert own_row["cost_micros"] == 100  # the routing fee only
    assert paid_row["cost_micros"] not in (None, 0, 100)  # the model price

    info = httpx.get(f"{gw.base_url}/key/info", headers={"Authorization": f"Bearer {key}"}, timeout=10)
    assert OWN not in info.text

    cleared = httpx.post(f"{gw.base_url}/key/update", headers=gw.admin(), timeout=10,
                         json={"key": created.json()["key_id"], "provider_credentials": {}})
    assert cleared.status_code == 200, cleared.text
    deadline = time.monotonic() + 5
    while True:
        again = chat(gw, key, "byok-3")
        assert again.status_code == 200, again.text
        used = [r.headers["authorization"] for r in provider.requests if r.body["messages"][-1]["content"] == "byok-3"]
        if used[-1] == f"Bearer {OPERATOR}" or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert used[-1] == f"Bearer {OPERATOR}"


def test_team_credentials_serve_the_teams_keys_and_a_keys_own_wins(gw: Gateway, provider: FakeOpenAI) -> None:
    team = httpx.post(f"{gw.base_url}/team/new", headers=gw.admin(), timeout=10,
                      json={"team_id": "byok-team", "provider_credentials": {"openai": TEAM_OWN}})
    assert team.status_code == 200, team.text
    assert TEAM_OWN not in team.text and team.json()["provider_credentials"] == {"openai": "..." + TEAM_OWN[-4:]}
    member = gw.create_key(team_id="byok-team")
    own = gw.create_key(team_id="byok-team", provider_credentials={"openai": OWN})
    assert chat(gw, member, "team-1").status_code == 200
    assert chat(gw, own, "team-2").status_code == 200
    used = {r.body["messages"][-1]["content"]: r.headers["authorization"] for r in provider.requests}
    assert used["team-1"] == f"Bearer {TEAM_OWN}" and used["team-2"] == f"Bearer {OWN}"


@pytest.mark.parametrize("model", ["byok-leak", "byok-leak-text"])
def test_a_provider_quoting_the_teams_credential_shows_it_to_no_member(
        gw: Gateway, provider: FakeOpenAI, model: str) -> None:
    """The team's write-only key is the one sent, and the provider's error quotes it: the member never sees it."""
    team = httpx.post(f"{gw.base_url}/team/new", headers=gw.admin(), timeout=10,
                      json={"team_id": f"team-of-{model}", "provider_credentials": {"openai": TEAM_OWN}})
    assert team.status_code == 200, team.text
    member = gw.create_key(team_id=f"team-of-{model}")
    for stream in (False, True):
        answer = httpx.post(f"{gw.base_url}/v1/chat/completions", headers={"Authorization": f"Bearer {member}"},
                            timeout=20, json={"model": model, "stream": stream,
                                              "messages": [{"role": "user", "content": "leak?"}]})
        assert answer.status_code >= 400
        assert provider.requests[-1].headers["authorization"] == f"Bearer {TEAM_OWN}", "the team's key was sent"
        assert TEAM_OWN not in answer.text and TEAM_OWN[8:20] not in answer.text
        assert "[redacted]" in answer.text, "the provider's quote reaches the member, minus the credential"
        row = ledger_row(gw, member, answer.headers["x-request-id"])
        assert TEAM_OWN not in str(row)


def test_zz_the_credential_is_nowhere_on_disk_or_in_logs(gw: Gateway) -> None:
    files = [p for root in (gw.data_dir, gw.data_dir.parent / "logs") for p in Path(root).rglob("*") if p.is_file()]
    assert any(p.name.startswith("auth") for p in files)
    for path in files:
        data = path.read_bytes()
        assert OWN.encode() not in data and TEAM_OWN.encode() not in data, path


def test_without_an_encryption_key_credentials_are_refused(gateway: Gateway) -> None:
    refused = httpx.post(f"{gateway.base_url}/key/generate", headers=gateway.admin(), timeout=10,
                         json={"provider_credentials": {"openai": OWN}})
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "byok_disabled" and OWN not in refused.text
