"""The dashboard's bell and alerts page: a soft budget passed by real traffic shows in the bell of an admin and of
the key itself (with a count of the last day's alerts), and never in another key's."""

from __future__ import annotations

import secrets
import time

import httpx

from tests.e2e.keys_helpers import admin_post, ok
from tests.harness import Gateway
from tests.unit.ui.test_pages_http import signed_in


def test_the_bell_shows_recent_alerts_to_admins_and_to_their_own_key(gateway: Gateway) -> None:
    alias = "bell-" + secrets.token_hex(3)
    made = ok(admin_post(gateway, "/key/generate", {"key_alias": alias, "soft_budget": 0.000001}))
    answer = httpx.post(f"{gateway.base_url}/v1/chat/completions", headers={"Authorization": f"Bearer {made['key']}"},
                        json={"model": "fake-good", "messages": [{"role": "user", "content": "hi"}]}, timeout=20)
    assert answer.status_code == 200, "a soft budget never refuses"
    admin, _ = signed_in(gateway, gateway.master_key)
    deadline = time.monotonic() + 15
    recent: dict[str, object] = {}
    while time.monotonic() < deadline:  # settlement is asynchronous
        recent = admin.get("/ui/alerts/recent").json()
        if any(alias in str(a["message"]) for a in recent["alerts"]):  # type: ignore[attr-defined]
            break
        time.sleep(0.1)
    else:
        raise AssertionError(f"no alert of {alias} in the bell: {recent}")
    assert recent["new"] >= 1  # type: ignore[operator]
    page = admin.get("/ui/alerts")
    assert page.status_code == 200 and alias in page.text and "soft budget" in page.text
    assert 'data-bell' in page.text and 'href="/ui/alerts"' in page.text
    own, _ = signed_in(gateway, str(made["key"]))
    assert any(alias in a["message"] for a in own.get("/ui/alerts/recent").json()["alerts"])
    stranger, _ = signed_in(gateway, str(ok(admin_post(gateway, "/key/generate", {}))["key"]))
    assert all(alias not in a["message"] for a in stranger.get("/ui/alerts/recent").json()["alerts"])
    assert alias not in stranger.get("/ui/alerts").text
    anonymous = httpx.get(f"{gateway.base_url}/ui/alerts/recent", timeout=10)
    assert anonymous.status_code == 401
