from __future__ import annotations

import base64
import json

import pytest

from switchboard_router.privacy import validators as v


@pytest.mark.parametrize(
    "digits",
    ["4111111111111111", "5555555555554444", "378282246310005", "6011111111111117", "3530111333300000",
     "30569309025904", "4222222222222", "2223003122003222", "6200000000000005"],
)  # fmt: skip
def test_card_valid_accepts_network_test_numbers(digits: str) -> None:
    assert v.card_valid(digits)


@pytest.mark.parametrize(
    "digits",
    [
        "4111111111111112",  # Luhn fails
        "1700000000000",  # millisecond timestamp: no card network starts with 1
        "1234567890123456",
        "9223372036854775807",  # int64 max
        "4444444444444444",  # one repeated digit
        "411111111111111",  # Visa with 15 digits
    ],
)
def test_card_valid_rejects(digits: str) -> None:
    assert not v.card_valid(digits)


def test_luhn_handles_non_digits() -> None:
    assert not v.luhn_valid("")
    assert not v.luhn_valid("4111-1111")
    assert v.luhn_valid("79927398713")


@pytest.mark.parametrize(
    "iban",
    ["DE89370400440532013000", "GB82WEST12345698765432", "FR1420041010050500013M02606", "NL91ABNA0417164300",
     "CH9300762011623852957", "NO9386011117947"],
)  # fmt: skip
def test_iban_valid(iban: str) -> None:
    assert v.iban_valid(iban)


@pytest.mark.parametrize(
    "iban",
    ["DE89370400440532013001", "DE8937040044053201300", "ZZ89370400440532013000", "GB82WEST1234569876543!"],
)
def test_iban_invalid(iban: str) -> None:
    assert not v.iban_valid(iban)


def test_sin_rules() -> None:
    assert v.sin_valid("130692544")
    assert not v.sin_valid("130692545")  # Luhn
    assert not v.sin_valid("046454286")  # Luhn-valid but 0xx is never issued
    assert not v.sin_valid("13069254")


@pytest.mark.parametrize("digits", ["000123456", "666123456", "912345678", "123001234", "123450000", "078051120"])
def test_ssn_rejects_never_issued(digits: str) -> None:
    assert not v.ssn_valid(digits)


def test_ssn_accepts_structurally_valid() -> None:
    assert v.ssn_valid("536221234")
    assert v.ssn_valid_formatted("536-22-1234")


@pytest.mark.parametrize("address", ["93.184.216.34", "10.1.2.3", "192.168.1.20", "203.0.113.7"])
def test_ipv4_reportable(address: str) -> None:
    assert v.ipv4_reportable(address)


@pytest.mark.parametrize(
    "address",
    ["1.2.3.4", "127.0.0.1", "0.0.0.0", "255.255.255.0", "255.255.255.255", "224.0.0.1", "169.254.1.1", "256.1.1.1"],
)
def test_ipv4_not_reportable(address: str) -> None:
    assert not v.ipv4_reportable(address)


def test_ipv6_rules() -> None:
    assert v.ipv6_reportable("2001:db8::8a2e:370:7334")
    assert v.ipv6_reportable("2001:0db8:85a3:0000:0000:8a2e:0370:7334")
    for not_host in ("::1", "::", "fe80::1:2:3", "1::2", "dead::beef", "12:34:56", "00:1a:2b:3c:4d:5e"):
        assert not v.ipv6_reportable(not_host), not_host


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_jwt_header_needs_alg() -> None:
    assert v.jwt_header_valid(_b64({"alg": "HS256", "typ": "JWT"}) + ".x.y")
    assert not v.jwt_header_valid(_b64({"name": "john"}) + ".x.y")
    assert not v.jwt_header_valid("eyJ!!!.x.y")


def test_nanp_rules() -> None:
    assert v.nanp_valid("4155552671")
    assert v.nanp_valid("14155552671")
    assert not v.nanp_valid("1235552671")  # area code starts with 1
    assert not v.nanp_valid("4151552671")  # exchange starts with 1
