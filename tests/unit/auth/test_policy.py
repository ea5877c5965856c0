"""A key's effective privacy tier and jurisdictions: its own, else its team's, else the gateway's defaults."""

from __future__ import annotations

import pytest

from switchboard_auth.models import Team, VirtualKey
from switchboard_auth.policy import Effective, GatewayDefaults, checked_key_prefix, effective

DEFAULTS = GatewayDefaults("managed_regional_cloud", ("ca",))


def key(**fields: object) -> VirtualKey:
    return VirtualKey(key_id="key_1", key_hash="h", last_four="abcd", **fields)


def team(**fields: object) -> Team:
    return Team(team_id="t", **fields)


def test_a_key_that_sets_nothing_gets_the_gateway_defaults() -> None:
    assert effective(key(), None, DEFAULTS) == Effective("managed_regional_cloud", "gateway", ("ca",), "gateway")
    assert effective(key(), team(), DEFAULTS) == Effective("managed_regional_cloud", "gateway", ("ca",), "gateway")
    assert effective(key(), None, GatewayDefaults()) == Effective()


def test_the_key_s_own_values_win_then_the_team_s() -> None:
    assert effective(key(privacy_tier="zero_retention", jurisdictions=["eu"]), None, DEFAULTS) == Effective(
        "zero_retention", "key", ("eu",), "key")
    assert effective(key(), team(privacy_tier="standard", jurisdictions=["us", "ca"]), DEFAULTS) == Effective(
        "standard", "team", ("us", "ca"), "team")
    assert effective(key(jurisdictions=["ca"]), team(jurisdictions=["us", "ca"]), DEFAULTS).jurisdictions == ("ca",)


def test_star_opts_out_of_the_default_but_never_out_of_the_team() -> None:
    assert effective(key(jurisdictions=["*"]), None, DEFAULTS) == Effective(
        "managed_regional_cloud", "gateway", (), "key")
    assert effective(key(), team(jurisdictions=["*"]), DEFAULTS).jurisdictions == ()
    # A key stored outside its team (the writes refuse it; an old row might be): the team's list applies, not wider.
    assert effective(key(jurisdictions=["*"]), team(jurisdictions=["ca"]), DEFAULTS).jurisdictions == ("ca",)
    assert effective(key(jurisdictions=["us"]), team(jurisdictions=["ca", "eu"]), DEFAULTS).jurisdictions == (
        "ca", "eu")


def test_defaults_are_read_from_the_settings() -> None:
    assert GatewayDefaults.from_settings(" Zero_Retention ", "CA, eu") == GatewayDefaults("zero_retention",
                                                                                            ("ca", "eu"))
    assert GatewayDefaults.from_settings("", "*") == GatewayDefaults()
    with pytest.raises(ValueError, match="SWITCHBOARD_DEFAULT_JURISDICTIONS"):
        GatewayDefaults.from_settings("", "ca;eu")
    with pytest.raises(ValueError, match="SWITCHBOARD_DEFAULT_PRIVACY_TIER"):
        GatewayDefaults.from_settings("zero retention", "")


@pytest.mark.parametrize("prefix", ["sk-", "ni_live_", "sb-prod-"])
def test_key_prefixes(prefix: str) -> None:
    assert checked_key_prefix(prefix) == prefix


@pytest.mark.parametrize("prefix", ["", "key_", "key_live_", "ni live", "-x", "x" * 17])
def test_prefixes_that_could_not_be_told_from_key_ids_are_refused(prefix: str) -> None:
    with pytest.raises(ValueError, match="SWITCHBOARD_KEY_PREFIX"):
        checked_key_prefix(prefix)
