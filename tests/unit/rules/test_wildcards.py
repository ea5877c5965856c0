"""Wildcard model names: the most specific entry serves a name, and its marks fill the deployment's model."""

from __future__ import annotations

from switchboard_rules.catalog.wildcards import fill, match, resolve

ENTRIES = ["*", "openai/*", "openai/gpt-4o-*", "gpt-4o", "fo::*:static::*"]


def test_an_exact_name_wins_then_the_most_specific_pattern() -> None:
    assert resolve(ENTRIES, "gpt-4o") == ("gpt-4o", ())
    assert resolve(ENTRIES, "openai/gpt-4o-mini") == ("openai/gpt-4o-*", ("mini",))
    assert resolve(ENTRIES, "openai/o3") == ("openai/*", ("o3",))
    assert resolve(ENTRIES, "claude-sonnet-4-5") == ("*", ("claude-sonnet-4-5",))
    assert resolve(["openai/*"], "anthropic/claude") is None


def test_marks_fill_the_deployments_model_in_order() -> None:
    captures = match("fo::*:static::*", "fo::hi::static::there")
    assert captures == ("hi:", "there")
    assert fill("fo::*:static::*", captures) == "fo::hi::static::there"
    assert fill("openai/fo::*:static::*", ("a", "b")) == "openai/fo::a:static::b"
    assert fill("*", ("gpt-4o",)) == "gpt-4o"
    assert fill("fixed-model", ("ignored",)) == "fixed-model"
    assert match("openai/*", "openai/") is None  # a mark matches at least one character
