"""Virtual keys end to end through the facade: every field of /key/generate, the key lifecycle, and secrecy."""

from __future__ import annotations

import time
from pathlib import Path

import openai
import pytest

from tests.e2e.keys_helpers import admin_get, admin_post, chat, generate, ok, sdk
from tests.harness import Gateway

#: Every plain key these tests saw, searched for in the database, data directory and logs at the end.
SEEN_KEYS: list[str] = []


def new_key(gateway: Gateway, **spec: object) -> dict[str, object]:
    created = generate(gateway, **spec)
    SEEN_KEYS.append(str(created["key"]))
    return created


def test_generate_returns_the_key_once_with_every_field(gateway: Gateway) -> None:
    created = new_key(gateway, key_alias="all-fields", models=["fake-good", "openai/*"], duration="30d",
                      max_budget="12.50", budget_duration="1mo", max_daily_spend=2, rpm_limit=100, tpm_limit=50000,
                      max_parallel_requests=5, privacy_tier="standard", pii_policy="mask",
                      metadata={"owner": "platform", "cost_center": 42})
    key = str(created["key"])
    assert key.startswith("sk-") and len(key) >= 3 + 43
    assert created["key_name"] == f"sk-...{key[-4:]}" and created["last_four"] == key[-4:]
    assert created["models"] == ["fake-good", "openai/*"]
    assert created["max_budget"] == 12.5 and created["budget_duration"] == "1mo" and created["max_daily_spend"] == 2
    assert (created["rpm_limit"], created["tpm_limit"], created["max_parallel_requests"]) == (100, 50000, 5)
    assert created["privacy_tier"] == "standard" and created["pii_policy"] == "mask"
    assert created["metadata"] == {"owner": "platform", "cost_center": "42"}
    expires = time.mktime(time.strptime(str(created["expires"]), "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
    assert abs(expires - (time.time() + 30 * 86400)) < 120
    listed = ok(admin_get(gateway, "/key/list"))
    entry = next(k for k in listed["keys"] if k["key_id"] == created["key_id"])
    assert "key" not in entry and entry["key_name"] == f"sk-...{key[-4:]}"
    assert key not in str(listed)
    info = ok(admin_get(gateway, "/key/info", key=str(created["key_id"])))["info"]
    assert key not in str(info) and info["rpm_limit"] == 100


def test_a_key_reads_its_own_info_but_not_others(gateway: Gateway) -> None:
    mine = new_key(gateway, key_alias="me")
    other = new_key(gateway, key_alias="other")
    own = ok(admin_get(gateway, "/key/info", as_key=str(mine["key"])))
    assert own["info"]["key_alias"] == "me"
    refused = admin_get(gateway, "/key/info", as_key=str(mine["key"]), key=str(other["key_id"]))
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "not_your_key"
    for path, body in (("/key/generate", {}), ("/key/update", {"key": other["key_id"], "rpm_limit": 1}),
                       ("/key/delete", {"keys": [other["key_id"]]}), ("/team/new", {"team_alias": "x"})):
        response = admin_post(gateway, path, body, as_key=str(mine["key"]))
        assert response.status_code == 403, (path, response.text)
        assert response.json()["error"]["code"] == "admin_required"
    assert admin_get(gateway, "/key/list", as_key=str(mine["key"])).status_code == 403
    assert ok(admin_get(gateway, "/key/info", key=str(other["key_id"])))["info"]["rpm_limit"] is None


def test_an_admin_key_manages_others(gateway: Gateway) -> None:
    admin = new_key(gateway, key_alias="ops", is_admin=True)
    created = ok(admin_post(gateway, "/key/generate", {"key_alias": "made-by-ops"}, as_key=str(admin["key"])))
    SEEN_KEYS.append(created["key"])
    assert ok(admin_get(gateway, "/key/list", as_key=str(admin["key"])))["total_count"] >= 2


def test_update_changes_only_the_given_fields_and_takes_effect(gateway: Gateway) -> None:
    created = new_key(gateway, key_alias="upd", models=["fake-good"], rpm_limit=50, metadata={"a": "1"})
    client = sdk(gateway, str(created["key"]))
    with pytest.raises(openai.PermissionDeniedError):
        chat(client, "fake-echo")
    updated = ok(admin_post(gateway, "/key/update", {"key": created["key_id"], "models": ["fake-good", "fake-echo"],
                                                     "rpm_limit": None}))
    assert updated["models"] == ["fake-good", "fake-echo"] and updated["rpm_limit"] is None
    assert updated["key_alias"] == "upd" and updated["metadata"] == {"a": "1"}
    assert chat(client, "fake-echo").parse().choices[0].message.content == "hi"


def test_block_unblock_regenerate_and_delete(gateway: Gateway) -> None:
    created = new_key(gateway, key_alias="life")
    client = sdk(gateway, str(created["key"]))
    chat(client)
    assert ok(admin_post(gateway, "/key/block", {"key": created["key_id"]}))["status"] == "blocked"
    with pytest.raises(openai.AuthenticationError, match="blocked"):
        chat(client)
    assert ok(admin_post(gateway, "/key/unblock", {"key": created["key"]}))["status"] == "active"
    chat(client)
    regenerated = ok(admin_post(gateway, "/key/regenerate", {"key": created["key_id"]}))
    SEEN_KEYS.append(regenerated["key"])
    assert regenerated["key"] != created["key"] and regenerated["key_id"] == created["key_id"]
    with pytest.raises(openai.AuthenticationError):
        chat(client)
    fresh = sdk(gateway, regenerated["key"])
    chat(fresh)
    assert ok(admin_post(gateway, "/key/delete", {"keys": [created["key_id"]]}))["deleted_keys"] == [
        created["key_id"]]
    with pytest.raises(openai.AuthenticationError, match="revoked"):
        chat(fresh)
    assert ok(admin_get(gateway, "/key/info", key=str(created["key_id"])))["info"]["status"] == "revoked"


def test_a_key_expires(gateway: Gateway) -> None:
    created = new_key(gateway, key_alias="short", duration="2s")
    client = sdk(gateway, str(created["key"]))
    chat(client)
    time.sleep(2.2)
    with pytest.raises(openai.AuthenticationError, match="expired"):
        chat(client)
    later = new_key(gateway, key_alias="dated", expires="2099-01-01T00:00:00Z")
    assert later["expires"] == "2099-01-01T00:00:00Z"


def test_privacy_tier_and_budgets_reach_the_key_context(gateway: Gateway) -> None:
    """Auth stores them and hands them on; the router and billing enforce them."""
    created = new_key(gateway, key_alias="ctx", privacy_tier="zero_retention", max_budget=3, budget_duration="7d")
    info = ok(admin_get(gateway, "/key/info", as_key=str(created["key"])))["info"]
    assert info["privacy_tier"] == "zero_retention" and info["max_budget"] == 3 and info["budget_duration"] == "7d"
    assert info["effective"]["privacy_tier"] == "zero_retention" and info["effective"]["privacy_tier_source"] == "key"
    with pytest.raises(openai.BadRequestError, match="privacy tier 'zero_retention'"):  # the fakes are all standard
        chat(sdk(gateway, str(created["key"])))
    unknown = admin_post(gateway, "/key/generate", {"privacy_tier": "confidential"})
    assert unknown.status_code == 400 and unknown.json()["error"]["code"] == "unknown_privacy_tier"


def test_model_wildcards_are_honoured(gateway: Gateway) -> None:
    client = sdk(gateway, str(new_key(gateway, models=["fake-g*"])["key"]))
    assert chat(client, "fake-good").parse().choices[0].message.content
    with pytest.raises(openai.PermissionDeniedError):
        chat(client, "fake-echo")


def test_the_plain_key_is_nowhere_on_disk_or_in_the_logs(gateway: Gateway) -> None:
    """Runs last in this module: every key created above is searched for."""
    assert SEEN_KEYS
    files = [p for p in Path(gateway.data_dir).rglob("*") if p.is_file()]
    files += [p for p in (Path(gateway.data_dir).parent / "logs").rglob("*") if p.is_file()]
    assert any(p.name.startswith("auth.db") for p in files)
    for path in files:
        content = path.read_bytes()
        for key in SEEN_KEYS:
            assert key.encode() not in content, f"plain key found in {path}"
            assert key[3:].encode() not in content, f"key material found in {path}"
