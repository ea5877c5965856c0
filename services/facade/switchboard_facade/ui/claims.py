"""From an ID token's claims to the person auth signs in: user id, e-mail, name, role and mapped teams.

The mapping is the operator's (SWITCHBOARD_OIDC_*, docs/sso.md): a claim names the user, a claim lists
their groups, groups map to teams and to roles (the strongest role wins), a role claim may name the role
directly. Only the teams the mapping names are managed: a person is added to the mapped teams of their
groups and removed from the other mapped teams; membership of any other team is left to admins.
"""

from __future__ import annotations

import re
from typing import Any

from switchboard_auth.client import SsoSignIn
from switchboard_facade.settings import FacadeSettings
from switchboard_rules.fields import USER_ROLES

#: Roles from the strongest to the weakest: a person in several mapped groups gets the first that applies.
ROLE_ORDER = ("proxy_admin", "proxy_admin_viewer", "internal_user", "internal_user_viewer")
#: What auth accepts as a user id; other characters of a claim become "_".
_USER_ID_UNSAFE = re.compile(r"[^A-Za-z0-9._:@+-]")


class MappingError(ValueError):
    """A mapping setting cannot be read, or the claims cannot name a user; the message says which."""


def pairs(text: str, setting: str) -> dict[str, str]:
    """"a=b,c=d" as {"a": "b", "c": "d"}."""
    out: dict[str, str] = {}
    for item in (i.strip() for i in text.split(",")):
        if not item:
            continue
        name, sep, value = item.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise MappingError(f"{setting}: '{item}' is not group=value.")
        out[name.strip()] = value.strip()
    return out


def check_mapping(settings: FacadeSettings) -> None:
    """Raises MappingError when a mapping setting is unusable, or single sign-on is half configured (checked at
    start, so a typo fails loudly instead of quietly leaving SSO off)."""
    given = {name: bool(str(getattr(settings, name)).strip())
             for name in ("oidc_issuer", "oidc_client_id", "oidc_client_secret")}
    if any(given.values()) and not all(given.values()):
        missing = ", ".join("SWITCHBOARD_" + n.upper() for n, ok in given.items() if not ok)
        raise MappingError(f"Single sign-on needs SWITCHBOARD_OIDC_ISSUER, _CLIENT_ID and _CLIENT_SECRET: {missing} "
                           "missing.")
    pairs(settings.oidc_group_teams, "SWITCHBOARD_OIDC_GROUP_TEAMS")
    for group, role in pairs(settings.oidc_group_roles, "SWITCHBOARD_OIDC_GROUP_ROLES").items():
        if role not in USER_ROLES:
            raise MappingError(f"SWITCHBOARD_OIDC_GROUP_ROLES: {group}={role}: the role must be one of "
                               f"{', '.join(ROLE_ORDER)}.")
    if settings.oidc_default_role not in USER_ROLES:
        raise MappingError(f"SWITCHBOARD_OIDC_DEFAULT_ROLE must be one of {', '.join(ROLE_ORDER)}.")


def groups_of(claims: dict[str, Any], name: str) -> list[str]:
    value = claims.get(name)
    if isinstance(value, str):
        return [g.strip() for g in value.split(",") if g.strip()]
    if isinstance(value, list):
        return [str(g) for g in value if isinstance(g, (str, int))]
    return []


def role_of(claims: dict[str, Any], groups: list[str], settings: FacadeSettings) -> str:
    if settings.oidc_role_claim:
        direct = claims.get(settings.oidc_role_claim)
        if isinstance(direct, str) and direct in USER_ROLES:
            return direct
    mapped = pairs(settings.oidc_group_roles, "SWITCHBOARD_OIDC_GROUP_ROLES")
    granted = {mapped[g] for g in groups if g in mapped}
    return next((r for r in ROLE_ORDER if r in granted), settings.oidc_default_role)


def sign_in_of(claims: dict[str, Any], settings: FacadeSettings) -> SsoSignIn:
    """The person these (verified) claims name."""
    raw = claims.get(settings.oidc_user_claim) or claims.get("sub")
    if not isinstance(raw, str) or not raw.strip():
        raise MappingError(f"The ID token has neither '{settings.oidc_user_claim}' nor 'sub' to name the user.")
    user_id = _USER_ID_UNSAFE.sub("_", raw.strip())[:200]
    email = claims.get("email") if isinstance(claims.get("email"), str) else ""
    name = claims.get("name") if isinstance(claims.get("name"), str) else ""
    groups = groups_of(claims, settings.oidc_groups_claim)
    team_map = pairs(settings.oidc_group_teams, "SWITCHBOARD_OIDC_GROUP_TEAMS")
    teams = sorted({team_map[g] for g in groups if g in team_map})
    return SsoSignIn(user_id=user_id, user_email=str(email)[:200], user_alias=str(name)[:200],
                     user_role=role_of(claims, groups, settings), team_ids=teams,
                     managed_team_ids=sorted(set(team_map.values())))
