"""The full detector set and the one function the rest of the package scans text with."""

from __future__ import annotations

from switchboard_router.privacy import personal_data, secret_patterns
from switchboard_router.privacy.detectors import Detector, Finding, find_all

ALL_DETECTORS: tuple[Detector, ...] = secret_patterns.DETECTORS + personal_data.DETECTORS

# Placeholder families, in the order they are reported.
KINDS: tuple[str, ...] = ("EMAIL", "PHONE", "CARD", "IBAN", "SSN", "SIN", "IP", "SECRET")


def find_pii(text: str) -> list[Finding]:
    """Every personal-data value and secret in ``text``, non-overlapping, ordered by position."""
    return find_all(text, ALL_DETECTORS)
