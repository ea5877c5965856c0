"""Custody and request-id headers also under another prefix."""

from __future__ import annotations

from typing import Any

import pytest

from switchboard_facade.header_aliases import HeaderAliases


async def test_the_custody_and_request_id_headers_get_their_alias_once() -> None:
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    aliased = HeaderAliases("X-NI-").wrap(send)
    await aliased({"type": "http.response.start", "status": 200, "headers": [
        (b"x-request-id", b"req_1"), (b"x-switchboard-request-id", b"req_1"), (b"content-type", b"application/json"),
        (b"x-switchboard-custody-path", b"facade@h:1>router@h:2>openai:m/0"),
        (b"x-switchboard-resolved-jurisdiction", b"ca"), (b"x-switchboard-deployment", b"m/0")]})
    await aliased({"type": "http.response.body", "body": b"{}"})
    headers = sent[0]["headers"]
    assert [name for name, _ in headers].count(b"x-ni-request-id") == 1
    assert dict(headers)[b"x-ni-request-id"] == b"req_1"
    assert dict(headers)[b"x-ni-custody-path"] == b"facade@h:1>router@h:2>openai:m/0"
    assert dict(headers)[b"x-ni-resolved-jurisdiction"] == b"ca"
    assert b"x-ni-deployment" not in dict(headers) and b"x-switchboard-deployment" in dict(headers)
    assert sent[1] == {"type": "http.response.body", "body": b"{}"}


@pytest.mark.parametrize("prefix", ["x-ni", "x ni-", "x-switchboard-", "-"])
def test_a_prefix_must_name_headers(prefix: str) -> None:
    with pytest.raises(ValueError, match="SWITCHBOARD_HEADER_ALIAS_PREFIX"):
        HeaderAliases(prefix)


def test_the_aliases_of_a_whole_answer_written_at_once_are_those_its_start_message_would_get() -> None:
    aliases = HeaderAliases("x-ni-")
    route = {"x-switchboard-request-id": "req_1", "x-switchboard-custody-path": "facade@h:1>router@h:2>openai:m/0",
             "x-switchboard-pii": "substituted:2", "x-switchboard-model": "m"}
    lane = ((b"x-request-id", b"req_1"), (b"vary", b"origin"))
    pairs = [(name.encode(), value.encode()) for name, value in route.items()] + list(lane)
    assert [*pairs, *aliases.of(route, lane)] == aliases.added(pairs)
    assert aliases.of({"x-switchboard-model": "m"}) == []
