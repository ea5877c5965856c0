"""RPM, TPM and parallel-request limits through the facade with the openai SDK: 429s, Retry-After, headers."""

from __future__ import annotations

import time

import httpx
import openai
import pytest

from tests.e2e.keys_helpers import chat, generate, sdk
from tests.harness import Gateway


def test_rpm_limit_admits_n_then_429_naming_the_limit(gateway: Gateway) -> None:
    client = sdk(gateway, str(generate(gateway, key_alias="rpm3", rpm_limit=3)["key"]))
    remaining = [chat(client).headers["x-ratelimit-remaining-requests"] for _ in range(3)]
    assert remaining == ["2", "1", "0"]
    with pytest.raises(openai.RateLimitError) as info:
        chat(client)
    response = info.value.response
    error = response.json()["error"]
    assert error["code"] == "rpm_limit_exceeded" and error["type"] == "rate_limit_error"
    assert "rpm_limit" in error["message"] and "rpm3" in error["message"]
    assert 1 <= int(response.headers["retry-after"]) <= 60
    assert response.headers["x-ratelimit-limit-requests"] == "3"
    assert response.headers["x-ratelimit-remaining-requests"] == "0"
    assert response.headers["x-ratelimit-reset-requests"].endswith("s")


def test_every_answer_of_a_limited_key_carries_the_ratelimit_headers(gateway: Gateway) -> None:
    client = sdk(gateway, str(generate(gateway, rpm_limit=50, tpm_limit=100000)["key"]))
    raw = chat(client)
    for name in ("limit", "remaining", "reset"):
        assert raw.headers[f"x-ratelimit-{name}-requests"]
        assert raw.headers[f"x-ratelimit-{name}-tokens"]
    assert raw.headers["x-ratelimit-limit-tokens"] == "100000"
    stream = client.chat.completions.with_raw_response.create(
        model="fake-good", messages=[{"role": "user", "content": "hi"}], stream=True)
    assert stream.headers["x-ratelimit-limit-requests"] == "50"
    list(stream.parse())
    with pytest.raises(openai.BadRequestError) as info:  # an upstream error still carries them
        chat(client, "fake-error")
    assert info.value.response.headers["x-ratelimit-remaining-requests"] == "47"


def test_tpm_counts_the_estimate_and_is_corrected_by_real_usage(gateway: Gateway) -> None:
    client = sdk(gateway, str(generate(gateway, key_alias="tpm", tpm_limit=1500)["key"]))
    padding = "x" * 4000  # counted in the admission estimate, not in the provider's prompt tokens

    def ask() -> openai.types.chat.ChatCompletion:
        raw = client.chat.completions.with_raw_response.create(
            model="fake-good", messages=[{"role": "user", "content": "hi"}], user=padding)
        ask.headers = raw.headers  # type: ignore[attr-defined]
        return raw.parse()

    # TPM counts in fixed one-minute windows: both requests must fall in one (the first's tokens leave the count
    # when the next minute starts), so a test that would straddle the minute's end waits for the next one.
    into_minute = time.time() % 60
    if into_minute > 55:
        time.sleep(60 - into_minute + 0.1)
    first = ask()
    estimate = 1500 - int(ask.headers["x-ratelimit-remaining-tokens"])  # type: ignore[attr-defined]
    assert estimate > 1000 > first.usage.total_tokens  # type: ignore[union-attr]
    time.sleep(1.0)  # the release (with the real count) is sent just after the answer
    ask()
    assert int(ask.headers["x-ratelimit-remaining-tokens"]) == (  # type: ignore[attr-defined]
        1500 - first.usage.total_tokens - estimate)  # type: ignore[union-attr]
    # Without the correction the two estimates alone (> 2000) would not have fit in 1500.


def test_a_prompt_larger_than_the_tpm_limit_says_so(gateway: Gateway) -> None:
    client = sdk(gateway, str(generate(gateway, tpm_limit=10)["key"]))
    with pytest.raises(openai.RateLimitError, match="shorter prompt") as info:
        chat(client, content="y" * 400)
    assert info.value.response.json()["error"]["code"] == "tpm_limit_exceeded"
    assert info.value.response.headers["x-ratelimit-remaining-tokens"] == "0"


def test_parallel_requests_limit_holds_a_slot_until_the_stream_ends(gateway: Gateway) -> None:
    key = str(generate(gateway, key_alias="par1", max_parallel_requests=1)["key"])
    client = sdk(gateway, key)
    body = {"model": "fake-drip", "messages": [{"role": "user", "content": "x"}], "stream": True}
    with httpx.stream("POST", f"{gateway.base_url}/v1/chat/completions", json=body,
                      headers={"Authorization": f"Bearer {key}"}, timeout=20) as response:
        assert response.status_code == 200
        chunks = response.iter_raw()  # kept referenced: dropping it would close the stream
        next(chunks)
        with pytest.raises(openai.RateLimitError) as info:
            chat(client)
        assert info.value.response.json()["error"]["code"] == "max_parallel_requests_exceeded"
        assert "max_parallel_requests" in info.value.response.json()["error"]["message"]
    deadline = time.monotonic() + 5
    while True:
        try:
            chat(client)
            break
        except openai.RateLimitError:
            assert time.monotonic() < deadline, "the slot was not released when the stream ended"
            time.sleep(0.1)


def test_a_key_without_limits_is_never_rate_limited(gateway: Gateway) -> None:
    client = sdk(gateway, str(generate(gateway)["key"]))
    for _ in range(5):
        assert "x-ratelimit-limit-requests" not in chat(client).headers


def test_a_request_refused_after_admission_gives_its_slot_back(gateway: Gateway) -> None:
    """Refused by the budget after auth admitted it: the parallel slot must not stay taken."""
    client = sdk(gateway, str(generate(gateway, max_parallel_requests=1, rpm_limit=100, max_budget=0)["key"]))
    refusals = []
    deadline = time.monotonic() + 10
    while len(refusals) < 3:
        with pytest.raises(openai.APIStatusError) as info:
            chat(client)
        error = info.value.response.json()["error"]
        if error["code"] == "max_parallel_requests_exceeded":  # the release is sent just after the answer
            assert time.monotonic() < deadline, "the slot of a refused request was never given back"
            time.sleep(0.1)
            continue
        assert info.value.response.headers["x-ratelimit-limit-requests"] == "100"
        refusals.append(error["code"])


def test_leased_admissions_carry_the_exact_limits_and_count_down(gateway: Gateway) -> None:
    """RPM 1000 is large enough for rate-limit leases: after the first request this facade admits the key on its
    own, and the headers stay those of the limits, counting this facade's use."""
    client = sdk(gateway, str(generate(gateway, rpm_limit=1000, tpm_limit=1_000_000)["key"]))
    answers = [chat(client) for _ in range(6)]
    assert {a.headers["x-ratelimit-limit-requests"] for a in answers} == {"1000"}
    assert {a.headers["x-ratelimit-limit-tokens"] for a in answers} == {"1000000"}
    assert [int(a.headers["x-ratelimit-remaining-requests"]) for a in answers] == list(range(999, 993, -1))
    tokens = [int(a.headers["x-ratelimit-remaining-tokens"]) for a in answers]
    assert tokens == sorted(tokens, reverse=True) and len(set(tokens)) == 6 and tokens[-1] > 990_000
    for answer in answers:
        assert answer.headers["x-ratelimit-reset-requests"].endswith("s")
        assert answer.headers["x-ratelimit-reset-tokens"].endswith("s")


def test_a_leasing_key_is_admitted_exactly_up_to_its_limit(gateway: Gateway) -> None:
    """RPM 60 gets leases of 3 while a quarter of what is free allows it, then one admission per request:
    exactly 60 pass, however the requests were admitted."""
    client = sdk(gateway, str(generate(gateway, key_alias="lease60", rpm_limit=60)["key"]))
    statuses, remaining = [], []
    for _ in range(66):
        try:
            remaining.append(chat(client).headers["x-ratelimit-remaining-requests"])
            statuses.append(200)
        except openai.RateLimitError as exc:
            assert exc.response.json()["error"]["code"] == "rpm_limit_exceeded"
            statuses.append(429)
    assert statuses == [200] * 60 + [429] * 6
    assert remaining[-1] == "0"
