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


def policy_for_guardrails(names: list[str]) -> tuple[PiiPolicy | None, list[str]]:
    """The PII policy LiteLLM guardrail names ask for (its ``guardrails`` on keys and teams), and the names that
    mean nothing here.

    A name that is a policy ("mask", "block", ...) or a PII guardrail naming one ("pii-mask", "presidio_block")
    asks for that policy; a PII guardrail naming none ("pii", "presidio", "pii-masking") masks, as LiteLLM's
    Presidio guardrail does. The strictest policy asked for wins (block, then mask, then substitute)."""
    order = (PiiPolicy.BLOCK, PiiPolicy.MASK, PiiPolicy.SUBSTITUTE)
    asked: set[PiiPolicy] = set()
    unknown: list[str] = []
    for name in names:
        words = name.strip().lower().replace("_", "-").split("-")
        named = next((p for p in order if p.value in words or (p is PiiPolicy.MASK and "masking" in words)), None)
        if named is not None and (len(words) == 1 or "pii" in words or "presidio" in words):
            asked.add(named)
        elif "pii" in words or "presidio" in words:
            asked.add(PiiPolicy.MASK)
        else:
            unknown.append(name)
    return next((p for p in order if p in asked), None), unknown
