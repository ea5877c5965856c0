"""Models at run time with LiteLLM's documented requests: ``/model/new``, ``/model/update``, ``/model/delete``,
``/model/info``, ``/v2/model/info`` and ``/model_group/info`` (docs.litellm.ai/docs/proxy/model_management),
written as our own tests against a real gateway and checked field by field.

A model added through the API is served by the official SDK as soon as the routers hear of it (pushed, not
polled), priced as its body says, never shows its provider key, and is still there after every service
restarts; the config file's models are listed beside it and cannot be changed through the API.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from tests.conftest import FAKE_PRICES
from tests.fakes.openai_provider import FakeOpenAI
from tests.harness import Gateway, start_gateway
from tests.sdk_clients import openai_client

SECRET = "sk-upstream-secret-4321"
MESSAGES = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
def models_gateway(tmp_path_factory: pytest.TempPathFactory,
                   fake_openai: tuple[FakeOpenAI, str]) -> Iterator[Gateway]:
    gw = start_gateway(tmp_path_factory.mktemp("models-api"), [
        {"name": "fake-good", "deployments": [{"provider": "openai", "model": "good", "api_base": fake_openai[1],
                                               "api_key": "sk-file-key", "jurisdiction": "us", **FAKE_PRICES}]},
    ])
    yield gw
    gw.stop()


def admin(gw: Gateway, method: str, path: str, body: dict[str, Any] | None = None, **params: str) -> httpx.Response:
    return httpx.request(method, gw.base_url + path, json=body, params=params, headers=gw.admin(), timeout=20)


def served(gw: Gateway, key: str, model: str, timeout: float = 10) -> openai.types.chat.ChatCompletion:
    """The first answer for ``model``, asked for at once and again until the routers serve it."""
    client = openai_client(key, gw.base_url + "/v1")
    deadline = time.monotonic() + timeout
    while True:
        try:
            return client.chat.completions.create(model=model, messages=MESSAGES)  # type: ignore[arg-type]
        except openai.BadRequestError as exc:
            if exc.code != "model_not_found" or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def restart(gw: Gateway) -> None:
    gw.stop()
    for name in ("auth", "billing", "router", "facade"):
        gw.start_service(name)
    gw.wait_ready()


def test_a_model_added_with_the_documented_request_is_served_priced_and_survives_restarts(
        models_gateway: Gateway, fake_openai: tuple[FakeOpenAI, str]) -> None:
    gw = models_gateway
    # docs: curl -X POST "http://0.0.0.0:4000/model/new" -d '{"model_name": ..., "litellm_params": {...}}'
    created = admin(gw, "POST", "/model/new", {
        "model_name": "azure-gpt-turbo-like",
        "litellm_params": {"model": "openai/good", "api_key": SECRET, "api_base": fake_openai[1],
                           "input_cost_per_token": 0.000003, "output_cost_per_token": 0.000015, "rpm": 6},
        "model_info": {"my_custom_key": "my_custom_value"}})
    assert created.status_code == 200, created.text
    row = created.json()
    assert SECRET not in created.text
    assert row["model_name"] == "azure-gpt-turbo-like"
    assert row["model_info"]["id"] == row["model_id"] and row["model_info"]["db_model"] is True
    assert row["model_info"]["my_custom_key"] == "my_custom_value"
    assert row["litellm_params"]["model"] == "openai/good" and "api_key" not in row["litellm_params"]
    assert row["switchboard"]["credentials"] == {"api_key": "...4321"}
    assert row["created_by"] == "master" and row["ignored_fields"] == []

    key = gw.create_key(key_alias="runtime-models")
    raw_client = openai_client(key, gw.base_url + "/v1")
    answer = served(gw, key, "azure-gpt-turbo-like")
    assert answer.choices[0].message.content == "Hello from the fake provider."
    assert fake_openai[0].requests[-1].headers["authorization"] == f"Bearer {SECRET}"

    raw = raw_client.chat.completions.with_raw_response.create(model="azure-gpt-turbo-like", messages=MESSAGES)
    usage = raw.parse().usage
    assert usage is not None
    ledger = gw.ledger_row(raw.headers["x-request-id"])
    assert ledger["spend"] == pytest.approx((usage.prompt_tokens * 3 + usage.completion_tokens * 15) / 1e6)

    restart(gw)
    assert served(gw, key, "azure-gpt-turbo-like").choices[0].message.content == "Hello from the fake provider."
    assert fake_openai[0].requests[-1].headers["authorization"] == f"Bearer {SECRET}"
    listed = admin(gw, "GET", "/model/info", litellm_model_id=row["model_id"]).json()["data"]
    assert [m["model_name"] for m in listed] == ["azure-gpt-turbo-like"]


def test_no_answer_shows_a_provider_key(models_gateway: Gateway, fake_openai: tuple[FakeOpenAI, str]) -> None:
    gw = models_gateway
    secret = "sk-never-shown-9876"
    created = admin(gw, "POST", "/model/new", {"model_name": "hidden-key", "litellm_params": {
        "model": "openai/good", "api_key": secret, "api_base": fake_openai[1], "azure_ad_token": "ad-token-abcd-1111",
        "extra_headers": {"X-Upstream-Auth": "header-secret-2222"}, **_prices()}})
    assert created.status_code == 200, created.text
    assert created.json()["litellm_params"]["extra_headers"] == {"X-Upstream-Auth": "...2222"}
    key = gw.create_key()
    served(gw, key, "hidden-key")
    for path in ("/model/info", "/v1/model/info", "/v2/model/info", "/model_group/info", "/v1/models",
                 "/api/billing/models", "/ui/models"):
        text = admin(gw, "GET", path).text
        for hidden in (secret, "sk-file-key", "ad-token-abcd-1111", "header-secret-2222"):
            assert hidden not in text, (path, hidden)
    updated = admin(gw, "POST", "/model/update", {"model_info": {"id": created.json()["model_id"]},
                                                   "litellm_params": {"rpm": 60}})
    assert secret not in updated.text
    assert updated.json()["switchboard"]["credentials"] == {"api_key": "...9876", "azure_ad_token": "...1111"}
    served(gw, key, "hidden-key")
    upstream = fake_openai[0].requests[-1].headers
    assert upstream["authorization"] == f"Bearer {secret}"  # kept by the update
    assert upstream["x-upstream-auth"] == "header-secret-2222"


def _prices() -> dict[str, float]:
    return {"input_cost_per_token": 0.0000025, "output_cost_per_token": 0.00001}


def test_model_info_lists_the_files_models_and_the_stored_ones_in_litellms_shape(
        models_gateway: Gateway, fake_openai: tuple[FakeOpenAI, str]) -> None:
    gw = models_gateway
    # Terraform's LiteLLM provider chooses the id itself (model_info.id) and reads the model back by it.
    admin(gw, "POST", "/model/new", {"model_name": "tf-model", "litellm_params": {
        "model": "openai/good", "api_key": "os.environ/FAKE_KEY_UNSET", "api_base": fake_openai[1], **_prices()},
        "model_info": {"id": "0d6f7c3e-tf", "mode": "chat", "base_model": "gpt-4o"}}).raise_for_status()
    # docs: curl -X GET "http://0.0.0.0:4000/model/info"
    data = admin(gw, "GET", "/model/info").json()["data"]
    by_id = {m["model_info"]["id"]: m for m in data}
    file_model = by_id["fake-good/0"]
    assert file_model["model_name"] == "fake-good"
    assert file_model["litellm_params"] == {"model": "openai/good", "api_base": fake_openai[1]}
    info = file_model["model_info"]
    assert info["db_model"] is False and info["litellm_provider"] == "openai" and info["mode"] == "chat"
    assert info["input_cost_per_token"] == pytest.approx(2.5e-6)
    assert info["output_cost_per_token"] == pytest.approx(1e-5)
    stored = by_id["0d6f7c3e-tf"]
    assert stored["model_info"]["db_model"] is True and stored["model_info"]["base_model"] == "gpt-4o"
    # Its key variable is unset: stored and listed, not served (LiteLLM's os.environ/ reference).
    assert stored["litellm_params"]["api_key"] == "os.environ/FAKE_KEY_UNSET"
    assert stored["switchboard"]["live"] is False
    # docs: GET /v2/model/info (paginated)
    page = admin(gw, "GET", "/v2/model/info", page="1", size="1").json()
    assert page["size"] == 1 and page["current_page"] == 1 and len(page["data"]) == 1
    assert page["total_count"] == len(data) and page["total_pages"] == len(data)
    assert admin(gw, "GET", "/v2/model/info", modelId="0d6f7c3e-tf").json()["data"][0]["model_name"] == "tf-model"


def test_model_group_info_in_litellms_shape(models_gateway: Gateway) -> None:
    groups = admin(models_gateway, "GET", "/model_group/info", model_group="fake-good").json()["data"]
    assert len(groups) == 1
    group = groups[0]
    assert group["model_group"] == "fake-good" and group["providers"] == ["openai"]
    assert group["input_cost_per_token"] == pytest.approx(2.5e-6)
    assert group["mode"] == "chat" and group["tpm"] is None and group["rpm"] is None
    for flag in ("supports_function_calling", "supports_vision", "supports_parallel_function_calling"):
        assert isinstance(group[flag], bool)
    assert "tools" in group["supported_openai_params"]


def test_update_and_delete_with_the_documented_requests(models_gateway: Gateway,
                                                        fake_openai: tuple[FakeOpenAI, str]) -> None:
    gw = models_gateway
    model_id = admin(gw, "POST", "/model/new", {"model_name": "to-change", "litellm_params": {
        "model": "openai/good", "api_key": "sk-a", "api_base": fake_openai[1], **_prices()}}).json()["model_id"]
    key = gw.create_key()
    served(gw, key, "to-change")
    # docs: curl -X PATCH 'http://0.0.0.0:4000/model/<model_id>/update' -d '{"model_info": {...}}'
    patched = admin(gw, "PATCH", f"/model/{model_id}/update", {"litellm_params": {"model": "openai/echo"},
                                                                "model_info": {"team_id": "team-123"}})
    assert patched.status_code == 200, patched.text
    assert patched.json()["litellm_params"]["model"] == "openai/echo"
    assert patched.json()["model_info"]["team_id"] == "team-123"
    client = openai_client(key, gw.base_url + "/v1")
    deadline = time.monotonic() + 10
    while client.chat.completions.create(model="to-change", messages=MESSAGES).choices[0].message.content != "hi":
        assert time.monotonic() < deadline, "the update did not reach the router"
        time.sleep(0.05)
    # docs: curl -X POST "http://0.0.0.0:4000/model/delete" -d '{"id": "<model_id>"}'
    deleted = admin(gw, "POST", "/model/delete", {"id": model_id})
    assert deleted.json() == {"message": f"Model: {model_id} deleted successfully"}
    deadline = time.monotonic() + 10
    while True:
        try:
            client.chat.completions.create(model="to-change", messages=MESSAGES)
        except openai.BadRequestError as exc:
            assert exc.code == "model_not_found"
            break
        assert time.monotonic() < deadline, "the deletion did not reach the router"
        time.sleep(0.05)
    assert admin(gw, "POST", "/model/delete", {"id": model_id}).status_code == 404


def test_a_stored_deployment_may_join_a_model_of_the_file(models_gateway: Gateway,
                                                           fake_openai: tuple[FakeOpenAI, str]) -> None:
    gw = models_gateway
    created = admin(gw, "POST", "/model/new", {"model_name": "fake-good", "litellm_params": {
        "model": "openai/echo", "api_key": "sk-b", "api_base": fake_openai[1], **_prices()}})
    assert created.status_code == 200, created.text
    key = gw.create_key()
    client = openai_client(key, gw.base_url + "/v1")
    answers: set[str] = set()
    deadline = time.monotonic() + 15
    while answers != {"Hello from the fake provider.", "hi"}:
        assert time.monotonic() < deadline, answers
        answers.add(str(client.chat.completions.create(model="fake-good", messages=MESSAGES).choices[0]
                        .message.content))
    admin(gw, "POST", "/model/delete", {"id": created.json()["model_id"]}).raise_for_status()


def test_what_the_api_refuses(models_gateway: Gateway, fake_openai: tuple[FakeOpenAI, str]) -> None:
    gw = models_gateway
    body = {"model_name": "refused", "litellm_params": {"model": "openai/good", "api_base": fake_openai[1],
                                                        "api_key": "sk-c", **_prices()},
            "model_info": {"id": "fixed-id"}}
    assert admin(gw, "POST", "/model/new", body).status_code == 200
    taken = admin(gw, "POST", "/model/new", body)
    assert taken.status_code == 409 and taken.json()["error"]["code"] == "model_exists"
    the_files = admin(gw, "POST", "/model/update", {"model_info": {"id": "fake-good/0"}, "litellm_params": {}})
    assert the_files.status_code == 404  # not a stored model: the config file's are changed in the file
    for bad, param, says in (
            ({"model_name": "x", "litellm_params": {"model": "cohere_chat/command"}}, "litellm_params",
             "'cohere_chat'"),
            ({"model_name": "x"}, "litellm_params", "litellm_params"),
            ({"litellm_params": {"model": "openai/good"}}, "model_name", "model_name"),
            ({"model_name": "x", "litellm_params": {"model": "openai/good", "timeout": "soon"}}, "litellm_params",
             "timeout"),
            ({"model_name": "x", "litellm_params": {"model": "openai/good", "api_key": "k", "privacy_tier": "nope"}},
             "litellm_params", "privacy_tier")):
        refused = admin(gw, "POST", "/model/new", bad)
        assert refused.status_code == 400, (bad, refused.text)
        assert refused.json()["error"]["param"] == param, refused.text
        assert says in refused.json()["error"]["message"], refused.text
    deleting_the_files = admin(gw, "POST", "/model/delete", {"id": "fake-good/0"})
    assert deleting_the_files.status_code == 400
    assert deleting_the_files.json()["error"]["code"] == "declared_in_config"
    key = gw.create_key()
    forbidden = httpx.post(gw.base_url + "/model/new", json=body, headers={"Authorization": f"Bearer {key}"})
    assert forbidden.status_code == 403
    admin(gw, "POST", "/model/delete", {"id": "fixed-id"}).raise_for_status()


def test_a_key_reads_only_the_models_it_may_use(models_gateway: Gateway) -> None:
    key = models_gateway.create_key(models=["fake-good"])
    headers = {"Authorization": f"Bearer {key}"}
    data = httpx.get(models_gateway.base_url + "/model/info", headers=headers).json()["data"]
    assert {m["model_name"] for m in data} == {"fake-good"}
    groups = httpx.get(models_gateway.base_url + "/model_group/info", headers=headers).json()["data"]
    assert [g["model_group"] for g in groups] == ["fake-good"]
