"""What the models.dev data says of a model, found under the ids each provider gives it."""

from __future__ import annotations

import pytest

from switchboard_rules.model_limits import limits_for, reasons


@pytest.mark.parametrize(("provider", "model", "thinks"), [
    ("anthropic", "claude-3-5-sonnet-20241022", False),
    ("anthropic", "claude-3-5-sonnet-latest", False),
    ("vertex", "claude-3-5-sonnet-v2@20241022", False),  # Vertex AI's version before the date
    ("bedrock", "us.anthropic.claude-3-haiku-20240307-v1:0", False),
    ("anthropic", "claude-3-7-sonnet-20250219", True),
    ("bedrock", "us.anthropic.claude-sonnet-4-5-20250929-v1:0", True),
    ("gemini", "gemini-2.0-flash", False),
    ("vertex", "gemini-2.0-flash-001", False),  # Google's stable-version suffix
    ("vertex", "publishers/google/models/gemini-2.0-flash-lite-001", False),
    ("gemini", "gemini-2.5-flash", True),
    ("gemini", "gemini-2.0-flash-thinking-exp", None),  # not in the data
    ("anthropic", "good", None),
    # Retired before thinking existed, and no longer in the data: they cannot be asked to think.
    ("gemini", "gemini-1.5-pro", False),
    ("vertex", "gemini-1.5-flash-002", False),
    ("gemini", "gemini-pro", False),
    ("vertex", "publishers/google/models/gemini-1.0-pro-vision", False),
    ("anthropic", "claude-2.1", False),
    ("bedrock", "anthropic.claude-instant-v1", False),
    ("bedrock", "anthropic.claude-v2:1", False),  # Bedrock's own name for Claude 2
    ("gemini", "gemini-professional-edition", None),  # a name that only starts like one
])  # fmt: skip
def test_whether_a_model_reasons_is_known_under_every_providers_id(provider: str, model: str,
                                                                  thinks: bool | None) -> None:
    assert reasons(provider, model) is thinks


def test_a_versioned_id_has_its_models_limits() -> None:
    assert limits_for("vertex", "gemini-2.0-flash-001") == limits_for("gemini", "gemini-2.0-flash")
    assert limits_for("vertex", "gemini-2.0-flash-001").max_output_tokens > 0
    assert limits_for("vertex", "claude-3-5-sonnet-v2@20241022") == limits_for("anthropic",
                                                                               "claude-3-5-sonnet-20241022")
