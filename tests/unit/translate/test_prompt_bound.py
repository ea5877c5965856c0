"""The prompt-token bound a budget hold counts: never below the prompt, far below the body's bytes."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from switchboard_translate.prompt_bound import PER_IMAGE, PER_MESSAGE, PER_REQUEST, WITH_TOOLS, prompt_tokens_bound

CURSOR = Path(__file__).parents[2] / "fixtures" / "cursor"


def _bound(body: dict) -> int:
    return prompt_tokens_bound(body, len(orjson.dumps(body)))


def test_plain_chat_counts_text_and_framing():
    body = {"model": "gpt-4o", "messages": [{"role": "system", "content": "Be brief."},
                                           {"role": "user", "content": "héllo"}]}
    assert _bound(body) == PER_REQUEST + 2 * PER_MESSAGE + len("Be brief.") + len("héllo".encode())


def test_an_image_counts_a_fixed_allowance_whatever_its_size():
    huge = "data:image/png;base64," + "A" * 400_000
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "what is this"},
        {"type": "image_url", "image_url": {"url": huge}}]}]}
    assert _bound(body) == PER_REQUEST + PER_MESSAGE + len("what is this") + PER_IMAGE


def test_tools_count_their_json_and_the_providers_tool_prompt():
    tools = [{"type": "function", "function": {"name": "read_file", "parameters": {"type": "object"}}}]
    body = {"model": "m", "messages": [{"role": "user", "content": "x"}], "tools": tools}
    assert _bound(body) == PER_REQUEST + WITH_TOOLS + PER_MESSAGE + 1 + len(orjson.dumps(tools))


def test_tool_calls_and_results_are_counted():
    call = {"id": "call_1", "type": "function", "function": {"name": "grep", "arguments": '{"q": "TODO"}'}}
    body = {"model": "m", "messages": [
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_1", "content": "a.py:1: TODO fix"}]}
    assert _bound(body) >= len(orjson.dumps(call)) + len("a.py:1: TODO fix")


def test_a_body_it_does_not_understand_is_bounded_by_its_size():
    assert prompt_tokens_bound({"input": "text"}, 1234) == 1234
    assert prompt_tokens_bound({"messages": "not a list"}, 99) == 99


def test_cursor_bodies_are_bounded_well_below_their_bytes():
    """Cursor's envelopes (ids, tool schemas, JSON quoting) are not prompt: the bound is tighter than bytes."""
    for path in sorted(CURSOR.glob("*.json")):
        body = json.loads(path.read_text())
        if "messages" not in body:
            continue
        size = len(orjson.dumps(body))
        bound = prompt_tokens_bound(body, size)
        assert 0 < bound <= size + PER_REQUEST + WITH_TOOLS, path.name


_text = st.text(max_size=200)
_part = st.one_of(
    st.fixed_dictionaries({"type": st.just("text"), "text": _text}),
    st.fixed_dictionaries({"type": st.just("image_url"), "image_url": st.fixed_dictionaries({"url": _text})}))
_message = st.fixed_dictionaries({
    "role": st.sampled_from(["system", "user", "assistant", "tool"]),
    "content": st.one_of(st.none(), _text, st.lists(_part, max_size=4))})


@settings(max_examples=300, deadline=None)
@given(st.lists(_message, max_size=8))
def test_never_below_the_text_a_model_reads(messages):
    """Every byte of text is counted (a token never spans less than one byte), plus framing per message."""
    body = {"model": "m", "messages": messages}
    text = 0
    images = 0
    for m in messages:
        content = m["content"]
        if isinstance(content, str):
            text += len(content.encode())
        elif isinstance(content, list):
            for part in content:
                if part["type"] == "text":
                    text += len(part["text"].encode())
                else:
                    images += 1
    assert _bound(body) >= text + PER_MESSAGE * len(messages) + PER_IMAGE * images
