"""A conversation's earlier turns are recognised by digest instead of scanned again, with the same result.

Cursor resends the whole conversation every turn. The upstream body, the vault, the counts and the
restored answer of every turn must be byte-identical to what a full scan of every text gives.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from switchboard_router.privacy import PiiPolicy, restore_completion, scan_request
from switchboard_router.privacy import scan as scan_module
from switchboard_router.privacy.scan import find_pii, scan_fully
from switchboard_router.privacy.scan_memo import MIN_CHARS, ScanMemo

from . import secret_samples as s

FILE = "\n".join(f"def handler_{i}(event):\n    return process(event, retries={i})" for i in range(40))


def turn(i: int) -> list[dict[str, Any]]:
    """The messages turn ``i`` adds: a user ask with an open file, the assistant's tool call, its result."""
    ask = (f"<open_file path='src/app_{i}.py'>\n{FILE}\nDB = 'postgres://app:Secr3t-{i}!@db/prod'\n</open_file>\n"
           f"Turn {i}: mail ops-{i}@acme-corp.com and call +1 (415) 555-26{i:02d}.")
    result = json.dumps({"stdout": FILE, "token": s.GITHUB_CLASSIC if i % 2 else s.OPENAI_KEY, "card":
                         "4111 1111 1111 1111" if i == 3 else ""})
    return [{"role": "user", "content": ask},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": f"call_{i}", "type": "function", "function": {"name": "run", "arguments": json.dumps(
                    {"cmd": f"grep -r ops-{i}@acme-corp.com ."})}}]},
            {"role": "tool", "tool_call_id": f"call_{i}", "content": result}]


def conversation(turns: int) -> dict[str, Any]:
    system = {"role": "system", "content": "You are a coding agent. <rules>" + FILE + "</rules>"}
    return {"model": "claude-sonnet-4", "stream": True,
            "messages": [system, *[m for i in range(turns) for m in turn(i)]]}


def answer(vault: dict[str, str]) -> dict[str, Any]:
    """A completion that quotes every placeholder it was sent."""
    return {"id": "chatcmpl-1", "object": "chat.completion", "choices": [
        {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": " ".join(vault)}}]}


def test_ten_turns_give_byte_identical_bodies_and_answers_and_skip_the_earlier_turns(
        monkeypatch: pytest.MonkeyPatch) -> None:
    remembered = ScanMemo(scan_fully)
    every_time = ScanMemo(scan_fully, min_chars=10**12)  # never remembers: a full scan of every text
    for turns in range(1, 11):
        body = conversation(turns)
        monkeypatch.setattr(scan_module, "MEMO", every_time)
        full = scan_request(body, PiiPolicy.SUBSTITUTE)
        monkeypatch.setattr(scan_module, "MEMO", remembered)
        misses = remembered.misses
        fast = scan_request(body, PiiPolicy.SUBSTITUTE)
        assert json.dumps(fast.body) == json.dumps(full.body), f"turn {turns}: the upstream body is the same"
        assert fast.vault == full.vault and fast.counts == full.counts
        assert json.dumps(restore_completion(answer(fast.vault), fast.vault)) == json.dumps(
            restore_completion(answer(full.vault), full.vault)), "the restored answer is the same"
        assert "ops-0@acme-corp.com" not in json.dumps(fast.body)
        if turns > 1:
            # Only the new turn's long texts (its ask and tool result) are scanned; the rest is recognised.
            assert remembered.misses - misses <= 2, f"turn {turns} scanned {remembered.misses - misses} texts"
    assert remembered.hits > 50


def test_short_texts_are_always_scanned_and_the_memo_stays_bounded() -> None:
    memo = ScanMemo(scan_fully, max_entries=3)
    short = "mail me at jane@acme-corp.com"
    assert len(short) < MIN_CHARS
    assert memo.find(short) == scan_fully(short) and memo.hits == memo.misses == 0
    texts = [f"{FILE}\nkey {i}: {s.OPENAI_KEY}" for i in range(5)]
    for text in texts:
        assert memo.find(text) == scan_fully(text)
    assert memo.misses == 5 and len(memo._found) == 3
    assert memo.find(texts[-1]) == scan_fully(texts[-1]) and memo.hits == 1
    assert memo.find(texts[0]) == scan_fully(texts[0]) and memo.misses == 6, "the oldest was let go"


@settings(max_examples=60, deadline=None)
@given(st.text(min_size=0, max_size=400), st.sampled_from(["jane.doe@acme-corp.com", s.OPENAI_KEY, s.JWT,
                                                           "4111 1111 1111 1111", "+1 (415) 555-2671"]))
def test_a_remembered_scan_equals_a_full_scan(noise: str, planted: str) -> None:
    text = FILE[: MIN_CHARS] + noise + " " + planted + " " + noise
    assert find_pii(text) == scan_fully(text)
    assert find_pii(text) == scan_fully(text), "and again, from the memo"
