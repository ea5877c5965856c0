"""``POST /v1/embeddings`` with the official SDK: vectors back, usage recorded, unsupported providers refused."""

from __future__ import annotations

import openai
import pytest

from tests.harness import Gateway
from tests.sdk_clients import openai_client


def test_embeddings_with_the_sdk(gateway: Gateway) -> None:
    key = gateway.create_key(key_alias="embeddings")
    sdk = openai_client(api_key=key, base_url=gateway.base_url + "/v1", max_retries=0)
    result = sdk.embeddings.create(model="fake-embed", input=["alpha", "beta gamma"], dimensions=3)
    assert [d.index for d in result.data] == [0, 1]
    assert all(len(d.embedding) == 3 for d in result.data)
    assert result.usage.prompt_tokens > 0


def test_embeddings_name_the_model_asked_for(gateway: Gateway) -> None:
    """The provider names its own id ("embed"); the answer names the catalog name or the key's alias asked for."""
    key = gateway.create_key(key_alias="embeddings-names", aliases={"my-embed": "fake-embed"})
    sdk = openai_client(api_key=key, base_url=gateway.base_url + "/v1", max_retries=0)
    for asked in ("fake-embed", "my-embed"):
        assert sdk.embeddings.create(model=asked, input="alpha", dimensions=3).model == asked


def test_embeddings_need_input(gateway: Gateway) -> None:
    key = gateway.create_key()
    sdk = openai_client(api_key=key, base_url=gateway.base_url + "/v1", max_retries=0)
    with pytest.raises(openai.BadRequestError) as info:
        sdk.embeddings.create(model="fake-embed", input=[])
    assert info.value.body["param"] == "input"  # type: ignore[index]
