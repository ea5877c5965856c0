from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from switchboard_router.privacy import ChatStreamRestorer, StreamRestorer, restore_json_text, restore_text

VAULT = {
    "[[EMAIL_1]]": "jane@acme.com",
    "[[EMAIL_2]]": "bob@corp.io",
    "[[CARD_1]]": "4111 1111 1111 1111",
    "[[SECRET_12]]": '-----BEGIN KEY-----\n"quoted" \\ back\n-----END KEY-----',
    "[[PHONE_3]]": "+44 20 7946 0958",
}
LONGEST = max(len(token) for token in VAULT)

# Pieces chosen to stress the restorer: real placeholders (adjacent to each other too), unknown and
# partial ones, stray brackets, and ordinary text.
_PIECES = st.sampled_from(
    [*VAULT, "[[EMAIL_9]]", "[[EMAIL_", "[[", "[", "]]", "]", "[[[", "[[EMAIL_1]", "[[email_1]]", "[[CARD_1", "_1]]",
     "a", " ", "\n", "x = [1, 2]", "<tag>", "é", "[[SECRET_1]]", "[[SECRET_123]]"]
)  # fmt: skip
_TEXTS = st.lists(st.one_of(_PIECES, st.text(alphabet="[]_ACDEILMPRST0123456789 x", max_size=6)), max_size=30).map(
    "".join
)


def _split(text: str, cuts: list[int]) -> list[str]:
    points = sorted({cut % (len(text) + 1) for cut in cuts})
    chunks, previous = [], 0
    for point in points:
        chunks.append(text[previous:point])
        previous = point
    chunks.append(text[previous:])
    return chunks


def _stream(restorer: StreamRestorer, chunks: list[str]) -> str:
    out = []
    for chunk in chunks:
        out.append(restorer.feed(chunk))
        assert len(restorer.pending) <= LONGEST - 1
        assert restorer.pending == "" or any(token.startswith(restorer.pending) for token in VAULT)
    out.append(restorer.flush())
    return "".join(out)


@settings(max_examples=400, deadline=None)
@given(_TEXTS, st.lists(st.integers(min_value=0, max_value=10_000), max_size=12))
def test_any_split_restores_exactly_like_the_whole_text(text: str, cuts: list[int]) -> None:
    assert _stream(StreamRestorer(VAULT), _split(text, cuts)) == restore_text(text, VAULT)


@settings(max_examples=200, deadline=None)
@given(_TEXTS, st.lists(st.integers(min_value=0, max_value=10_000), max_size=12))
def test_any_split_restores_json_escaped(text: str, cuts: list[int]) -> None:
    assert _stream(StreamRestorer(VAULT, json_escaped=True), _split(text, cuts)) == restore_json_text(text, VAULT)


@settings(max_examples=200, deadline=None)
@given(_TEXTS)
def test_character_by_character(text: str) -> None:
    assert _stream(StreamRestorer(VAULT), list(text)) == restore_text(text, VAULT)


def test_examples() -> None:
    restorer = StreamRestorer(VAULT)
    assert restorer.feed("Mail [[EMA") == "Mail "
    assert restorer.feed("IL_1]][[CARD_1]] and [[") == "jane@acme.com4111 1111 1111 1111 and "
    assert restorer.feed("EMAIL_9]] [x]") == "[[EMAIL_9]] [x]"
    assert restorer.feed(" end [[SECRET_1") == " end "
    assert restorer.flush() == "[[SECRET_1"


def test_text_without_brackets_is_never_held() -> None:
    restorer = StreamRestorer(VAULT)
    assert restorer.feed("plain text") == "plain text"
    assert restorer.pending == ""


def test_empty_vault_passes_through() -> None:
    restorer = StreamRestorer({})
    assert restorer.feed("[[EMA") == "[[EMA"
    assert restorer.flush() == ""


def _chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


def _collect(chunks: list[dict[str, Any]]) -> tuple[str, dict[int, str]]:
    content, arguments = "", {}
    for chunk in chunks:
        for choice in chunk["choices"]:
            delta = choice["delta"]
            content += delta.get("content") or ""
            for call in delta.get("tool_calls") or []:
                index = call["index"]
                arguments[index] = arguments.get(index, "") + call.get("function", {}).get("arguments", "")
    return content, arguments


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.integers(min_value=0, max_value=10_000), max_size=10),
    st.lists(st.integers(min_value=0, max_value=10_000), max_size=10),
    st.booleans(),
)
def test_chat_chunks_restore_content_and_tool_arguments(
    content_cuts: list[int], argument_cuts: list[int], finish_in_last_chunk: bool
) -> None:
    content = "Write to [[EMAIL_1]][[EMAIL_2]] about [[CARD_1]] (not [[CARD_9]]) [["
    arguments = json.dumps({"to": "[[EMAIL_1]]", "key": "[[SECRET_12]]", "note": "[[ x"})
    chunks = [_chunk({"role": "assistant", "content": ""})]
    chunks += [_chunk({"content": piece}) for piece in _split(content, content_cuts)]
    chunks.append(_chunk({"tool_calls": [{"index": 0, "id": "c1", "type": "function", "function": {"name": "f"}}]}))
    chunks += [
        _chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]})
        for piece in _split(arguments, argument_cuts)
    ]
    restorer = ChatStreamRestorer(VAULT)
    restored = [restorer.restore_chunk(chunk) for chunk in chunks]
    if finish_in_last_chunk:
        restored.append(restorer.restore_chunk(_chunk({}, finish="tool_calls")))
        assert restorer.flush_chunk(chunks[-1]) is None
    else:
        tail = restorer.flush_chunk(chunks[-1])
        if tail is not None:
            assert tail["id"] == "chatcmpl-1"
            restored.append(tail)
    got_content, got_arguments = _collect(restored)
    assert got_content == restore_text(content, VAULT)
    assert json.loads(got_arguments[0]) == {
        "to": "jane@acme.com",
        "key": VAULT["[[SECRET_12]]"],
        "note": "[[ x",
    }


def test_chat_chunks_input_not_mutated_and_empty_vault_passthrough() -> None:
    chunk = _chunk({"content": "hi [[EMAIL_1]]"})
    assert ChatStreamRestorer({}).restore_chunk(chunk) is chunk
    out = ChatStreamRestorer(VAULT).restore_chunk(chunk)
    assert chunk["choices"][0]["delta"]["content"] == "hi [[EMAIL_1]]"
    assert out["choices"][0]["delta"]["content"] == "hi jane@acme.com"


def test_chat_chunks_keep_choices_and_tool_calls_apart() -> None:
    restorer = ChatStreamRestorer(VAULT)

    def chunk(choices: list[dict[str, Any]]) -> dict[str, Any]:
        return {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": choices}

    def call(index: int, arguments: str) -> dict[str, Any]:
        return {"index": index, "function": {"arguments": arguments}}

    out = [
        restorer.restore_chunk(
            chunk([
                {"index": 0, "delta": {"content": "to [[EMA"}, "finish_reason": None},
                {"index": 1, "delta": {"content": "to [[CAR"}, "finish_reason": None},
            ])
        ),
        restorer.restore_chunk(
            chunk([{"index": 0, "delta": {"tool_calls": [call(0, '{"a": "[[EMAIL_'), call(1, '{"b": "[[PHONE_')]}}])
        ),
        restorer.restore_chunk(chunk([{"index": 1, "delta": {"content": "D_1]]"}, "finish_reason": "stop"}])),
        restorer.restore_chunk(
            chunk([{"index": 0, "delta": {"tool_calls": [call(1, '3]]"}'), call(0, '2]]"}')]}, "finish_reason": None}])
        ),
        restorer.restore_chunk(chunk([{"index": 0, "delta": {"content": "IL_1]]"}, "finish_reason": "tool_calls"}])),
    ]  # fmt: skip
    content: dict[int, str] = {}
    arguments: dict[int, str] = {}
    for piece in out:
        for choice in piece["choices"]:
            content[choice["index"]] = content.get(choice["index"], "") + (choice["delta"].get("content") or "")
            for tool_call in choice["delta"].get("tool_calls") or []:
                arguments[tool_call["index"]] = (
                    arguments.get(tool_call["index"], "") + tool_call["function"]["arguments"]
                )
    assert content == {0: "to jane@acme.com", 1: "to 4111 1111 1111 1111"}
    assert json.loads(arguments[0]) == {"a": "bob@corp.io"}
    assert json.loads(arguments[1]) == {"b": "+44 20 7946 0958"}
    assert restorer.flush_chunk(out[-1]) is None


def test_held_thinking_text_goes_out_ahead_of_the_signature_that_ends_its_block() -> None:
    # "[[EMAIL_" could be the start of a placeholder, so it is held back; the signature closes the thinking
    # block, so the held text must go out with it (before it), not after the tool call that follows.
    restorer = ChatStreamRestorer(VAULT)
    signed = {"type": "thinking", "thinking": "", "signature": "sig=="}
    out = [restorer.restore_chunk(_chunk(delta)) for delta in (
        {"role": "assistant", "reasoning_content": "Mail [[EMAIL_1]] and [[EMAIL_"},
        {"thinking_blocks": [signed]},
        {"tool_calls": [{"index": 0, "id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
    )]
    deltas = [chunk["choices"][0]["delta"] for chunk in out]
    assert deltas[0]["reasoning_content"] == "Mail jane@acme.com and "
    assert deltas[1] == {"reasoning_content": "[[EMAIL_", "thinking_blocks": [signed]}
    assert "reasoning_content" not in deltas[2]
