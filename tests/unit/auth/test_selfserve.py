"""Self-serve bounds: the operator's defaults, a team's overrides, and what they do to a key a user writes."""

from __future__ import annotations

import pytest

from switchboard_auth.models import Team, VirtualKey
from switchboard_auth.selfserve import SelfServe
from switchboard_common.errors import ServiceError

NOW = 1_700_000_000


def key(**fields: object) -> VirtualKey:
    return VirtualKey(key_id="key_a", key_hash="h", last_four="abcd", **fields)


def test_settings_are_read_and_bad_ones_named() -> None:
    bounds = SelfServe.from_settings(3, "12.50", "30d", "fake-good, fake-echo")
    assert bounds == SelfServe(3, 12_500_000, "30d", ("fake-good", "fake-echo"))
    assert SelfServe.from_settings(0, "", "", "") == SelfServe()
    for args, setting in (((-1, "", "", ""), "MAX_KEYS"), ((0, "lots", "", ""), "MAX_BUDGET"),
                          ((0, "", "forever", ""), "MAX_DURATION")):
        with pytest.raises(ValueError, match=setting):
            SelfServe.from_settings(*args)  # type: ignore[arg-type]


def test_a_key_that_sets_nothing_gets_the_bounds() -> None:
    k = key()
    SelfServe(0, 10_000_000, "1d", ("fake-good",)).bound(k, NOW, live_keys=0)
    assert k.models == ["fake-good"] and k.max_budget_micros == 10_000_000 and k.expires_at == NOW + 86_400


@pytest.mark.parametrize(("k", "live", "code"), [
    (key(), 2, "self_serve_key_limit"),
    (key(models=["fake-tool"]), 0, "self_serve_model_not_allowed"),
    (key(max_budget_micros=10_000_001), 0, "self_serve_budget_too_high"),
    (key(expires_at=NOW + 2 * 86_400), 0, "self_serve_expiry_too_long"),
])
def test_a_key_beyond_a_bound_is_refused(k: VirtualKey, live: int, code: str) -> None:
    with pytest.raises(ServiceError) as caught:
        SelfServe(2, 10_000_000, "1d", ("fake-good",)).bound(k, NOW, live_keys=live)
    assert caught.value.error.code == code and caught.value.http_status == 403


def test_a_change_to_an_existing_key_is_not_counted_against_the_key_limit() -> None:
    SelfServe(max_keys_per_user=1).bound(key(), NOW)  # live_keys None: not a new key


def test_a_team_overrides_the_defaults_and_bad_overrides_are_ignored() -> None:
    defaults = SelfServe(2, 10_000_000, "30d", ("fake-good",))
    team = Team(team_id="ml", team_metadata={"self_serve_max_keys_per_user": "5", "self_serve_max_budget": "100",
                                             "self_serve_models": "fake-good,fake-echo",
                                             "self_serve_max_duration": "not-a-duration"})
    assert defaults.for_team(team) == SelfServe(5, 100_000_000, "30d", ("fake-good", "fake-echo"))
    assert defaults.for_team(None) is defaults
