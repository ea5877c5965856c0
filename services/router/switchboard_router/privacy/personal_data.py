"""Detectors for personal data: e-mail, phone, payment card, IBAN, SIN, SSN, IP addresses.

Every numeric pattern is bounded so that it cannot start or end inside a longer run of digits,
letters, dots or dashes: that single rule keeps version strings (1.2.3.4-beta), dates, UUIDs,
git SHAs and hex constants out before any checksum runs. Numeric patterns are ASCII-only
(a digit means 0-9): personal numbers are written with ASCII digits, and validators rely on it.
"""

from __future__ import annotations

import re

from switchboard_router.privacy import validators as v
from switchboard_router.privacy.detectors import (
    Detector,
    Locator,
    ScanText,
    Span,
    anchored,
    checked,
    merge_windows,
    skeleton_triggered,
    triggered,
)

# Not preceded by a character that would make the candidate part of a longer token.
_NUM_START = r"(?<![\w.\-+/])"
# Not followed by one either; a trailing sentence dot is fine, a dot followed by a digit is not.
_NUM_END = r"(?![\w\-/]|\.\d)"


# --- e-mail -----------------------------------------------------------------------------------

# Letters and digits of any script ("josé@exämple.com", internationalised addresses); an apostrophe only
# between two letters ("o'neil"), so that code such as 'a'+'b@c.com' is not taken in.
_EMAIL = re.compile(
    r"(?<![\w.%+\-])"
    r"[^\W_](?:[\w.%+\-]|(?<=[^\W\d_])'(?=[^\W\d_])){0,63}"
    r"@"
    r"(?:[^\W_](?:(?:[^\W_]|-){0,61}[^\W_])?\.)+"
    r"[^\W\d_]{2,24}"
    r"(?![\w\-])"
)
# "icon@2x.png" is an image name, "git@github.com:org/repo" an SSH remote: not people.
_RESOLUTION_SUFFIX = re.compile(r"@\d(?:\.\d)?x\.", re.ASCII)


def _accept_email(_text: str, match: re.Match[str]) -> Span | None:
    value = match.group()
    if _RESOLUTION_SUFFIX.search(value) or value.startswith("git@"):
        return None
    if ".." in value.split("@", 1)[0]:
        return None
    return match.span()


# --- phone ------------------------------------------------------------------------------------

# +CC then digit groups separated by at most one space, dot, dash, or a parenthesised group.
_PHONE_INTL = re.compile(r"(?<![\w+])\+[1-9]\d{0,3}(?:[ .\-]?(?:\(\d{1,4}\)|\d{1,6})){1,6}" + _NUM_END, re.ASCII)
# North American: (555) 123-4567, 555-123-4567, 555.123.4567, 1-555-123-4567 (separators required:
# ten bare digits are as likely a Unix timestamp).
_PHONE_NANP = re.compile(
    _NUM_START + r"(?:1[ .\-])?(?:\(\d{3}\)[ .\-]?|\d{3}[ .\-])\d{3}[ .\-]\d{4}" + _NUM_END, re.ASCII
)


def _accept_intl_phone(_text: str, match: re.Match[str]) -> Span | None:
    value = match.group()
    digits = v.digits_of(value)
    if not v.phone_digit_count_valid(digits):
        return None
    if "." in value and value.count(".") != len(re.findall(r"[ .\-(]", value)):
        return None  # mixing dots with other separators looks like a version or a decimal
    if len(digits) < 10 and not re.search(r"[ .\-(]", value):
        return None  # "+12345678" in a diff or an expression: too short to be a bare E.164 number
    if len(re.split(r"[ .\-()]+", value.rstrip(")"))[-1]) < 2:
        return None  # "+35236450.6" is a signed decimal; numbers never end in a one-digit group
    return match.span()


def _accept_nanp_phone(_text: str, match: re.Match[str]) -> Span | None:
    return match.span() if v.nanp_valid(v.digits_of(match.group())) else None


# --- payment card -----------------------------------------------------------------------------

# As cards are written: 13-19 digits in one block, four groups of four (a fifth of three for
# 19-digit cards), or 4-6-5 / 4-6-4 (American Express, Diners Club); one separator throughout.
_CARD = re.compile(
    _NUM_START
    + r"(?:\d{13,19}|\d{4}(?P<sep>[ \-])\d{4}(?P=sep)\d{4}(?P=sep)\d{4}(?:(?P=sep)\d{3})?"
    + r"|\d{4}(?P<amex>[ \-])\d{6}(?P=amex)\d{4,5})"
    + _NUM_END,
    re.ASCII,
)


def _accept_card(_text: str, match: re.Match[str]) -> Span | None:
    """Try the whole run, then shorter prefixes ending at a separator (a card followed by a number)."""
    value = match.group()
    ends = [len(value)] + [i for i in range(len(value) - 1, 0, -1) if value[i] in " -"]
    for end in ends:
        digits = v.digits_of(value[:end])
        if len(digits) < 13:
            break
        if v.card_valid(digits):
            return match.start(), match.start() + end
    return None


# --- IBAN -------------------------------------------------------------------------------------

_IBAN = re.compile(r"(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}(?![a-z0-9])", re.ASCII)


def _accept_iban(_text: str, match: re.Match[str]) -> Span | None:
    """Take exactly the registered length for the country (the match may run into the next word)."""
    value = match.group()
    expected = v.IBAN_LENGTHS.get(value[:2])
    if expected is None:
        return None
    taken = 0
    for index, ch in enumerate(value):
        if ch != " ":
            taken += 1
            if taken == expected:
                end = index + 1
                if end < len(value) and value[end] != " ":
                    return None  # longer alphanumeric run: not an IBAN
                compact = value[:end].replace(" ", "")
                return (match.start(), match.start() + end) if v.iban_valid(compact) else None
    return None


# --- SIN / SSN --------------------------------------------------------------------------------

_SSN_FORMATTED = re.compile(_NUM_START + r"\d{3}([\- ])\d{2}\1\d{4}" + _NUM_END, re.ASCII)
_SIN_FORMATTED = re.compile(_NUM_START + r"\d{3}([\- ])\d{3}\1\d{3}" + _NUM_END, re.ASCII)
_NINE_DIGITS = re.compile(_NUM_START + r"\d{9}" + _NUM_END, re.ASCII)
_SSN_CONTEXT = re.compile(r"(?i:\bssn\b|social[ _\-]?security)")
_SIN_CONTEXT = re.compile(r"(?i:\bsin\b|social[ _\-]?insurance|\bnas\b|assurance[ _\-]sociale)")
_CONTEXT_WINDOW = 48


def _context_before(text: str, start: int, keywords: re.Pattern[str]) -> bool:
    return keywords.search(text, max(0, start - _CONTEXT_WINDOW), start) is not None


def _accept_bare_ssn(text: str, match: re.Match[str]) -> Span | None:
    """Nine bare digits count as an SSN only right after an SSN keyword."""
    ok = v.ssn_valid(match.group()) and _context_before(text, match.start(), _SSN_CONTEXT)
    return match.span() if ok else None


def _accept_bare_sin(text: str, match: re.Match[str]) -> Span | None:
    """Nine bare digits count as a SIN only right after a SIN keyword."""
    ok = v.sin_valid(match.group()) and _context_before(text, match.start(), _SIN_CONTEXT)
    return match.span() if ok else None


# --- IP addresses -----------------------------------------------------------------------------

_IPV4 = re.compile(r"(?<![\w.\-])(?:\d{1,3}\.){3}\d{1,3}(?![\w\-]|\.\d)", re.ASCII)
_VERSION_CONTEXT = re.compile(r"(?i:version|\bver\b|\bv$|release|==|>=|<=|~=|\^)")


def _accept_ipv4(text: str, match: re.Match[str]) -> Span | None:
    if not v.ipv4_reportable(match.group()):
        return None
    before = text[max(0, match.start() - 24) : match.start()]
    return None if _VERSION_CONTEXT.search(before) else match.span()


_IPV6 = re.compile(
    r"(?<![\w:.])"
    r"(?:[0-9A-Fa-f]{1,4}|(?=::))(?::[0-9A-Fa-f]{0,4}){2,7}"
    r"(?:(?<=:)(?:\d{1,3}\.){3}\d{1,3})?"
    r"(?![\w:]|\.\d)",
    re.ASCII,
)


# --- where to look ---------------------------------------------------------------------------

# Digits -> "0"; the separators numbers are written with stay. A run of at least seven digits
# and separators starting with a digit is the only place a card, phone, SSN, SIN or IPv4 can be.
_DIGIT_TABLE = bytes.maketrans(b"0123456789", b"0" * 10)
_NUMBER_RUN = re.compile(rb"0[0 .()\-]{6,}")
# The shapes of every numeric pattern on that skeleton (a superset: boundaries are left to the
# real patterns). A run where none fits is skipped without running any detector.
_NUMBER_SHAPES = re.compile(
    rb"0{13}|0000([ \-])0000(?:\1)0000(?:\1)0000|0000([ \-])000000(?:\2)0000"  # card
    rb"|(?:\(000\)[ .\-]?|000[ .\-])000[ .\-]0000"  # North American phone
    rb"|000-00-0000|000 00 0000|000-000-000|000 000 000"  # SSN, SIN
    rb"|0{1,3}\.0{1,3}\.0{1,3}\.0{1,3}"  # IPv4
)


def _build_numeric_regions(scan: ScanText) -> list[Span]:
    """Runs of digits and separators that one of the numeric patterns can match.

    A run of bare digits can only be a card (13-19 digits, checked right here: most such runs in
    code are IDs and timestamps) or an international number (after "+"); any other run needs
    nine digits (SSN/SIN; phones and cards have more) or three dots (IPv4), and a numeric shape.
    """
    text = scan.text
    skeleton = scan.memo(("skeleton", _DIGIT_TABLE), lambda scan: scan.ascii.translate(_DIGIT_TABLE))
    shape = _NUMBER_SHAPES.search
    windows: list[Span] = []
    for run in _NUMBER_RUN.finditer(skeleton):
        start, end = run.span()
        if start and text[start - 1] == "+":
            windows.append((start - 1, end + 2))
            continue
        core = run.group().rstrip(b" .()-")
        digits = core.count(b"0")
        if digits == len(core):  # digits only
            if 13 <= digits <= 19 and v.card_valid(text[start : start + digits]):
                windows.append((start, end + 2))
        elif (digits >= 9 or core.count(b".") >= 3) and shape(skeleton, max(0, start - 1), end):
            windows.append((start - 1, end + 2))  # one char ahead for "(", two after for lookaheads
    return merge_windows(windows, len(text))


def _numeric_regions(scan: ScanText) -> list[Span]:
    return scan.memo("numeric_regions", _build_numeric_regions)


_IBAN_TABLE = bytes.maketrans(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ", b"0" * 10 + b"A" * 26)
_iban_regions = skeleton_triggered(_IBAN_TABLE, re.compile(rb"AA00"), before=1, after=46)
_email_regions = anchored(("@",), before=66, after=260)
# Reported addresses contain a group of three or four hex digits between two colons
# ("2001:db8::1", "::ffff:10.0.0.1"); times (12:34:56) and MAC addresses never do.
_ipv6_regions = triggered(re.compile(r":[0-9A-Fa-f]{3,4}:"), before=46, after=50)
_ssn_context_regions: Locator = anchored(("ssn", "social"), before=0, after=_CONTEXT_WINDOW + 20, fold=True)
_sin_context_regions: Locator = anchored(
    ("sin", "insurance", "nas", "sociale"), before=0, after=_CONTEXT_WINDOW + 20, fold=True
)

DETECTORS: tuple[Detector, ...] = (
    Detector("email", "EMAIL", _EMAIL, _accept_email, _email_regions, priority=3),
    Detector("phone_international", "PHONE", _PHONE_INTL, _accept_intl_phone, _numeric_regions, priority=4),
    Detector("phone_nanp", "PHONE", _PHONE_NANP, _accept_nanp_phone, _numeric_regions, priority=4),
    Detector("card", "CARD", _CARD, _accept_card, _numeric_regions, priority=1),
    Detector("iban", "IBAN", _IBAN, _accept_iban, _iban_regions, priority=1),
    Detector("ssn", "SSN", _SSN_FORMATTED, checked(v.ssn_valid_formatted), _numeric_regions, priority=2),
    Detector("sin", "SIN", _SIN_FORMATTED, checked(v.sin_valid_formatted), _numeric_regions, priority=2),
    Detector("ssn_bare", "SSN", _NINE_DIGITS, _accept_bare_ssn, _ssn_context_regions, priority=2),
    Detector("sin_bare", "SIN", _NINE_DIGITS, _accept_bare_sin, _sin_context_regions, priority=2),
    Detector("ipv4", "IP", _IPV4, _accept_ipv4, _numeric_regions, priority=3),
    Detector("ipv6", "IP", _IPV6, checked(v.ipv6_reportable), _ipv6_regions, priority=3),
)
