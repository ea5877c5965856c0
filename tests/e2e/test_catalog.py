"""The public catalog (no key) and the pricing extension of /v1/models."""

from __future__ import annotations

import httpx
from genai_prices import data_snapshot

from tests.e2e.test_budget import bgw  # noqa: F401  (the module's gateway, shared)
from tests.harness import Gateway


def test_public_catalog_needs_no_key_and_shows_prices_limits_and_privacy(bgw: Gateway) -> None:  # noqa: F811
    response = httpx.get(f"{bgw.base_url}/api/billing/models")
    assert response.status_code == 200, response.text
    models = {m["id"]: m for m in response.json()["data"]}
    good = models["fake-good"]
    assert good["provider"] == "openai" and good["jurisdiction"] == "us" and good["privacy_tier"] == "standard"
    assert good["input_cost_per_million"] == "2.5" and good["output_cost_per_million"] == "10"
    assert good["priced"] is True and good["deployments"][0]["price_source"] == "config"
    catalog = models["priced-by-catalog"]
    entry = data_snapshot.get_snapshot().find_provider_model("gpt-4o-mini", None, "openai", None)[1]
    assert catalog["context_window"] == entry.context_window
    assert catalog["input_cost_per_million"] == "0.15" and catalog["output_cost_per_million"] == "0.6"
    assert catalog["privacy_tier"] == "zero_retention" and catalog["jurisdiction"] == "ca"
    assert models["free-allowed"]["priced"] is False and models["free-allowed"]["input_cost_per_million"] is None
    assert "free-refused" not in models, "a model that cannot be served is not advertised"
    assert "api_key" not in response.text and "sk-fake" not in response.text


def test_v1_models_carries_the_same_metadata_for_the_models_of_the_key(bgw: Gateway) -> None:  # noqa: F811
    key = bgw.create_key(models=["fake-good", "priced-by-catalog"])
    response = httpx.get(f"{bgw.base_url}/v1/models", headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 200, response.text
    data = {m["id"]: m for m in response.json()["data"]}
    assert set(data) == {"fake-good", "priced-by-catalog"}
    extension = data["priced-by-catalog"]["switchboard"]
    assert extension["input_cost_per_million"] == "0.15" and extension["provider"] == "openai"
    assert extension["deployments"][0]["output_cost_per_million"] == "0.6"
    assert extension["deployments"][0]["health"] in ("healthy", "cooling_down")
