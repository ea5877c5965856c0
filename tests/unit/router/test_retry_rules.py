"""Which provider errors are worth another attempt: transient limits yes, exhausted accounts no."""

from __future__ import annotations

import orjson
import pytest

from switchboard_router.providers.base import UpstreamError
from switchboard_router.providers.registry import adapter_for


@pytest.mark.parametrize(("status", "retryable"), [(400, False), (401, False), (404, False), (429, True),
                                                     (500, True), (503, True), (529, True)])
def test_status_decides_by_default(status: int, retryable: bool) -> None:
    assert UpstreamError(status, "x").retryable is retryable


def test_anthropic_spend_limit_429_is_not_retryable() -> None:
    body = orjson.dumps({"type": "error", "error": {"type": "rate_limit_error", "message": "limit",
                                                    "details": {"error_code": "enforced_spend_limit_reached"}}})
    error = adapter_for("anthropic").parse_error(429, body, {})
    assert error.status == 429 and error.retryable is False


def test_anthropic_rate_limit_429_stays_retryable() -> None:
    body = orjson.dumps({"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}})
    error = adapter_for("anthropic").parse_error(429, body, {"retry-after": "3"})
    assert error.retryable is True and error.retry_after == 3


def test_openai_insufficient_quota_429_is_not_retryable() -> None:
    body = orjson.dumps({"error": {"message": "You exceeded your current quota", "type": "insufficient_quota",
                                   "code": "insufficient_quota"}})
    assert adapter_for("openai").parse_error(429, body, {}).retryable is False


def test_permanent_overrides_the_status() -> None:
    assert UpstreamError(503, "gone for good", permanent=True).retryable is False
