"""The audit trail against a real gateway: every admin route of the OpenAPI document that changes state, and every
dashboard form that does the same, leaves exactly one row with the right actor, action, target and origin, and no
secret; refused changes leave none; ``/audit`` filters and exports CSV with formulas neutralised; non-admins get
403; and a row edited in the database is caught by ``switchboard audit verify`` (SQLite here, PostgreSQL below).
"""

from __future__ import annotations

import csv
import io
import os
import re
import secrets
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import psycopg
import pytest

from switchboard_auth.hashing import hash_key
from switchboard_common.credential_cipher import CredentialCipher
from tests.conftest import fake_models
from tests.e2e.keys_helpers import ok
from tests.fakes.openai_provider import FakeOpenAI
from tests.harness import Gateway, python_path, start_gateway

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
HOT_PREFIXES = ("/v1/", "/chat", "/cursor/", "/openai/", "/anthropic/", "/responses", "/embeddings", "/completions",
                "/moderations")
BYOK_KEY = "sk-byok-key-secret-" + secrets.token_hex(6)
BYOK_TEAM = "sk-byok-team-secret-" + secrets.token_hex(6)
MODEL_SECRET = "sk-model-secret-" + secrets.token_hex(6)
CLIENT = {"User-Agent": "audit-e2e/1.0", "X-Forwarded-For": "203.0.113.9"}
POSTGRES_URL = os.environ.get("SWITCHBOARD_TEST_POSTGRES_URL", "")


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory, fake_openai: tuple[FakeOpenAI, str]) -> Iterator[Gateway]:
    gateway = start_gateway(tmp_path_factory.mktemp("audit"), fake_models(fake_openai[1]),
                            extra_env={"SWITCHBOARD_ENCRYPTION_KEY": CredentialCipher.generate_key()})
    try:
        yield gateway
    finally:
        gateway.stop()


def call(gw: Gateway, method: str, path: str, body: object = None, key: str | None = None) -> httpx.Response:
    return httpx.request(method, gw.base_url + path, json=body, timeout=20,
                         headers={"Authorization": f"Bearer {key or gw.master_key}", **CLIENT})


def audit(gw: Gateway, key: str | None = None, **params: str) -> httpx.Response:
    return httpx.get(gw.base_url + "/audit", params={"limit": "1000", **params}, timeout=20,
                     headers={"Authorization": f"Bearer {key or gw.master_key}"})


def heads(gw: Gateway) -> dict[str, int]:
    checks = ok(httpx.get(gw.base_url + "/audit/verify", headers=gw.admin(), timeout=20))
    assert checks["ok"], checks
    return {c["log"]: c["head_seq"] for c in checks["logs"]}


def rows_after(gw: Gateway, before: dict[str, int]) -> list[dict[str, Any]]:
    rows = ok(audit(gw))["data"]
    return [r for r in rows if r["seq"] > before[r["log"]]]


@dataclass
class Step:
    method: str
    template: str
    body: Callable[[dict[str, Any]], Any]
    action: str
    target_type: str
    target: Callable[[dict[str, Any]], str]
    path: Callable[[dict[str, Any]], str] | None = None
    as_admin_key: bool = False
    remember: Callable[[dict[str, Any], Any], None] | None = None


def _set(name: str, field: str) -> Callable[[dict[str, Any], Any], None]:
    def remember(state: dict[str, Any], answer: Any) -> None:
        state[name] = answer[field]
        for plain in (answer.get("key"),):
            if isinstance(plain, str) and plain.startswith("sk-"):
                state["plain_keys"].append(plain)
    return remember


def _plain(state: dict[str, Any], answer: Any) -> None:
    state["plain_keys"].append(answer["key"])


def steps() -> list[Step]:
    s = Step
    return [
        s("POST", "/key/generate", lambda st: {"key_alias": "audit-admin", "is_admin": True}, "key.create", "key",
          lambda st: st["admin_id"], remember=_set("admin_id", "key_id")),
        s("POST", "/team/new", lambda st: {"team_id": "t-audit", "provider_credentials": {"openai": BYOK_TEAM}},
          "team.create", "team", lambda st: "t-audit"),
        s("POST", "/team/update", lambda st: {"team_id": "t-audit", "rpm_limit": 50}, "team.update", "team",
          lambda st: "t-audit", as_admin_key=True),
        s("POST", "/team/block", lambda st: {"team_id": "t-audit"}, "team.block", "team", lambda st: "t-audit"),
        s("POST", "/team/unblock", lambda st: {"team_id": "t-audit"}, "team.unblock", "team", lambda st: "t-audit"),
        s("POST", "/user/new", lambda st: {"user_id": "u-audit", "teams": ["t-audit"], "key_alias": "u-key"},
          "user.create", "user", lambda st: "u-audit", remember=_set("user_key", "key")),
        s("POST", "/user/update", lambda st: {"user_id": "u-audit", "max_budget": 5}, "user.update", "user",
          lambda st: "u-audit"),
        s("POST", "/key/generate", lambda st: {"key_alias": "k-audit", "team_id": "t-audit", "blocked": True,
                                                "provider_credentials": {"openai": BYOK_KEY}},
          "key.create", "key", lambda st: st["key_id"], remember=_set("key_id", "key_id")),
        s("POST", "/key/update", lambda st: {"key": st["key_id"], "rpm_limit": 7, "blocked": False}, "key.update",
          "key", lambda st: st["key_id"]),
        s("POST", "/key/block", lambda st: {"key": st["key_id"]}, "key.block", "key", lambda st: st["key_id"]),
        s("POST", "/key/unblock", lambda st: {"key": st["key_id"]}, "key.unblock", "key", lambda st: st["key_id"]),
        s("POST", "/key/regenerate", lambda st: {"key": st["key_id"]}, "key.regenerate", "key",
          lambda st: st["key_id"], remember=_plain),
        s("POST", "/key/{key_path}/regenerate", lambda st: None, "key.regenerate", "key", lambda st: st["key_id"],
          path=lambda st: f"/key/{st['key_id']}/regenerate", remember=_plain),
        s("POST", "/team/member_add", lambda st: {"team_id": "t-audit", "member": {"role": "user", "user_id": "u-two"}},
          "team.members", "team", lambda st: "t-audit"),
        s("POST", "/team/member_update", lambda st: {"team_id": "t-audit", "user_id": "u-two", "role": "admin"},
          "team.members", "team", lambda st: "t-audit"),
        s("POST", "/team/member_delete", lambda st: {"team_id": "t-audit", "user_id": "u-two"}, "team.members",
          "team", lambda st: "t-audit"),
        s("POST", "/model/new", lambda st: {"model_name": "audit-model", "litellm_params": {
            "model": "openai/good", "api_key": MODEL_SECRET, "api_base": st["api_base"],
            "input_cost_per_token": 0.000001, "output_cost_per_token": 0.000002}},
          "model.create", "model", lambda st: st["model_id"], remember=_set("model_id", "model_id")),
        s("POST", "/model/update", lambda st: {"model_info": {"id": st["model_id"]}, "litellm_params": {"rpm": 3}},
          "model.update", "model", lambda st: st["model_id"]),
        s("PATCH", "/model/{model_id}/update", lambda st: {"litellm_params": {"rpm": 4}}, "model.update", "model",
          lambda st: st["model_id"], path=lambda st: f"/model/{st['model_id']}/update"),
        s("POST", "/model/delete", lambda st: {"id": st["model_id"]}, "model.delete", "model",
          lambda st: st["model_id"]),
        s("POST", "/key/delete", lambda st: {"keys": [st["key_id"]]}, "key.delete", "key", lambda st: st["key_id"]),
        s("POST", "/user/delete", lambda st: {"user_ids": ["u-audit", "u-two"]}, "user.delete", "user",
          lambda st: "u-audit,u-two"),
        s("POST", "/team/delete", lambda st: {"team_ids": ["t-audit"]}, "team.delete", "team", lambda st: "t-audit"),
    ]


def state_changing_api_routes(gw: Gateway) -> set[tuple[str, str]]:
    spec = ok(httpx.get(gw.base_url + "/openapi.json", timeout=10))
    return {(method.upper(), path) for path, operations in spec["paths"].items() for method in operations
            if method != "get" and not path.startswith(("/ui", *HOT_PREFIXES))}


def test_every_state_changing_admin_route_leaves_exactly_one_row(gw: Gateway,
                                                                 fake_openai: tuple[FakeOpenAI, str]) -> None:
    plan = steps()
    assert {(st.method, st.template) for st in plan} == state_changing_api_routes(gw), \
        "every admin route of the OpenAPI document that changes state is called here"
    state: dict[str, Any] = {"plain_keys": [], "api_base": fake_openai[1]}
    for step in plan:
        before = heads(gw)
        path = step.path(state) if step.path else step.template
        key = None
        if step.as_admin_key:
            key = state["admin_key"]
        answer = call(gw, step.method, path, step.body(state), key)
        assert answer.status_code == 200, (path, answer.text)
        if step.remember:
            step.remember(state, answer.json())
        if step.template == "/key/generate" and "admin_key" not in state:
            state["admin_key"] = answer.json()["key"]
        new = rows_after(gw, before)
        assert len(new) == 1, (path, new)
        row = new[0]
        assert (row["action"], row["target_type"], row["target_id"]) == (
            step.action, step.target_type, step.target(state)), (path, row)
        expected_actor = state["admin_id"] if step.as_admin_key else "master"
        assert row["actor"]["key_id"] == expected_actor and row["actor"]["kind"] == (
            "key" if step.as_admin_key else "master"), (path, row["actor"])
        assert row["client_ip"] == "203.0.113.9" and row["user_agent"] == "audit-e2e/1.0", (path, row)
        assert row["channel"] == "api" and row["request_id"] == answer.headers["x-request-id"], (path, row)
        assert row["log"] == ("billing" if step.target_type == "model" else "auth"), (path, row)

    everything = audit(gw).text + audit(gw, format="csv").text
    pepper = gw.env["SWITCHBOARD_KEY_PEPPER"]
    secrets_ = [gw.master_key, BYOK_KEY, BYOK_TEAM, MODEL_SECRET, *state["plain_keys"]]
    for secret in [*secrets_, *(hash_key(p, pepper) for p in state["plain_keys"])]:
        assert secret not in everything
    rows = ok(audit(gw))["data"]
    created = next(r for r in rows if r["action"] == "key.create" and r["target_id"] == state["key_id"])
    assert created["after"]["provider_credentials_sealed"] == "[redacted]"
    assert created["after"]["key_hash"] == "[redacted]" and created["after"]["status"] == "blocked"
    assert created["after"]["provider_credential_hints"]["openai"].startswith("...")
    regenerated = next(r for r in rows if r["action"] == "key.regenerate")
    assert regenerated["before"]["key_hash"] == regenerated["after"]["key_hash"] == "[redacted]"
    updated = next(r for r in rows if r["action"] == "key.update" and r["target_id"] == state["key_id"])
    assert updated["before"] == {"rpm_limit": None, "status": "blocked"}
    assert updated["after"] == {"rpm_limit": 7, "status": "active"}
    user = next(r for r in rows if r["action"] == "user.create")
    assert user["after"]["joined_teams"] == ["t-audit"] and user["after"]["created_key"].startswith("key_")
    model = next(r for r in rows if r["action"] == "model.create")
    assert model["after"]["sealed_secrets"] == "[redacted]" and model["actor"]["key_id"] == "master"
    # An update that sends no api_key keeps the stored one, and the log does not show it as a key rotation.
    for changed in (r for r in rows if r["action"] == "model.update"):
        assert "sealed_secrets" not in changed["after"] and "sealed_secrets" not in changed["before"], changed
    assert ok(httpx.get(gw.base_url + "/audit/verify", headers=gw.admin(), timeout=20))["ok"]


def test_refused_changes_leave_no_row(gw: Gateway) -> None:
    plain = ok(call(gw, "POST", "/key/generate", {"key_alias": "plain-user"}))["key"]
    before = heads(gw)
    assert call(gw, "POST", "/key/update", {"key": "key_0000000000000000", "rpm_limit": 1}).status_code == 404
    assert call(gw, "POST", "/team/new", {"team_id": "x"}, key=plain).status_code == 403
    assert call(gw, "POST", "/team/update", {"team_id": "no-such-team", "rpm_limit": 1}).status_code == 404
    assert call(gw, "POST", "/model/new", {"model_name": "bad", "litellm_params": {}}).status_code == 400
    ok(call(gw, "POST", "/team/new", {"team_id": "dup-team"}))
    assert call(gw, "POST", "/team/new", {"team_id": "dup-team"}).status_code == 409
    assert call(gw, "POST", "/user/new", {"user_id": "u-bad", "teams": ["no-such-team"]}).status_code == 404
    new = rows_after(gw, before)
    assert [r["action"] for r in new] == ["team.create"], new  # only the one change that was made
    assert call(gw, "GET", "/user/info?user_id=u-bad").status_code == 404  # the user was not made either


def test_dashboard_forms_leave_one_row_each_marked_as_the_dashboard(gw: Gateway,
                                                                    fake_openai: tuple[FakeOpenAI, str]) -> None:
    with httpx.Client(base_url=gw.base_url, timeout=20, follow_redirects=False, headers=CLIENT) as ui:
        token = CSRF.search(ui.get("/ui/login").text)
        assert token
        assert ui.post("/ui/login", data={"csrf_token": token.group(1), "api_key": gw.master_key}).status_code == 303
        csrf = CSRF.search(ui.get("/ui/keys").text)
        assert csrf
        form = {"csrf_token": csrf.group(1)}

        def post(path: str, data: dict[str, str], action: str, target_type: str) -> dict[str, Any]:
            before = heads(gw)
            answer = ui.post(path, data={**form, **data})
            assert answer.status_code in (200, 303), (path, answer.status_code, answer.text[:500])
            new = rows_after(gw, before)
            assert len(new) == 1, (path, new)
            assert (new[0]["action"], new[0]["target_type"], new[0]["channel"]) == (action, target_type,
                                                                                    "dashboard"), new[0]
            assert new[0]["client_ip"] == "203.0.113.9" and new[0]["actor"]["key_id"] == "master"
            assert new[0]["request_id"] == answer.headers["x-request-id"], (path, new[0])
            return new[0]

        post("/ui/teams/create", {"team_id": "ui-team", "team_alias": "UI team"}, "team.create", "team")
        post("/ui/teams/ui-team/edit", {"team_alias": "UI team 2", "rpm_limit": "9"}, "team.update", "team")
        post("/ui/teams/ui-team/block", {}, "team.block", "team")
        post("/ui/teams/ui-team/unblock", {}, "team.unblock", "team")
        key_id = post("/ui/keys/create", {"key_alias": "ui-key"}, "key.create", "key")["target_id"]
        post(f"/ui/keys/{key_id}/edit", {"key_alias": "ui-key-2", "rpm_limit": "3"}, "key.update", "key")
        post(f"/ui/keys/{key_id}/block", {}, "key.block", "key")
        post(f"/ui/keys/{key_id}/unblock", {}, "key.unblock", "key")
        post(f"/ui/keys/{key_id}/regenerate", {}, "key.regenerate", "key")
        post(f"/ui/keys/{key_id}/revoke", {}, "key.delete", "key")
        model_id = post("/ui/models/runtime/create", {
            "model_name": "ui-model", "provider": "openai", "model": "good", "api_base": fake_openai[1],
            "api_key": MODEL_SECRET, "input_cost_per_million": "1", "output_cost_per_million": "2"},
            "model.create", "model")["target_id"]
        post(f"/ui/models/runtime/{model_id}/edit", {"weight": "2"}, "model.update", "model")
        post(f"/ui/models/runtime/{model_id}/delete", {}, "model.delete", "model")
        post("/ui/teams/ui-team/delete", {}, "team.delete", "team")
        page = ui.get("/ui/audit", params={"action": "team.", "verify": "1"})
        assert page.status_code == 200 and 'data-log="auth"' in page.text and "intact" in page.text
        assert "ui-team" in page.text and MODEL_SECRET not in page.text
        exported = ui.get("/ui/audit.csv", params={"target_id": "ui-team"})
        assert exported.status_code == 200 and len(list(csv.DictReader(io.StringIO(exported.text)))) == 5


def test_audit_filters_and_csv_export(gw: Gateway) -> None:
    admin_key = ok(call(gw, "POST", "/key/generate", {"key_alias": "filter-admin", "is_admin": True}))
    hostile = "=HYPERLINK(\"http://evil.example\",\"x\")"
    ok(httpx.post(gw.base_url + "/team/new", json={"team_id": "f-team"}, timeout=20,
                  headers={"Authorization": f"Bearer {admin_key['key']}", "User-Agent": hostile}))
    ok(call(gw, "POST", "/team/update", {"team_id": "f-team", "tpm_limit": 10}))
    by_actor = ok(audit(gw, actor=admin_key["key_id"]))["data"]
    assert [r["action"] for r in by_actor] == ["team.create"]
    assert {r["action"] for r in ok(audit(gw, target_id="f-team"))["data"]} == {"team.create", "team.update"}
    assert {r["action"] for r in ok(audit(gw, action="team.", target_id="f-team"))["data"]} == {
        "team.create", "team.update"}
    assert [r["action"] for r in ok(audit(gw, action="team.update", target_id="f-team"))["data"]] == ["team.update"]
    assert ok(audit(gw, target_type="model", target_id="f-team"))["data"] == []
    newest = ok(audit(gw, limit="1"))["data"][0]
    assert ok(audit(gw, since=newest["time"], target_id="f-team"))["data"][0]["action"] == "team.update"
    assert ok(audit(gw, until="2000-01-01"))["data"] == []
    assert ok(audit(gw, log="billing", target_id="f-team"))["data"] == []
    exported = audit(gw, target_id="f-team", format="csv")
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert [r["action"] for r in rows] == ["team.update", "team.create"]
    assert rows[1]["user_agent"] == "'" + hostile  # neutralised: no spreadsheet runs it
    for bad in ({"limit": "0"}, {"limit": "x"}, {"since": "yesterday"}, {"log": "router"}, {"format": "xml"},
                {"since": "2026-02-01", "until": "2026-01-01"}):
        refused = audit(gw, **bad)
        assert refused.status_code == 400 and refused.json()["error"]["param"], (bad, refused.text)


def test_non_admins_get_403(gw: Gateway) -> None:
    ok(call(gw, "POST", "/user/new", {"user_id": "viewer-audit", "user_role": "proxy_admin_viewer",
                                      "auto_create_key": False}))
    viewer = ok(call(gw, "POST", "/key/generate", {"user_id": "viewer-audit"}))["key"]
    plain = ok(call(gw, "POST", "/key/generate", {"key_alias": "nobody"}))["key"]
    for key in (viewer, plain):
        for path in ("/audit", "/audit/verify", "/audit?format=csv"):
            refused = httpx.get(gw.base_url + path, headers={"Authorization": f"Bearer {key}"}, timeout=20)
            assert refused.status_code == 403, (path, refused.text)
            assert refused.json()["error"]["type"] == "permission_error"
    assert httpx.get(gw.base_url + "/audit", timeout=20).status_code == 401


def test_retention_prunes_old_rows_and_the_chain_still_verifies(tmp_path_factory: pytest.TempPathFactory,
                                                               fake_openai: tuple[FakeOpenAI, str]) -> None:
    gateway = start_gateway(tmp_path_factory.mktemp("audit-retention"), fake_models(fake_openai[1]), extra_env={
        "SWITCHBOARD_AUDIT_RETENTION_DAYS": str(1 / 86_400), "SWITCHBOARD_AUDIT_PRUNE_INTERVAL_SECONDS": "0.2"})
    try:
        for n in range(3):
            ok(call(gateway, "POST", "/team/new", {"team_id": f"old-{n}"}))
        deadline = time.monotonic() + 60
        while ok(audit(gateway, action="team.create"))["data"]:
            assert time.monotonic() < deadline, "the old rows were never pruned"
            time.sleep(0.2)
        checkpoint = ok(audit(gateway, action="audit.prune"))["data"][0]  # the newest
        assert checkpoint["log"] == "auth" and checkpoint["actor"]["kind"] == "system"
        assert checkpoint["after"]["pruned_through_seq"] >= 3 and checkpoint["after"]["rows_deleted"] >= 1
        oldest = min(r["seq"] for r in ok(audit(gateway, log="auth"))["data"])
        assert oldest == checkpoint["after"]["pruned_through_seq"] + 1  # the rows kept start after the anchor
        ok(call(gateway, "POST", "/team/new", {"team_id": "new-team"}))
        checked = verify_cli(gateway)
        assert checked.returncode == 0 and "auth: ok" in checked.stdout, checked.stdout + checked.stderr
    finally:
        gateway.stop()


def verify_cli(gw: Gateway, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": python_path()}
    return subprocess.run([sys.executable, "-m", "switchboard_facade.cli.main", "audit", "verify", "--url",
                           gw.base_url, "--api-key", gw.master_key, *extra], env=env, capture_output=True,
                          text=True, timeout=120)


def test_a_row_edited_in_sqlite_is_caught_by_audit_verify(gw: Gateway) -> None:
    ok(call(gw, "POST", "/team/new", {"team_id": "tamper-team"}))
    ok(call(gw, "POST", "/team/update", {"team_id": "tamper-team", "rpm_limit": 5}))
    untouched = verify_cli(gw)
    assert untouched.returncode == 0, untouched.stdout + untouched.stderr
    assert "auth: ok" in untouched.stdout and "billing: ok" in untouched.stdout
    head = re.search(r"auth: ok, \d+ rows, head (\d+) ([0-9a-f]{64})", untouched.stdout)
    assert head
    assert verify_cli(gw, "--expect-head", f"auth:{head.group(1)}:{head.group(2)}").returncode == 0
    row = ok(audit(gw, target_id="tamper-team", action="team.create"))["data"][0]
    db = sqlite3.connect(gw.data_dir / "auth.db")
    try:
        db.execute("UPDATE auth_audit_log SET actor_key_id = 'key_innocent' WHERE seq = ?", (row["seq"],))
        db.commit()
        broken = verify_cli(gw)
        assert broken.returncode == 1, broken.stdout + broken.stderr
        assert f"auth: BROKEN at row {row['seq']}" in broken.stdout, broken.stdout
        db.execute("UPDATE auth_audit_log SET actor_key_id = ? WHERE seq = ?", (row["actor"]["key_id"],
                                                                                 row["seq"]))
        db.commit()
    finally:
        db.close()
    assert verify_cli(gw).returncode == 0
    forged = verify_cli(gw, "--expect-head", f"auth:{head.group(1)}:{'0' * 64}")
    assert forged.returncode == 1 and f"BROKEN at row {head.group(1)}" in forged.stdout
    shortened = verify_cli(gw, "--expect-head", f"auth:{head.group(1)}:{head.group(2)[:4]}…{head.group(2)[-2:]}")
    assert shortened.returncode == 2 and "64 hex digits" in shortened.stderr


@pytest.mark.postgres
@pytest.mark.skipif(not POSTGRES_URL, reason="needs PostgreSQL: set SWITCHBOARD_TEST_POSTGRES_URL")
def test_a_row_edited_in_postgres_is_caught_by_audit_verify(tmp_path_factory: pytest.TempPathFactory,
                                                           fake_openai: tuple[FakeOpenAI, str]) -> None:
    names = {service: f"sb_audit_{service}_" + secrets.token_hex(4) for service in ("auth", "billing")}
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        for name in names.values():
            conn.execute(f'CREATE DATABASE "{name}"')
    dsn = {service: POSTGRES_URL.rpartition("/")[0] + "/" + name for service, name in names.items()}
    gateway = start_gateway(tmp_path_factory.mktemp("audit-pg"), fake_models(fake_openai[1]), extra_env={
        "SWITCHBOARD_DATABASE_URL": dsn["auth"], "SWITCHBOARD_BILLING_DATABASE_URL": dsn["billing"]})
    try:
        ok(call(gateway, "POST", "/team/new", {"team_id": "pg-team"}))
        model = ok(call(gateway, "POST", "/model/new", {"model_name": "pg-model", "litellm_params": {
            "model": "openai/good", "api_base": fake_openai[1], "input_cost_per_token": 0.000001,
            "output_cost_per_token": 0.000002}}))
        ok(call(gateway, "POST", "/team/update", {"team_id": "pg-team", "rpm_limit": 5}))
        assert verify_cli(gateway).returncode == 0
        team_row = ok(audit(gateway, target_id="pg-team", action="team.create"))["data"][0]
        model_row = ok(audit(gateway, target_id=model["model_id"]))["data"][0]
        with psycopg.connect(dsn["auth"], autocommit=True) as conn:
            conn.execute("UPDATE auth_audit_log SET after_json = '{}' WHERE seq = %s", (team_row["seq"],))
        broken = verify_cli(gateway)
        assert broken.returncode == 1 and f"auth: BROKEN at row {team_row['seq']}" in broken.stdout, broken.stdout
        with psycopg.connect(dsn["billing"], autocommit=True) as conn:
            conn.execute("DELETE FROM billing_audit_log WHERE seq = %s", (model_row["seq"],))
        broken = verify_cli(gateway)
        assert "billing: BROKEN" in broken.stdout and broken.returncode == 1, broken.stdout
    finally:
        gateway.stop()
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            for name in names.values():
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
