"""The dashboard over plain HTTP against a real gateway: cookie flags, CSRF refusal, who may see what."""

from __future__ import annotations

import re

import httpx
import pytest

from switchboard_facade.ui.session import COOKIE_NAME
from tests.harness import Gateway
from tests.sdk_clients import closed_after_test

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def browser_like(gateway: Gateway) -> httpx.Client:
    """A client that keeps cookies like a browser (closed after the test, whichever module's it is)."""
    return closed_after_test(httpx.Client(base_url=gateway.base_url, timeout=15))


def csrf_of(html: str) -> str:
    match = CSRF.search(html)
    assert match, "the page carries a CSRF token"
    return match.group(1)


def signed_in(gateway: Gateway, credential: str) -> tuple[httpx.Client, str]:
    """A client with a dashboard session and the session's CSRF token."""
    client = browser_like(gateway)
    token = csrf_of(client.get("/ui/login").text)
    response = client.post("/ui/login", data={"csrf_token": token, "api_key": credential})
    assert response.status_code == 303, response.text
    return client, csrf_of(client.get("/ui/connect").text)


def keys_of(gateway: Gateway) -> list[dict[str, object]]:
    return httpx.get(f"{gateway.base_url}/key/list", headers=gateway.admin(), timeout=10).json()["keys"]


def test_anonymous_visitors_are_sent_to_sign_in(gateway: Gateway) -> None:
    for path in ("/ui", "/ui/keys", "/ui/keys/new", "/ui/models", "/ui/models/fake-good", "/ui/usage", "/ui/teams",
                 "/ui/teams/new", "/ui/connect", "/ui/usage.csv"):
        response = httpx.get(gateway.base_url + path, timeout=10)
        assert response.status_code == 303 and response.headers["location"] == "/ui/login", path


def test_session_cookie_is_opaque_httponly_and_strict(gateway: Gateway) -> None:
    client = browser_like(gateway)
    login = client.get("/ui/login")
    assert "default-src 'self'" in login.headers["content-security-policy"]
    assert login.headers["x-frame-options"] == "DENY"
    response = client.post("/ui/login", data={"csrf_token": csrf_of(login.text), "api_key": gateway.master_key})
    cookie = next(c for c in response.headers.get_list("set-cookie") if c.startswith(COOKIE_NAME + "="))
    flags = cookie.lower()
    assert "httponly" in flags and "samesite=strict" in flags and "path=/ui" in flags
    assert gateway.master_key not in cookie
    assert client.get("/ui/keys").status_code == 200


def test_wrong_credential_gets_no_session(gateway: Gateway) -> None:
    client = browser_like(gateway)
    token = csrf_of(client.get("/ui/login").text)
    response = client.post("/ui/login", data={"csrf_token": token, "api_key": "sk-not-a-key"})
    assert response.status_code == 401
    assert COOKIE_NAME not in response.headers.get("set-cookie", "")


def test_sign_in_without_the_form_token_is_refused(gateway: Gateway) -> None:
    client = browser_like(gateway)
    client.get("/ui/login")
    response = client.post("/ui/login", data={"csrf_token": "guessed", "api_key": gateway.master_key})
    assert response.status_code == 403
    assert COOKIE_NAME not in response.headers.get("set-cookie", "")


@pytest.mark.parametrize("token", ["", "forged-token"])
def test_forms_without_the_session_token_change_nothing(gateway: Gateway, token: str) -> None:
    client, _ = signed_in(gateway, gateway.master_key)
    before = len(keys_of(gateway))
    data = {"key_alias": "csrf-probe"} | ({"csrf_token": token} if token else {})
    response = client.post("/ui/keys/create", data=data)
    assert response.status_code == 403 and "security token" in response.text
    assert len(keys_of(gateway)) == before
    alias = f"csrf-victim-{token or 'none'}"
    victim = gateway.create_key(key_alias=alias)
    victim_id = next(k["key_id"] for k in keys_of(gateway) if k["key_alias"] == alias
                     and str(k["last_four"]) == victim[-4:])
    assert client.post(f"/ui/keys/{victim_id}/revoke", data=data).status_code == 403
    assert client.post("/ui/logout", data=data).status_code == 403
    assert httpx.get(f"{gateway.base_url}/v1/models", headers={"Authorization": f"Bearer {victim}"},
                     timeout=10).status_code == 200


def test_virtual_key_is_denied_admin_pages_and_actions(gateway: Gateway) -> None:
    own = gateway.create_key(key_alias="ui-holder")
    other = gateway.create_key(key_alias="ui-neighbour")
    other_id = next(k["key_id"] for k in keys_of(gateway) if k["key_alias"] == "ui-neighbour")
    client, token = signed_in(gateway, own)
    for path in ("/ui/teams", "/ui/teams/new", "/ui/keys/new"):
        assert client.get(path).status_code == 403, path
    assert client.post("/ui/teams/create", data={"csrf_token": token, "team_id": "sneaky"}).status_code == 403
    assert client.get(f"/ui/keys/{other_id}").status_code == 404, "another key's page does not exist for it"
    keys_page = client.get("/ui/keys").text
    assert "ui-holder" in keys_page and "ui-neighbour" not in keys_page and "Create key" not in keys_page
    assert client.post("/ui/keys/create", data={"csrf_token": token, "key_alias": "sneaky"}).status_code == 403
    assert client.post(f"/ui/keys/{other_id}/revoke", data={"csrf_token": token}).status_code == 403
    assert not any(k["key_alias"] == "sneaky" for k in keys_of(gateway))
    assert httpx.get(f"{gateway.base_url}/v1/models", headers={"Authorization": f"Bearer {other}"},
                     timeout=10).status_code == 200
    refused = client.get("/ui/usage", params={"key_id": other_id})
    assert "only read its own usage" in refused.text


def test_create_edit_and_block_through_forms(gateway: Gateway) -> None:
    client, token = signed_in(gateway, gateway.master_key)
    created = client.post("/ui/keys/create", data={
        "csrf_token": token, "key_alias": "<b>form-made</b>", "models": ["fake-good", "fake-echo"],
        "max_budget": "2.50", "tpm_limit": "1000", "budget_duration": "30d", "privacy_tier": ""})
    assert created.status_code == 200
    assert "&lt;b&gt;form-made&lt;/b&gt;" in created.text and "<b>form-made</b>" not in created.text
    key = re.search(r'id="new-key-value">(sk-[^<]+)<', created.text)
    assert key
    info = next(k for k in keys_of(gateway) if k["key_alias"] == "<b>form-made</b>")
    assert info["models"] == ["fake-good", "fake-echo"] and info["max_budget"] == 2.5 and info["tpm_limit"] == 1000
    edited = client.post(f"/ui/keys/{info['key_id']}/edit", data={
        "csrf_token": token, "rpm_limit": "7", "tpm_limit": "", "max_budget": "3", "budget_duration": "",
        "max_daily_spend": "", "max_parallel_requests": ""})
    assert edited.status_code == 303
    info = next(k for k in keys_of(gateway) if k["key_id"] == info["key_id"])
    assert info["rpm_limit"] == 7 and info["tpm_limit"] is None and info["max_budget"] == 3.0
    bad = client.post(f"/ui/keys/{info['key_id']}/edit", data={"csrf_token": token, "rpm_limit": "lots"})
    assert bad.status_code == 400 and "whole number" in bad.text
    assert client.post(f"/ui/keys/{info['key_id']}/block", data={"csrf_token": token}).status_code == 303
    assert httpx.get(f"{gateway.base_url}/v1/models", headers={"Authorization": f"Bearer {key.group(1)}"},
                     timeout=10).status_code == 401


def test_revoking_a_key_ends_its_dashboard_session(gateway: Gateway) -> None:
    key = gateway.create_key(key_alias="ui-short-lived")
    client, _ = signed_in(gateway, key)
    assert client.get("/ui/usage").status_code == 200
    revoked = httpx.post(f"{gateway.base_url}/key/delete", json={"keys": [key]}, headers=gateway.admin(), timeout=10)
    assert revoked.status_code == 200
    response = client.get("/ui/usage")
    assert response.status_code == 303 and response.headers["location"] == "/ui/login"


def test_teams_are_created_edited_blocked_and_deleted_through_forms(gateway: Gateway) -> None:
    client, token = signed_in(gateway, gateway.master_key)
    created = client.post("/ui/teams/create", data={
        "csrf_token": token, "team_id": "ui-team", "team_alias": "UI <team>", "max_budget": "12.5",
        "budget_duration": "7d", "models_field": "1", "models": ["fake-good"], "rpm_limit": "100"})
    assert created.status_code == 303 and created.headers["location"] == "/ui/teams/ui-team?created=1"
    team = httpx.get(f"{gateway.base_url}/team/info", params={"team_id": "ui-team"}, headers=gateway.admin(),
                     timeout=10).json()["team_info"]
    assert (team["team_alias"], team["max_budget"], team["models"], team["rpm_limit"]) == (
        "UI <team>", 12.5, ["fake-good"], 100)
    page = client.get(created.headers["location"]).text
    assert "UI &lt;team&gt;" in page and "Team created." in page and 'value="12.5"' in page

    edited = client.post("/ui/teams/ui-team/edit", data={
        "csrf_token": token, "team_alias": "UI team", "max_budget": "", "budget_duration": "", "models_field": "1",
        "rpm_limit": "", "tpm_limit": "5000", "max_daily_spend": "3", "max_parallel_requests": "",
        "privacy_tier": "", "pii_policy": "mask", "soft_budget": "2.5", "alert_thresholds": "90, 40"})
    assert edited.status_code == 303
    team = httpx.get(f"{gateway.base_url}/team/info", params={"team_id": "ui-team"}, headers=gateway.admin(),
                     timeout=10).json()["team_info"]
    assert (team["max_budget"], team["models"], team["rpm_limit"], team["tpm_limit"], team["max_daily_spend"],
            team["pii_policy"], team["soft_budget"], team["alert_thresholds"]) == (None, [], None, 5000, 3.0, "mask",
                                                                                    2.5, [40, 90])
    form = client.get("/ui/teams/ui-team").text
    assert 'value="2.5"' in form and 'value="40, 90"' in form, "the soft budget and thresholds show on the form"

    # The key form's team picker puts a key in the team; deleting the team revokes the keys still in it.
    made = client.post("/ui/keys/create", data={"csrf_token": token, "key_alias": "ui-team-key",
                                                "team_id": "ui-team", "models_field": "1"})
    assert made.status_code == 200 and 'id="new-key-value"' in made.text
    key_id = next(k["key_id"] for k in keys_of(gateway) if k["key_alias"] == "ui-team-key")
    assert next(k for k in keys_of(gateway) if k["key_id"] == key_id)["team_id"] == "ui-team"
    blocked = client.post("/ui/teams/ui-team/block", data={"csrf_token": token, "back": "list"})
    assert blocked.status_code == 303 and blocked.headers["location"] == "/ui/teams"
    assert 'data-team-id="ui-team"' in client.get("/ui/teams").text
    assert "revokes its 1 key with it" in client.get("/ui/teams/ui-team").text
    deleted = client.post("/ui/teams/ui-team/delete", data={"csrf_token": token})
    assert deleted.status_code == 303 and deleted.headers["location"] == "/ui/teams?deleted=1"
    assert client.get("/ui/teams/ui-team").status_code == 404
    assert next(k for k in keys_of(gateway) if k["key_id"] == key_id)["status"] == "revoked"


def test_a_provider_key_is_refused_with_a_reason_when_the_gateway_cannot_seal_it(gateway: Gateway) -> None:
    client, token = signed_in(gateway, gateway.master_key)
    refused = client.post("/ui/keys/create", data={"csrf_token": token, "key_alias": "ui-byok", "models_field": "1",
                                                   "credential_provider": "openai", "credential_secret": "sk-up-1"})
    assert refused.status_code == 400 and "SWITCHBOARD_ENCRYPTION_KEY" in refused.text
    assert 'value="ui-byok"' in refused.text and "sk-up-1" not in refused.text, "the form comes back, the secret not"
