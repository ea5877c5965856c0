"""How numbers read on the dashboard: money to the cent (more digits only below a cent), durations, counts, times.

Every function takes exact values (integer micro-dollars, milliseconds) and
returns text; none is used in arithmetic.
"""

from __future__ import annotations

import time
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal

_CENT_MICROS = 10_000


def money(micros: int | None) -> str:
    """``$1,234.57`` to the cent; a non-zero amount below a cent with two significant digits (``$0.0021``),
    never rounded up to a cent; ``—`` when unknown."""
    if micros is None:
        return "—"
    sign = "-" if micros < 0 else ""
    value = abs(int(micros))
    usd = Decimal(value) / 1_000_000
    if value == 0 or value >= _CENT_MICROS:
        return f"{sign}${usd.quantize(Decimal('0.01'), ROUND_HALF_UP):,}"
    places = min(6, 8 - len(str(value)))  # two significant digits: 1,000-9,999 micro-dollars → 4 places
    step = Decimal(1).scaleb(-places)
    shown = usd.quantize(step, ROUND_HALF_UP)
    if shown >= Decimal("0.01"):
        shown = usd.quantize(step, ROUND_DOWN)
    return f"{sign}${shown}"


def exact_money(micros: int | None) -> str:
    """Every micro-dollar: ``$0.002076`` (for titles and exports)."""
    if micros is None:
        return "—"
    sign = "-" if micros < 0 else ""
    whole, fraction = divmod(abs(int(micros)), 1_000_000)
    return f"{sign}${whole:,}.{fraction:06d}"


def duration(ms: float | None) -> str:
    """``812 ms``, ``1.4 s``, ``2 min 5 s``; ``—`` for none."""
    if not ms or ms <= 0:
        return "—"
    if ms < 1:
        return "<1 ms"
    if ms < 1000:
        return f"{ms:.0f} ms"
    seconds = ms / 1000
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(int(round(seconds)), 60)
    return f"{minutes} min {rest} s" if rest else f"{minutes} min"


def count(n: int | float | None) -> str:
    """``12,345``."""
    return "—" if n is None else f"{int(n):,}"


def compact(n: int | float | None) -> str:
    """``950``, ``12.3k``, ``4.56M``: for tiles and chart axes."""
    if n is None:
        return "—"
    value = float(n)
    for size, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= size:
            scaled = value / size
            text = f"{scaled:.2f}" if abs(scaled) < 10 else f"{scaled:.1f}" if abs(scaled) < 100 else f"{scaled:.0f}"
            return (text.rstrip("0").rstrip(".") if "." in text else text) + suffix
    return f"{value:.0f}" if value == int(value) else f"{value:.2g}"


def percent(part: float, whole: float) -> str:
    """``2.5%`` (``0%`` when there is nothing)."""
    if whole <= 0:
        return "0%"
    share = 100 * part / whole
    return f"{share:.0f}%" if share >= 10 or share == 0 else f"{share:.1f}%"


def utc(ms: int | None, with_date: bool = True) -> str:
    """``Nov 22 14:05 UTC`` from Unix milliseconds; ``—`` for 0."""
    if not ms:
        return "—"
    return time.strftime("%b %d %H:%M UTC" if with_date else "%H:%M UTC", time.gmtime(ms / 1000))


def until(ms: int | None, now_ms: int | None = None) -> str:
    """How long until an instant: ``in 3 h 20 min``, ``in 4 d``; ``now`` once it passed."""
    if not ms:
        return "never"
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    seconds = (ms - now_ms) / 1000
    if seconds <= 0:
        return "now"
    if seconds < 3600:
        return f"in {max(1, int(seconds // 60))} min"
    if seconds < 86_400:
        hours, minutes = divmod(int(seconds // 60), 60)
        return f"in {hours} h {minutes} min" if minutes else f"in {hours} h"
    return f"in {int(round(seconds / 86_400))} d"


def usd_field(micros: int | None) -> str:
    """An amount as a form shows it for editing: exact and short (``50``, ``2.5``, ``0.000125``); "" for none."""
    if micros is None:
        return ""
    text = f"{(Decimal(int(micros)) / 1_000_000).normalize():f}"
    return text
