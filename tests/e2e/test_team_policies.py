"""Team-level policies reach the team's keys: the team's PII policy and the team's budget."""

from __future__ import annotations

import time

import httpx

from tests.fakes.openai_provider import FakeOpenAI
from tests.harness import Gateway
from tests.sdk_clients import openai_client


def team(gateway: Gateway, **fields: object) -> str:
    r = httpx.post(f"{gateway.base_url}/team/new", json=fields, headers=gateway.admin(), timeout=10)
    assert r.status_code == 200, r.text
    return str(r.json()["team_id"])


def test_a_teams_pii_policy_applies_to_keys_without_their_own(gateway: Gateway,
                                                              fake_openai: tuple[FakeOpenAI, str]) -> None:
    team_id = team(gateway, team_alias="privacy-team", pii_policy="substitute")
    info = httpx.get(f"{gateway.base_url}/team/info", params={"team_id": team_id}, headers=gateway.admin()).json()
    assert info["team_info"]["pii_policy"] == "substitute"
    key = gateway.create_key(key_alias="in-privacy-team", team_id=team_id)
    before = len(fake_openai[0].requests)
    sdk = openai_client(api_key=key, base_url=gateway.base_url + "/v1", max_retries=0)
    reply = sdk.chat.completions.with_raw_response.create(
        model="fake-echo", messages=[{"role": "user", "content": "mail jane.doe@example.com please"}])
    assert reply.parse().choices[0].message.content == "mail jane.doe@example.com please"
    assert reply.headers["x-switchboard-pii"] == "email=1"
    sent = str(fake_openai[0].requests[before].body)
    assert "jane.doe@example.com" not in sent and "[[EMAIL_1]]" in sent


def test_a_key_policy_overrides_its_teams(gateway: Gateway, fake_openai: tuple[FakeOpenAI, str]) -> None:
    team_id = team(gateway, team_alias="blocking-team", pii_policy="block")
    key = gateway.create_key(key_alias="own-policy", team_id=team_id, pii_policy="off")
    sdk = openai_client(api_key=key, base_url=gateway.base_url + "/v1", max_retries=0)
    reply = sdk.chat.completions.create(model="fake-echo",
                                        messages=[{"role": "user", "content": "a@example.com"}])
    assert reply.choices[0].message.content == "a@example.com"


def test_a_team_budget_is_shared_by_its_keys(gateway: Gateway) -> None:
    # One fake request costs well under a cent; a 0.0005 USD team budget covers only a few.
    team_id = team(gateway, team_alias="budget-team", max_budget=0.0005)
    keys = [gateway.create_key(key_alias=f"team-key-{i}", team_id=team_id) for i in range(2)]
    statuses: list[int] = []
    for i in range(40):
        r = httpx.post(f"{gateway.base_url}/v1/chat/completions", timeout=20,
                       headers={"Authorization": f"Bearer {keys[i % 2]}"},
                       json={"model": "fake-good", "messages": [{"role": "user", "content": "hello there"}],
                             "max_tokens": 10})
        statuses.append(r.status_code)
        if r.status_code == 429:
            error = r.json()["error"]
            assert error["code"] == "budget_exceeded"
            assert error["message"].startswith("Budget exceeded: team 'budget-team' budget"), "named as people know it"
            break
        time.sleep(0.05)  # let the outbox settle, so the next reservation sees the spend
    assert statuses[-1] == 429, "the team's budget must stop its keys"
    assert statuses.count(200) >= 2, "both keys spent from the shared budget before it ran out"
