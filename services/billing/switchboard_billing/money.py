"""Money as integer micro-dollars: parsing what people type, formatting what they read.

Every amount billing stores, adds or compares is an ``int`` of micro-dollars
(1 USD = 1,000,000 micros), so sums are exact and fit a 64-bit database column.
Conversions to and from decimal text go through :class:`~decimal.Decimal`; a
``float`` is only ever turned into text first (``Decimal(str(x))``), so ``0.1``
means one tenth, not the binary fraction closest to it.

Rounding rules, used everywhere in billing:

* a request's actual cost and any amount a person enters: to the nearest
  micro-dollar, halves away from zero (:data:`~decimal.ROUND_HALF_UP`);
* a worst-case cost held against a budget before a call: up to the next
  micro-dollar (:func:`ceil_micros`), so a reservation never undercounts.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_HALF_UP, Context, Decimal, InvalidOperation, localcontext

MICROS_PER_USD = 1_000_000
#: Largest amount a signed 64-bit column holds, in micro-dollars (about 9.2 trillion USD).
MAX_MICROS = 2**63 - 1

_MICRO = Decimal(1).scaleb(-6)
_MAX_USD = Decimal(MAX_MICROS).scaleb(-6)
# Enough digits for any int64 of micros plus generous sub-micro precision, so
# intermediate products of prices and token counts never round.
_WIDE = Context(prec=60, rounding=ROUND_HALF_UP)

MoneyInput = str | int | float | Decimal


class MoneyError(ValueError):
    """An amount that is not a usable amount of money; the message says why and what is accepted."""


def to_decimal(value: MoneyInput, *, what: str = "amount") -> Decimal:
    """Read a number from config or user input as an exact, finite Decimal.

    Accepts ints, Decimals, floats (through their shortest text form, so YAML's
    ``0.15`` is exactly 0.15) and strings such as ``"12.50"``, ``"$3"`` or
    ``" 0.000001 "``. Rejects booleans, NaN and infinities. ``what`` names the
    value in error messages (e.g. the config key).
    """
    if isinstance(value, bool):
        raise MoneyError(f"{what}: expected a number, got a boolean ({value!r})")
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, int):
        number = Decimal(value)
    elif isinstance(value, float):
        number = Decimal(repr(value))
    elif isinstance(value, str):
        text = value.strip().replace("_", "")
        if text.startswith("$"):
            text = text[1:].strip()
        elif text.startswith("-$"):
            text = "-" + text[2:].strip()
        try:
            number = Decimal(text)
        except InvalidOperation:
            raise MoneyError(f'{what}: {value!r} is not a decimal number (write e.g. "12.50")') from None
    else:
        raise MoneyError(f"{what}: expected a number or a decimal string, got {type(value).__name__}")
    if not number.is_finite():
        raise MoneyError(f"{what}: {value!r} is not a finite number")
    return number


def usd_to_micros_half_up(usd: Decimal) -> int:
    """USD amount → micro-dollars, to the nearest micro, halves away from zero."""
    return _to_micros(usd, ROUND_HALF_UP)


def ceil_micros(usd: Decimal) -> int:
    """USD amount → micro-dollars, rounded up (toward +infinity): for worst-case holds."""
    return _to_micros(usd, ROUND_CEILING)


def _to_micros(usd: Decimal, rounding: str) -> int:
    if not usd.is_finite() or usd.copy_abs() > _MAX_USD:
        raise MoneyError(f"amount {usd} USD is out of range (at most {format_usd(MAX_MICROS)} USD)")
    with localcontext(_WIDE):
        micros = int((usd * MICROS_PER_USD).quantize(Decimal(1), rounding=rounding))
    if abs(micros) > MAX_MICROS:
        raise MoneyError(f"amount {usd} USD is out of range (at most {format_usd(MAX_MICROS)} USD)")
    return micros


def parse_usd(value: MoneyInput, *, what: str = "amount", allow_negative: bool = False, strict: bool = False) -> int:
    """Parse a USD amount (``"12.50"``, ``12.5``, ``"0.000001"``, ``"$5"``) to integer micro-dollars.

    Amounts finer than a micro-dollar are rounded to the nearest micro, halves
    up (``"0.0000005"`` → 1), unless ``strict`` is set, in which case they are
    rejected so that nothing a person typed is silently changed. Negative
    amounts are rejected unless ``allow_negative`` (credits, corrections).
    """
    number = to_decimal(value, what=what)
    if number.copy_abs() > _MAX_USD:
        raise MoneyError(f"{what}: {value!r} is out of range (at most {format_usd(MAX_MICROS)} USD)")
    if number < 0 and not allow_negative:
        raise MoneyError(f"{what}: {value!r} is negative; amounts of money here must be 0 or more")
    if strict and number != number.quantize(_MICRO, rounding=ROUND_HALF_UP, context=_WIDE):
        raise MoneyError(f"{what}: {value!r} is finer than a micro-dollar (at most 6 decimal places, e.g. 0.000001)")
    return usd_to_micros_half_up(number)


def micros_to_usd(micros: int) -> Decimal:
    """Integer micro-dollars → exact Decimal USD (for display or APIs that want decimals)."""
    return Decimal(micros).scaleb(-6, context=_WIDE)


def format_usd(micros: int, *, min_decimals: int = 2) -> str:
    """Integer micro-dollars → plain decimal USD text, e.g. ``12_500_000`` → ``"12.50"``, ``1`` → ``"0.000001"``.

    Shows at least ``min_decimals`` decimal places and as many more (up to six)
    as needed to be exact; never scientific notation, never a currency sign.
    """
    if isinstance(micros, bool) or not isinstance(micros, int):
        raise TypeError(f"micros must be an int, got {type(micros).__name__}")
    if not 0 <= min_decimals <= 6:
        raise ValueError("min_decimals must be between 0 and 6")
    sign = "-" if micros < 0 else ""
    whole, fraction = divmod(abs(micros), MICROS_PER_USD)
    digits = f"{fraction:06d}".rstrip("0")
    digits = digits.ljust(min_decimals, "0")
    return f"{sign}{whole}.{digits}" if digits else f"{sign}{whole}"


def format_decimal(value: Decimal) -> str:
    """A Decimal as plain text without exponent or trailing zeros: ``Decimal("0.0750")`` → ``"0.075"``."""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text
