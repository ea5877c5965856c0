"""Every route of the facade (its OpenAPI document, the dashboard included), walked without a credential and with
a non-admin key: each answer is a refusal in the route's dialect, and nothing changed — keys, teams, usage, the
facade's key cache and its rate-limit leases.

The key cache and the leases are observed through auth's own metrics: a key whose verification is cached (and a
rate-limited key holding a lease) is served without any Authorize call to auth. A walk that dropped the cache or
returned the leases (what an unauthenticated ``POST /key/block`` once did) makes the next request of those keys
ask auth again.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.conftest import fake_models
from tests.e2e.keys_helpers import admin_post, generate, ok
from tests.e2e.test_chat_openai_sdk import wait_for_usage
from tests.fakes.openai_provider import FakeOpenAI
from tests.fakes.server import free_port
from tests.harness import Gateway, start_gateway

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
#: Routes anyone may call: probes, the public price catalog, the sign-in page.
PUBLIC = {("GET", p) for p in ("/health/live", "/health/liveness", "/health/liveliness", "/health/ready",
                               "/health/readiness", "/api/billing/models", "/ui/login")}
#: Routes only the master key or an admin key (or a user's key, by its role) may call.
ADMIN_ONLY = {("POST", p) for p in ("/key/generate", "/key/update", "/key/delete", "/key/regenerate",
                                    "/key/{key_path}/regenerate", "/key/block", "/key/unblock", "/team/new",
                                    "/team/update", "/team/delete", "/team/block", "/team/unblock", "/user/new",
                                    "/user/update", "/user/delete", "/model/new", "/model/update",
                                    "/model/delete")} | {("GET", p) for p in (
    "/key/list", "/team/info", "/user/list", "/health", "/audit", "/audit/verify")} | {
    ("PATCH", "/model/{model_id}/update")}
#: The hot routes serve any valid key (and bill it): walked without a credential only.
HOT_PREFIXES = ("/v1/chat", "/chat", "/cursor/", "/v1/cursor", "/openai/", "/v1/messages", "/anthropic/",
                "/v1/responses", "/responses", "/v1/embeddings", "/embeddings", "/v1/completions", "/completions",
                "/v1/moderations", "/moderations")
DASHBOARD_ADMIN_ONLY = {("POST", "/ui/keys/create"), ("POST", "/ui/keys/{key_id}/{action}"), ("GET", "/ui/keys/new"),
                        ("GET", "/ui/teams"), ("GET", "/ui/teams/new"), ("POST", "/ui/teams/create"),
                        ("GET", "/ui/teams/{team_id}"), ("POST", "/ui/teams/{team_id}/{action}"), ("GET", "/ui/users"),
                        ("GET", "/ui/models/runtime"), ("POST", "/ui/models/runtime/create"),
                        ("POST", "/ui/models/runtime/{model_id}/{action}"), ("GET", "/ui/audit"),
                        ("GET", "/ui/audit.csv")}
#: Dashboard pages of one thing: another key's page does not exist for a virtual key.
DASHBOARD_NOT_THEIRS = {("GET", "/ui/keys/{key_id}")}
KEY_ACTIONS = ("revoke", "block", "unblock", "regenerate", "edit")
TEAM_ACTIONS = ("delete", "block", "unblock", "edit")


@dataclass
class Walk:
    gateway: Gateway
    auth_metrics: str
    team_id: str
    cached: dict[str, Any]
    leased: dict[str, Any]
    user: dict[str, Any]


@pytest.fixture(scope="module")
def walk(tmp_path_factory: pytest.TempPathFactory, fake_openai: tuple[FakeOpenAI, str]) -> Iterator[Walk]:
    # Cache entries and leases that only an invalidation or a return can end within the test.
    gw = start_gateway(tmp_path_factory.mktemp("walk"), fake_models(fake_openai[1]), extra_env={
        "SWITCHBOARD_KEY_CACHE_TTL_SECONDS": "600", "SWITCHBOARD_RATE_LEASE_SECONDS": "600"})
    try:
        metrics_port = free_port()
        gw.processes["auth"].terminate()
        gw.start_service("auth", {"SWITCHBOARD_METRICS_PORT": str(metrics_port)})
        gw.wait_ready()
        team = ok(admin_post(gw, "/team/new", {"team_id": "walk-team"}))["team_id"]
        walk = Walk(gw, f"http://127.0.0.1:{metrics_port}/metrics", team,
                    cached=generate(gw, key_alias="walk-cached", team_id=team),
                    leased=generate(gw, key_alias="walk-leased", rpm_limit=100_000),
                    user=generate(gw, key_alias="walk-user"))
        for key in (walk.cached, walk.leased):
            served = chat(gw, key["key"])
            assert served.status_code == 200, served.text
            wait_for_usage(gw, served.headers["x-request-id"])
        # The facade trusts its cache once its invalidation stream to the restarted auth is up again.
        deadline = time.monotonic() + 30
        while not (served_without_auth(walk, walk.cached["key"]) and served_without_auth(walk, walk.leased["key"])):
            assert time.monotonic() < deadline, "the facade's key cache never came back"
            time.sleep(0.2)
        yield walk
    finally:
        gw.stop()


def chat(gw: Gateway, key: str) -> httpx.Response:
    return httpx.post(f"{gw.base_url}/v1/chat/completions", headers={"Authorization": f"Bearer {key}"}, timeout=20,
                      json={"model": "fake-good", "messages": [{"role": "user", "content": "hi"}]})


def rpc_count(walk: Walk, method: str) -> float:
    text = httpx.get(walk.auth_metrics, timeout=10).text
    pattern = re.compile(r'^switchboard_grpc_server_handled_total\{([^}]*)\} ([0-9.e+]+)$', re.M)
    return sum(float(value) for labels, value in pattern.findall(text)
               if 'service="auth"' in labels and f'method="{method}"' in labels)


def served_without_auth(walk: Walk, key: str) -> bool:
    """Whether a request of ``key`` is admitted by the facade alone (cached verification, held lease)."""
    before = rpc_count(walk, "Authorize")
    served = chat(walk.gateway, key)
    assert served.status_code == 200
    alone = rpc_count(walk, "Authorize") == before
    wait_for_usage(walk.gateway, served.headers["x-request-id"])  # its usage is in the ledger before what follows
    return alone


def state(gw: Gateway) -> tuple[Any, Any, list[str]]:
    keys = ok(httpx.get(f"{gw.base_url}/key/list", headers=gw.admin(), timeout=10))
    teams = ok(httpx.get(f"{gw.base_url}/team/list", headers=gw.admin(), timeout=10))
    usage = ok(httpx.get(f"{gw.base_url}/spend/logs", params={"limit": "1000"}, headers=gw.admin(), timeout=10))
    return keys, teams, sorted(row["request_id"] for row in usage)


def assert_nothing_changed(walk: Walk, before: tuple[Any, Any, list[str]], releases: float) -> None:
    assert state(walk.gateway) == before, "keys, teams and usage are as they were"
    assert rpc_count(walk, "ReleaseBatch") == releases, "no rate-limit lease was returned"
    assert served_without_auth(walk, walk.cached["key"]), "the facade's key cache was kept"
    assert served_without_auth(walk, walk.leased["key"]), "the rate-limited key's lease was kept"


def routes(gw: Gateway) -> list[tuple[str, str]]:
    spec = ok(httpx.get(f"{gw.base_url}/openapi.json", timeout=10))
    return [(method.upper(), path) for path, operations in spec["paths"].items() for method in operations]


def plausible_requests(walk: Walk, method: str, template: str) -> list[tuple[str, dict[str, Any]]]:
    """The requests that would change something if the caller were allowed: (path, httpx keyword arguments)."""
    key_id, team = walk.cached["key_id"], walk.team_id
    path = template.replace("{key_path}", key_id).replace("{key_id}", key_id).replace(
        "{deployment}", "fake-good").replace("{request_id}", "req_0").replace("{model_id}", "walker-model").replace(
        "{team_id}", team).replace("{name}", "fake-good")
    messages = [{"role": "user", "content": "hi"}]
    bodies: dict[str, Any] = {
        "/key/generate": {"key_alias": "walker"}, "/key/update": {"key": key_id, "rpm_limit": 1},
        "/key/delete": {"keys": [key_id]}, "/key/regenerate": {"key": key_id}, "/key/block": {"key": key_id},
        "/key/unblock": {"key": key_id}, "/team/new": {"team_id": "walker-team"},
        "/team/update": {"team_id": team, "rpm_limit": 1}, "/team/delete": {"team_ids": [team]},
        "/team/block": {"team_id": team}, "/team/unblock": {"team_id": team}, "/user/new": {"user_id": "walker"},
        "/user/update": {"user_id": "walker", "max_budget": 1}, "/user/delete": {"user_ids": ["walker"]},
        "/team/member_add": {"team_id": team, "member": {"role": "user", "user_id": "walker"}},
        "/team/member_update": {"team_id": team, "user_id": "walker", "role": "admin"},
        "/team/member_delete": {"team_id": team, "user_id": "walker"},
        "/model/new": {"model_name": "walker", "litellm_params": {"model": "openai/good"}},
        "/model/update": {"model_info": {"id": "walker-model"}, "litellm_params": {"rpm": 1}},
        "/model/delete": {"id": "walker-model"},
        "/model/walker-model/update": {"litellm_params": {"rpm": 1}},
        "/v1/completions": {"model": "fake-good", "prompt": "hi"},
        "/completions": {"model": "fake-good", "prompt": "hi"},
        "/v1/moderations": {"model": "fake-good", "input": "hi"},
        "/moderations": {"model": "fake-good", "input": "hi"},
    }
    params = {"/key/info": {"key": key_id}, "/team/info": {"team_id": team}}
    if "{action}" in path:
        actions = TEAM_ACTIONS if path.startswith("/ui/teams/") else KEY_ACTIONS
        return [(path.replace("{action}", action), {"data": {"rpm_limit": "1"}}) for action in actions]
    if path.startswith("/ui"):
        return [(path, {"data": {"key_alias": "walker", "api_key": walk.user["key"]}} if method == "POST" else {})]
    if method == "GET":
        return [(path, {"params": params.get(path, {})})]
    if path in bodies:
        return [(path, {"json": bodies[path]})]
    if "messages" in path:
        return [(path, {"json": {"model": "fake-good", "max_tokens": 5, "messages": messages}})]
    if "responses" in path:
        return [(path, {"json": {"model": "fake-good", "input": "hi"}})]
    if "embeddings" in path:
        return [(path, {"json": {"model": "fake-embed", "input": "hi"}})]
    return [(path, {"json": {"model": "fake-good", "messages": messages}})]


def assert_api_refusal(response: httpx.Response, statuses: set[int], where: str) -> None:
    assert response.status_code in statuses, (where, response.status_code, response.text[:300])
    body = response.json()
    if response.request.url.path.startswith(("/v1/messages", "/anthropic/")):
        assert body["type"] == "error" and body["error"]["type"] in (
            "authentication_error", "permission_error", "not_found_error"), (where, body)
    else:
        assert body["error"]["type"] in ("authentication_error", "permission_error", "not_found_error",
                                         "invalid_request_error"), (where, body)
        assert body["error"]["code"], (where, body)
    assert response.headers["x-request-id"].startswith("req_"), where


def assert_dashboard_refusal(response: httpx.Response, where: str) -> None:
    if response.status_code == 303:
        assert response.headers["location"] == "/ui/login", where
    elif response.headers.get("content-type", "").startswith("application/json"):
        assert response.status_code == 401, (where, response.status_code)  # what the page script reads
    else:
        assert response.status_code in (403, 404, 405), (where, response.status_code)
        assert response.headers["content-type"].startswith("text/html"), where


def test_every_route_refuses_a_caller_without_a_credential_and_changes_nothing(walk: Walk) -> None:
    gw = walk.gateway
    before, releases = state(gw), rpc_count(walk, "ReleaseBatch")
    walked = 0
    with httpx.Client(base_url=gw.base_url, timeout=20, follow_redirects=False) as anonymous:
        for method, template in routes(gw):
            for path, kwargs in plausible_requests(walk, method, template):
                where = f"{method} {path}"
                response = anonymous.request(method, path, **kwargs)
                walked += 1
                if (method, template) in PUBLIC:
                    assert response.status_code in (200, 503), where
                elif path.startswith("/ui"):
                    assert_dashboard_refusal(response, where)
                else:
                    assert_api_refusal(response, {401, 404, 405}, where)
                    assert response.status_code == 401 or template == "/api/usage/custody/{request_id}", where
    assert walked > 60
    assert_nothing_changed(walk, before, releases)


def test_every_admin_route_refuses_a_non_admin_key_and_changes_nothing(walk: Walk) -> None:
    gw = walk.gateway
    headers = {"Authorization": f"Bearer {walk.user['key']}"}
    with httpx.Client(base_url=gw.base_url, timeout=20, follow_redirects=False) as session:
        token = CSRF.search(session.get("/ui/login").text)
        assert token
        signed_in = session.post("/ui/login", data={"csrf_token": token.group(1), "api_key": walk.user["key"]})
        assert signed_in.status_code == 303
        page_token = CSRF.search(session.get("/ui/keys").text)
        assert page_token
        before, releases = state(gw), rpc_count(walk, "ReleaseBatch")
        for method, template in routes(gw):
            if template.startswith(HOT_PREFIXES) or template in ("/ui/login", "/ui/logout") \
                    or template.startswith("/ui/sso/"):  # sign-in, not admin (SSO off here: 404, docs/sso.md)
                continue
            for path, kwargs in plausible_requests(walk, method, template):
                where = f"{method} {path}"
                if path.startswith("/ui"):
                    if method == "POST":
                        kwargs = {"data": {**kwargs.get("data", {}), "csrf_token": page_token.group(1)}}
                    response = session.request(method, path, **kwargs)
                    if (method, template) in DASHBOARD_ADMIN_ONLY:
                        assert response.status_code == 403, (where, response.status_code)
                        assert "administrators" in response.text, where
                    elif (method, template) in DASHBOARD_NOT_THEIRS:
                        assert response.status_code == 404, (where, response.status_code)
                    else:
                        assert response.status_code in (200, 303), (where, response.status_code)
                    continue
                response = httpx.request(method, gw.base_url + path, headers=headers, timeout=20, **kwargs)
                if (method, template) in ADMIN_ONLY:
                    assert_api_refusal(response, {403}, where)
                    assert response.json()["error"]["type"] == "permission_error", where
                else:
                    # What a key may read about itself (its info, its usage, the models it may use).
                    assert response.status_code in (200, 403, 404), (where, response.status_code, response.text)
    assert_nothing_changed(walk, before, releases)


def test_an_admin_change_refused_by_auth_keeps_the_cache(walk: Walk) -> None:
    gw = walk.gateway
    assert served_without_auth(walk, walk.cached["key"])
    refused = admin_post(gw, "/key/block", {"key": "key_0000000000000000"})
    assert refused.status_code == 404, refused.text
    assert admin_post(gw, "/team/update", {"team_id": walk.team_id, "budget_duration": "7 weeks"}).status_code == 400
    assert served_without_auth(walk, walk.cached["key"]), "a change that was not made leaves the cache alone"


def test_the_walk_would_see_a_change(walk: Walk) -> None:
    """The observation itself: an admin's block does drop the cache (so the walks above could have failed)."""
    gw = walk.gateway
    assert served_without_auth(walk, walk.cached["key"])
    ok(admin_post(gw, "/key/block", {"key": walk.user["key_id"]}))
    ok(admin_post(gw, "/key/unblock", {"key": walk.user["key_id"]}))
    assert not served_without_auth(walk, walk.cached["key"]), "a change empties this facade's key cache"
