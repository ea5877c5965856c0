"""Budget windows: which period an instant falls in, so spend can reset on schedule.

A budget has a duration (``"30d"``, ``"1mo"``, ``"12h"``, ...), an anchor (the
instant it was created or last reset) and a timezone (UTC unless configured).
:func:`window_for` returns the ``[start, end)`` window containing a given
instant; spend recorded inside it counts against the budget, and the budget
resets at ``end``. Windows are pure functions of (duration, anchor, tz, now), so
every replica agrees on them without storing a "next reset" timestamp.

How each unit tiles time (all windows start from the anchor's local day):

* ``d`` and ``w`` — calendar days in the timezone: every window starts at a local
  midnight, even across daylight-saving changes (such a day is 23 or 25 hours).
* ``mo`` — calendar months counted from the anchor's day of the month, clamped
  to the month's last day (anchor Jan 31: Jan 31, Feb 28/29, Mar 31, Apr 30, ...).
* ``s``, ``m``, ``h`` — elapsed time. A length that divides a day evenly (``1h``,
  ``6h``, ``12h``, ``30m``) restarts at every local midnight, so windows stay
  aligned to the day and its last window absorbs a daylight-saving change. Any
  other length (``5h``, ``36h``) tiles elapsed time from the anchor day's midnight.

All returned instants are timezone-aware UTC datetimes. Naive datetimes are
rejected: a budget boundary must never depend on the server's local time.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Literal, NamedTuple, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

Unit = Literal["s", "m", "h", "d", "w", "mo"]

_DURATION_RE = re.compile(r"^([1-9][0-9]{0,9})(mo|s|m|h|d|w)$")
_SECONDS_PER: dict[str, int] = {"s": 1, "m": 60, "h": 3600}
_DAY = timedelta(days=1)
# Longest schedule accepted, per unit: about a century, so every window stays within datetime's range.
_MAX_AMOUNT: dict[str, int] = {
    "s": 100 * 366 * 86_400,
    "m": 100 * 366 * 1440,
    "h": 100 * 366 * 24,
    "d": 100 * 366,
    "w": 100 * 53,
    "mo": 1200,
}


class DurationError(ValueError):
    """A budget duration that cannot be read; the message lists what is accepted."""


@dataclass(frozen=True, slots=True)
class Duration:
    """A parsed budget duration: ``amount`` of ``unit`` (``"s"``, ``"m"``, ``"h"``, ``"d"``, ``"w"``, ``"mo"``)."""

    amount: int
    unit: Unit

    def __str__(self) -> str:
        return f"{self.amount}{self.unit}"

    @property
    def is_calendar(self) -> bool:
        """True for units counted on the calendar (days, weeks, months) rather than in elapsed seconds."""
        return self.unit in ("d", "w", "mo")


def parse_duration(text: str) -> Duration:
    """Read ``"30d"``-style text: a positive whole number followed by ``s``, ``m``, ``h``, ``d``, ``w`` or ``mo``.

    ``m`` is minutes and ``mo`` is calendar months.
    """
    if not isinstance(text, str):
        raise DurationError(f'budget duration must be text like "30d", got {type(text).__name__}')
    match = _DURATION_RE.match(text.strip())
    if match is None:
        raise DurationError(
            f"invalid budget duration {text!r}: write a positive whole number and a unit, "
            "one of s (seconds), m (minutes), h (hours), d (days), w (weeks), mo (calendar months); "
            'e.g. "1d", "7d", "12h", "1mo"'
        )
    amount, unit = int(match.group(1)), match.group(2)
    if amount > _MAX_AMOUNT[unit]:
        raise DurationError(
            f"budget duration {text!r} is too long (at most {_MAX_AMOUNT[unit]}{unit}, about a century)"
        )
    return Duration(amount, unit)  # type: ignore[arg-type]


class Window(NamedTuple):
    """A half-open budget window ``[start, end)`` in UTC."""

    start: datetime
    end: datetime

    def contains(self, instant: datetime) -> bool:
        """Whether ``instant`` (timezone-aware) lies in ``[start, end)``."""
        return self.start <= _aware(instant, "instant") < self.end


def window_for(duration: Duration | str, now: datetime, anchor: datetime, tz: tzinfo = UTC) -> Window:
    """The window of a budget that contains ``now``.

    ``anchor`` is the instant the budget's schedule starts from (creation or last
    manual reset); windows begin at the local midnight of the anchor's day in
    ``tz`` (UTC by default) and repeat every ``duration``. Instants before the
    anchor fall in the earlier windows of the same schedule.
    """
    if isinstance(duration, str):
        duration = parse_duration(duration)
    zone = tz
    local_now = _aware(now, "now").astimezone(zone)
    anchor_day = _aware(anchor, "anchor").astimezone(zone).date()
    if duration.unit == "mo":
        start_day, end_day = _month_window(duration.amount, local_now.date(), anchor_day)
        return Window(_midnight(start_day, zone), _midnight(end_day, zone))
    if duration.unit in ("d", "w"):
        length = duration.amount * (7 if duration.unit == "w" else 1)
        offset = (local_now.date() - anchor_day).days // length * length
        start_day = anchor_day + timedelta(days=offset)
        return Window(_midnight(start_day, zone), _midnight(start_day + timedelta(days=length), zone))
    seconds = duration.amount * _SECONDS_PER[duration.unit]
    if 86_400 % seconds == 0:
        day = local_now.date()
        return _tile(seconds, _midnight(day, zone), now, limit=_midnight(day + _DAY, zone))
    return _tile(seconds, _midnight(anchor_day, zone), now, limit=None)


def day_window(now: datetime, tz: tzinfo = UTC) -> Window:
    """The calendar day containing ``now`` in ``tz`` (UTC by default): the window of a daily spend cap."""
    day = _aware(now, "now").astimezone(tz).date()
    return Window(_midnight(day, tz), _midnight(day + _DAY, tz))


def parse_timezone(name: str | None) -> tzinfo:
    """An IANA timezone name (``"America/Toronto"``) → tzinfo; empty or None → UTC."""
    if not name:
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f'unknown timezone {name!r}: use an IANA name such as "UTC" or "America/Toronto"') from None


def _tile(seconds: int, origin: datetime, now: datetime, *, limit: datetime | None) -> Window:
    """The ``seconds``-long slot from ``origin`` that holds ``now``, cut at ``limit`` (the next local midnight)."""
    step = timedelta(seconds=seconds)
    index = (now.astimezone(UTC) - origin) // step
    start = origin + index * step
    end = start + step
    if limit is not None and end > limit:
        end = limit
    return Window(start, end)


def _month_window(months: int, today: date, anchor_day: date) -> tuple[date, date]:
    """First and next-first day of the ``months``-long period anchored on ``anchor_day`` that holds ``today``."""
    elapsed = (today.year - anchor_day.year) * 12 + (today.month - anchor_day.month)
    index = elapsed // months
    start = _add_months(anchor_day, index * months)
    if start > today:
        index -= 1
        start = _add_months(anchor_day, index * months)
    return start, _add_months(anchor_day, (index + 1) * months)


def _add_months(anchor_day: date, months: int) -> date:
    """``anchor_day`` moved by whole months, its day of month clamped to the target month's length."""
    total = anchor_day.year * 12 + (anchor_day.month - 1) + months
    year, month = divmod(total, 12)
    month += 1
    return date(year, month, min(anchor_day.day, calendar.monthrange(year, month)[1]))


def _midnight(day: date, zone: tzinfo) -> datetime:
    """The first instant of ``day`` in ``zone``, as UTC.

    Where a zone skips midnight (a daylight-saving jump at 00:00), the day starts
    at the first wall-clock time that exists; ``fold=0`` resolves to exactly that.
    """
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


def _aware(instant: datetime, name: str) -> datetime:
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime (got naive {instant.isoformat()})")
    return instant


class Clock(Protocol):
    """Where billing gets the current time; tests substitute :class:`ManualClock`."""

    def now(self) -> datetime:
        """The current instant, timezone-aware UTC."""
        ...


class SystemClock:
    """The machine's real-time clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class ManualClock:
    """A clock that moves only when told to, for deterministic tests of resets and boundaries."""

    def __init__(self, start: datetime) -> None:
        self._now = _aware(start, "start").astimezone(UTC)

    def now(self) -> datetime:
        return self._now

    def set(self, instant: datetime) -> None:
        self._now = _aware(instant, "instant").astimezone(UTC)

    def advance(self, delta: timedelta | None = None, **kwargs: float) -> datetime:
        """Move forward by ``delta`` or by ``timedelta(**kwargs)`` (e.g. ``advance(hours=1)``); returns the new time."""
        step = delta if delta is not None else timedelta(**kwargs)
        if step < timedelta(0):
            raise ValueError("a clock does not go backwards; use set() to jump to an earlier instant")
        self._now += step
        return self._now
