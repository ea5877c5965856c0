"""Official-SDK clients a test makes, closed after it: their pooled connections would otherwise linger until a
later test's garbage collection reports them (ResourceWarning, an error in this suite).

A module imports :func:`close_sdk_clients` (an autouse fixture, active where imported) and makes its clients with
:func:`openai_client`."""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest

_open: list[openai.OpenAI] = []


def openai_client(api_key: str, base_url: str) -> openai.OpenAI:
    made = openai.OpenAI(api_key=api_key, base_url=base_url, max_retries=0)
    _open.append(made)
    return made


@pytest.fixture(autouse=True)
def close_sdk_clients() -> Iterator[None]:
    yield
    while _open:
        _open.pop().close()
