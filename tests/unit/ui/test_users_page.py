"""The dashboard's users page: every user with its role, keys, teams, budget and spend; admins only."""

from __future__ import annotations

import secrets

import httpx

from tests.e2e.keys_helpers import admin_post, ok
from tests.harness import Gateway
from tests.unit.ui.test_pages_http import signed_in


def test_the_users_page_lists_users_with_their_spend_and_budget(gateway: Gateway) -> None:
    user_id = "page-user-" + secrets.token_hex(3)
    made = ok(admin_post(gateway, "/user/new", {"user_id": user_id, "user_alias": "Ada", "max_budget": 12.5,
                                                "budget_duration": "30d", "user_role": "proxy_admin_viewer"}))
    answer = httpx.post(f"{gateway.base_url}/v1/chat/completions", headers={"Authorization": f"Bearer {made['key']}"},
                        json={"model": "fake-good", "messages": [{"role": "user", "content": "hi"}]}, timeout=20)
    assert answer.status_code == 200
    client, _ = signed_in(gateway, gateway.master_key)
    page = client.get("/ui/users")
    assert page.status_code == 200 and user_id in page.text and "Ada" in page.text
    assert "proxy_admin_viewer" in page.text and "$12.50" in page.text and "per 30d" in page.text
    assert 'href="/ui/users"' in client.get("/ui/keys").text
    visitor, _ = signed_in(gateway, str(ok(admin_post(gateway, "/key/generate", {}))["key"]))
    assert visitor.get("/ui/users").status_code == 403
