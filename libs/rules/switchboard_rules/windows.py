"""Budget windows: which period an instant falls in, so spend can reset on schedule.

A budget has a duration (``"30d"``, ``"1mo"``, ``"12h"``, ``"1y"``, ...; the grammar is
:mod:`switchboard_rules.durations`), an anchor (the
instant it was created or last reset) and a timezone (UTC unless configured).
:func:`window_for` returns the ``[start, end)`` window containing a given
instant; spend recorded inside it counts against the budget, and the budget
resets at ``end``. Windows are pure functions of (duration, anchor, tz, now), so
every replica agrees on them without storing a "next reset" timestamp.

How each unit tiles time (all windows start from the anchor's local day):

* ``d`` and ``w`` — calendar days in the timezone: every window starts at a local
  midnight, even across daylight-saving changes (such a day is 23 or 25 hours).
* ``mo`` and ``y`` — calendar months (a year is twelve) counted from the anchor's day of
  the month, clamped to the month's last day (anchor Jan 31: Jan 31, Feb 28/29, Mar 31, Apr 30, ...).
* ``s``, ``m``, ``h`` — elapsed time. A length that divides a day evenly (``1h``,
  ``6h``, ``12h``, ``30m``) restarts at every local midnight, so windows stay
  aligned to the day and its last window absorbs a daylight-saving change. Any
  other length (``5h``, ``36h``) tiles elapsed time from the anchor day's midnight.

All returned instants are timezone-aware UTC datetimes. Naive datetimes are
rejected: a budget boundary must never depend on the server's local time.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import NamedTuple, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from switchboard_rules.durations import Duration, DurationError, add_months, parse_duration

__all__ = ["Clock", "Duration", "DurationError", "ManualClock", "SystemClock", "Window", "day_window",
           "parse_duration", "parse_timezone", "window_for"]

_DAY = timedelta(days=1)


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
        duration = parse_duration(duration, what="budget_duration")
    zone = tz
    local_now = _aware(now, "now").astimezone(zone)
    anchor_day = _aware(anchor, "anchor").astimezone(zone).date()
    if duration.months:
        start_day, end_day = _month_window(duration.months, local_now.date(), anchor_day)
        return Window(_midnight(start_day, zone), _midnight(end_day, zone))
    if duration.days:
        length = duration.days
        offset = (local_now.date() - anchor_day).days // length * length
        start_day = anchor_day + timedelta(days=offset)
        return Window(_midnight(start_day, zone), _midnight(start_day + timedelta(days=length), zone))
    seconds = duration.seconds
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
    start = add_months(anchor_day, index * months)
    if start > today:
        index -= 1
        start = add_months(anchor_day, index * months)
    return start, add_months(anchor_day, (index + 1) * months)


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
