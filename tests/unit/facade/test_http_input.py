"""What the facade reads from a request: one credential, a bounded JSON shape; and what it writes: CSV no spreadsheet
runs, errors without exception text."""

from __future__ import annotations

import csv
import io
import logging

import orjson
import pytest

from switchboard_common.errors import ServiceError
from switchboard_facade.http_input import (
    MAX_JSON_DEPTH,
    check_common_fields,
    credential_of,
    parse_json_object,
)
from switchboard_facade.routes.usage import csv_cell, csv_response
from switchboard_rules.request_fields import MAX_OUTPUT_TOKENS
from tests.unit.facade.test_fast_lane import StubGateway, call, make_app


def raw(*pairs: tuple[str, str]) -> list[tuple[bytes, bytes]]:
    return [(name.encode(), value.encode()) for name, value in pairs]


@pytest.mark.parametrize(("headers", "key"), [
    ((("authorization", "Bearer sk-a"),), "sk-a"),
    ((("x-api-key", "sk-a"),), "sk-a"),
    ((("api-key", " sk-a "),), "sk-a"),
    ((("authorization", "Bearer sk-a"), ("x-api-key", "sk-a")), "sk-a"),  # the same key twice is one key
    ((("authorization", "sk-a"),), "sk-a"),
    ((), ""),
])
def test_the_credential_of_a_request(headers: tuple[tuple[str, str], ...], key: str) -> None:
    assert credential_of(raw(*headers)) == key


@pytest.mark.parametrize("headers", [
    (("authorization", "Bearer sk-a"), ("authorization", "Bearer sk-b")),
    (("authorization", "Bearer sk-a"), ("authorization", "Bearer sk-a")),
    (("authorization", "Bearer sk-a"), ("x-api-key", "sk-b")),
    (("api-key", "sk-a"), ("x-api-key", "sk-b")),
])
def test_two_credentials_are_a_400_not_a_choice(headers: tuple[tuple[str, str], ...]) -> None:
    with pytest.raises(ServiceError) as refused:
        credential_of(raw(*headers))
    assert refused.value.error.code == "conflicting_credentials"
    assert refused.value.error.param == "authorization"


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 254, 600, 1023, 1100])
def test_json_nested_too_deep_is_a_400(depth: int) -> None:
    nested = b'{"a":' + b"[" * (depth - 1) + b"]" * (depth - 1) + b"}"
    with pytest.raises(ServiceError) as refused:
        parse_json_object(nested)
    assert refused.value.error.code == "json_too_deep"
    assert str(MAX_JSON_DEPTH) in refused.value.message


def test_json_at_the_depth_limit_and_brackets_in_strings_are_fine() -> None:
    at_limit = b'{"a":' + b"[" * (MAX_JSON_DEPTH - 1) + b"]" * (MAX_JSON_DEPTH - 1) + b"}"
    assert parse_json_object(at_limit)[0]["a"]
    code = orjson.dumps({"messages": [{"role": "user", "content": "[[[{{{" * 1000}]})
    assert parse_json_object(code)[0]["messages"]


@pytest.mark.parametrize("value", [0, -1, MAX_OUTPUT_TOKENS + 1, 2**63, 1.5, "100", True, [1]])
@pytest.mark.parametrize("name", ["max_tokens", "max_completion_tokens", "max_output_tokens"])
def test_output_bounds_outside_their_range_are_a_400_naming_the_field(name: str, value: object) -> None:
    with pytest.raises(ServiceError) as refused:
        check_common_fields({"model": "m", name: value})
    assert refused.value.error.param == name
    assert str(MAX_OUTPUT_TOKENS) in refused.value.message


def test_output_bounds_inside_their_range_and_null_pass() -> None:
    check_common_fields({"max_tokens": 1, "max_completion_tokens": MAX_OUTPUT_TOKENS, "max_output_tokens": None})


def test_a_nul_in_the_model_name_is_a_400() -> None:
    with pytest.raises(ServiceError) as refused:
        check_common_fields({"model": "gpt\x00-4o"})
    assert refused.value.error.param == "model"


@pytest.mark.parametrize("cell", ["=HYPERLINK(\"http://x\",\"y\")", "+1+1", "-2+3", "@SUM(A1)", "\tx", "\rx",
                                  "=1"])
def test_csv_cells_that_a_spreadsheet_would_run_are_neutralised(cell: str) -> None:
    assert csv_cell(cell) == "'" + cell
    response = csv_response([{"key_alias": cell, "spend": -1.5}], ["key_alias", "spend"], "x.csv", "req_1")
    row = next(csv.DictReader(io.StringIO(response.body.decode(), newline="")))
    assert row == {"key_alias": "'" + cell, "spend": "-1.5"}


@pytest.mark.parametrize("cell", ["-0.250000", "+3", "12", "plain", "a=b", "", None, -4, 2.5])
def test_numbers_and_plain_text_stay_as_they_are(cell: object) -> None:
    assert csv_cell(cell) == ("" if cell is None else cell)


async def test_a_bug_on_a_framework_route_is_a_500_in_the_dialect_without_its_text(
        caplog: pytest.LogCaptureFixture) -> None:
    app = make_app(StubGateway())  # the stub has no admin client nor list_models: a route using them fails
    with caplog.at_level(logging.ERROR):
        openai = await call(app, "/key/info", b"", {"authorization": "Bearer sk-good"}, method="GET")
        anthropic = await call(app, "/v1/messages/count_tokens", orjson.dumps(
            {"model": "m", "messages": [{"role": "user", "content": "hi"}]}), {"x-api-key": "sk-good"})
    assert openai.status == 500 and openai.json()["error"]["code"] == "internal_error"
    assert anthropic.status == 500 and anthropic.json()["error"]["type"] == "api_error"
    for answer in (openai, anthropic):
        request_id = answer.header("x-request-id")
        assert request_id and request_id in answer.body.decode()
        assert "StubGateway" not in answer.body.decode() and "attribute" not in answer.body.decode()
        assert any(getattr(r, "request_id", None) == request_id and r.exc_info for r in caplog.records)
    assert anthropic.header("request-id") == anthropic.header("x-request-id")
