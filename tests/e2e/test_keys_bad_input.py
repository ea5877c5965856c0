"""Bad input on every admin endpoint: a 4xx that names what is wrong, and nothing changes.

The keys and teams are snapshotted when the module starts and compared when it ends
(``test_nothing_changed``, last): none of the refused requests above may have changed anything.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.e2e.keys_helpers import admin_get, admin_post, generate, ok
from tests.harness import Gateway


@pytest.fixture(scope="module")
def existing(gateway: Gateway) -> dict[str, str]:
    team = ok(admin_post(gateway, "/team/new", {"team_id": "bad-input-team", "rpm_limit": 5}))
    empty_team = ok(admin_post(gateway, "/team/new", {"team_id": "bad-input-empty"}))
    key = generate(gateway, key_alias="bad-input", team_id=team["team_id"], rpm_limit=7)
    user = generate(gateway, key_alias="bad-input-user")
    BEFORE.append(snapshot(gateway))
    return {"key_id": key["key_id"], "team_id": team["team_id"], "empty_team": empty_team["team_id"],
            "user_key": user["key"]}


BEFORE: list[tuple[Any, Any]] = []


def snapshot(gateway: Gateway) -> tuple[Any, Any]:
    return ok(admin_get(gateway, "/key/list")), ok(admin_get(gateway, "/team/list"))


#: (method, path, body or query, status, param named in the error (or None), code (or None))
CASES: list[tuple[str, str, Any, int, str | None, str | None]] = [
    ("POST", "/key/generate", {"rpm_limit": "10"}, 400, "rpm_limit", "invalid_type"),
    ("POST", "/key/generate", {"rpm_limit": -1}, 400, "rpm_limit", "invalid_value"),
    ("POST", "/key/generate", {"tpm_limit": 1.5}, 400, "tpm_limit", "invalid_type"),
    ("POST", "/key/generate", {"max_parallel_requests": True}, 400, "max_parallel_requests", "invalid_type"),
    ("POST", "/key/generate", {"max_budget": "lots"}, 400, "max_budget", "invalid_type"),
    ("POST", "/key/generate", {"max_budget": -5}, 400, "max_budget", "invalid_value"),
    ("POST", "/key/generate", {"max_daily_spend": [1]}, 400, "max_daily_spend", "invalid_type"),
    ("POST", "/key/generate", {"budget_duration": "7 days"}, 400, "budget_duration", None),
    ("POST", "/key/generate", {"budget_duration": "0d"}, 400, "budget_duration", None),
    ("POST", "/key/generate", {"duration": "forever"}, 400, "duration", None),
    ("POST", "/key/generate", {"expires": "tomorrow"}, 400, "expires", "invalid_value"),
    ("POST", "/key/generate", {"expires": "2001-01-01T00:00:00Z"}, 400, "expires", "invalid_value"),
    ("POST", "/key/generate", {"duration": "1d", "expires": "2099-01-01T00:00:00Z"}, 400, "duration",
     "conflicting_fields"),
    ("POST", "/key/generate", {"models": "fake-good"}, 400, "models", "invalid_type"),
    ("POST", "/key/generate", {"models": [""]}, 400, "models", "invalid_type"),
    ("POST", "/key/generate", {"metadata": ["x"]}, 400, "metadata", "invalid_type"),
    ("POST", "/key/generate", {"team_id": "no-such-team"}, 400, "team_id", "team_not_found"),
    ("POST", "/key/generate", {"pii_policy": "shred"}, 400, "pii_policy", None),
    ("POST", "/key/generate", {"key_alias": 5}, 400, "key_alias", "invalid_type"),
    ("POST", "/key/generate", {"is_admin": "yes"}, 400, "is_admin", "invalid_type"),
    ("POST", "/key/generate", {"rpm_limt": 5}, 400, "rpm_limt", "unknown_field"),
    ("POST", "/key/generate", b"[1, 2]", 400, None, "invalid_json"),
    ("POST", "/key/generate", b"{not json", 400, None, "invalid_json"),
    ("POST", "/key/update", {"rpm_limit": 1}, 400, "key", "missing_key"),
    ("POST", "/key/update", {"key": "key_0000000000000000", "rpm_limit": 1}, 404, "key", "key_not_found"),
    ("POST", "/key/update", {"key": "{key_id}", "rpm_limit": -3}, 400, "rpm_limit", "invalid_value"),
    ("POST", "/key/update", {"key": "{key_id}"}, 400, None, "nothing_to_update"),
    ("POST", "/key/update", {"key": "{key_id}", "team_id": "nope"}, 400, "team_id", "team_not_found"),
    ("POST", "/key/update", {"key": "{key_id}", "budget_duration": "1x"}, 400, "budget_duration", None),
    ("POST", "/key/update", {"key": "{key_id}", "duration": 30}, 400, "duration", "invalid_type"),
    ("POST", "/key/delete", {}, 400, "keys", "missing_keys"),
    ("POST", "/key/delete", {"keys": "{key_id}"}, 400, "keys", "missing_keys"),
    ("POST", "/key/delete", {"keys": ["{key_id}", "key_0000000000000000"]}, 404, "key", "key_not_found"),
    ("GET", "/key/info", {}, 400, "key", "missing_key"),
    ("GET", "/key/info", {"key": "key_0000000000000000"}, 404, "key", "key_not_found"),
    ("POST", "/key/regenerate", {}, 400, "key", "missing_key"),
    ("POST", "/key/regenerate", {"key": "sk-not-a-key"}, 404, "key", "key_not_found"),
    ("POST", "/key/block", {"key": 5}, 400, "key", "missing_key"),
    ("POST", "/key/unblock", {"key": "key_0000000000000000"}, 404, "key", "key_not_found"),
    ("POST", "/team/new", {"team_id": "bad id!"}, 400, "team_id", None),
    ("POST", "/team/new", {"rpm_limit": -1}, 400, "rpm_limit", "invalid_value"),
    ("POST", "/team/new", {"budget_duration": "2 weeks"}, 400, "budget_duration", None),
    ("POST", "/team/new", {"blocked": "no"}, 400, "blocked", "invalid_type"),
    ("POST", "/team/new", {"team_id": "{team_id}"}, 409, "team_id", "team_exists"),
    ("POST", "/team/new", {"pii_policy": "shred"}, 400, "pii_policy", None),
    ("POST", "/team/update", {"rpm_limit": 1}, 400, "team_id", "missing_team_id"),
    ("POST", "/team/update", {"team_id": "nope", "rpm_limit": 1}, 404, "team_id", "team_id_not_found"),
    ("POST", "/team/update", {"team_id": "{team_id}"}, 400, None, "nothing_to_update"),
    ("POST", "/team/update", {"team_id": "{team_id}", "tpm_limit": "x"}, 400, "tpm_limit", "invalid_type"),
    ("POST", "/team/delete", {"team_ids": []}, 400, "team_ids", "missing_team_ids"),
    ("POST", "/team/delete", {"team_ids": ["{empty_team}", "nope"]}, 404, "team_id", "team_id_not_found"),
    ("GET", "/team/info", {}, 400, "team_id", "missing_team_id"),
    ("GET", "/team/info", {"team_id": "nope"}, 404, "team_id", "team_id_not_found"),
]


def _fill(value: Any, existing: dict[str, str]) -> Any:
    if isinstance(value, str):
        return value.format(**existing) if "{" in value and "}" in value and not value.startswith("{not") else value
    if isinstance(value, list):
        return [_fill(v, existing) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, existing) for k, v in value.items()}
    return value


def _send(gateway: Gateway, method: str, path: str, body: Any, credential: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {credential}"} if credential else {}
    if method == "GET":
        return httpx.get(gateway.base_url + path, params=body, headers=headers, timeout=10)
    if isinstance(body, bytes):
        return httpx.post(gateway.base_url + path, content=body, headers=headers, timeout=10)
    return httpx.post(gateway.base_url + path, json=body, headers=headers, timeout=10)


@pytest.mark.parametrize(("method", "path", "body", "status", "param", "code"), CASES,
                         ids=[f"{c[1]}-{i}" for i, c in enumerate(CASES)])
def test_bad_input_is_refused_and_changes_nothing(gateway: Gateway, existing: dict[str, str], method: str,
                                                 path: str, body: Any, status: int, param: str | None,
                                                 code: str | None) -> None:
    response = _send(gateway, method, path, _fill(body, existing), gateway.master_key)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["message"]
    if param is not None:
        assert error["param"] == param, error
    if code is not None:
        assert error["code"] == code, error


ADMIN_ONLY = [("POST", "/key/generate", {}), ("POST", "/key/update", {"key": "{key_id}", "rpm_limit": 1}),
              ("POST", "/key/delete", {"keys": ["{key_id}"]}), ("GET", "/key/list", {}),
              ("GET", "/key/info", {"key": "{key_id}"}), ("POST", "/key/regenerate", {"key": "{key_id}"}),
              ("POST", "/key/block", {"key": "{key_id}"}), ("POST", "/key/unblock", {"key": "{key_id}"}),
              ("POST", "/team/new", {}), ("POST", "/team/update", {"team_id": "{team_id}", "rpm_limit": 1}),
              ("POST", "/team/delete", {"team_ids": ["{empty_team}"]}), ("GET", "/team/info", {"team_id": "{team_id}"}),
              ("POST", "/user/new", {}), ("GET", "/user/list", {}), ("GET", "/user/info", {"user_id": "someone"}),
              ("POST", "/team/member_add", {"team_id": "{team_id}", "member": {"role": "user", "user_id": "u"}}),
              ("GET", "/health", {})]


@pytest.mark.parametrize(("method", "path", "body"), ADMIN_ONLY, ids=[c[1] for c in ADMIN_ONLY])
def test_a_non_admin_key_or_no_key_is_refused_everywhere(gateway: Gateway, existing: dict[str, str], method: str,
                                                          path: str, body: Any) -> None:
    refused = _send(gateway, method, path, _fill(body, existing), existing["user_key"])
    assert refused.status_code == 403, refused.text
    assert refused.json()["error"]["code"] in ("admin_required", "not_your_key", "not_your_team", "not_your_user")
    anonymous = _send(gateway, method, path, _fill(body, existing), None)
    assert anonymous.status_code == 401 and anonymous.json()["error"]["code"] == "missing_api_key"


def test_a_key_lists_only_the_teams_it_may_read(gateway: Gateway, existing: dict[str, str]) -> None:
    assert ok(admin_get(gateway, "/team/list", as_key=existing["user_key"])) == []


def test_nothing_changed(gateway: Gateway, existing: dict[str, str]) -> None:
    assert BEFORE and snapshot(gateway) == BEFORE[0]
