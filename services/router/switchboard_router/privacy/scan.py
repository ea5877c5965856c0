"""The full detector set and the one function the rest of the package scans text with."""

from __future__ import annotations

from switchboard_router.privacy import personal_data, secret_patterns
from switchboard_router.privacy.detectors import Detector, Finding, find_all
from switchboard_router.privacy.scan_memo import ScanMemo

ALL_DETECTORS: tuple[Detector, ...] = secret_patterns.DETECTORS + personal_data.DETECTORS

# Placeholder families, in the order they are reported.
KINDS: tuple[str, ...] = ("EMAIL", "PHONE", "CARD", "IBAN", "SSN", "SIN", "IP", "SECRET")


def scan_fully(text: str) -> list[Finding]:
    """Every personal-data value and secret in ``text``, non-overlapping, ordered by position."""
    return find_all(text, ALL_DETECTORS)


#: Long texts seen before (a conversation's earlier turns) are recognised instead of scanned again.
MEMO = ScanMemo(scan_fully)


def find_pii(text: str) -> list[Finding]:
    """Every personal-data value and secret in ``text``, non-overlapping, ordered by position (the same
    result as :func:`scan_fully`, remembered for long texts)."""
    return MEMO.find(text)
