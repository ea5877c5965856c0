"""LiteLLM's documented admin requests for keys and teams, sent as its users' scripts send them.

The bodies are those of LiteLLM's docs (virtual keys, model aliases, team budgets, team-based routing, team
members), with our fake models in place of theirs: every documented field is honoured or named in the answer's
``ignored_fields``, and the answers have LiteLLM's shapes.
"""

from __future__ import annotations

import secrets
from typing import Any

import openai
import pytest

from switchboard_common.errors import Kind, ServiceError
from switchboard_router.client import SwitchboardRouter
from tests.e2e.keys_helpers import admin_get, admin_post, chat, generate, ok, sdk
from tests.harness import Gateway

HI = [{"role": "user", "content": "hi"}]


def new_team(gateway: Gateway, **spec: Any) -> dict[str, Any]:
    return ok(admin_post(gateway, "/team/new", {"team_alias": "t-" + secrets.token_hex(3), **spec}))  # type: ignore[no-any-return]


def test_generate_takes_every_documented_field_and_names_what_it_ignores(gateway: Gateway) -> None:
    team = new_team(gateway)
    body = {"models": ["fake-good", "fake-echo"], "duration": "20m", "metadata": {"user": "ishaan@berri.ai"},
            "team_id": team["team_id"], "max_budget": 10, "soft_budget": 5, "tags": ["prod", "batch"],
            "aliases": {"my-free-tier": "fake-echo"}, "config": {}, "permissions": {"pii_masking": True},
            "model_max_budget": {}, "allowed_cache_controls": ["no-cache"], "send_invite_email": True,
            "guardrails": ["presidio-pii", "lakera-prompt-injection"], "spend": 0, "key_type": "default",
            "budget_id": None, "enforced_params": [], "blocked": None}
    created = ok(admin_post(gateway, "/key/generate", body))
    assert created["key"].startswith("sk-") and created["team_id"] == team["team_id"]
    assert created["aliases"] == {"my-free-tier": "fake-echo"} and created["tags"] == ["prod", "batch"]
    assert created["metadata"] == {"user": "ishaan@berri.ai"} and created["max_budget"] == 10
    assert created["pii_policy"] == "mask"  # Presidio's PII guardrail masks, as LiteLLM's does
    assert created["ignored_fields"] == ["allowed_cache_controls", "guardrails", "permissions", "send_invite_email"]
    assert created["soft_budget"] == 5  # LiteLLM's soft_budget: alerts, never refuses (docs/alerts.md)
    assert created["spend"] == 0  # as /key/info reads it right after, not null
    daily = ok(admin_post(gateway, "/key/generate", {"max_budget": 1, "budget_duration": "1d"}))
    assert daily["spend"] == 0 and daily["budget_reset_at"] is not None
    updated = ok(admin_post(gateway, "/key/update", {"key": created["key_id"], "tags": ["prod"], "spend": 12,
                                                     "temp_budget_increase": 2,
                                                     "temp_budget_expiry": "2030-01-01T00:00:00Z"}))
    assert updated["tags"] == ["prod"] and updated["aliases"] == {"my-free-tier": "fake-echo"}
    assert updated["ignored_fields"] == ["spend", "temp_budget_expiry", "temp_budget_increase"]
    typo = admin_post(gateway, "/key/generate", {"modles": ["fake-good"]})
    assert typo.status_code == 400 and typo.json()["error"]["code"] == "unknown_field"


def test_a_key_alias_names_a_model_for_http_callers_and_the_ledger_records_the_model_and_tags(
        gateway: Gateway) -> None:
    # LiteLLM's docs: {"models": ["my-free-tier"], "aliases": {"my-free-tier": "<model>"}, "duration": "30min"}
    created = generate(gateway, models=["my-free-tier"], aliases={"my-free-tier": "fake-echo"}, duration="30min",
                       tags=["free-tier"])
    client = sdk(gateway, str(created["key"]))
    raw = chat(client, "my-free-tier", "said through an alias")
    assert raw.parse().choices[0].message.content == "said through an alias"
    assert raw.headers["x-switchboard-deployment"] == "fake-echo/0"
    row = gateway.ledger_row(raw.headers["x-request-id"])
    assert row["model"] == "fake-echo" and row["request_tags"] == ["free-tier"] and row["spend"] > 0
    with pytest.raises(openai.PermissionDeniedError):  # the key lists the alias, not the model behind it
        chat(client, "fake-echo")


def test_a_team_alias_serves_every_key_of_the_team_and_a_key_alias_wins(gateway: Gateway) -> None:
    # LiteLLM's team-based routing: {"team_alias": "...", "model_aliases": {"gpt-4": "gpt-4-team-1"}}
    team = new_team(gateway, model_aliases={"house-model": "fake-good", "echo": "fake-good"}, tags=["team-a"])
    assert team["model_aliases"] == {"house-model": "fake-good", "echo": "fake-good"}
    member = sdk(gateway, str(generate(gateway, team_id=team["team_id"], tags=["key-a"])["key"]))
    raw = chat(member, "house-model")
    assert raw.parse().choices[0].message.content == "Hello from the fake provider."
    assert gateway.ledger_row(raw.headers["x-request-id"])["request_tags"] == ["key-a", "team-a"]
    own = sdk(gateway, str(generate(gateway, team_id=team["team_id"], aliases={"echo": "fake-echo"})["key"]))
    assert chat(own, "echo", "mine").parse().choices[0].message.content == "mine"


def test_a_team_keys_aliases_count_as_the_models_they_name(gateway: Gateway) -> None:
    """The docs' alias example with a team: an alias listed in the key's models stands for the team model it
    names; an alias naming a model outside the team is refused when the key is made, not at its first call."""
    team = new_team(gateway, models=["fake-good"])
    created = generate(gateway, team_id=team["team_id"], models=["my-free-tier", "fake-good"],
                       aliases={"my-free-tier": "fake-good"})
    reply = chat(sdk(gateway, str(created["key"])), "my-free-tier").parse()
    assert reply.choices[0].message.content == "Hello from the fake provider."
    outside = admin_post(gateway, "/key/generate", {"team_id": team["team_id"], "aliases": {"cheap": "fake-echo"}})
    assert outside.status_code == 400 and outside.json()["error"]["code"] == "model_not_in_team"
    assert "cheap (alias of fake-echo)" in outside.json()["error"]["message"]
    widened = admin_post(gateway, "/key/update", {"key": created["key_id"], "aliases": {"my-free-tier": "fake-echo"}})
    assert widened.status_code == 400 and widened.json()["error"]["code"] == "model_not_in_team"


async def test_a_grpc_caller_gets_its_key_aliases_too(gateway: Gateway) -> None:
    created = generate(gateway, models=["nightly"], aliases={"nightly": "fake-echo"})
    async with SwitchboardRouter(gateway.env["SWITCHBOARD_ROUTER_ADDRESS"], api_key=str(created["key"])) as router:
        reply = await router.complete("nightly", [{"role": "user", "content": "over grpc"}])
        assert reply.text == "over grpc" and reply.route.deployment_id == "fake-echo/0"
        with pytest.raises(ServiceError) as refused:
            await router.complete("fake-good", HI)
        assert refused.value.kind == Kind.ERROR_KIND_PERMISSION


def test_a_key_given_by_the_caller_and_blocked_at_creation(gateway: Gateway) -> None:
    """Migrating keys: LiteLLM's /key/generate takes the key itself; ``blocked`` blocks it at once."""
    own = "sk-migrated-" + secrets.token_hex(12)
    created = ok(admin_post(gateway, "/key/generate", {"key": own, "blocked": True, "key_alias": "migrated"}))
    assert created["key"] == own and created["blocked"] is True and created["status"] == "blocked"
    with pytest.raises(openai.AuthenticationError):
        chat(sdk(gateway, own))
    again = admin_post(gateway, "/key/generate", {"key": own})
    assert again.status_code == 409 and again.json()["error"]["code"] == "key_exists"
    assert ok(admin_post(gateway, "/key/update", {"key": own, "blocked": False}))["status"] == "active"
    assert chat(sdk(gateway, own)).parse().choices[0].message.content
    short = admin_post(gateway, "/key/generate", {"key": "sk-short"})
    assert short.status_code == 400 and short.json()["error"]["param"] == "key"
    renewed = ok(admin_post(gateway, "/key/regenerate", {"key": own, "new_key": own + "-2"}))
    assert renewed["key"] == own + "-2"
    assert ok(admin_post(gateway, "/key/delete", {"key_aliases": ["migrated"]}))["deleted_keys"] == [
        created["key_id"]]


def test_key_aliases_are_unique_so_deleting_by_alias_leaves_no_live_key(gateway: Gateway) -> None:
    """LiteLLM refuses a second key with an alias in use; scripts revoke keys by alias and expect them gone."""
    alias = "alice-" + secrets.token_hex(3)
    first = ok(admin_post(gateway, "/key/generate", {"key_alias": alias}))
    again = admin_post(gateway, "/key/generate", {"key_alias": alias})
    assert again.status_code == 409, again.text
    error = again.json()["error"]
    assert (error["code"], error["param"]) == ("key_alias_exists", "key_alias")
    assert first["key_id"] in error["message"] and "Choose another alias" in error["message"]
    other = ok(admin_post(gateway, "/key/generate", {"key_alias": alias + "-2"}))
    renamed = admin_post(gateway, "/key/update", {"key": other["key_id"], "key_alias": alias})
    assert renamed.status_code == 409 and renamed.json()["error"]["code"] == "key_alias_exists"
    assert ok(admin_post(gateway, "/key/update", {"key": first["key_id"], "key_alias": alias}))  # its own alias
    assert ok(admin_post(gateway, "/key/delete", {"key_aliases": [alias]}))["deleted_keys"] == [first["key_id"]]
    with pytest.raises(openai.AuthenticationError):
        chat(sdk(gateway, first["key"]))
    reused = ok(admin_post(gateway, "/key/generate", {"key_alias": alias}))  # a deleted key's alias is free again
    assert reused["key_id"] != first["key_id"]


def test_key_list_filters_by_alias_and_pages_as_litellm_scripts_call_it(gateway: Gateway) -> None:
    """``/key/list?key_alias=...&return_full_object=true`` is how LiteLLM users' scripts find a key by name."""
    team = new_team(gateway)
    made = [ok(admin_post(gateway, "/key/generate", {"team_id": team["team_id"],
                                                     "key_alias": f"{team['team_id']}-{i}"})) for i in range(5)]
    found = ok(admin_get(gateway, "/key/list", key_alias=made[3]["key_alias"], return_full_object="true"))
    assert [k["token"] for k in found["keys"]] == [made[3]["key_id"]] and found["total_count"] == 1
    every = ok(admin_get(gateway, "/key/list", team_id=team["team_id"]))
    assert (every["total_count"], every["current_page"], every["total_pages"], len(every["keys"])) == (5, 1, 1, 5)
    pages = [ok(admin_get(gateway, "/key/list", team_id=team["team_id"], page=str(p), size="2")) for p in (1, 2, 3)]
    assert [len(p["keys"]) for p in pages] == [2, 2, 1] and {p["total_pages"] for p in pages} == {3}
    assert [k["key_id"] for p in pages for k in p["keys"]] == [k["key_id"] for k in every["keys"]]
    refused = admin_get(gateway, "/key/list", size="0")
    assert refused.status_code == 400 and refused.json()["error"]["param"] == "size"


def test_team_new_with_members_and_the_member_endpoints(gateway: Gateway) -> None:
    suffix = secrets.token_hex(3)
    lead, dev, new = f"user-1234-{suffix}", f"user-2434-{suffix}", f"krrish247652-{suffix}@berri.ai"
    # LiteLLM: {"team_alias": "my-new-team_2", "members_with_roles": [{"role": "admin", "user_id": "user-1234"}, ...]}
    team = new_team(gateway, members_with_roles=[{"role": "admin", "user_id": lead}, {"role": "user", "user_id": dev}],
                    max_budget=0.001, budget_duration="1d", soft_budget=1,
                    team_member_budget=5)
    team_id = team["team_id"]
    assert team["members_with_roles"] == [{"user_id": lead, "user_email": None, "role": "admin"},
                                          {"user_id": dev, "user_email": None, "role": "user"}]
    assert team["ignored_fields"] == ["team_member_budget"] and team["soft_budget"] == 1
    assert ok(admin_get(gateway, "/user/info", user_id=lead))["user_info"]["user_role"] == "internal_user"
    added = ok(admin_post(gateway, "/team/member_add", {"team_id": team_id,
                                                        "member": {"role": "user", "user_id": new}}))
    assert added["team_id"] == team_id and {"user_id": new, "user_email": None, "role": "user"} in \
        added["members_with_roles"]
    assert [u["user_id"] for u in added["updated_users"]] == [new]
    twice = admin_post(gateway, "/team/member_add", {"team_id": team_id, "member": {"role": "user", "user_id": new}})
    assert twice.status_code == 400 and twice.json()["error"]["code"] == "team_member_already_in_team"
    changed = ok(admin_post(gateway, "/team/member_update", {"team_id": team_id, "user_id": dev, "role": "admin",
                                                             "max_budget_in_team": 10}))
    assert changed["role"] == "admin" and changed["ignored_fields"] == ["max_budget_in_team"]
    removed = ok(admin_post(gateway, "/team/member_delete", {"team_id": team_id, "user_id": new}))
    assert new not in [m["user_id"] for m in removed["members_with_roles"]]
    gone = admin_post(gateway, "/team/member_delete", {"team_id": team_id, "user_id": new})
    assert gone.status_code == 400 and gone.json()["error"]["code"] == "team_member_not_found"
    info = ok(admin_get(gateway, "/team/info", team_id=team_id))
    assert [m["role"] for m in info["team_memberships"]] == ["admin", "admin"]
    assert ok(admin_get(gateway, "/team/list", user_id=dev))[0]["team_id"] == team_id


def test_a_team_and_its_members_read_the_team_but_not_others(gateway: Gateway) -> None:
    lead = "lead-" + secrets.token_hex(3)
    team = new_team(gateway, members_with_roles=[{"role": "admin", "user_id": lead}])
    other = new_team(gateway)
    team_key = str(generate(gateway, team_id=team["team_id"], key_alias="team-key")["key"])
    info = ok(admin_get(gateway, "/team/info", as_key=team_key, team_id=team["team_id"]))
    assert info["team_id"] == team["team_id"] and [k["key_alias"] for k in info["keys"]] == ["team-key"]
    refused = admin_get(gateway, "/team/info", as_key=team_key, team_id=other["team_id"])
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "not_your_team"
    lead_key = str(generate(gateway, user_id=lead)["key"])
    assert ok(admin_get(gateway, "/team/info", as_key=lead_key, team_id=team["team_id"]))["team_id"] == team["team_id"]
    # A team's admin manages its members; a plain member's key may not.
    joined = ok(admin_post(gateway, "/team/member_add", {"team_id": team["team_id"],
                                                         "member": [{"role": "user", "user_id": "m-" + lead}]},
                           as_key=lead_key))
    assert len(joined["members_with_roles"]) == 2
    denied = admin_post(gateway, "/team/member_add", {"team_id": team["team_id"],
                                                      "member": {"role": "user", "user_id": "x-" + lead}},
                        as_key=team_key)
    assert denied.status_code == 403


def test_team_block_and_unblock_as_litellm_spells_them(gateway: Gateway) -> None:
    team = new_team(gateway)
    client = sdk(gateway, str(generate(gateway, team_id=team["team_id"])["key"]))
    assert ok(admin_post(gateway, "/team/block", {"team_id": team["team_id"]}))["blocked"] is True
    with pytest.raises(openai.AuthenticationError, match="blocked"):
        chat(client)
    assert ok(admin_post(gateway, "/team/unblock", {"team_id": team["team_id"]}))["blocked"] is False
    assert chat(client).parse().choices[0].message.content
