"""From ID-token claims to the person signed in: user id, role from groups or a role claim, mapped teams."""

from __future__ import annotations

import pytest

from switchboard_facade.settings import FacadeSettings
from switchboard_facade.ui.claims import MappingError, check_mapping, sign_in_of


def settings(**fields: str) -> FacadeSettings:
    base = {"oidc_group_teams": "eng=platform,ml=ml", "oidc_group_roles": "admins=proxy_admin,audit=proxy_admin_viewer"}
    return FacadeSettings(**{**base, **fields})


def test_groups_map_to_teams_and_the_strongest_role() -> None:
    person = sign_in_of({"sub": "s1", "email": "ann@example.com", "name": "Ann", "groups": ["eng", "audit", "x"]},
                        settings())
    assert person.user_id == "ann@example.com" and person.user_alias == "Ann"
    assert person.user_role == "proxy_admin_viewer"
    assert list(person.team_ids) == ["platform"] and list(person.managed_team_ids) == ["ml", "platform"]
    both = sign_in_of({"sub": "s1", "email": "a@b.c", "groups": "audit,admins"}, settings())
    assert both.user_role == "proxy_admin"


def test_no_mapped_group_gets_the_default_role_and_a_role_claim_wins() -> None:
    assert sign_in_of({"sub": "s1", "email": "a@b.c"}, settings()).user_role == "internal_user"
    claimed = sign_in_of({"sub": "s1", "email": "a@b.c", "groups": ["admins"], "sb_role": "internal_user_viewer"},
                         settings(oidc_role_claim="sb_role"))
    assert claimed.user_role == "internal_user_viewer"


def test_the_user_claim_falls_back_to_sub_and_unsafe_characters_are_replaced() -> None:
    assert sign_in_of({"sub": "abc|123"}, settings()).user_id == "abc_123"
    with pytest.raises(MappingError, match="name the user"):
        sign_in_of({"email": ""}, settings())


@pytest.mark.parametrize("fields", [{"oidc_group_teams": "eng"}, {"oidc_group_roles": "admins=root"},
                                    {"oidc_default_role": "superuser"},
                                    {"oidc_issuer": "https://idp.example.com", "oidc_client_id": "sb"}])
def test_unusable_mappings_are_named(fields: dict[str, str]) -> None:
    with pytest.raises(MappingError):
        check_mapping(settings(**fields))


def test_a_complete_or_absent_provider_is_accepted() -> None:
    check_mapping(settings())
    check_mapping(settings(oidc_issuer="https://idp.example.com", oidc_client_id="sb", oidc_client_secret="s"))
