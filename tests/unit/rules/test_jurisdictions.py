"""Jurisdiction names as every service reads them, and the jurisdiction a Google Cloud region implies."""

from __future__ import annotations

import pytest

from switchboard_rules.catalog import CatalogError, parse_catalog_file
from switchboard_rules.jurisdictions import JurisdictionError, allows_any, of_google_region, parse_jurisdictions


@pytest.mark.parametrize(("value", "expected"), [
    (None, ()), ("", ()), ("ca", ("ca",)), (" CA , eu,ca", ("ca", "eu")), (["EU", "ca"], ("eu", "ca")),
    ("*", ("*",)), (["local"], ("local",)), ("us-east", ("us-east",)),
])
def test_names_are_read_in_one_form(value: object, expected: tuple[str, ...]) -> None:
    assert parse_jurisdictions(value) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [["ca", ""], "ca;eu", ["c a"], [3], "*,ca", "x" * 21])
def test_unreadable_names_are_refused_with_what_is_expected(value: object) -> None:
    with pytest.raises(JurisdictionError, match="jurisdiction"):
        parse_jurisdictions(value, "jurisdictions")  # type: ignore[arg-type]


def test_any() -> None:
    assert allows_any(()) and allows_any(("*",)) and not allows_any(("ca",))


@pytest.mark.parametrize(("location", "jurisdiction"), [
    ("northamerica-northeast1", "ca"), ("northamerica-northeast2", "ca"), ("us-central1", "us"),
    ("us-east5", "us"), ("europe-west4", "eu"), ("europe-west9", "eu"), ("europe-west2", "uk"),
    ("europe-west6", "ch"), ("asia-northeast1", "jp"), ("australia-southeast1", "au"), ("global", ""),
    ("mars-north1", ""),
])
def test_google_regions(location: str, jurisdiction: str) -> None:
    assert of_google_region(location) == jurisdiction


def catalog(**deployment: object) -> str:
    parsed = parse_catalog_file({"models": [{"name": "m", "deployments": [
        {"provider": "vertex", "model": "gemini-2.5-flash", "vertex_project": "p", **deployment}]}]})
    return parsed.models["m"].deployments[0].jurisdiction


def test_a_vertex_deployment_is_in_its_region_s_jurisdiction() -> None:
    assert catalog(vertex_location="northamerica-northeast1") == "ca"
    assert catalog(vertex_location="europe-west4", jurisdiction="EU") == "eu"
    assert catalog(vertex_location="global") == ""
    assert catalog(vertex_location="global", jurisdiction="us") == "us"


def test_a_declaration_that_contradicts_the_region_is_refused() -> None:
    with pytest.raises(CatalogError, match=r"deployments\[0\]\.jurisdiction: 'us' contradicts vertex_location "
                                           r"'northamerica-northeast1', which is in 'ca'"):
        catalog(vertex_location="northamerica-northeast1", jurisdiction="us")
    with pytest.raises(CatalogError, match="a deployment is in one jurisdiction"):
        catalog(vertex_location="europe-west4", jurisdiction="eu,ca")
