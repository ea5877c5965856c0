"""The region locators are an optimisation: results must equal a plain whole-text scan."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from switchboard_router.privacy.detectors import Detector, Finding, ScanText, find_all
from switchboard_router.privacy.scan import ALL_DETECTORS, find_pii

from . import secret_samples as s


def _whole_text(detector: Detector) -> Detector:
    """The same detector without its locator: its pattern is searched over the entire text."""
    return Detector(detector.name, detector.kind, detector.pattern, detector.accept, None, detector.priority)


_REFERENCE = tuple(_whole_text(detector) for detector in ALL_DETECTORS)

_PIECES = st.sampled_from(
    [
        "jane.doe@acme-corp.com", "a@b", "@", "+44 20 7946 0958", "(415) 555-2671", "415-555-2671", "+4915112345678",
        "4111 1111 1111 1111", "4111111111111111", "378282246310005", "DE89 3704 0044 0532 0130 00",
        "GB82WEST12345698765432", "536-22-1234", "130 692 544", "SSN ", "SIN: ", "536221234", "130692544",
        "203.0.113.7", "127.0.0.1", "2001:db8::8a2e:370:7334", "::ffff:10.1.2.3", "12:34:56", "1.2.3.4", "v1.2.3",
        "2024-01-15", "1700000000000", "550e8400-e29b-41d4-a716-446655440000", "#ff0000",
        s.AWS_ACCESS_KEY_ID, f"aws_secret_access_key = {s.AWS_SECRET_KEY}", s.GITHUB_CLASSIC, s.OPENAI_KEY,
        s.ANTHROPIC_KEY, s.SLACK_BOT_TOKEN, s.GOOGLE_API_KEY, s.STRIPE_SECRET, s.JWT, s.PRIVATE_KEY,
        "postgres://app:s3cret@db:5432/x", "redis://:pw9@cache", "://", "-----BEGIN ", "eyJ", "sk-", "AKIA",
        " ", "\n", "-", ".", "+", "(", ")", ":", "x", "é", "0", "12", "9", "\\n", '"', "=",
    ]
)  # fmt: skip
_TEXTS = st.lists(_PIECES, max_size=25).map("".join)


def _reference(text: str) -> list[Finding]:
    return find_all(text, _REFERENCE)


@settings(max_examples=500, deadline=None)
@given(_TEXTS)
def test_located_scan_equals_whole_text_scan(text: str) -> None:
    assert find_pii(text) == _reference(text)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="0123456789 .-()+:abcdefABCDEF@x\n", max_size=80))
def test_located_scan_equals_whole_text_scan_on_number_soup(text: str) -> None:
    assert find_pii(text) == _reference(text)


def test_offsets_survive_non_ascii_text() -> None:
    text = "İstanbul straße ünïcode — mail jane.doe@acme-corp.com, card 4111 1111 1111 1111 ✓"
    findings = find_pii(text)
    assert [f.value for f in findings] == ["jane.doe@acme-corp.com", "4111 1111 1111 1111"]
    assert all(text[f.start : f.end] == f.value for f in findings)
    assert len(ScanText(text).folded) == len(text)
