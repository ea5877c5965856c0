"""Helpers of the rate-limiter tests: a controllable clock, request ids, the test Redis."""

from __future__ import annotations

import os
import secrets

REDIS_URL = os.environ.get("SWITCHBOARD_TEST_REDIS_URL", "")


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0  # on a minute boundary

    def __call__(self) -> float:
        return self.now


def rid() -> str:
    return "req_" + secrets.token_hex(6)
