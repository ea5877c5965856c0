"""A ServiceError about the chat body, told in a dialect's terms: only its param and message change."""

from __future__ import annotations

from switchboard_common.errors import Kind, ServiceError
from switchboard_facade.errors import in_terms, openai_error_body
from switchboard_translate.responses_request import error_terms


def test_only_the_param_and_the_message_are_told_in_the_dialects_terms() -> None:
    err = ServiceError(Kind.ERROR_KIND_BUDGET_EXCEEDED, "send max_tokens of at most 500 to fit what is left",
                       code="budget_exceeded", param="max_tokens", http_status=429, retry_after_seconds=30,
                       headers={"x-switchboard-budget-max-tokens": "500"})
    err.detail = "for the log"
    told = in_terms(err, error_terms({}))
    assert told.message == "send max_output_tokens of at most 500 to fit what is left"
    assert told.error.param == "max_output_tokens"
    assert (told.error.code, told.http_status, told.error.retry_after_seconds, dict(told.error.headers),
            told.detail) == ("budget_exceeded", 429, 30, {"x-switchboard-budget-max-tokens": "500"}, "for the log")
    assert err.error.param == "max_tokens", "the error told is a copy"
    assert openai_error_body(told)["error"]["param"] == "max_output_tokens"


def test_an_error_in_no_chat_terms_is_itself() -> None:
    err = ServiceError(Kind.ERROR_KIND_RATE_LIMITED, "Too many requests", code="rpm_limit_exceeded")
    assert in_terms(err, error_terms({})) is err
    assert in_terms(err, None) is err
