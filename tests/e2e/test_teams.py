"""Teams end to end: admin API, limits shared by the team's keys (the stricter wins), models, blocking."""

from __future__ import annotations

import secrets

import openai
import pytest

from tests.e2e.keys_helpers import admin_get, admin_post, chat, generate, ok, sdk
from tests.harness import Gateway


def new_team(gateway: Gateway, **spec: object) -> dict[str, object]:
    return ok(admin_post(gateway, "/team/new", {"team_alias": "t-" + secrets.token_hex(3), **spec}))  # type: ignore[no-any-return]


def test_team_lifecycle_through_the_admin_api(gateway: Gateway) -> None:
    team = new_team(gateway, team_id="platform-" + secrets.token_hex(3), models=["fake-good"], rpm_limit=100,
                    tpm_limit=10000, max_parallel_requests=4, max_budget=500, budget_duration="30d",
                    max_daily_spend="25.5", privacy_tier="standard", metadata={"slack": "#platform"})
    team_id = str(team["team_id"])
    assert team["max_budget"] == 500 and team["max_daily_spend"] == 25.5 and team["budget_duration"] == "30d"
    assert team["rpm_limit"] == 100 and team["privacy_tier"] == "standard" and team["blocked"] is False
    key = generate(gateway, key_alias="member", team_id=team_id)
    info = ok(admin_get(gateway, "/team/info", team_id=team_id))
    assert info["team_info"]["key_count"] == 1 and [k["key_id"] for k in info["keys"]] == [key["key_id"]]
    assert any(t["team_id"] == team_id for t in ok(admin_get(gateway, "/team/list")))
    answer = ok(admin_post(gateway, "/team/update", {"team_id": team_id, "rpm_limit": 200, "team_alias": "renamed"}))
    updated = answer["data"]  # LiteLLM's wrapper
    assert answer["team_id"] == team_id and answer["ignored_fields"] == []
    assert updated["rpm_limit"] == 200 and updated["team_alias"] == "renamed" and updated["tpm_limit"] == 10000
    # As LiteLLM does, deleting a team deletes its keys (here: revokes them, they stay listed for audit).
    assert ok(admin_post(gateway, "/team/delete", {"team_ids": [team_id]}))["deleted_teams"] == [team_id]
    assert admin_get(gateway, "/team/info", team_id=team_id).status_code == 404
    assert ok(admin_get(gateway, "/key/info", key=str(key["key_id"])))["info"]["status"] == "revoked"
    with pytest.raises(openai.AuthenticationError):
        chat(sdk(gateway, str(key["key"])))


def test_a_key_inherits_the_team_models_and_privacy_tier(gateway: Gateway) -> None:
    team = new_team(gateway, models=["fake-echo"])
    key = generate(gateway, team_id=team["team_id"])
    client = sdk(gateway, str(key["key"]))
    assert chat(client, "fake-echo", "x").parse().choices[0].message.content == "x"
    with pytest.raises(openai.PermissionDeniedError):
        chat(client, "fake-good")
    wider = admin_post(gateway, "/key/generate", {"team_id": team["team_id"], "models": ["fake-good"]})
    assert wider.status_code == 400 and wider.json()["error"]["code"] == "model_not_in_team"
    assert "fake-good" in wider.json()["error"]["message"]
    broad = new_team(gateway, models=["fake-*"])
    own = generate(gateway, team_id=broad["team_id"], models=["fake-good"])
    assert chat(sdk(gateway, str(own["key"])), "fake-good").parse().choices[0].message.content
    with pytest.raises(openai.PermissionDeniedError):
        chat(sdk(gateway, str(own["key"])), "fake-echo")
    private = new_team(gateway, privacy_tier="zero_retention")
    member = sdk(gateway, str(generate(gateway, team_id=private["team_id"])["key"]))
    with pytest.raises(openai.BadRequestError, match="privacy tier 'zero_retention'"):  # the router enforces the tier
        chat(member, "fake-good")


def test_the_team_limit_is_shared_and_the_stricter_limit_wins(gateway: Gateway) -> None:
    team = new_team(gateway, rpm_limit=3)
    loose = sdk(gateway, str(generate(gateway, team_id=team["team_id"], rpm_limit=100)["key"]))
    strict = sdk(gateway, str(generate(gateway, team_id=team["team_id"], rpm_limit=1)["key"]))
    chat(strict)
    with pytest.raises(openai.RateLimitError) as by_key:
        chat(strict)
    assert "rpm_limit of key" in str(by_key.value)
    chat(loose)
    raw = chat(loose)
    assert raw.headers["x-ratelimit-limit-requests"] == "3" and raw.headers["x-ratelimit-remaining-requests"] == "0"
    with pytest.raises(openai.RateLimitError) as by_team:
        chat(loose)
    assert "rpm_limit of team" in str(by_team.value)
    assert by_team.value.response.headers["retry-after"]


def test_blocking_a_team_refuses_its_keys_at_once(gateway: Gateway) -> None:
    team = new_team(gateway)
    client = sdk(gateway, str(generate(gateway, team_id=team["team_id"])["key"]))
    chat(client)
    ok(admin_post(gateway, "/team/update", {"team_id": team["team_id"], "blocked": True}))
    with pytest.raises(openai.AuthenticationError, match="blocked"):
        chat(client)
    ok(admin_post(gateway, "/team/update", {"team_id": team["team_id"], "blocked": False}))
    chat(client)


def test_team_limit_updates_take_effect_on_the_next_request(gateway: Gateway) -> None:
    team = new_team(gateway, rpm_limit=100)
    client = sdk(gateway, str(generate(gateway, team_id=team["team_id"])["key"]))
    chat(client)
    chat(client)
    ok(admin_post(gateway, "/team/update", {"team_id": team["team_id"], "rpm_limit": 2}))
    with pytest.raises(openai.RateLimitError):
        chat(client)
