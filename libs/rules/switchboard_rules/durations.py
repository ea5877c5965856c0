"""Durations, written the LiteLLM way: ``30s``, ``15m``, ``12h``, ``7d``, ``2w``, ``1mo``, ``1y``.

One grammar for every duration a person types: a key's lifetime (``duration``)
and a budget's window (``budget_duration``). Auth reads the first, billing the
second; both parse here, so a value one accepts the other never refuses.

``m`` is minutes and ``mo`` calendar months; ``y`` is twelve calendar months.
Spelled-out units written against the number (``30min``, ``1hr``, ``2weeks``), as LiteLLM's documentation
writes them, are read as the same units.
Days and weeks count calendar days (in the budget's timezone for windows);
seconds, minutes and hours count elapsed time. A duration is at most about a
century, so every instant it produces fits a datetime and a 64-bit column.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Literal

Unit = Literal["s", "m", "h", "d", "w", "mo", "y"]

UNITS: tuple[Unit, ...] = ("s", "m", "h", "d", "w", "mo", "y")
_PATTERN = re.compile(r"^\s*([0-9]{1,12})(\s*)([a-z]+)\s*$")
#: Units spelled out, as LiteLLM's documentation writes them too ("30min", "1hr"), → the unit.
SPELLED: dict[str, Unit] = {
    **{u: u for u in UNITS}, "sec": "s", "secs": "s", "second": "s", "seconds": "s", "min": "m", "mins": "m",
    "minute": "m", "minutes": "m", "hr": "h", "hrs": "h", "hour": "h", "hours": "h", "day": "d", "days": "d",
    "week": "w", "weeks": "w", "month": "mo", "months": "mo", "year": "y", "years": "y",
}
#: Elapsed seconds of the units that are not calendar units.
SECONDS_PER: dict[str, int] = {"s": 1, "m": 60, "h": 3600}
#: Longest duration accepted, per unit: about a century.
MAX_AMOUNT: dict[str, int] = {
    "s": 100 * 366 * 86_400,
    "m": 100 * 366 * 1440,
    "h": 100 * 366 * 24,
    "d": 100 * 366,
    "w": 100 * 53,
    "mo": 1200,
    "y": 100,
}
FORMS = ('a positive whole number and a unit: s (seconds), m (minutes), h (hours), d (days), w (weeks), '
         'mo (calendar months) or y (years), e.g. "30d", "12h", "1mo", "1y"')


class DurationError(ValueError):
    """A duration that cannot be read; the message says what is accepted."""


@dataclass(frozen=True, slots=True)
class Duration:
    """``amount`` of ``unit``."""

    amount: int
    unit: Unit

    def __str__(self) -> str:
        return f"{self.amount}{self.unit}"

    @property
    def months(self) -> int:
        """Calendar months of a ``mo`` or ``y`` duration; 0 for the other units."""
        return self.amount * 12 if self.unit == "y" else self.amount if self.unit == "mo" else 0

    @property
    def days(self) -> int:
        """Calendar days of a ``d`` or ``w`` duration; 0 for the other units."""
        return self.amount * 7 if self.unit == "w" else self.amount if self.unit == "d" else 0

    @property
    def seconds(self) -> int:
        """Elapsed seconds of an ``s``, ``m`` or ``h`` duration; 0 for calendar units."""
        return self.amount * SECONDS_PER.get(self.unit, 0)

    def after(self, instant: datetime) -> datetime:
        """``instant`` moved forward by this duration: months on the calendar (the day of month clamped to the
        target month's length), days and weeks as calendar days, the rest as elapsed seconds."""
        if self.months:
            day = add_months(instant.date(), self.months, instant.day)
            return instant.replace(year=day.year, month=day.month, day=day.day)
        if self.days:
            return instant + timedelta(days=self.days)
        return instant + timedelta(seconds=self.seconds)


def parse_duration(text: object, *, what: str = "duration") -> Duration:
    """Reads a duration; raises :class:`DurationError` naming ``what`` and the accepted forms."""
    if not isinstance(text, str):
        raise DurationError(f'{what} must be text like "30d", got {type(text).__name__}')
    match = _PATTERN.match(text)
    unit = None
    if match is not None and (match.group(3) in UNITS or not match.group(2)):  # a spelled-out unit is attached
        unit = SPELLED.get(match.group(3))
    if match is None or unit is None or int(match.group(1)) <= 0:
        raise DurationError(f"{what} {text!r} is not a duration: write {FORMS}")
    amount = int(match.group(1))
    if amount > MAX_AMOUNT[unit]:
        raise DurationError(f"{what} {text!r} is too long: at most {MAX_AMOUNT[unit]}{unit} (about a century)")
    return Duration(amount, unit)


def add_months(day: date, months: int, day_of_month: int | None = None) -> date:
    """``day`` moved by whole calendar months, its day of month (or ``day_of_month``) clamped to the target
    month's length: Jan 31 + 1 month is Feb 28 (or 29)."""
    total = day.year * 12 + (day.month - 1) + months
    year, month = divmod(total, 12)
    month += 1
    wanted = day_of_month or day.day
    return date(year, month, min(wanted, calendar.monthrange(year, month)[1]))
