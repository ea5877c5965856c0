"""Every published Cursor body shape normalises to the exact canonical chat body in its fixture."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from switchboard_translate.chat_messages import normalize_messages
from switchboard_translate.cursor import SourceShape, normalize_chat_request
from switchboard_translate.errors import InvalidRequest
from switchboard_translate.reasoning_history import backfill_reasoning_content
from switchboard_translate.responses_api import normalize_responses_request
from switchboard_translate.responses_request import input_to_messages

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "cursor"


def _fixtures() -> list[Path]:
    return sorted(FIXTURES.glob("*.json"))


@pytest.mark.parametrize("path", _fixtures(), ids=lambda p: p.stem)
def test_fixture_normalises_exactly(path: Path) -> None:
    case: dict[str, Any] = json.loads(path.read_text())
    result = normalize_chat_request(case["request"])
    expected = case["expected"]
    assert result.body == expected["body"]
    assert sorted(result.custom_tools) == expected["custom_tools"]
    assert result.source_shape == SourceShape(expected["source_shape"])
    assert result.dropped_fields == expected["dropped_fields"]


def test_every_published_shape_has_a_fixture() -> None:
    shapes = {json.loads(p.read_text())["expected"]["source_shape"] for p in _fixtures()}
    assert shapes == {s.value for s in SourceShape}


@pytest.mark.parametrize("path", _fixtures(), ids=lambda p: p.stem)
def test_normalising_does_not_mutate_the_request(path: Path) -> None:
    case = json.loads(path.read_text())
    before = json.dumps(case["request"], sort_keys=True)
    normalize_chat_request(case["request"])
    assert json.dumps(case["request"], sort_keys=True) == before


@pytest.mark.parametrize("path", _fixtures(), ids=lambda p: p.stem)
def test_canonical_body_is_a_fixed_point(path: Path) -> None:
    """Normalising the canonical output again changes nothing: the facade may normalise twice safely."""
    body = normalize_chat_request(json.loads(path.read_text())["request"]).body
    again = normalize_chat_request(body)
    assert again.body == body
    assert again.source_shape in (SourceShape.CHAT, SourceShape.CHAT_MIXED_TOOLS)


def test_function_call_after_user_starts_a_new_assistant_turn() -> None:
    body = {
        "model": "m",
        "input": [
            {"role": "user", "content": "go"},
            {"type": "function_call", "call_id": "a", "name": "f", "arguments": "{}"},
            {"type": "function_call", "call_id": "b", "name": "g", "arguments": '{"x":1}'},
            {"type": "function_call_output", "call_id": "a", "output": [{"type": "input_text", "text": "A"}]},
            {"type": "function_call_output", "call_id": "b", "output": {"ok": True}},
        ],
    }
    messages = normalize_chat_request(body).body["messages"]
    assert messages[1] == {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": "a", "type": "function", "function": {"name": "f", "arguments": "{}"}},
            {"id": "b", "type": "function", "function": {"name": "g", "arguments": '{"x":1}'}},
        ],
    }
    assert messages[2:] == [
        {"role": "tool", "tool_call_id": "a", "content": "A"},
        {"role": "tool", "tool_call_id": "b", "content": '{"ok":true}'},
    ]


def test_easy_input_messages_without_type_and_developer_role() -> None:
    body = {
        "model": "m",
        "input": [
            {"role": "developer", "content": "rules"},
            {
                "role": "user",
                "content": [
                    {"type": "input_file", "file_data": "data:application/pdf;base64,AA==", "filename": "a.pdf"}
                ],
            },
        ],
    }
    assert normalize_chat_request(body).body["messages"] == [
        {"role": "system", "content": "rules"},
        {
            "role": "user",
            "content": [
                {"type": "file", "file": {"file_data": "data:application/pdf;base64,AA==", "filename": "a.pdf"}}
            ],
        },
    ]


def test_chat_tool_calls_of_custom_type_become_wrapped_function_calls() -> None:
    body = {
        "model": "m",
        "messages": [
            {"role": "user", "content": "patch"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": "c", "type": "custom", "custom": {"name": "ApplyPatch", "input": "*** Begin Patch"}}
                ],
            },
            {"role": "tool", "tool_call_id": "c", "content": "ok"},
        ],
    }
    call = normalize_chat_request(body).body["messages"][1]["tool_calls"][0]
    assert call == {
        "id": "c",
        "type": "function",
        "function": {"name": "ApplyPatch", "arguments": '{"input":"*** Begin Patch"}'},
    }


@pytest.mark.parametrize(
    ("body", "param", "hint"),
    [
        ([], None, "JSON object"),
        ({"messages": []}, "model", "'model' is required"),
        ({"model": "m"}, "messages", "neither 'messages' nor 'input'"),
        ({"model": "m", "messages": "hi"}, "messages", "array of message objects"),
        ({"model": "m", "messages": []}, "messages", "is empty"),
        ({"model": "m", "messages": [{"role": "robot", "content": "x"}]}, "messages[0].role", "use one of"),
        ({"model": "m", "messages": [{"role": "user", "content": 3}]}, "messages[0].content", "string or an array"),
        ({"model": "m", "messages": [{"role": "user", "content": "x"}], "input": "x"}, "input", "not both"),
        ({"model": "m", "input": 5}, "input", "string or an array"),
        ({"model": "m", "input": []}, "input", "is empty"),
        ({"model": "m", "input": [{"type": "item_reference", "id": "x"}]}, "input[0].type", "supported input items"),
        ({"model": "m", "input": [{"type": "function_call", "name": "f"}]}, "input[0].call_id", "non-empty string"),
        ({"model": "m", "input": "x", "tools": {"a": 1}}, "tools", "array of tool definitions"),
        ({"model": "m", "input": "x", "tools": [{"type": "web_search"}]}, "tools[0].type", "hosted tool"),
        ({"model": "m", "input": "x", "tools": [{"type": "function", "parameters": {}}]}, "tools[0].name", "name"),
        ({"model": "m", "input": "x", "instructions": ["a"]}, "instructions", "must be a string"),
        ({"model": "m", "input": "x", "max_output_tokens": 0}, "max_output_tokens", "positive integer"),
        ({"model": "m", "input": "x", "text": {"format": {"type": "xml"}}}, "text.format.type", "json_schema"),
        (
            {"model": "m", "input": [{"role": "user", "content": [{"type": "input_image", "file_id": "f"}]}]},
            "input[0].content[0].image_url",
            "URL or data URL",
        ),
        (
            {"model": "m", "messages": [{"role": "user", "content": [{"type": "tool_result"}]}]},
            "messages[0].content[0].tool_use_id",
            "tool_use_id",
        ),
    ],
)
def test_invalid_bodies_say_what_to_fix(body: Any, param: str | None, hint: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        normalize_chat_request(body)
    assert caught.value.param == param
    assert hint in caught.value.message
    error = caught.value.to_openai_error()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param


def test_chat_stream_options_pass_through_untouched() -> None:
    body = {
        "model": "m",
        "messages": [{"role": "user", "content": "x"}],
        "stream": True,
        "stream_options": {"include_usage": True, "include_obfuscation": False},
    }
    assert normalize_chat_request(body).body["stream_options"] == {"include_usage": True, "include_obfuscation": False}


def test_legacy_function_call_turn_is_kept() -> None:
    body = {
        "model": "m",
        "messages": [
            {"role": "user", "content": "x"},
            {"role": "assistant", "content": None, "function_call": {"name": "f", "arguments": "{}"}},
            {"role": "function", "name": "f", "content": "1"},
        ],
    }
    assert normalize_chat_request(body).body["messages"][1:] == [
        {"role": "assistant", "content": None, "function_call": {"name": "f", "arguments": "{}"}},
        {"role": "function", "name": "f", "content": "1"},
    ]


def test_history_without_reasoning_is_backfilled_for_providers_that_need_it() -> None:
    case = json.loads((FIXTURES / "history_without_reasoning_null_content.json").read_text())
    body = normalize_chat_request(case["request"]).body
    assistant_turns = [m for m in backfill_reasoning_content(body)["messages"] if m["role"] == "assistant"]
    assert assistant_turns == [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "read_file", "arguments": '{"path":"a.txt"}'}}
            ],
            "reasoning_content": "",
        }
    ]
    plain = {"model": "m", "messages": [{"role": "assistant", "content": "hi"}, {"role": "user", "content": "x"}]}
    assert backfill_reasoning_content(plain, tool_call_turns_only=True) is plain
    assert backfill_reasoning_content(plain)["messages"][0] == {
        "role": "assistant",
        "content": "hi",
        "reasoning_content": "",
    }
    kept = {"model": "m", "messages": [{"role": "assistant", "content": "hi", "reasoning_content": "because"}]}
    assert backfill_reasoning_content(kept) is kept


def test_cache_control_marks_survive_normalisation() -> None:
    mark = {"type": "ephemeral"}
    result = normalize_chat_request({
        "model": "claude",
        "system": [{"type": "text", "text": "Anthropic-style rules", "cache_control": mark}],
        "tools": [
            {"type": "function", "function": {"name": "a", "parameters": {"type": "object"}}, "cache_control": mark},
            {"name": "b", "input_schema": {"type": "object"}, "cache_control": mark},
        ],
        "messages": [
            {"role": "system", "content": [{"type": "text", "text": "one"}, {"type": "text", "text": "two",
                                                                              "cache_control": mark}]},
            {"role": "user", "content": [{"type": "input_text", "text": "doc", "cache_control": mark},
                                         {"type": "text", "text": "question"}]},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "a", "input": {}}],
             "cache_control": mark},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "out",
                                          "cache_control": mark}]},
        ],
    })
    body = result.body
    assert [tool.get("cache_control") for tool in body["tools"]] == [mark, mark]
    preamble, system, user, assistant, tool = body["messages"]
    assert preamble == {"role": "system", "content": "Anthropic-style rules", "cache_control": mark}
    assert system == {"role": "system", "content": "one\n\ntwo", "cache_control": mark}
    assert user["content"] == [{"type": "text", "text": "doc", "cache_control": mark},
                               {"type": "text", "text": "question"}]
    assert assistant["cache_control"] == mark and assistant["tool_calls"][0]["id"] == "t1"
    assert tool == {"role": "tool", "tool_call_id": "t1", "content": "out", "cache_control": mark}


# -- Images and files a tool returned: carried after the tool results, never dropped -------------------------

PNG = "data:image/png;base64,iVBORw0KGgo="


def test_a_responses_tool_output_image_follows_the_tool_results() -> None:
    messages = input_to_messages([
        {"role": "user", "content": "screenshots?"},
        {"type": "function_call", "call_id": "c1", "name": "shot", "arguments": "{}"},
        {"type": "function_call", "call_id": "c2", "name": "shot", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1",
         "output": [{"type": "input_text", "text": "first"}, {"type": "input_image", "image_url": PNG}]},
        {"type": "function_call_output", "call_id": "c2", "output": "second, no image"},
        {"role": "user", "content": "compare them"},
    ])
    assert [m["role"] for m in messages] == ["user", "assistant", "tool", "tool", "user", "user"]
    assert messages[2]["content"] == "first" and "_media" not in messages[2]
    assert messages[4] == {"role": "user", "content": [{"type": "image_url", "image_url": {"url": PNG}}]}


def test_a_chat_tool_message_image_follows_the_tool_results() -> None:
    messages, _ = normalize_messages([
        {"role": "user", "content": "look"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "shot", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1",
         "content": [{"type": "text", "text": "here"}, {"type": "image_url", "image_url": {"url": PNG}}]},
    ])
    assert [m["role"] for m in messages] == ["user", "assistant", "tool", "user"]
    assert messages[2]["content"] == "here" and messages[3]["content"][0]["image_url"]["url"] == PNG


def test_a_malformed_or_dangling_tool_choice_is_refused_not_dropped() -> None:
    for choice in ("sometimes", {"type": "function", "name": "nosuch"}):
        with pytest.raises(InvalidRequest) as bad:
            normalize_responses_request({"model": "m", "input": "hi", "tool_choice": choice})
        assert bad.value.param == "tool_choice"
    assert "tool_choice" not in normalize_responses_request({"model": "m", "input": "hi", "tool_choice": "auto"}).body
