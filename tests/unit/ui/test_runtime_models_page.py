"""The dashboard's page of models added at run time, over plain HTTP against a real gateway: an admin adds a
model (served at once), sees its key only as its last four characters, edits and deletes it; others may not."""

from __future__ import annotations

import time

import httpx
import openai

from tests.fakes.openai_provider import FakeOpenAI
from tests.harness import Gateway
from tests.sdk_clients import openai_client
from tests.unit.ui.test_pages_http import signed_in

SECRET = "sk-dashboard-typed-7777"


def _served(gateway: Gateway, key: str, model: str) -> str:
    client = openai_client(key, gateway.base_url + "/v1")
    deadline = time.monotonic() + 10
    while True:
        try:
            answer = client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])
            return str(answer.choices[0].message.content)
        except openai.BadRequestError:
            assert time.monotonic() < deadline
            time.sleep(0.05)


def test_an_admin_adds_edits_and_deletes_a_model_from_the_dashboard(
        gateway: Gateway, fake_openai: tuple[FakeOpenAI, str]) -> None:
    browser, csrf = signed_in(gateway, gateway.master_key)
    assert "Add a model" in browser.get("/ui/models/runtime").text
    added = browser.post("/ui/models/runtime/create", data={
        "csrf_token": csrf, "model_name": "dashboard-model", "provider": "openai", "model": "good",
        "api_base": fake_openai[1], "api_key": SECRET, "input_cost_per_million": "2",
        "output_cost_per_million": "8"})
    assert added.status_code == 303, added.text
    listing = browser.get("/ui/models/runtime").text
    assert "dashboard-model" in listing and "...7777" in listing and SECRET not in listing
    key = gateway.create_key()
    assert _served(gateway, key, "dashboard-model") == "Hello from the fake provider."
    assert fake_openai[0].requests[-1].headers["authorization"] == f"Bearer {SECRET}"
    model_id = httpx.get(gateway.base_url + "/v2/model/info", params={"model": "dashboard-model"},
                         headers=gateway.admin()).json()["data"][0]["model_info"]["id"]
    edited = browser.post(f"/ui/models/runtime/{model_id}/edit", data={"csrf_token": csrf, "api_key": "sk-new-8888"})
    assert edited.status_code == 303, edited.text
    assert "...8888" in browser.get("/ui/models/runtime").text
    deadline = time.monotonic() + 10
    while True:
        _served(gateway, key, "dashboard-model")
        if fake_openai[0].requests[-1].headers["authorization"] == "Bearer sk-new-8888":
            break
        assert time.monotonic() < deadline, "the new key did not reach the router"
    deleted = browser.post(f"/ui/models/runtime/{model_id}/delete", data={"csrf_token": csrf})
    assert deleted.status_code == 303
    assert "dashboard-model" not in browser.get("/ui/models/runtime").text


def test_a_bad_model_is_refused_with_its_reason_and_non_admins_may_not(gateway: Gateway) -> None:
    browser, csrf = signed_in(gateway, gateway.master_key)
    refused = browser.post("/ui/models/runtime/create", data={
        "csrf_token": csrf, "model_name": "bad", "provider": "openai", "model": "good", "privacy_tier": "nope"})
    assert refused.status_code == 400 and "privacy_tier" in refused.text
    stale = browser.post("/ui/models/runtime/create", data={"csrf_token": "stale", "model_name": "x"})
    assert stale.status_code == 403
    user, user_csrf = signed_in(gateway, gateway.create_key())
    assert user.get("/ui/models/runtime").status_code == 403
    assert user.post("/ui/models/runtime/create", data={"csrf_token": user_csrf, "model_name": "x"}).status_code == 403
