"""Official-SDK clients a test makes, closed after it: their pooled connections would otherwise linger until a
later test's garbage collection reports them (ResourceWarning, an error in this suite).

Tests make their clients with :func:`openai_client`; :func:`close_sdk_clients` (autouse for the whole suite
through tests/conftest.py) closes them when the test ends."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pytest

_open: list[openai.OpenAI | anthropic.Anthropic] = []


def openai_client(api_key: str, base_url: str, **options: Any) -> openai.OpenAI:
    made = openai.OpenAI(api_key=api_key, base_url=base_url, **{"max_retries": 0, **options})
    _open.append(made)
    return made


def anthropic_client(api_key: str, base_url: str, **options: Any) -> anthropic.Anthropic:
    made = anthropic.Anthropic(api_key=api_key, base_url=base_url, **{"max_retries": 0, **options})
    _open.append(made)
    return made


@pytest.fixture(autouse=True)
def close_sdk_clients() -> Iterator[None]:
    yield
    while _open:
        _open.pop().close()
