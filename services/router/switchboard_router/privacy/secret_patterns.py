"""Detectors for credentials that show up in code and logs pasted into prompts.

Vendor tokens are recognised by their published prefixes and lengths; a bare high-entropy
string is not a finding on its own (it would flag every hash and UUID). AWS secret keys carry no
prefix, so they are recognised only next to the name they are assigned to.
"""

from __future__ import annotations

import re

from switchboard_router.privacy import validators as v
from switchboard_router.privacy.detectors import Detector, Span, anchored, checked, starts_at, whole_match

SECRET = "SECRET"

_AWS_ACCESS_KEY_ID = re.compile(r"(?<![A-Za-z0-9])(?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z0-9]{16}(?![A-Za-z0-9])")
_AWS_SECRET_KEY = re.compile(
    r"(?i:secret_?access_?key|aws_?secret(?:_?access)?(?:_?key)?)"
    r"[\"']?\s*(?:=>|:=|[:=])\s*[\"']?"
    r"([A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])"
)
_GITHUB_TOKEN = re.compile(
    r"(?<![A-Za-z0-9_])(?:gh[pousr]_[A-Za-z0-9]{36,251}|github_pat_[A-Za-z0-9_]{22,244})(?![A-Za-z0-9_])"
)
# OpenAI (sk-..., sk-proj-..., sk-svcacct-...) and Anthropic (sk-ant-api03-..., sk-ant-admin01-...).
_SK_KEY = re.compile(r"(?<![\w\-])sk-[A-Za-z0-9_\-]{20,}(?![\w\-])")
_SLACK_TOKEN = re.compile(r"(?<![\w\-])(?:xox[abposre]|xapp)-[A-Za-z0-9\-]{10,}(?![\w\-])")
_SLACK_WEBHOOK = re.compile(r"https://hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9/_\-]{20,}")
_GOOGLE_API_KEY = re.compile(r"(?<![\w\-])AIza[0-9A-Za-z_\-]{35}(?![\w\-])")
_STRIPE_KEY = re.compile(r"(?<![\w\-])(?:(?:sk|rk)_(?:live|test)_[0-9A-Za-z]{10,}|whsec_[A-Za-z0-9+/=]{20,})(?![\w\-])")
_PRIVATE_KEY = re.compile(
    r"-----BEGIN (?:[A-Z0-9]+ ){0,3}PRIVATE KEY(?: BLOCK)?-----"
    r"(?:.{0,65536}?-----END (?:[A-Z0-9]+ ){0,3}PRIVATE KEY(?: BLOCK)?-----"
    # A truncated paste (no END line): the body lines that follow, while they look like base64.
    r"|(?:(?:\\[rn]|\s)+[A-Za-z0-9+/=]{4,}(?=\\[rn]|[\r\n\"'`]|$))+)",
    re.DOTALL,
)
# scheme://[user]:password@host — the password alone is replaced; user and host stay readable.
# The pattern starts at "://" (where the locator finds it); the scheme is checked behind it.
_URL_PASSWORD = re.compile(r"://[^\s:/?#@'\"`<>\[\]]*:([^\s/?#'\"`<>\[\]]+)@(?=[\w.\[\-])")
_URL_SCHEME_BEHIND = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*\Z")
_JWT = re.compile(r"(?<![\w\-])eyJ[A-Za-z0-9_\-]{4,}\.[A-Za-z0-9_\-]{4,}\.[A-Za-z0-9_\-]*(?![\w\-])")

# Passwords that are obviously templates, not secrets: ${DB_PASSWORD}, $PASS, {{ pw }}, %s, ***, xxx,
# and the words documentation writes in their place (user:password@host).
_TEMPLATE_PASSWORD = re.compile(
    r"^(?:[$%{<].*|[*xX.]+|(?i:(?:my|your|db|user)?[_\-]?(?:password|passwd|pass|pwd|pw)|redacted|hidden))$"
)


def _accept_url_password(text: str, match: re.Match[str]) -> Span | None:
    start = match.start()
    if _URL_SCHEME_BEHIND.search(text, max(0, start - 32), start) is None:
        return None  # "://" not preceded by a scheme name
    return None if _TEMPLATE_PASSWORD.match(match.group(1)) else match.span(1)


_KEY_BODY = re.compile(r"[A-Za-z0-9+/]{32,}")


def _accept_private_key(_text: str, match: re.Match[str]) -> Span | None:
    # Documentation that only names the BEGIN/END markers has no base64 body: not a key.
    return match.span() if _KEY_BODY.search(match.group()) else None


_AWS_KEY_PREFIXES = ("AKIA", "ASIA", "ABIA", "ACCA", "A3T")
_GITHUB_PREFIXES = ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_")
_STRIPE_PREFIXES = ("sk_live_", "rk_live_", "sk_test_", "rk_test_", "whsec_")

# Tokens with a published prefix are matched exactly where the prefix occurs; the rest are
# searched in a small window around a keyword.
DETECTORS: tuple[Detector, ...] = (
    Detector("aws_access_key_id", SECRET, _AWS_ACCESS_KEY_ID, whole_match, starts_at(_AWS_KEY_PREFIXES), 0, True),
    Detector(
        "aws_secret_access_key",
        SECRET,
        _AWS_SECRET_KEY,
        checked(v.has_letter_and_digit, 1),
        anchored(("secret",), 8, 120, fold=True),
        0,
    ),
    Detector("github_token", SECRET, _GITHUB_TOKEN, whole_match, starts_at(_GITHUB_PREFIXES), 0, True),
    Detector("api_key_sk", SECRET, _SK_KEY, checked(v.has_letter_and_digit), starts_at(("sk-",)), 0, True),
    Detector(
        "slack_token", SECRET, _SLACK_TOKEN, checked(v.has_letter_and_digit), starts_at(("xox", "xapp-")), 0, True
    ),
    Detector("slack_webhook", SECRET, _SLACK_WEBHOOK, whole_match, starts_at(("https://hooks.slack.com/",)), 0, True),
    Detector("google_api_key", SECRET, _GOOGLE_API_KEY, whole_match, starts_at(("AIza",)), 0, True),
    Detector("stripe_key", SECRET, _STRIPE_KEY, whole_match, starts_at(_STRIPE_PREFIXES), 0, True),
    Detector("private_key", SECRET, _PRIVATE_KEY, _accept_private_key, starts_at(("-----BEGIN ",)), 0, True),
    Detector("url_password", SECRET, _URL_PASSWORD, _accept_url_password, starts_at(("://",)), 0, True),
    Detector("jwt", SECRET, _JWT, checked(v.jwt_header_valid), starts_at(("eyJ",)), 0, True),
)
