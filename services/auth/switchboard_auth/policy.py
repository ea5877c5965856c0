"""A key's effective privacy policy: its own privacy tier and jurisdictions, else its team's, else the gateway's.

Auth resolves it once, when it hands a key's context on (``Authorize``, and ``effective`` in the admin
API's ``KeyInfo``), so every caller — the facade for HTTP clients, the router for its gRPC callers — gets
the same answer. The gateway's defaults (``SWITCHBOARD_DEFAULT_PRIVACY_TIER``,
``SWITCHBOARD_DEFAULT_JURISDICTIONS``) apply to keys whose key and team set nothing; the master key is not
a virtual key and gets none.

A team's jurisdictions bound its keys': a key's own list must be a subset (checked on every write that could
break it, see :mod:`switchboard_auth.specs`), and should a stored key ever fall outside, its team's list is
what applies — never something wider.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from switchboard_auth.models import Team, VirtualKey
from switchboard_rules.jurisdictions import JurisdictionError, allows_any, parse_jurisdictions

#: A key prefix: letters, digits, '_' and '-'; never "key_" (that names a key id in the admin API).
_PREFIX = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,15}$")


@dataclass(frozen=True, slots=True)
class GatewayDefaults:
    """What keys that set nothing (and whose team sets nothing) get."""

    privacy_tier: str = ""
    jurisdictions: tuple[str, ...] = ()

    @classmethod
    def from_settings(cls, privacy_tier: str, jurisdictions: str) -> GatewayDefaults:
        """Raises ValueError naming the setting when a value cannot be read."""
        tier = privacy_tier.strip().lower()
        if tier and not re.fullmatch(r"[a-z0-9_-]{1,60}", tier):
            raise ValueError(f"SWITCHBOARD_DEFAULT_PRIVACY_TIER={privacy_tier!r} is not a privacy tier name")
        try:
            names = parse_jurisdictions(jurisdictions, "SWITCHBOARD_DEFAULT_JURISDICTIONS")
        except JurisdictionError as exc:
            raise ValueError(str(exc)) from None
        return cls(tier, () if allows_any(names) else names)


def checked_key_prefix(prefix: str) -> str:
    """``SWITCHBOARD_KEY_PREFIX`` as given; raises ValueError when keys with it could not be told from key ids."""
    if not _PREFIX.match(prefix) or prefix.startswith("key_"):
        raise ValueError(f"SWITCHBOARD_KEY_PREFIX={prefix!r}: use 1-16 letters, digits, '_' or '-' (such as 'sk-' or "
                         "'ni_live_'), not starting with 'key_'")
    return prefix


@dataclass(frozen=True, slots=True)
class Effective:
    """A key's privacy tier and jurisdictions as its requests get them, and where each comes from."""

    privacy_tier: str = ""
    #: "key", "team", "gateway" or "" (none).
    privacy_tier_source: str = ""
    #: Empty: any jurisdiction.
    jurisdictions: tuple[str, ...] = ()
    jurisdictions_source: str = ""


def _within(own: Sequence[str], team: Sequence[str]) -> tuple[str, ...]:
    """The key's own list, bounded by its team's (the team's when nothing of the key's is left)."""
    if allows_any(team):
        return tuple(own)
    kept = tuple(j for j in own if j in team)
    return kept or tuple(team)


def effective(key: VirtualKey, team: Team | None, defaults: GatewayDefaults) -> Effective:
    if key.privacy_tier:
        tier, tier_source = key.privacy_tier, "key"
    elif team is not None and team.privacy_tier:
        tier, tier_source = team.privacy_tier, "team"
    elif defaults.privacy_tier:
        tier, tier_source = defaults.privacy_tier, "gateway"
    else:
        tier, tier_source = "", ""
    team_places = tuple(team.jurisdictions) if team is not None else ()
    if key.jurisdictions:
        places, places_source = _within(key.jurisdictions, team_places), "key"
    elif team_places:
        places, places_source = team_places, "team"
    elif defaults.jurisdictions:
        places, places_source = defaults.jurisdictions, "gateway"
    else:
        places, places_source = (), ""
    return Effective(tier, tier_source, () if allows_any(places) else places, places_source)
