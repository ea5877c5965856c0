"""Substituting a prompt and restoring the result gives the prompt back, for any mix of values."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from switchboard_router.privacy import PiiPolicy, restore_json_text, restore_text, scan_request

from . import secret_samples as s

_VALUES = [
    "jane.doe@acme-corp.com", "bob@corp.io", "+44 20 7946 0958", "(415) 555-2671", "4111 1111 1111 1111",
    "DE89 3704 0044 0532 0130 00", "536-22-1234", "130 692 544", "203.0.113.7", "2001:db8::8a2e:370:7334",
    s.AWS_ACCESS_KEY_ID, s.GITHUB_CLASSIC, s.OPENAI_KEY, s.JWT, s.PRIVATE_KEY, "postgres://app:s3cret@db/x",
]  # fmt: skip
_NOISE = [
    " ",
    "\n",
    "<file>",
    "</file>",
    "[[",
    "]]",
    "[[EMAIL_1]]",
    "[[SECRET_2]]",
    "[[CARD]]",
    'x = "',
    '"',
    "\\",
    "é",
]
_TEXTS = st.lists(st.sampled_from(_VALUES + _NOISE), max_size=20).map("".join)


@settings(max_examples=300, deadline=None)
@given(_TEXTS, _TEXTS)
def test_substitute_then_restore_is_identity(user_text: str, tool_text: str) -> None:
    arguments = json.dumps({"query": tool_text, "list": [user_text]})
    body = {
        "messages": [
            {"role": "user", "content": user_text},
            {"role": "assistant",
             "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": arguments}}]},
        ]
    }  # fmt: skip
    result = scan_request(body, PiiPolicy.SUBSTITUTE)
    new_user = result.body["messages"][0]["content"]
    new_arguments = result.body["messages"][1]["tool_calls"][0]["function"]["arguments"]

    assert restore_text(new_user, result.vault) == user_text
    assert json.loads(restore_json_text(new_arguments, result.vault)) == json.loads(arguments)

    # Every value found anywhere is gone everywhere, even where it is glued to other text.
    serialized = json.dumps(result.body)
    for original in result.vault.values():
        assert original not in serialized and json.dumps(original)[1:-1] not in serialized
    for token in result.vault:
        assert token not in user_text and token not in tool_text  # never a token the user wrote
