"""Catalog YAML: env expansion, deployments without credentials, and errors that say where."""

from __future__ import annotations

from pathlib import Path

import pytest

from switchboard_router.catalog.config import CatalogError, load_catalog, parse_catalog
from switchboard_rules.catalog import expand


def test_env_expansion_with_defaults_and_missing_vars() -> None:
    missing: set[str] = set()
    out = expand({"a": "${X}", "b": ["${Y:-dflt}", "k=${Z}"]}, missing, {"X": "1"})
    assert out == {"a": "1", "b": ["dflt", "k="]} and missing == {"Z"}


def test_deployments_whose_keys_are_absent_are_listed_as_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOPE_KEY", raising=False)
    monkeypatch.setenv("YES_KEY", "sk-1")
    catalog = parse_catalog({"models": [
        {"name": "a", "deployments": [{"provider": "openai", "model": "m", "api_key": "${NOPE_KEY}"}]},
        {"name": "b", "deployments": [{"provider": "openai", "model": "m", "api_key": "${YES_KEY}"}]},
    ]})
    assert catalog.live_models() == ["b"]
    assert catalog.models["a"].unavailable[0][1] == "environment variable(s) NOPE_KEY not set"
    assert catalog.models["b"].deployments[0].api_key == "sk-1"


@pytest.mark.parametrize(("raw", "where"), [
    ({"models": [{"name": "a"}]}, "models[0].deployments"),
    ({"models": [{"name": "a", "deployments": [{"provider": "nope", "model": "m"}]}]},
     "models[0].deployments[0].provider"),
    ({"models": [{"name": "a", "deployments": [{"provider": "openai"}]}]}, "models[0].deployments[0].model"),
    ({"models": [{"name": "a", "strategy": "fastest", "deployments": [{"provider": "openai", "model": "m"}]}]},
     "models[0].strategy"),
    ({"models": [{"name": "a", "fallbacks": ["zz"], "deployments": [{"provider": "openai", "model": "m"}]}]},
     "models[0].fallbacks: 'zz'"),
    ({"models": [{"name": "a", "deployments": [{"provider": "openai", "model": "m", "privacy_tier": "x"}]}]},
     "privacy_tier"),
    ({"models": [{"name": "a", "deployments": [{"provider": "openai", "model": "m", "timeouts": {"total": -1}}]}]},
     "timeouts.total"),
    ({"models": [{"name": "a", "deployments": [{"provider": "openai", "model": "m"}]},
                 {"name": "a", "deployments": [{"provider": "openai", "model": "m"}]}]}, "defined twice"),
    ({"models": [], "router_settings": {"request_deadline_seconds": -1}}, "router_settings.request_deadline_seconds"),
])
def test_invalid_configs_name_the_place(raw: object, where: str) -> None:
    with pytest.raises(CatalogError) as info:
        parse_catalog(raw)
    assert where in str(info.value)


def test_the_request_deadline_defaults_to_two_minutes_and_zero_turns_it_off() -> None:
    assert parse_catalog({"models": []}).policy.request_deadline_seconds == 120
    assert parse_catalog({"models": [], "router_settings": {"request_deadline_seconds": 0}}).policy \
        .request_deadline_seconds == 0
    assert parse_catalog({"models": [], "router_settings": {"request_deadline_seconds": "45"}}).policy \
        .request_deadline_seconds == 45


def test_prompt_cache_setting_is_checked_and_a_bare_off_is_read_as_off() -> None:
    def catalog(value: object) -> object:
        return parse_catalog({"models": [{"name": "a", "deployments": [
            {"provider": "anthropic", "model": "claude-sonnet-4-5", "prompt_cache": value}]}]})

    assert catalog(False).models["a"].deployments[0].extra["prompt_cache"] == "off"  # type: ignore[attr-defined]
    assert catalog("auto").models["a"].deployments[0].extra["prompt_cache"] == "auto"  # type: ignore[attr-defined]
    with pytest.raises(CatalogError, match=r"models\[0\]\.deployments\[0\]\.prompt_cache: 'always'"):
        catalog("always")


def test_a_stored_deployment_the_router_cannot_serve_is_left_out_alone(tmp_path: Path) -> None:
    config = tmp_path / "switchboard.yaml"
    config.write_text("models:\n  - name: a\n    deployments:\n      - {provider: openai, model: m, api_key: k}\n")
    catalog = load_catalog(config, [("b", {"id": "bad", "provider": "openai", "model": "m", "weight": -1}),
                                    ("b", {"id": "good", "provider": "openai", "model": "m", "api_key": "k"})])
    assert [d.id for d in catalog.models["b"].deployments] == ["good"]
    assert catalog.rejected[0][0] == "bad" and "weight" in catalog.rejected[0][1]
    config.write_text("models: [")
    with pytest.raises(CatalogError):  # the file's own errors still stop the load
        load_catalog(config, [("b", {"id": "good", "provider": "openai", "model": "m"})])
