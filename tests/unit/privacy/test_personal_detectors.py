from __future__ import annotations

import pytest

from switchboard_router.privacy import find_pii


def _found(text: str, kind: str) -> list[str]:
    return [finding.value for finding in find_pii(text) if finding.kind == kind]


# --- e-mail -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "email"),
    [
        ("Contact alice.smith@example.com for access.", "alice.smith@example.com"),
        ('AUTHOR_EMAIL = "bob+dev@mail.corp.co.uk"', "bob+dev@mail.corp.co.uk"),
        ("<li>carol_oneil@x.io</li>", "carol_oneil@x.io"),
        ("Write to carol.o'neil@example.org today", "carol.o'neil@example.org"),
        ("Envoyé à josé@exämple.com hier", "josé@exämple.com"),
        ("連絡先: 日本@example.jp まで", "日本@example.jp"),
        ("to = 'a' + 'bob@corp.io'", "bob@corp.io"),
        ("x='a'+'b@c.com'", "b@c.com"),
        ("mailto:dave-99@sub-domain.example.org?subject=hi", "dave-99@sub-domain.example.org"),
        ("Signed-off-by: Eve Doe <eve.doe@kernel.org>", "eve.doe@kernel.org"),
    ],
)
def test_email_detected(text: str, email: str) -> None:
    assert _found(text, "EMAIL") == [email]


@pytest.mark.parametrize(
    "text",
    [
        "background: url('icon@2x.png')",
        "git clone git@github.com:org/repo.git",
        "    @property\n    def name(self): ...",
        "npm install lodash@4.17.21",
        "docker pull nginx@sha256:0d17b565c37bcbd895e9d92315a05c1c3c9a29f762b011a10c54a66cd53c9b31",
        "user@localhost",
        "a..b@example.com",
    ],
)
def test_email_false_positives(text: str) -> None:
    assert _found(text, "EMAIL") == []


# --- phone ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "phone"),
    [
        ("Call +44 20 7946 0958 today", "+44 20 7946 0958"),
        ("tel: +1 (415) 555-2671.", "+1 (415) 555-2671"),
        ("whatsapp +4915112345678", "+4915112345678"),
        ("Paris: +33 1 23 45 67 89", "+33 1 23 45 67 89"),
        ("office (415) 555-2671 ext 4", "(415) 555-2671"),
        ("cell 415-555-2671", "415-555-2671"),
        ("fax 415.555.2671", "415.555.2671"),
        ("toll free 1-800-555-0199", "1-800-555-0199"),
    ],
)
def test_phone_detected(text: str, phone: str) -> None:
    assert _found(text, "PHONE") == [phone]


@pytest.mark.parametrize(
    "text",
    [
        "version 10.123.4567",
        "released 2024-01-15 at 12:34:56",
        "created_at: 2024-01-15T12:34:56+05:30",
        "ts = 1700000000",
        "ms = 1700000000000",
        "@@ -12,7 +12,8 @@ def main():",
        "x = 1e+10",
        "i+1234567",
        "uuid 123e4567-e89b-12d3-a456-426614174000",
        "ISBN 978-3-16-148410-0",
        "color: #ff0000; margin: 0 0 0 4px",
        "range(123, 456, 7890)",
        "123-456-7890",  # area code cannot start with 1
        "hex 0x555-1234567",
    ],
)
def test_phone_false_positives(text: str) -> None:
    assert _found(text, "PHONE") == []


# --- payment card -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "card"),
    [
        ("card 4111 1111 1111 1111 exp 12/27", "4111 1111 1111 1111"),
        ("pan=5555-5555-5555-4444", "5555-5555-5555-4444"),
        ("amex 378282246310005.", "378282246310005"),
        ("4111 1111 1111 1111 123", "4111 1111 1111 1111"),  # followed by the CVC
    ],
)
def test_card_detected(text: str, card: str) -> None:
    assert _found(text, "CARD") == [card]


@pytest.mark.parametrize(
    "text",
    [
        "card 4111 1111 1111 1112",  # Luhn fails
        "ms timestamp 1700000000000",
        "snowflake id 1234567890123456789",
        "INT64_MAX = 9223372036854775807",
        "sha 4111111111111111abc",  # part of a longer token
        "v4111111111111111",
        "0.4111111111111111",  # a float
    ],
)
def test_card_false_positives(text: str) -> None:
    assert _found(text, "CARD") == []


# --- IBAN -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "iban"),
    [
        ("IBAN DE89 3704 0044 0532 0130 00 EUR", "DE89 3704 0044 0532 0130 00"),
        ("iban=GB82WEST12345698765432;", "GB82WEST12345698765432"),
        ("pay to FR14 2004 1010 0505 0001 3M02 606", "FR14 2004 1010 0505 0001 3M02 606"),
    ],
)
def test_iban_detected(text: str, iban: str) -> None:
    assert _found(text, "IBAN") == [iban]


@pytest.mark.parametrize(
    "text",
    ["DE89 3704 0044 0532 0130 01", "CONST DE12ABCDEFGHIJKLMNOPQR", "GB82WEST12345698765432X", "AB12 CD34"],
)
def test_iban_false_positives(text: str) -> None:
    assert _found(text, "IBAN") == []


# --- SSN / SIN --------------------------------------------------------------------------------


def test_ssn_formatted_and_contextual() -> None:
    assert _found("SSN: 536-22-1234", "SSN") == ["536-22-1234"]
    assert _found("employee 536 22 1234", "SSN") == ["536 22 1234"]
    assert _found("social security number 536221234", "SSN") == ["536221234"]
    assert _found("order id 536221234", "SSN") == []  # nine bare digits need the keyword


@pytest.mark.parametrize("text", ["ssn 666-12-3456", "900-12-3456", "536-00-1234", "date 2024-01-15", "536-22-12345"])
def test_ssn_false_positives(text: str) -> None:
    assert _found(text, "SSN") == []


def test_sin_formatted_and_contextual() -> None:
    assert _found("SIN 130 692 544", "SIN") == ["130 692 544"]
    assert _found("numéro: 130-692-544", "SIN") == ["130-692-544"]
    assert _found("Social Insurance Number: 130692544", "SIN") == ["130692544"]
    assert _found("invoice 130692544", "SIN") == []


@pytest.mark.parametrize("text", ["130 692 545", "046 454 286", "rgb 255 255 255", "matrix 100 200 300"])
def test_sin_false_positives(text: str) -> None:
    assert _found(text, "SIN") == []


# --- IP addresses -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "address"),
    [
        ("ssh admin@203.0.113.7", "203.0.113.7"),
        ("upstream 10.0.12.5:8080;", "10.0.12.5"),
        ("client_ip=192.168.1.20.", "192.168.1.20"),
        ("AAAA 2001:db8::8a2e:370:7334", "2001:db8::8a2e:370:7334"),
        ("[2001:0db8:85a3:0000:0000:8a2e:0370:7334]:443", "2001:0db8:85a3:0000:0000:8a2e:0370:7334"),
        ("mapped ::ffff:203.0.113.7 here", "::ffff:203.0.113.7"),
    ],
)
def test_ip_detected(text: str, address: str) -> None:
    assert _found(text, "IP") == [address]


@pytest.mark.parametrize(
    "text",
    [
        "listen 127.0.0.1:8000",
        "bind 0.0.0.0",
        "netmask 255.255.255.0",
        "version 1.2.3.4",
        'version: "10.0.19041.1"',
        "pkg==1.2.3.4",
        "v1.2.3.4",
        "1.2.3.4.5",
        "999.1.1.1",
        "localhost ::1",
        "std::vector<int> v; a::b::c",
        "arr[1::2]",
        "mac 00:1a:2b:3c:4d:5e",
        "time 12:34:56.789",
        "fe80::1",
        "uuid 550e8400-e29b-41d4-a716-446655440000",
        "color: #a1b2c3",
    ],
)
def test_ip_false_positives(text: str) -> None:
    assert _found(text, "IP") == []


# --- a realistic code block -------------------------------------------------------------------


def test_code_block_without_personal_data_has_no_findings() -> None:
    code = """
    import numpy as np  # numpy==1.26.4
    VERSION = "2.31.0"
    COMMIT = "9fceb02d0ae598e95dc970b74767f19372d61af8"
    REQUEST_ID = "550e8400-e29b-41d4-a716-446655440000"
    TIMEOUT_MS = 30000
    created = datetime(2024, 1, 15, 12, 34, 56)  # 2024-01-15T12:34:56Z
    MAX = 0x7fffffff; BIG = 18446744073709551615
    style = "color: #ff0000; background: rgba(255, 255, 255, 0.5)"
    server.listen(port=8080, host="0.0.0.0")
    matrix = [[1, 2, 3], [4, 5, 6]]
    ratio = 3.14159265358979
    """
    assert find_pii(code) == []


@pytest.mark.parametrize("text", ["see RFC 1035 section 4.2.3.2", "example 1.2.3.4", "mapped ::ffff:127.0.0.1"])
def test_ip_documentation_forms_not_reported(text: str) -> None:
    assert _found(text, "IP") == []


def test_phone_signed_decimal_is_not_a_phone() -> None:
    assert _found("offset = +35236450.6", "PHONE") == []
