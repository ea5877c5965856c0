"""LiteLLM's users as its scripts create and read them: budgets over all of a user's keys that concurrency cannot
overrun, a user's spend in /user/info, /usage and /spend/logs, roles that decide what a user's keys may do; and
LiteLLM's health probes (per-deployment health without charging anyone)."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import FAKE_PRICES, fake_models
from tests.e2e.keys_helpers import admin_get, admin_post, ok
from tests.fakes.openai_provider import FakeOpenAI
from tests.harness import Gateway, start_gateway

HI = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
def ugw(tmp_path_factory: pytest.TempPathFactory, fake_openai: tuple[FakeOpenAI, str]) -> Iterator[Gateway]:
    tmp: Path = tmp_path_factory.mktemp("litellm-users")
    # "fake-long" writes every token it is allowed: each call costs about what it holds.
    long = {"name": "fake-long", "deployments": [{"provider": "openai", "model": "long", "api_base": fake_openai[1],
                                                  "api_key": "sk-fake-upstream", **FAKE_PRICES}]}
    # One failure cools a deployment down, so that /health has something unhealthy to report.
    gw = start_gateway(tmp, [*fake_models(fake_openai[1]), long],
                       router_settings={"max_attempts": 1, "cooldown_failures": 1, "cooldown_seconds": 300})
    yield gw
    gw.stop()


def chat(gw: Gateway, key: str, model: str = "fake-good", **body: Any) -> httpx.Response:
    return httpx.post(f"{gw.base_url}/v1/chat/completions", headers={"Authorization": f"Bearer {key}"},
                      json={"model": model, "messages": HI, **body}, timeout=30)


def settled_spend(gw: Gateway, user_id: str, count: int, timeout: float = 15) -> list[dict[str, Any]]:
    """The user's ledger rows (/spend/logs?user_id=), once ``count`` are there."""
    deadline = time.monotonic() + timeout
    rows: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        rows = ok(admin_get(gw, "/spend/logs", user_id=user_id, limit="1000"))
        if len(rows) >= count:
            return rows
        time.sleep(0.1)
    raise AssertionError(f"{len(rows)} of {count} rows of {user_id} reached the ledger")


def test_user_new_creates_the_user_and_its_key_as_litellm_does(ugw: Gateway) -> None:
    team = ok(admin_post(ugw, "/team/new", {"team_alias": "users-team"}))
    user_id = f"krrish-{secrets.token_hex(3)}@berri.ai"
    # LiteLLM's docs: {"models": [...], "max_budget": ..., "user_id": "krrish3@berri.ai"} (+ budget_duration, role)
    made = ok(admin_post(ugw, "/user/new", {
        "user_id": user_id, "user_email": user_id, "models": ["fake-good"], "max_budget": 10, "budget_duration": "30d",
        "user_role": "internal_user", "teams": [team["team_id"]], "tpm_limit": 100, "sso_user_id": "okta|1",
        "key_alias": "krrish-laptop", "metadata": {"team": "core-infra"}}))
    assert made["key"].startswith("sk-") and made["user_id"] == user_id and made["key_alias"] == "krrish-laptop"
    assert made["max_budget"] == 10 and made["budget_duration"] == "30d" and made["teams"] == [team["team_id"]]
    assert made["user_role"] == "internal_user" and made["models"] == ["fake-good"]
    assert made["ignored_fields"] == ["sso_user_id"] and made["tpm_limit"] == 100
    assert chat(ugw, made["key"]).status_code == 200
    assert chat(ugw, made["key"], "fake-echo").status_code == 403  # the user's models bound its keys
    info = ok(admin_get(ugw, "/user/info", user_id=user_id))
    assert info["user_id"] == user_id and [k["key_alias"] for k in info["keys"]] == ["krrish-laptop"]
    assert [t["team_id"] for t in info["teams"]] == [team["team_id"]]
    assert info["user_info"]["spend"] is not None
    own = ok(admin_get(ugw, "/user/info", as_key=made["key"]))  # a key reads its own user
    assert own["user_id"] == user_id
    duplicate = admin_post(ugw, "/user/new", {"user_id": user_id})
    assert duplicate.status_code == 409 and duplicate.json()["error"]["code"] == "user_exists"
    bare = ok(admin_post(ugw, "/user/new", {"auto_create_key": False}))
    assert bare["key"] is None and bare["user_id"].startswith("user_")


async def test_a_user_budget_is_never_overrun_by_concurrent_requests_across_two_keys(ugw: Gateway) -> None:
    """Twenty concurrent calls at $2.50/$10 per million tokens, each writing all of its max_tokens 100, across two
    keys of one user whose budget pays for about three: some are served, the rest refused by the user's budget, and
    the user's spend never passes it."""
    user_id = "budget-" + secrets.token_hex(3)
    budget = 0.004
    made = ok(admin_post(ugw, "/user/new", {"user_id": user_id, "max_budget": budget}))
    second = ok(admin_post(ugw, "/key/generate", {"user_id": user_id, "key_alias": "second"}))
    keys = [made["key"], second["key"]]
    async with httpx.AsyncClient(base_url=ugw.base_url, timeout=30) as client:
        async def one(i: int) -> httpx.Response:
            return await client.post("/v1/chat/completions", headers={"Authorization": f"Bearer {keys[i % 2]}"},
                                     json={"model": "fake-long", "messages": HI, "max_tokens": 100})
        answers = await asyncio.gather(*(one(i) for i in range(20)))
    served = [a for a in answers if a.status_code == 200]
    refused = [a for a in answers if a.status_code == 429]
    assert served and refused and len(served) + len(refused) == 20, [a.status_code for a in answers]
    assert all(a.headers["x-switchboard-budget-scope"] == "user" for a in refused)
    assert all(a.json()["error"]["code"] == "budget_exceeded" for a in refused)
    rows = settled_spend(ugw, user_id, len(served))
    spent = sum(r["cost_micros"] for r in rows)
    assert spent <= budget * 1_000_000, f"spent {spent} micro-dollars of a {budget} USD budget"
    assert {r["api_key"] for r in rows} <= {made["key_id"], second["key_id"]}
    info = ok(admin_get(ugw, "/user/info", user_id=user_id))["user_info"]
    assert info["spend_micros"] == spent
    usage = ok(admin_get(ugw, "/usage", group_by="user", user_id=user_id))
    assert [(g["group"], g["cost_micros"], g["requests"]) for g in usage["data"]] == [(user_id, spent, len(rows))]
    assert any(u["user_id"] == user_id and u["spend_micros"] == spent
               for u in ok(admin_get(ugw, "/user/list", page_size="100"))["users"])
    # More budget: the user's keys are served again at once.
    raised = ok(admin_post(ugw, "/user/update", {"user_id": user_id, "max_budget": 1, "user_alias": "raised"}))
    assert raised["user_id"] == user_id and raised["data"]["max_budget"] == 1
    assert raised["data"]["user_alias"] == "raised" and raised["ignored_fields"] == []
    assert chat(ugw, keys[1], "fake-long", max_tokens=10).status_code == 200


def test_a_users_rate_limits_hold_across_all_of_the_users_keys(ugw: Gateway) -> None:
    """LiteLLM's user rpm_limit / max_parallel_requests: one budget of requests for the person, whichever of
    their keys (laptop, CI) sends them; the 429 names the user, and raising the limit serves them again."""
    user_id = "rpm-" + secrets.token_hex(3)
    made = ok(admin_post(ugw, "/user/new", {"user_id": user_id, "rpm_limit": 3, "key_alias": "laptop"}))
    assert made["ignored_fields"] == [] and made["rpm_limit"] == 3
    second = ok(admin_post(ugw, "/key/generate", {"user_id": user_id, "key_alias": "ci"}))
    keys = [made["key"], second["key"], made["key"]]
    assert [chat(ugw, key).status_code for key in keys] == [200, 200, 200]
    refused = chat(ugw, second["key"])
    assert refused.status_code == 429, refused.text
    error = refused.json()["error"]
    assert error["code"] == "rpm_limit_exceeded" and f"user '{user_id}'" in error["message"]
    assert int(refused.headers["retry-after"]) >= 1
    other = ok(admin_post(ugw, "/key/generate", {"key_alias": "someone-else"}))
    assert chat(ugw, other["key"]).status_code == 200, "another person's key is not limited by this user"
    ok(admin_post(ugw, "/user/update", {"user_id": user_id, "rpm_limit": 100}))
    assert chat(ugw, second["key"]).status_code == 200, "a raised limit applies at once"


def test_roles_decide_what_a_users_keys_may_do(ugw: Gateway) -> None:
    suffix = secrets.token_hex(3)
    viewer = ok(admin_post(ugw, "/user/new", {"user_id": f"viewer-{suffix}", "user_role": "proxy_admin_viewer"}))
    worker = ok(admin_post(ugw, "/user/new", {"user_id": f"worker-{suffix}", "user_role": "internal_user"}))
    boss = ok(admin_post(ugw, "/user/new", {"user_id": f"boss-{suffix}", "user_role": "proxy_admin"}))
    stranger = ok(admin_post(ugw, "/key/generate", {"key_alias": f"stranger-{suffix}"}))
    # proxy_admin_viewer: reads everything, changes nothing.
    assert ok(admin_get(ugw, "/key/list", as_key=viewer["key"]))["total_count"] >= 4
    assert ok(admin_get(ugw, "/user/list", as_key=viewer["key"]))["total"] >= 3
    assert ok(admin_get(ugw, "/usage", as_key=viewer["key"], group_by="user"))["data"] is not None
    assert admin_post(ugw, "/key/generate", {}, as_key=viewer["key"]).status_code == 403
    assert admin_post(ugw, "/user/new", {}, as_key=viewer["key"]).status_code == 403
    # internal_user: its own keys only.
    mine = ok(admin_post(ugw, "/key/generate", {"key_alias": "made-by-worker"}, as_key=worker["key"]))
    assert mine["user_id"] == worker["user_id"]
    listed = ok(admin_get(ugw, "/key/list", as_key=worker["key"]))
    assert {k["user_id"] for k in listed["keys"]} == {worker["user_id"]} and listed["total_count"] == 2
    assert admin_get(ugw, "/key/info", as_key=worker["key"], key=stranger["key_id"]).status_code == 403
    assert admin_post(ugw, "/key/update", {"key": stranger["key_id"], "rpm_limit": 1},
                      as_key=worker["key"]).status_code == 403
    assert admin_post(ugw, "/key/generate", {"is_admin": True}, as_key=worker["key"]).status_code == 403
    assert admin_get(ugw, "/user/info", as_key=worker["key"], user_id=viewer["user_id"]).status_code == 403
    assert ok(admin_post(ugw, "/key/delete", {"keys": [mine["key_id"]]}, as_key=worker["key"]))["deleted_keys"]
    # proxy_admin: manages everything, like the master key.
    assert ok(admin_post(ugw, "/team/new", {"team_alias": f"by-boss-{suffix}"}, as_key=boss["key"]))["team_id"]
    # A blocked user's keys are refused at once; deleting a user revokes its keys.
    ok(admin_post(ugw, "/user/update", {"user_id": worker["user_id"], "blocked": True}))
    blocked = chat(ugw, worker["key"])
    assert blocked.status_code == 401 and blocked.json()["error"]["code"] == "user_blocked"
    deleted = ok(admin_post(ugw, "/user/delete", {"user_ids": [worker["user_id"]]}))
    assert deleted["deleted_users"] == [worker["user_id"]] and worker["key_id"] in deleted["revoked_keys"]
    assert admin_get(ugw, "/user/info", user_id=worker["user_id"]).status_code == 404
    assert chat(ugw, worker["key"]).json()["error"]["code"] == "key_revoked"


def test_health_as_litellm_users_probe_it(ugw: Gateway) -> None:
    for path in ("/health/liveliness", "/health/liveness", "/health/readiness"):
        assert httpx.get(ugw.base_url + path, timeout=10).status_code == 200, path
    before = len(ok(admin_get(ugw, "/spend/logs", limit="1000")))
    report = ok(admin_get(ugw, "/health"))
    assert report["healthy_count"] == len(report["healthy_endpoints"]) and report["healthy_count"] > 0
    assert {"model": "openai/good", "model_name": "fake-good", "model_id": "fake-good/0"}.items() <= \
        next(e for e in report["healthy_endpoints"] if e["model_id"] == "fake-good/0").items()
    key = ok(admin_post(ugw, "/key/generate", {}))["key"]
    assert chat(ugw, key, "fake-unreachable").status_code >= 500  # one failure cools it down
    report = ok(admin_get(ugw, "/health"))
    assert [e["model_id"] for e in report["unhealthy_endpoints"]] == ["fake-unreachable/0"]
    assert report["unhealthy_count"] == 1
    deadline = time.monotonic() + 10
    while len(rows := ok(admin_get(ugw, "/spend/logs", limit="1000"))) < before + 1 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(rows) == before + 1  # the failed chat only: the health report called no provider, charged no one
    assert httpx.get(ugw.base_url + "/health", headers={"Authorization": f"Bearer {key}"},
                     timeout=10).status_code == 403
