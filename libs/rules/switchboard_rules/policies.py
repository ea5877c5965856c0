"""Names of the privacy policies a key, team or request may carry.

Auth stores them, the facade and CLI accept them from people, the router
enforces them: each reads the names here.
"""

from __future__ import annotations

from enum import StrEnum


class PiiPolicy(StrEnum):
    """What the router does with personal data and secrets found in a request (docs/privacy.md)."""

    OFF = "off"
    SUBSTITUTE = "substitute"
    MASK = "mask"
    BLOCK = "block"

    @classmethod
    def parse(cls, value: str | None) -> PiiPolicy:
        """The policy named by a key's, team's or caller's ``pii_policy``; empty means off. Raises ValueError
        naming the accepted names."""
        if isinstance(value, PiiPolicy):
            return value
        if not value:
            return cls.OFF
        try:
            return cls(value.strip().lower())
        except ValueError:
            names = ", ".join(policy.value for policy in cls)
            raise ValueError(f"unknown pii_policy {value!r}; use one of: {names}") from None


PII_POLICY_NAMES: tuple[str, ...] = tuple(p.value for p in PiiPolicy)

#: Privacy tiers when the catalog does not list its own, strictest first.
DEFAULT_PRIVACY_TIERS: tuple[str, ...] = ("zero_retention", "managed_regional_cloud", "standard")
