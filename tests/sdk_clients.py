"""HTTP clients a test makes (official SDKs, a browser-like httpx client), closed after it: their pooled
connections would otherwise linger until a later test's garbage collection, or the interpreter's exit, reports
them (ResourceWarning, an error in this suite).

Tests make their clients with :func:`openai_client`, :func:`anthropic_client` or hand any client with a
``close()`` to :func:`closed_after_test`; :func:`close_sdk_clients` (autouse for the whole suite through
tests/conftest.py) closes them when the test ends."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol, TypeVar

import anthropic
import openai
import pytest


class _Closable(Protocol):
    def close(self) -> None: ...


C = TypeVar("C", bound=_Closable)
_open: list[_Closable] = []


def closed_after_test(client: C) -> C:
    """``client``, closed when the test that made it ends."""
    _open.append(client)
    return client


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
