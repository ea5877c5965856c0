"""The generated text of OpenAI chat answers: what token estimates of an answer count."""

from __future__ import annotations

import orjson

from switchboard_translate.generated_text import (
    SAMPLED_CHUNKS,
    DeliveredText,
    answer_chars,
    chunk_chars,
    text_chars,
    tokens_for_chars,
)


def chunk(delta: dict[str, object], **extra: object) -> bytes:
    return orjson.dumps({"id": "chatcmpl-Bx7kYw2", "object": "chat.completion.chunk", "created": 1741570283,
                         "model": "gpt-4o-2024-08-06", "system_fingerprint": "fp_fc9f1d7035",
                         "choices": [{"index": 0, "delta": delta, "finish_reason": None, "logprobs": None}],
                         **extra})


def test_only_generated_text_counts_not_the_json_around_it() -> None:
    assert chunk_chars(chunk({"role": "assistant", "content": ""})) == 0
    assert chunk_chars(chunk({"content": "Hello fr"}, obfuscation="a" * 40)) == 8
    assert chunk_chars(chunk({"reasoning_content": "abcd"})) == 4
    assert chunk_chars(chunk({"refusal": "no"})) == 2
    calls = {"tool_calls": [{"index": 0, "id": "call_1", "function": {"name": "get", "arguments": '{"a":1}'}}]}
    assert chunk_chars(chunk(calls)) == 3 + 7


def test_what_is_not_a_chunk_counts_nothing() -> None:
    assert chunk_chars(b"not json") == 0
    assert chunk_chars(b"[1, 2]") == 0
    assert chunk_chars(b'{"choices": "x"}') == 0
    assert text_chars("text") == 0


def test_whole_answers_count_every_choice_and_content_parts() -> None:
    answer = {"choices": [{"message": {"content": "abc"}},
                          {"message": {"content": [{"type": "text", "text": "de"}, {"type": "image_url"}]}}]}
    assert answer_chars(answer) == 5
    assert answer_chars({"object": "list", "data": []}) == 0


def test_tokens_round_up() -> None:
    assert [tokens_for_chars(n) for n in (0, 1, 4, 5)] == [0, 1, 1, 2]


def test_a_short_stream_is_counted_exactly() -> None:
    delivered = DeliveredText()
    delivered.add([chunk({"role": "assistant", "content": ""}), chunk({"content": "Hello fr"})])
    assert (delivered.chars(), delivered.tokens(), delivered.chunks) == (8, 2, 2)


def test_a_long_stream_is_counted_by_size_past_its_sample_without_keeping_it() -> None:
    delivered = DeliveredText()
    delivered.add([chunk({"role": "assistant", "content": ""})])
    for _ in range(50):
        delivered.add([chunk({"content": "word"}) for _ in range(20)])
    assert delivered.chunks == 1001
    assert delivered.chars() == 1000 * 4
    assert len(delivered._sample) == SAMPLED_CHUNKS


def test_seven_characters_in_many_envelopes_are_two_tokens() -> None:
    """The case of a cancelled stream once billed from its JSON bytes (45 tokens for about 7 of content)."""
    delivered = DeliveredText()
    delivered.add([chunk({"role": "assistant", "content": ""}), chunk({"content": "Hel"}), chunk({"content": "lo!"}),
                   chunk({"content": " "})])
    assert delivered.tokens() == 2
