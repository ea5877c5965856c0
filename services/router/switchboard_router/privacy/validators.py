"""Checksum and structure rules that turn a regex candidate into a finding.

Patterns alone over-match in source code (IDs, timestamps, hashes); these checks are what make
a 16-digit number a card and a 9-digit number an SSN. They run only on regex candidates, never
on the whole text, so they may be written for clarity rather than speed.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json

# Registered IBAN lengths per country (SWIFT IBAN registry). A country missing here is rejected:
# an unknown country code is far more likely an identifier in code than a bank account.
IBAN_LENGTHS: dict[str, int] = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22,
    "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28,
    "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23,
    "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26,
    "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20,
    "LV": 21, "LY": 25, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MR": 27, "MT": 31, "MU": 30,
    "NL": 18, "NO": 15, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22,
    "SA": 24, "SC": 31, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "ST": 25, "SV": 28, "TL": 23,
    "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
}  # fmt: skip


def digits_of(text: str) -> str:
    """Only the ASCII digits of ``text`` (drops spaces, dashes, dots, parentheses)."""
    return "".join(ch for ch in text if "0" <= ch <= "9")


def luhn_valid(digits: str) -> bool:
    """Luhn (mod 10) check used by payment cards and Canadian SINs."""
    if not digits or not digits.isdigit():
        return False
    total = 0
    for position, ch in enumerate(reversed(digits)):
        value = ord(ch) - 48
        if position % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def card_issuer_plausible(digits: str) -> bool:
    """True when the length and leading digits belong to a real card network.

    Luhn alone accepts one random number in ten; requiring a known issuer prefix (Visa,
    Mastercard, Amex, Discover, Diners, JCB, UnionPay, Maestro) rules out millisecond
    timestamps and snowflake IDs, which start with 1.
    """
    length = len(digits)
    if not 13 <= length <= 19:
        return False
    first2 = int(digits[:2])
    first4 = int(digits[:4])
    if digits[0] == "4":  # Visa
        return length in (13, 16, 19)
    if 51 <= first2 <= 55 or 2221 <= first4 <= 2720:  # Mastercard
        return length == 16
    if first2 in (34, 37):  # American Express
        return length == 15
    if first2 in (36, 38, 39) or 300 <= int(digits[:3]) <= 305:  # Diners Club
        return 14 <= length <= 19
    if 3528 <= first4 <= 3589:  # JCB
        return 16 <= length <= 19
    if first4 == 6011 or first2 == 65 or 644 <= int(digits[:3]) <= 649:  # Discover
        return 16 <= length <= 19
    if first2 == 62:  # UnionPay
        return 16 <= length <= 19
    if first2 in (50, 56, 57, 58, 63, 67, 68, 69):  # Maestro
        return 13 <= length <= 19
    return False


def card_valid(digits: str) -> bool:
    """A payment card number: known issuer prefix and length, Luhn-valid, not one repeated digit."""
    return card_issuer_plausible(digits) and len(set(digits)) > 1 and luhn_valid(digits)


def iban_valid(compact: str) -> bool:
    """ISO 13616 IBAN check: registered country length, then mod 97 == 1 over the rearranged number."""
    expected = IBAN_LENGTHS.get(compact[:2])
    if expected is None or len(compact) != expected or not compact[2:4].isdigit():
        return False
    rearranged = compact[4:] + compact[:4]
    numeric = []
    for ch in rearranged:
        if ch.isdigit():
            numeric.append(ch)
        elif "A" <= ch <= "Z":
            numeric.append(str(ord(ch) - 55))
        else:
            return False
    return int("".join(numeric)) % 97 == 1


def sin_valid(digits: str) -> bool:
    """Canadian Social Insurance Number: 9 digits, Luhn-valid, first digit not 0 or 8 (never issued)."""
    return len(digits) == 9 and digits[0] not in "08" and luhn_valid(digits)


# Numbers voided by the SSA after they were printed on sample cards and used by thousands.
_VOIDED_SSNS = frozenset({"078051120", "219099999"})


def ssn_valid(digits: str) -> bool:
    """US Social Security Number structure: area not 000/666/9xx, group not 00, serial not 0000."""
    if len(digits) != 9 or not digits.isdigit() or digits in _VOIDED_SSNS:
        return False
    area, group, serial = digits[:3], digits[3:5], digits[5:]
    if area in ("000", "666") or area[0] == "9":
        return False
    return group != "00" and serial != "0000"


def ipv4_reportable(candidate: str) -> bool:
    """A valid dotted-quad address that identifies a host.

    Unspecified (0.0.0.0), loopback (127/8), broadcast, multicast and reserved addresses, and
    netmasks (255.x) name no machine and are everywhere in configuration files, so they are not
    reported, nor are quads of single digits (section numbers such as "RFC 1035 section 4.2.3.2",
    versions, the "1.2.3.4" of examples). Private ranges are reported: they reveal internal
    network layout.
    """
    try:
        address = ipaddress.IPv4Address(candidate)
    except ValueError:
        return False
    if all(len(part) == 1 for part in candidate.split(".")):
        return False  # 1.2.3.4, 4.2.3.2: versions and section numbers, or documentation
    if address.is_unspecified or address.is_loopback or address.is_multicast or address.is_reserved:
        return False
    return not candidate.startswith("255.") and not address.is_link_local


def ipv6_reportable(candidate: str) -> bool:
    """A valid IPv6 address with at least three non-empty groups, one of them three or four hex
    digits long, and not loopback/unspecified/link-local/multicast.

    The group rules keep C++/Rust paths (``ab::cd``), Python slices (``1::2``), times and MAC
    addresses out; real host addresses (``2001:db8::...``, ``::ffff:10.0.0.1``) satisfy them.
    """
    if candidate.count(":") < 2:
        return False
    groups = [group for group in candidate.split(":") if group]
    group_count = len(groups) + (1 if "." in candidate else 0)  # an embedded IPv4 fills two groups
    if group_count < 3 or not any(ch.isdigit() for ch in candidate):
        return False
    if not any(len(group) >= 3 for group in groups):
        return False  # "12:34:56::" is a time followed by colons, not a host
    try:
        address = ipaddress.IPv6Address(candidate)
    except ValueError:
        return False
    if address.ipv4_mapped is not None:
        return ipv4_reportable(str(address.ipv4_mapped))
    return not (address.is_unspecified or address.is_loopback or address.is_link_local or address.is_multicast)


def jwt_header_valid(token: str) -> bool:
    """The first segment of ``token`` is base64url JSON with an ``alg`` member (a JWS/JWT header)."""
    header = token.split(".", 1)[0]
    padded = header + "=" * (-len(header) % 4)
    try:
        decoded = json.loads(base64.urlsafe_b64decode(padded))
    except (ValueError, binascii.Error):
        return False
    return isinstance(decoded, dict) and "alg" in decoded


def phone_digit_count_valid(digits: str) -> bool:
    """E.164 numbers carry 8 to 15 digits including the country code."""
    return 8 <= len(digits) <= 15


def nanp_valid(digits: str) -> bool:
    """North American number: optional country code 1, area and exchange codes start with 2-9."""
    if len(digits) == 11 and digits[0] == "1":
        digits = digits[1:]
    return len(digits) == 10 and digits[0] >= "2" and digits[3] >= "2" and digits[1:3] != "11"


def has_letter_and_digit(token: str) -> bool:
    """Random API keys mix letters and digits; prose and identifiers like ``sk-learn-docs`` do not."""
    return any(ch.isdigit() for ch in token) and any(ch.isalpha() for ch in token)


def ssn_valid_formatted(candidate: str) -> bool:
    """``ssn_valid`` for a written form such as ``123-45-6789``."""
    return ssn_valid(digits_of(candidate))


def sin_valid_formatted(candidate: str) -> bool:
    """``sin_valid`` for a written form such as ``046 454 286``."""
    return sin_valid(digits_of(candidate))
