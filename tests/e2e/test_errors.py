"""Every bad input and failure gets OpenAI-style error JSON with the right status, and loses nothing."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from tests.conftest import fake_models
from tests.fakes.openai_provider import FakeOpenAI
from tests.harness import Gateway, start_gateway
from tests.sdk_clients import openai_client


@pytest.fixture(scope="module")
def key(gateway: Gateway) -> str:
    return gateway.create_key(key_alias="error-tests")


def post(gateway: Gateway, body: object | bytes, key: str | None, path: str = "/v1/chat/completions",
         **headers: str) -> httpx.Response:
    hdrs = {"content-type": "application/json", **headers}
    if key is not None:
        hdrs["Authorization"] = f"Bearer {key}"
    content = body if isinstance(body, bytes) else httpx.Request("POST", "/", json=body).content
    return httpx.post(gateway.base_url + path, content=content, headers=hdrs, timeout=30)


def assert_openai_error(response: httpx.Response, status: int, code: str | None = None) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["x-request-id"].startswith("req_")
    error = response.json()["error"]
    assert set(error) >= {"message", "type", "param", "code"}
    assert error["message"]
    if code is not None:
        assert error["code"] == code, error
    return error  # type: ignore[no-any-return]


def test_malformed_json_is_400(gateway: Gateway, key: str) -> None:
    assert_openai_error(post(gateway, b'{"model": "fake-good", "messages": [', key), 400, "invalid_json")


def test_missing_model_is_400(gateway: Gateway, key: str) -> None:
    error = assert_openai_error(post(gateway, {"messages": [{"role": "user", "content": "x"}]}, key), 400)
    assert error["param"] == "model"


def test_missing_messages_is_400(gateway: Gateway, key: str) -> None:
    error = assert_openai_error(post(gateway, {"model": "fake-good"}, key), 400)
    assert error["param"] == "messages"


def test_no_key_is_401(gateway: Gateway) -> None:
    body = {"model": "fake-good", "messages": [{"role": "user", "content": "x"}]}
    assert_openai_error(post(gateway, body, None), 401, "missing_api_key")


def test_unknown_key_is_401_with_the_sdk(gateway: Gateway) -> None:
    sdk = openai_client(api_key="sk-not-a-real-key", base_url=gateway.base_url + "/v1", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as info:
        sdk.chat.completions.create(model="fake-good", messages=[{"role": "user", "content": "x"}])
    assert "not valid" in str(info.value)


def test_unknown_model_is_400_listing_the_models_of_the_key(gateway: Gateway, key: str) -> None:
    body = {"model": "gpt-9000", "messages": [{"role": "user", "content": "x"}]}
    error = assert_openai_error(post(gateway, body, key), 400, "model_not_found")
    assert "gpt-9000" in str(error["message"]) and "fake-good" in str(error["message"])


def test_provider_error_is_passed_on_as_upstream(gateway: Gateway, key: str) -> None:
    body = {"model": "fake-error", "messages": [{"role": "user", "content": "x"}]}
    error = assert_openai_error(post(gateway, body, key), 400)
    assert error["message"] == "The fake provider rejects this request."
    assert error["upstream"] is True and error["provider"] == "openai"


def test_provider_rate_limit_is_passed_on_with_retry_after(gateway: Gateway, key: str) -> None:
    body = {"model": "fake-ratelimit", "messages": [{"role": "user", "content": "x"}]}
    response = post(gateway, body, key)
    assert_openai_error(response, 429)
    assert response.headers["retry-after"] == "1"


def test_unreachable_provider_is_502_without_the_operators_network_details(gateway: Gateway, key: str) -> None:
    body = {"model": "fake-unreachable", "messages": [{"role": "user", "content": "x"}]}
    response = post(gateway, body, key)
    assert_openai_error(response, 502, "upstream_unreachable")
    message = response.json()["error"]["message"]
    assert "refused" in message, message
    assert "127.0.0.1" not in message and ":9" not in message and "Connect call failed" not in message, message


def test_provider_timeout_is_504_and_the_provider_sees_the_cancel(
        gateway: Gateway, key: str, fake_openai: tuple[FakeOpenAI, str]) -> None:
    body = {"model": "fake-hang", "messages": [{"role": "user", "content": "x"}]}
    before = len(fake_openai[0].cancelled)
    assert_openai_error(post(gateway, body, key), 504, "upstream_timeout")
    deadline = time.monotonic() + 5
    while len(fake_openai[0].cancelled) == before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(fake_openai[0].cancelled) > before


def test_stream_cut_by_the_provider_ends_with_an_error_event_and_is_billed(gateway: Gateway, key: str) -> None:
    sdk = openai_client(api_key=key, base_url=gateway.base_url + "/v1", max_retries=0)
    raw = sdk.chat.completions.with_raw_response.create(
        model="fake-cut", messages=[{"role": "user", "content": "x"}], stream=True)
    received = []
    with pytest.raises(openai.APIError):
        for chunk in raw.parse():
            received.append(chunk)
    assert received, "chunks before the cut must reach the client"
    request_id = raw.headers["x-request-id"]
    deadline = time.monotonic() + 10
    row = None
    while row is None and time.monotonic() < deadline:
        rows = httpx.get(f"{gateway.base_url}/spend/logs", headers=gateway.admin()).json()
        row = next((r for r in rows if r["request_id"] == request_id), None)
        time.sleep(0.1)
    assert row is not None and row["status"] == "error"
    assert row["usage_reported_by_provider"] is False


def test_wrong_method_and_unknown_route_are_openai_errors(gateway: Gateway) -> None:
    r = httpx.get(f"{gateway.base_url}/v1/chat/completions")
    assert r.status_code == 405 and "error" in r.json()
    assert r.headers["x-request-id"].startswith("req_")
    r = httpx.get(f"{gateway.base_url}/v1/nothing-here")
    assert r.status_code == 404 and r.json()["error"]["code"] == "route_not_found"
    assert r.headers["x-request-id"].startswith("req_")
    report = httpx.get(f"{gateway.base_url}/global/spend/report", headers=gateway.admin())  # LiteLLM's
    assert report.status_code == 404 and "GET /usage" in report.json()["error"]["message"]
    assert httpx.get(f"{gateway.base_url}/health/liveness").headers["x-request-id"].startswith("req_")


def test_failed_requests_leave_complete_error_rows_only(gateway: Gateway, key: str) -> None:
    """An upstream failure is recorded as a whole row with status error and zero tokens, never half-written."""
    response = post(gateway, {"model": "fake-error", "messages": [{"role": "user", "content": "x"}]}, key)
    request_id = response.headers["x-request-id"]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        rows = httpx.get(f"{gateway.base_url}/spend/logs", headers=gateway.admin()).json()
        row = next((r for r in rows if r["request_id"] == request_id), None)
        if row:
            break
        time.sleep(0.1)
    assert row is not None
    assert row["status"] == "error" and row["http_status"] == 400
    assert row["prompt_tokens"] == 0 and row["completion_tokens"] == 0
    assert row["model"] == "fake-error" and row["startTime"]


@pytest.fixture(scope="module")
def small_gateway(tmp_path_factory: pytest.TempPathFactory, fake_openai: tuple[FakeOpenAI, str]) -> Iterator[Gateway]:
    """A separate gateway whose services these tests stop, with a small body limit."""
    tmp: Path = tmp_path_factory.mktemp("small-gateway")
    gw = start_gateway(tmp, fake_models(fake_openai[1]), {"SWITCHBOARD_MAX_BODY_BYTES": "2048"})
    yield gw
    gw.stop()


def test_body_over_the_limit_is_413(small_gateway: Gateway) -> None:
    key = small_gateway.create_key()
    body = {"model": "fake-good", "messages": [{"role": "user", "content": "x" * 4096}]}
    assert_openai_error(post(small_gateway, body, key), 413, "request_too_large")


def test_usage_survives_billing_being_down(small_gateway: Gateway) -> None:
    key = small_gateway.create_key()
    small_gateway.processes["billing"].terminate()
    ok = post(small_gateway, {"model": "fake-good", "messages": [{"role": "user", "content": "x"}]}, key)
    assert ok.status_code == 200, "billing being down must not fail the request"
    request_id = ok.headers["x-request-id"]
    small_gateway.start_service("billing")
    deadline = time.monotonic() + 20
    found = False
    while not found and time.monotonic() < deadline:
        try:
            rows = httpx.get(f"{small_gateway.base_url}/spend/logs", headers=small_gateway.admin()).json()
            found = any(r["request_id"] == request_id for r in rows)
        except (httpx.HTTPError, ValueError, TypeError):
            pass
        time.sleep(0.2)
    assert found, "the outbox must deliver the usage once billing is back"


@pytest.mark.parametrize("service", ["auth", "router"])
def test_one_of_our_services_down_is_503_naming_it(small_gateway: Gateway, service: str) -> None:
    key = small_gateway.create_key()
    small_gateway.processes[service].terminate()
    try:
        response = post(small_gateway, {"model": "fake-good", "messages": [{"role": "user", "content": "x"}]}, key)
        error = assert_openai_error(response, 503)
        assert service in str(error["message"])
        ready = httpx.get(f"{small_gateway.base_url}/health/readiness")
        assert ready.status_code == 503 and service in ready.json()["message"]
    finally:
        small_gateway.start_service(service)
        small_gateway.wait_ready()
