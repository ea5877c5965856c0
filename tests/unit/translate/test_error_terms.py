"""Errors about the chat body, told in the fields of the Responses API and of Anthropic Messages."""

from __future__ import annotations

from typing import Any

import pytest

from switchboard_translate.anthropic import ERROR_TERMS as ANTHROPIC
from switchboard_translate.anthropic import TranslationError, chat_request_to_anthropic
from switchboard_translate.chat_params import param_support
from switchboard_translate.error_terms import ErrorTerms
from switchboard_translate.responses_api import normalize_responses_request
from switchboard_translate.responses_request import error_terms

RESPONSES = error_terms({})


def claude_refusal(body: dict[str, Any]) -> TranslationError:
    with pytest.raises(TranslationError) as refused:
        chat_request_to_anthropic({"messages": [{"role": "user", "content": "hi"}], **body}, model="claude-x")
    return refused.value


@pytest.mark.parametrize(("chat", "responses", "anthropic"), [
    ("response_format", "text.format", "output_config.format"),
    ("max_tokens", "max_output_tokens", "max_tokens"),
    ("max_completion_tokens", "max_output_tokens", "max_tokens"),
    ("logprobs", "top_logprobs", "logprobs"),
    ("reasoning_effort", "reasoning.effort", "thinking.budget_tokens"),
    ("stop", "stop", "stop_sequences"),
    ("messages[3].content", "input", "messages[3].content"),
    ("tools[2].function.name", "tools[2].function.name", "tools[2].function.name"),
    ("tool_choice", "tool_choice", "tool_choice"),
    ("", "", ""),
])
def test_params_name_the_dialects_field(chat: str, responses: str, anthropic: str) -> None:
    assert RESPONSES.param(chat) == responses
    assert ANTHROPIC.param(chat) == anthropic


def test_a_client_that_asked_with_include_alone_is_told_include() -> None:
    include = {"include": ["message.output_text.logprobs"]}
    assert error_terms(include).param("logprobs") == "include"
    assert error_terms({**include, "top_logprobs": 2}).param("logprobs") == "top_logprobs"
    assert error_terms({"top_logprobs": 2}).param("logprobs") == "top_logprobs"


def test_claudes_json_object_refusal_in_responses_and_anthropic_terms() -> None:
    refused = claude_refusal({"response_format": {"type": "json_object"}})
    assert refused.param == "response_format"
    told = RESPONSES.message(str(refused))
    assert told == ('Claude models cannot be held to text.format {"type": "json_object"} (any JSON object), only to '
                    'a JSON schema: send text.format {"type": "json_schema", "name": "answer", "schema": {...}} with '
                    "the schema of the object you want, or leave text.format out and ask for JSON in the prompt")
    anthropic = ANTHROPIC.message(str(refused))
    assert 'send output_config.format {"type": "json_schema", "schema": {...}}' in anthropic
    assert "response_format" not in anthropic


def test_the_no_log_probabilities_advice_in_responses_terms() -> None:
    refused = claude_refusal({"logprobs": True})
    told = RESPONSES.message(str(refused))
    assert told == ('Claude models return no log probabilities: leave out top_logprobs and the include entry '
                    '"message.output_text.logprobs", or use a model whose provider has them (OpenAI, Gemini)')


def test_field_names_are_replaced_only_as_whole_words() -> None:
    message = ("send max_tokens of at most 500 (see x-switchboard-budget-max-tokens); 'max_completion_tokens' is "
               "too large; my_max_tokens and max_tokens_x stay; the messages and logprobs words stay")
    assert RESPONSES.message(message) == (
        "send max_output_tokens of at most 500 (see x-switchboard-budget-max-tokens); 'max_output_tokens' is too "
        "large; my_max_tokens and max_tokens_x stay; the messages and logprobs words stay")
    assert ANTHROPIC.message(message) == message.replace("'max_completion_tokens'", "'max_tokens'")


def test_terms_without_fields_change_nothing() -> None:
    terms = ErrorTerms({})
    assert terms.param("response_format") == "response_format"
    assert terms.message("leave response_format out") == "leave response_format out"


@pytest.mark.parametrize(("body", "logprobs", "top"), [
    ({"top_logprobs": 3}, True, 3),
    ({"include": ["message.output_text.logprobs"]}, True, None),
    ({"include": ["message.output_text.logprobs"], "top_logprobs": 0}, True, 0),
    ({"include": ["reasoning.encrypted_content"], "top_logprobs": 0}, None, None),
    ({"top_logprobs": 0}, None, None),
    ({}, None, None),
])
def test_log_probabilities_are_asked_for_as_openai_documents(body: dict[str, Any], logprobs: bool | None,
                                                             top: int | None) -> None:
    chat = normalize_responses_request({"model": "m", "input": "hi", **body}).body
    assert chat.get("logprobs") is logprobs and chat.get("top_logprobs") == top


def test_a_refused_request_to_reason_is_told_to_leave_out_the_dialects_own_field() -> None:
    """Chat asks for reasoning by two fields (reasoning_effort, thinking); Responses by ``reasoning``, Anthropic
    Messages by ``thinking``: the advice names what each client sent."""
    refused = param_support("anthropic", "claude-3-5-sonnet-20241022").refusal(
        {"messages": [], "reasoning_effort": "high"})
    assert refused is not None and "leave out reasoning_effort and thinking" in refused.message
    assert "leave out reasoning, or use a model that thinks" in RESPONSES.message(refused.message)
    assert "leave out thinking, or use a model that thinks" in ANTHROPIC.message(refused.message)
