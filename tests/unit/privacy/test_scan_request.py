from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from switchboard_router.privacy import PiiPolicy, restore_completion, scan_request

from . import secret_samples as s

EMAIL = "jane.doe@acme-corp.com"
CARD = "4111 1111 1111 1111"
PHONE = "+1 (415) 555-2671"
URL_PASSWORD = "Pa$$w0rd!&;x"  # sub-delimiters allowed unencoded in a URL's userinfo


def _request() -> dict[str, Any]:
    return {
        "model": "gpt-4o",
        "stream": True,
        "messages": [
            {"role": "system", "content": "You are a coding assistant. <rules>no secrets</rules>"},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": f"Email {EMAIL} about card {CARD}; call {PHONE}."},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
                    {"type": "text", "text": f"<file path='config.py'>\nKEY = '{s.OPENAI_KEY}'\n</file>"},
                ],
            },
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {
                            "name": "send_mail",
                            "arguments": json.dumps({"to": [EMAIL], "body": f"token {s.GITHUB_CLASSIC}"}),
                        },
                    }
                ],
            },
            {
                "role": "tool",
                "tool_call_id": "call_1",
                "content": json.dumps(
                    {"status": "sent", "private_key": s.PRIVATE_KEY, "dsn": f"postgres://u:{URL_PASSWORD}@db/app"}
                ),
            },
            {"role": "user", "content": f"Also {EMAIL} again, and the JWT {s.JWT}"},
        ],
    }


def _originals() -> list[str]:
    return [EMAIL, CARD, PHONE, s.OPENAI_KEY, s.GITHUB_CLASSIC, s.PRIVATE_KEY, s.JWT, URL_PASSWORD]


def test_substitute_removes_every_original_and_keeps_input_intact() -> None:
    body = _request()
    snapshot = copy.deepcopy(body)
    result = scan_request(body, PiiPolicy.SUBSTITUTE)
    assert body == snapshot
    serialized = json.dumps(result.body)
    raw = json.dumps(result.body, ensure_ascii=False)
    for original in _originals():
        assert original not in serialized and original not in raw
        assert json.dumps(original)[1:-1] not in serialized  # nor in JSON-escaped form
        assert original in result.vault.values()
    assert not result.blocked
    assert result.counts == {"email": 1, "phone": 1, "card": 1, "secret": 5}
    assert result.header_value() == "email=1,phone=1,card=1,secret=5"


def test_substitute_uses_stable_numbered_placeholders() -> None:
    result = scan_request(_request(), "substitute")
    user_parts = result.body["messages"][1]["content"]
    assert user_parts[0]["text"] == "Email [[EMAIL_1]] about card [[CARD_1]]; call [[PHONE_1]]."
    assert user_parts[1] == _request()["messages"][1]["content"][1]  # the image part is untouched
    assert result.body["messages"][4]["content"].startswith("Also [[EMAIL_1]] again")
    assert result.vault["[[EMAIL_1]]"] == EMAIL
    assert result.body["messages"][0] == _request()["messages"][0]


def test_tool_arguments_and_tool_results_stay_valid_json() -> None:
    result = scan_request(_request(), PiiPolicy.SUBSTITUTE)
    arguments = json.loads(result.body["messages"][2]["tool_calls"][0]["function"]["arguments"])
    assert arguments["to"] == ["[[EMAIL_1]]"]
    assert arguments["body"].startswith("token [[SECRET_")
    tool_result = json.loads(result.body["messages"][3]["content"])
    assert tool_result["status"] == "sent"
    assert tool_result["private_key"].startswith("[[SECRET_")
    assert tool_result["dsn"].startswith("postgres://u:[[SECRET_") and tool_result["dsn"].endswith("@db/app")


def test_roundtrip_restores_tool_arguments_with_json_escaping() -> None:
    result = scan_request(_request(), PiiPolicy.SUBSTITUTE)
    dsn_token = next(token for token, value in result.vault.items() if value == URL_PASSWORD)
    key_token = next(token for token, value in result.vault.items() if value == s.PRIVATE_KEY)
    completion = {
        "id": "chatcmpl-1",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "I will write to [[EMAIL_1]].",
                    "tool_calls": [
                        {
                            "id": "call_2",
                            "type": "function",
                            "function": {
                                "name": "save",
                                "arguments": json.dumps({"dsn": f"postgres://u:{dsn_token}@db/app", "key": key_token}),
                            },
                        }
                    ],
                },
                "finish_reason": "tool_calls",
            }
        ],
    }
    snapshot = copy.deepcopy(completion)
    restored = restore_completion(completion, result.vault)
    assert completion == snapshot
    message = restored["choices"][0]["message"]
    assert message["content"] == f"I will write to {EMAIL}."
    arguments = json.loads(message["tool_calls"][0]["function"]["arguments"])
    assert arguments == {"dsn": f"postgres://u:{URL_PASSWORD}@db/app", "key": s.PRIVATE_KEY}


def test_existing_placeholder_text_in_prompt_is_never_restored_to_a_value() -> None:
    body = {
        "messages": [
            {"role": "user", "content": "Template uses [[EMAIL_1]] and [[EMAIL_2]] literally."},
            {"role": "user", "content": f"My address is {EMAIL}."},
        ]
    }
    result = scan_request(body, PiiPolicy.SUBSTITUTE)
    assert result.vault == {"[[EMAIL_3]]": EMAIL}
    assert result.body["messages"][0]["content"] == body["messages"][0]["content"]
    answer = "Your template has [[EMAIL_1]], [[EMAIL_2]]; you are [[EMAIL_3]]; [[CARD_9]] is unknown."
    restored = restore_completion({"choices": [{"message": {"content": answer}}]}, result.vault)
    assert restored["choices"][0]["message"]["content"] == (
        f"Your template has [[EMAIL_1]], [[EMAIL_2]]; you are {EMAIL}; [[CARD_9]] is unknown."
    )


def test_mask_is_irreversible() -> None:
    result = scan_request(_request(), PiiPolicy.MASK)
    text = result.body["messages"][1]["content"][0]["text"]
    assert text == "Email [[EMAIL]] about card [[CARD]]; call [[PHONE]]."
    assert result.vault == {}
    assert result.counts["email"] == 1
    serialized = json.dumps(result.body)
    for original in _originals():
        assert original not in serialized


def test_block_reports_kinds_and_counts_never_values() -> None:
    body = _request()
    result = scan_request(body, "block")
    assert result.blocked
    assert result.body is body
    assert result.counts == {"email": 1, "phone": 1, "card": 1, "secret": 5}
    message = result.block_message()
    assert "1 email" in message and "5 secret" in message
    for original in _originals():
        assert original not in message


def test_block_passes_clean_request() -> None:
    body = {"messages": [{"role": "user", "content": "def add(a, b): return a + b  # v1.2.3"}]}
    result = scan_request(body, PiiPolicy.BLOCK)
    assert not result.blocked and result.counts == {} and result.header_value() == ""


def test_off_and_clean_requests_are_returned_as_is() -> None:
    body = _request()
    assert scan_request(body, PiiPolicy.OFF).body is body
    clean = {"messages": [{"role": "user", "content": "hello"}]}
    result = scan_request(clean, PiiPolicy.SUBSTITUTE)
    assert result.body is clean and result.vault == {} and result.counts == {}


def test_policy_parse() -> None:
    assert PiiPolicy.parse("") is PiiPolicy.OFF
    assert PiiPolicy.parse(None) is PiiPolicy.OFF
    assert PiiPolicy.parse(" Substitute ") is PiiPolicy.SUBSTITUTE
    with pytest.raises(ValueError, match="use one of: off, substitute, mask, block"):
        PiiPolicy.parse("redact")


def test_non_json_tool_result_and_arguments_are_scanned_as_text() -> None:
    body = {
        "messages": [
            {"role": "tool", "tool_call_id": "c", "content": f"grep output: config.py:3: owner={EMAIL}"},
            {
                "role": "assistant",
                "tool_calls": [
                    {"id": "c", "type": "function", "function": {"name": "f", "arguments": f"{{bad json {EMAIL}"}}
                ],
            },
        ]
    }
    result = scan_request(body, PiiPolicy.SUBSTITUTE)
    assert result.body["messages"][0]["content"] == "grep output: config.py:3: owner=[[EMAIL_1]]"
    assert result.body["messages"][1]["tool_calls"][0]["function"]["arguments"] == "{bad json [[EMAIL_1]]"


def test_json_escaped_values_in_tool_results_are_found() -> None:
    content = '{"owner": "jane\\u002edoe\\u0040acme-corp.com"}'  # the address written with JSON escapes
    result = scan_request({"messages": [{"role": "tool", "tool_call_id": "c", "content": content}]}, "substitute")
    assert json.loads(result.body["messages"][0]["content"]) == {"owner": "[[EMAIL_1]]"}
    assert result.vault == {"[[EMAIL_1]]": EMAIL}


def test_value_found_once_is_replaced_everywhere() -> None:
    body = {
        "messages": [
            {"role": "user", "content": "DATABASE_URL=postgres://app:Xy7-s3cret@db.internal/app"},
            {"role": "user", "content": "and in .env: PGPASSWORD=Xy7-s3cret; owner jane.doe@acme-corp.com42"},
            {"role": "user", "content": "contact jane.doe@acme-corp.com"},
        ]
    }
    result = scan_request(body, PiiPolicy.SUBSTITUTE)
    texts = [message["content"] for message in result.body["messages"]]
    assert texts[1] == "and in .env: PGPASSWORD=[[SECRET_1]]; owner [[EMAIL_1]]42"
    assert result.counts == {"email": 1, "secret": 1}


def test_dictionary_word_password_is_not_propagated() -> None:
    body = {"messages": [{"role": "user", "content": "postgres://postgres:postgres@localhost/db uses postgres 16"}]}
    result = scan_request(body, PiiPolicy.SUBSTITUTE)
    assert result.body["messages"][0]["content"] == "postgres://postgres:[[SECRET_1]]@localhost/db uses postgres 16"


def test_placeholder_text_in_tool_definitions_is_reserved_too() -> None:
    body = {
        "tools": [{"type": "function", "function": {"name": "f", "description": "Reply with [[EMAIL_1]] verbatim."}}],
        "messages": [{"role": "user", "content": f"I am {EMAIL}"}],
    }
    result = scan_request(body, PiiPolicy.SUBSTITUTE)
    assert result.vault == {"[[EMAIL_2]]": EMAIL}
    assert result.body["tools"] == body["tools"]
