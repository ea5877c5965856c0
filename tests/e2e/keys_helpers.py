"""Helpers of the key, team and limit tests: admin calls and SDK clients against a running gateway."""

from __future__ import annotations

from typing import Any

import httpx
import openai

from tests.harness import Gateway
from tests.sdk_clients import openai_client


def admin_post(gateway: Gateway, path: str, body: object, as_key: str | None = None,
               base_url: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {as_key or gateway.master_key}"}
    return httpx.post(f"{base_url or gateway.base_url}{path}", json=body, headers=headers, timeout=10)


def admin_get(gateway: Gateway, path: str, as_key: str | None = None, **params: str) -> httpx.Response:
    headers = {"Authorization": f"Bearer {as_key or gateway.master_key}"}
    return httpx.get(f"{gateway.base_url}{path}", params=params, headers=headers, timeout=10)


def ok(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    return response.json()


def generate(gateway: Gateway, **spec: object) -> dict[str, Any]:
    return ok(admin_post(gateway, "/key/generate", spec))  # type: ignore[no-any-return]


def sdk(gateway: Gateway, key: str, base_url: str | None = None) -> openai.OpenAI:
    return openai_client(key, (base_url or gateway.base_url) + "/v1", timeout=20)


def chat(client: openai.OpenAI, model: str = "fake-good", content: str = "hi") -> Any:
    return client.chat.completions.with_raw_response.create(model=model,
                                                            messages=[{"role": "user", "content": content}])
