"""Credentials never pass from what a provider says back to a client: the rules, on the texts providers send."""

from __future__ import annotations

import pytest

from switchboard_common.errors import Kind
from switchboard_router.deployment import Deployment
from switchboard_router.outcomes import service_error_from_upstream
from switchboard_router.providers.base import UpstreamError
from switchboard_router.redaction import MARK, deployment_secrets, redact

AWS = Deployment(id="claude/0", public_model="claude", provider="bedrock", model="m", api_base="http://bedrock.test",
                 extra={"aws_region": "eu-west-1", "aws_access_key_id": "AKIAFAKEBEDROCKTEST1",
                        "aws_secret_access_key": "fake/secret/for+bedrock/tests/0123456789",
                        "aws_session_token": "session-token-of-the-operator"})
OPENAI = Deployment(id="gpt/0", public_model="gpt", provider="openai", model="gpt",
                    api_base="http://x.test/v1?key=q1w2e3r4t5", api_key="operator-credential-not-shaped",
                    extra={"headers": {"OpenAI-Organization": "org-4f2a9c8d"}})


def test_every_credential_of_a_deployment_is_known_in_the_forms_an_echo_shows_it() -> None:
    secrets = deployment_secrets(AWS)
    assert {"AKIAFAKEBEDROCKTEST1", "session-token-of-the-operator", "fake/secret/for+bedrock/tests/0123456789",
            "fake%2Fsecret%2Ffor%2Bbedrock%2Ftests%2F0123456789",
            "fake\\/secret\\/for+bedrock\\/tests\\/0123456789"} <= set(secrets)
    assert "eu-west-1" not in secrets, "a region is no secret"
    assert {"operator-credential-not-shaped", "org-4f2a9c8d", "q1w2e3r4t5"} <= set(deployment_secrets(OPENAI))


@pytest.mark.parametrize("echo", [
    'Incorrect API key: operator-credential-not-shaped',
    '{"authorization": "Bearer operator-credential-not-shaped", "host": "x.test"}',
    "GET /v1/chat/completions?key=q1w2e3r4t5 HTTP/1.1",
    "Organization org-4f2a9c8d not found",
])
def test_the_deployments_credentials_are_removed_wherever_they_stand(echo: str) -> None:
    out = redact(echo, deployment_secrets(OPENAI))
    assert MARK in out
    for secret in deployment_secrets(OPENAI):
        assert secret not in out


def test_a_sigv4_authorization_loses_key_id_signature_and_session_token() -> None:
    echo = ('{"authorization": "AWS4-HMAC-SHA256 Credential=AKIAFAKEBEDROCKTEST1/20250101/eu-west-1/bedrock/'
            'aws4_request, SignedHeaders=host;x-amz-date, Signature=' + "9f" * 32 + '", '
            '"x-amz-security-token": "session-token-of-the-operator", "x-amz-date": "20250101T000000Z"}')
    out = redact(echo, deployment_secrets(AWS))
    assert "AKIAFAKEBEDROCKTEST1" not in out and "9f9f9f" not in out and "session-token" not in out
    assert '"x-amz-date": "20250101T000000Z"' in out, "what is no credential stays readable"


def test_credentials_of_others_are_removed_by_their_place_or_shape() -> None:
    """Values the gateway did not send (a proxy's, another tenant's) still go: by header, parameter or shape."""
    texts = {
        "Authorization: Basic dXNlcjpwYXNzd29yZA==\r\nHost: proxy": "dXNlcjpwYXNz",
        "{'x-api-key': 'someone-elses'}": "someone-elses",
        '"x-goog-api-key":"AIzaSyA-1234567890abcdefghijklmnopqrstu"': "AIzaSy",
        "url https://gen.test/v1/models?alt=sse&api_key=k3y-v4lue#frag": "k3y-v4lue",
        "leaked sk-proj-abcdefghijklmnopqrstuvwxyz0123 in a log": "sk-proj-abc",
        "token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.c2lnbmF0dXJl here": "eyJhbGci",
        "postgres://app:hunter2hunter2@db.internal:5432/x": "hunter2hunter2",
        "a token in the header: Bearer abcdef0123456789": "abcdef0123456789",
    }
    for text, secret in texts.items():
        out = redact(text)
        assert secret not in out and MARK in out, out


def test_prose_about_keys_is_left_alone() -> None:
    for text in ("This is a basic error about the bearer token", "max_tokens=100 is above the limit",
                 "Incorrect API key provided: sk-proj-****abcd. You can find your API key at "
                 "https://platform.openai.com/account/api-keys.", ""):
        assert redact(text) == text


def test_a_credential_cut_short_at_the_end_of_a_text_is_removed() -> None:
    text = 'Provider answered HTTP 400: {"authorization": "Bearer operator-creden'
    out = redact(text, deployment_secrets(OPENAI))
    assert out.endswith(MARK) and "operator-cred" not in out
    assert redact("no echo here", deployment_secrets(OPENAI)) == "no echo here"


def test_a_short_configured_value_is_not_searched_for_as_it_is() -> None:
    tiny = Deployment(id="o/0", public_model="o", provider="ollama", model="m", api_base="", api_key="x")
    assert deployment_secrets(tiny) == []
    assert redact("the text stays exactly as it was", deployment_secrets(tiny)) == "the text stays exactly as it was"
    assert MARK in redact('{"authorization": "Bearer x"}', deployment_secrets(tiny))


def test_the_error_a_client_gets_carries_no_credential_in_message_or_code() -> None:
    upstream = UpstreamError(401, "invalid key operator-credential-not-shaped", type="auth",
                             code="Bearer operator-credential-not-shaped")
    error = service_error_from_upstream(upstream, OPENAI)
    assert error.kind == Kind.ERROR_KIND_UPSTREAM and error.error.http_status == 401
    assert "operator-credential" not in error.message and "operator-credential" not in error.error.code
    assert error.message == f"invalid key {MARK}"
