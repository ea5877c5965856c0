"""Whether a chat body asks for log probabilities."""

from __future__ import annotations

from typing import Any

import pytest

from switchboard_translate.logprobs import requested_logprobs


@pytest.mark.parametrize(("body", "asked"), [
    ({}, None),
    ({"logprobs": False}, None),
    ({"logprobs": False, "top_logprobs": 0}, None),
    ({"logprobs": None, "top_logprobs": None}, None),
    ({"logprobs": True}, 0),
    ({"logprobs": True, "top_logprobs": 0}, 0),
    ({"logprobs": True, "top_logprobs": 5}, 5),
    ({"top_logprobs": 3}, 3),
    ({"logprobs": "yes", "top_logprobs": True}, None),
])  # fmt: skip
def test_requested_logprobs(body: dict[str, Any], asked: int | None) -> None:
    assert requested_logprobs(body) == asked
