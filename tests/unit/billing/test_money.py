from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from switchboard_billing.money import (
    MAX_MICROS,
    MoneyError,
    ceil_micros,
    format_decimal,
    format_usd,
    micros_to_usd,
    parse_usd,
    to_decimal,
    usd_to_micros_half_up,
)


@pytest.mark.parametrize(
    ("text", "micros"),
    [
        ("12.50", 12_500_000),
        (12.5, 12_500_000),
        (0.1, 100_000),
        (3, 3_000_000),
        (Decimal("0.000001"), 1),
        ("0.000001", 1),
        ("$5", 5_000_000),
        (" 1_000.25 ", 1_000_250_000),
        ("0", 0),
        ("1e3", 1_000_000_000),
    ],
)
def test_parse_usd_reads_common_forms(text: object, micros: int) -> None:
    assert parse_usd(text) == micros  # type: ignore[arg-type]


def test_parse_usd_rounds_sub_micro_half_up() -> None:
    assert parse_usd("0.0000005") == 1
    assert parse_usd("0.00000049") == 0
    assert parse_usd("1.2345675") == 1_234_568
    assert parse_usd("-0.0000005", allow_negative=True) == -1


def test_parse_usd_strict_rejects_sub_micro_precision() -> None:
    with pytest.raises(MoneyError, match="finer than a micro-dollar"):
        parse_usd("0.0000005", strict=True)
    with pytest.raises(MoneyError, match="finer than a micro-dollar"):
        parse_usd(1 / 3, strict=True)
    assert parse_usd("12.500000", strict=True) == 12_500_000


@pytest.mark.parametrize("bad", ["abc", "", "1.2.3", "NaN", "inf", "-inf", True, None, [1]])
def test_parse_usd_rejects_non_numbers(bad: object) -> None:
    with pytest.raises(MoneyError):
        parse_usd(bad, what="budget")  # type: ignore[arg-type]


def test_parse_usd_names_the_field_in_errors() -> None:
    with pytest.raises(MoneyError, match="max_budget"):
        parse_usd("twelve", what="max_budget")


def test_parse_usd_rejects_negative_unless_allowed() -> None:
    with pytest.raises(MoneyError, match="negative"):
        parse_usd("-1")
    assert parse_usd("-1.5", allow_negative=True) == -1_500_000
    assert parse_usd("-$2", allow_negative=True) == -2_000_000


def test_parse_usd_rejects_amounts_beyond_int64() -> None:
    with pytest.raises(MoneyError, match="out of range"):
        parse_usd("1e30")
    largest = format_usd(MAX_MICROS)
    assert parse_usd(largest) == MAX_MICROS


def test_float_is_read_through_its_text_form() -> None:
    assert to_decimal(0.15) == Decimal("0.15")
    assert to_decimal(1e-6) == Decimal("0.000001")


@pytest.mark.parametrize(
    ("micros", "text"),
    [
        (12_500_000, "12.50"),
        (1, "0.000001"),
        (0, "0.00"),
        (-3_250_000, "-3.25"),
        (1_234_567, "1.234567"),
        (10_000_000_000, "10000.00"),
        (100_000, "0.10"),
    ],
)
def test_format_usd(micros: int, text: str) -> None:
    assert format_usd(micros) == text


def test_format_usd_min_decimals() -> None:
    assert format_usd(5_000_000, min_decimals=0) == "5"
    assert format_usd(5_100_000, min_decimals=0) == "5.1"
    assert format_usd(5_000_000, min_decimals=6) == "5.000000"
    with pytest.raises(TypeError):
        format_usd(1.5)  # type: ignore[arg-type]


@given(st.integers(min_value=-MAX_MICROS, max_value=MAX_MICROS))
def test_format_then_parse_round_trips(micros: int) -> None:
    assert parse_usd(format_usd(micros), allow_negative=True, strict=True) == micros
    assert usd_to_micros_half_up(micros_to_usd(micros)) == micros


def test_rounding_rules_differ_only_on_fractions() -> None:
    assert usd_to_micros_half_up(Decimal("0.0000014")) == 1
    assert ceil_micros(Decimal("0.0000014")) == 2
    assert ceil_micros(Decimal("0.000002")) == 2
    assert ceil_micros(Decimal("-0.0000014")) == -1


def test_format_decimal_is_plain() -> None:
    assert format_decimal(Decimal("0.0750")) == "0.075"
    assert format_decimal(Decimal("1E+1")) == "10"
    assert format_decimal(Decimal("0.00001875")) == "0.00001875"
    assert format_decimal(Decimal("0.000")) == "0"
    assert format_decimal(Decimal(3)) == "3"
