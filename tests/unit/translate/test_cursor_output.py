"""Tool calls going back to Cursor always carry a function name; custom tools get their raw input."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openai.lib.streaming.chat import ChatCompletionStreamState
from openai.types.chat import ChatCompletionChunk

from switchboard_translate.cursor import CursorResponseFixer, apply_thinking_suffix, split_thinking_suffix
from switchboard_translate.custom_input import CustomInputUnwrapper, unwrap_custom_arguments


def _chunk(delta: dict[str, Any], finish_reason: str | None = None, index: int = 0) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [{"index": index, "delta": delta, "finish_reason": finish_reason}],
    }


def _calls(chunk: dict[str, Any]) -> list[dict[str, Any]]:
    return chunk["choices"][0]["delta"].get("tool_calls", [])


def test_later_deltas_get_the_name_and_id_of_their_index() -> None:
    fixer = CursorResponseFixer()
    first = fixer.fix_chunk(
        _chunk(
            {
                "tool_calls": [
                    {"index": 0, "id": "call_a", "type": "function", "function": {"name": "read_file", "arguments": ""}}
                ]
            }
        )
    )
    second = fixer.fix_chunk(_chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"path":'}}]}))
    third = fixer.fix_chunk(_chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"a"}'}}]}))
    other = fixer.fix_chunk(
        _chunk({"tool_calls": [{"index": 1, "id": "call_b", "function": {"name": "list_dir", "arguments": "{}"}}]})
    )
    assert _calls(first) == [
        {"index": 0, "id": "call_a", "type": "function", "function": {"name": "read_file", "arguments": ""}}
    ]
    assert _calls(second) == [
        {"index": 0, "id": "call_a", "type": "function", "function": {"name": "read_file", "arguments": '{"path":'}}
    ]
    assert _calls(third) == [
        {"index": 0, "id": "call_a", "type": "function", "function": {"name": "read_file", "arguments": '"a"}'}}
    ]
    assert _calls(other) == [
        {"index": 1, "id": "call_b", "type": "function", "function": {"name": "list_dir", "arguments": "{}"}}
    ]


def test_calls_without_id_get_one_that_stays_stable() -> None:
    fixer = CursorResponseFixer()
    first = _calls(fixer.fix_chunk(_chunk({"tool_calls": [{"index": 0, "function": {"name": "f", "arguments": "{"}}]})))
    later = _calls(fixer.fix_chunk(_chunk({"tool_calls": [{"index": 0, "function": {"arguments": "}"}}]})))
    assert first[0]["id"].startswith("call_")
    assert later[0]["id"] == first[0]["id"]


def test_choices_are_tracked_separately() -> None:
    fixer = CursorResponseFixer()
    fixer.fix_chunk(
        _chunk({"tool_calls": [{"index": 0, "id": "x0", "function": {"name": "f0", "arguments": ""}}]}, index=0)
    )
    fixer.fix_chunk(
        _chunk({"tool_calls": [{"index": 0, "id": "x1", "function": {"name": "f1", "arguments": ""}}]}, index=1)
    )
    later = fixer.fix_chunk(_chunk({"tool_calls": [{"index": 0, "function": {"arguments": "{}"}}]}, index=1))
    assert _calls(later)[0]["function"]["name"] == "f1"
    assert _calls(later)[0]["id"] == "x1"


def test_chunks_without_tool_calls_pass_unchanged() -> None:
    fixer = CursorResponseFixer({"ApplyPatch"})
    text = _chunk({"content": "hello"})
    usage = {"id": "c", "object": "chat.completion.chunk", "choices": [], "usage": {"prompt_tokens": 1}}
    assert fixer.fix_chunk(text) == text
    assert fixer.fix_chunk(usage) == usage
    assert fixer.fix_chunk(_chunk({}, "stop")) == _chunk({}, "stop")


def _stream_custom(fragments: list[str]) -> tuple[str, list[dict[str, Any]]]:
    fixer = CursorResponseFixer({"ApplyPatch"})
    deltas = []
    for i, fragment in enumerate(fragments):
        call: dict[str, Any] = {"index": 0, "function": {"arguments": fragment}}
        if i == 0:
            call.update(id="call_p", type="function")
            call["function"]["name"] = "ApplyPatch"
        deltas.extend(_calls(fixer.fix_chunk(_chunk({"tool_calls": [call]}))))
    deltas.extend(_calls(fixer.fix_chunk(_chunk({}, "tool_calls"))))
    return "".join(d["function"]["arguments"] for d in deltas), deltas


PATCH = "*** Begin Patch\n*** Update File: a.py\n-\tx = \"é\"\n+\tx = '😀' \\ ok\n*** End Patch"


def test_custom_tool_stream_is_unwrapped_to_raw_input() -> None:
    arguments = json.dumps({"input": PATCH})
    raw, deltas = _stream_custom([arguments[i : i + 7] for i in range(0, len(arguments), 7)])
    assert raw == PATCH
    assert all(d["function"]["name"] == "ApplyPatch" and d["id"] == "call_p" for d in deltas)


def test_custom_tool_stream_with_unrecognised_wrapper_is_released_at_finish() -> None:
    arguments = json.dumps({"patch": "x", "input": PATCH})
    raw, deltas = _stream_custom([arguments[:10], arguments[10:]])
    assert raw == PATCH
    assert deltas[-1]["function"]["arguments"] == PATCH  # held back, then sent in the finish chunk


def test_custom_tool_stream_with_non_json_arguments_goes_through_verbatim() -> None:
    raw, _ = _stream_custom(["*** Begin", " Patch"])
    assert raw == "*** Begin Patch"


def test_flush_releases_held_input_when_the_stream_ends_without_finish_reason() -> None:
    fixer = CursorResponseFixer({"ApplyPatch"})
    fixer.fix_chunk(
        _chunk({"tool_calls": [{"index": 0, "id": "c", "function": {"name": "ApplyPatch", "arguments": "[1"}}]})
    )
    tail = fixer.flush()
    assert tail is not None
    assert tail["choices"][0]["delta"]["tool_calls"] == [
        {"index": 0, "id": "c", "type": "function", "function": {"name": "ApplyPatch", "arguments": "[1"}}
    ]
    assert fixer.flush() is None


@settings(max_examples=200, deadline=None)
@given(text=st.text(), cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=12), ascii_only=st.booleans())
def test_unwrapper_decodes_any_string_split_anywhere(text: str, cuts: list[int], ascii_only: bool) -> None:
    text = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")  # drop lone surrogates
    arguments = json.dumps({"input": text}, ensure_ascii=ascii_only)
    points = sorted({min(c, len(arguments)) for c in cuts})
    pieces = [arguments[a:b] for a, b in zip([0, *points], [*points, len(arguments)], strict=True)]
    unwrapper = CustomInputUnwrapper()
    assert "".join(unwrapper.feed(p) for p in pieces) + unwrapper.finish() == text


def test_completion_tool_calls_are_fixed() -> None:
    fixer = CursorResponseFixer({"ApplyPatch"})
    completion = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "choices": [
            {
                "index": 0,
                "finish_reason": "tool_calls",
                "message": {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "c1",
                            "type": "function",
                            "function": {"name": "ApplyPatch", "arguments": json.dumps({"input": PATCH})},
                        },
                        {"type": "function", "function": {"name": "list_dir", "arguments": ""}},
                        {"id": "c3", "type": "custom", "custom": {"name": "ApplyPatch", "input": "raw"}},
                    ],
                },
            }
        ],
    }
    fixed = fixer.fix_completion(completion)
    calls = fixed["choices"][0]["message"]["tool_calls"]
    assert calls[0] == {"id": "c1", "type": "function", "function": {"name": "ApplyPatch", "arguments": PATCH}}
    assert calls[1]["id"].startswith("call_")
    assert calls[1]["function"] == {"name": "list_dir", "arguments": "{}"}
    assert calls[2] == {"id": "c3", "type": "function", "function": {"name": "ApplyPatch", "arguments": "raw"}}
    assert completion["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"] != PATCH  # input untouched


def test_unwrap_leaves_other_arguments_alone() -> None:
    assert unwrap_custom_arguments('{"input": "x"}') == "x"
    assert unwrap_custom_arguments('{"input": 3}') == '{"input": 3}'
    assert unwrap_custom_arguments("not json") == "not json"


SERVED = {"claude-sonnet", "gpt-5-thinking", "deepseek"}


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("claude-sonnet-thinking", ("claude-sonnet", True)),
        ("claude-sonnet", ("claude-sonnet", False)),
        ("gpt-5-thinking", ("gpt-5-thinking", False)),  # a served full name is never rewritten
        ("unknown-thinking", ("unknown-thinking", False)),
        ("-thinking", ("-thinking", False)),
    ],
)
def test_split_thinking_suffix(model: str, expected: tuple[str, bool]) -> None:
    assert split_thinking_suffix(model, SERVED.__contains__) == expected


def test_apply_thinking_suffix_turns_reasoning_on() -> None:
    body = {"model": "deepseek-thinking", "messages": []}
    assert apply_thinking_suffix(body, SERVED.__contains__) == {
        "model": "deepseek",
        "messages": [],
        "reasoning_effort": "medium",
    }
    given_effort = {"model": "deepseek-thinking", "reasoning_effort": "high"}
    assert apply_thinking_suffix(given_effort, SERVED.__contains__)["reasoning_effort"] == "high"
    plain = {"model": "deepseek"}
    assert apply_thinking_suffix(plain, SERVED.__contains__) is plain


def _raw_tool_stream() -> list[dict[str, Any]]:
    arguments = json.dumps({"input": PATCH})
    raw_chunks = [
        _chunk({"role": "assistant", "content": None}),
        _chunk(
            {
                "tool_calls": [
                    {"index": 0, "id": "call_r", "type": "function", "function": {"name": "read_file", "arguments": ""}}
                ]
            }
        ),
        _chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"path":"a.py"}'}}]}),
        _chunk(
            {
                "tool_calls": [
                    {
                        "index": 1,
                        "id": "call_p",
                        "type": "function",
                        "function": {"name": "ApplyPatch", "arguments": ""},
                    }
                ]
            }
        ),
        *[
            _chunk({"tool_calls": [{"index": 1, "function": {"arguments": arguments[i : i + 9]}}]})
            for i in range(0, len(arguments), 9)
        ],
        _chunk({}, "tool_calls"),
    ]
    return raw_chunks


EXPECTED_CALLS = [("call_r", "read_file", '{"path":"a.py"}'), ("call_p", "ApplyPatch", PATCH)]


def test_cursor_style_accumulation_rebuilds_named_calls() -> None:
    """Cursor takes id and name from each delta and appends arguments; every delta names its call."""
    fixer = CursorResponseFixer({"ApplyPatch"})
    calls: dict[int, list[str]] = {}
    for raw in _raw_tool_stream():
        for delta in _calls(fixer.fix_chunk(raw)):
            assert delta["function"]["name"] and delta["id"]
            entry = calls.setdefault(delta["index"], [delta["id"], delta["function"]["name"], ""])
            entry[2] += delta["function"]["arguments"]
    assert [tuple(calls[i]) for i in sorted(calls)] == EXPECTED_CALLS


def test_fixed_stream_accumulates_in_the_official_sdk() -> None:
    """Without repeated identity, a generic OpenAI client (which appends names) rebuilds the same calls."""
    fixer = CursorResponseFixer({"ApplyPatch"}, repeat_identity=False)
    raw_chunks = _raw_tool_stream()
    state: ChatCompletionStreamState[Any] = ChatCompletionStreamState()
    for raw in raw_chunks:
        state.handle_chunk(ChatCompletionChunk.model_validate(fixer.fix_chunk(raw)))
    calls = state.get_final_completion().choices[0].message.tool_calls
    assert calls is not None
    assert [(c.id, c.function.name, c.function.arguments) for c in calls] == EXPECTED_CALLS
