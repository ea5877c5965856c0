from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from switchboard_rules.windows import (
    Duration,
    DurationError,
    ManualClock,
    SystemClock,
    Window,
    day_window,
    parse_duration,
    parse_timezone,
    window_for,
)

TORONTO = ZoneInfo("America/Toronto")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def local(zone: ZoneInfo, *args: int) -> datetime:
    return datetime(*args, tzinfo=zone)  # type: ignore[misc]


# --- durations -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1d", Duration(1, "d")),
        ("7d", Duration(7, "d")),
        ("30d", Duration(30, "d")),
        ("1mo", Duration(1, "mo")),
        ("12h", Duration(12, "h")),
        ("1w", Duration(1, "w")),
        ("90s", Duration(90, "s")),
        ("15m", Duration(15, "m")),
        (" 3mo ", Duration(3, "mo")),
        ("1y", Duration(1, "y")),
    ],
)
def test_parse_duration(text: str, expected: Duration) -> None:
    assert parse_duration(text) == expected
    assert str(expected) == text.strip()


@pytest.mark.parametrize("bad", ["", "d", "0d", "0y", "-1d", "1.5d", "1yr", "1M", "1D", "mo", "1dd", "1mon", "5mi",
                                 "7 days"])
def test_parse_duration_rejects_everything_else(bad: str) -> None:
    with pytest.raises(DurationError, match="s \\(seconds\\), m \\(minutes\\), h \\(hours\\)"):
        parse_duration(bad)


@pytest.mark.parametrize(("spelled", "expected"), [("30min", Duration(30, "m")), ("1hr", Duration(1, "h")),
                                                    ("2weeks", Duration(2, "w")), ("1month", Duration(1, "mo")),
                                                    ("10secs", Duration(10, "s"))])
def test_parse_duration_reads_units_spelled_out_as_litellm_docs_write_them(spelled: str, expected: Duration) -> None:
    assert parse_duration(spelled) == expected


def test_parse_duration_rejects_schedules_beyond_a_century() -> None:
    with pytest.raises(DurationError, match="too long"):
        parse_duration("5000mo")
    assert parse_duration("1200mo") == Duration(1200, "mo")


def test_parse_timezone() -> None:
    assert parse_timezone(None) is UTC
    assert parse_timezone("") is UTC
    assert parse_timezone("America/Toronto") == TORONTO
    with pytest.raises(ValueError, match="IANA"):
        parse_timezone("Mars/Olympus")


# --- day-based windows -----------------------------------------------------------------------


def test_one_day_window_in_utc() -> None:
    anchor = utc(2026, 3, 1, 15, 30)
    assert window_for("1d", utc(2026, 3, 10, 23, 59, 59), anchor) == (utc(2026, 3, 10), utc(2026, 3, 11))
    assert window_for("1d", utc(2026, 3, 11), anchor) == (utc(2026, 3, 11), utc(2026, 3, 12))


def test_seven_day_windows_start_on_the_anchor_day() -> None:
    anchor = utc(2026, 1, 7, 18, 0)  # a Wednesday, mid-afternoon
    assert window_for("7d", anchor, anchor) == (utc(2026, 1, 7), utc(2026, 1, 14))
    assert window_for("7d", utc(2026, 1, 13, 23, 59), anchor) == (utc(2026, 1, 7), utc(2026, 1, 14))
    assert window_for("7d", utc(2026, 1, 14), anchor) == (utc(2026, 1, 14), utc(2026, 1, 21))
    assert window_for("1w", utc(2026, 1, 14), anchor) == window_for("7d", utc(2026, 1, 14), anchor)


def test_instants_before_the_anchor_fall_in_earlier_windows() -> None:
    anchor = utc(2026, 1, 10)
    assert window_for("7d", utc(2026, 1, 9, 12), anchor) == (utc(2026, 1, 3), utc(2026, 1, 10))


def test_thirty_day_window_resets_exactly_at_the_boundary_with_a_manual_clock() -> None:
    anchor = utc(2026, 2, 1, 9, 0)
    clock = ManualClock(utc(2026, 3, 2, 23, 59, 58))
    first = window_for("30d", clock.now(), anchor)
    assert first == (utc(2026, 2, 1), utc(2026, 3, 3))
    clock.advance(seconds=1)
    assert window_for("30d", clock.now(), anchor) == first
    clock.advance(seconds=1)
    second = window_for("30d", clock.now(), anchor)
    assert second.start == first.end == clock.now()
    assert second.end == utc(2026, 4, 2)
    assert not first.contains(clock.now())
    assert second.contains(clock.now())


def test_days_follow_local_midnight_across_dst_in_toronto() -> None:
    anchor = local(TORONTO, 2026, 3, 1, 10)
    # 2026-03-08 02:00 EST → 03:00 EDT: that local day is 23 hours long.
    spring = window_for("1d", local(TORONTO, 2026, 3, 8, 12), anchor, TORONTO)
    assert spring == (local(TORONTO, 2026, 3, 8), local(TORONTO, 2026, 3, 9))
    assert spring.end - spring.start == timedelta(hours=23)
    assert spring.start.utcoffset() == timedelta(0)  # returned in UTC
    assert spring.start == utc(2026, 3, 8, 5)
    assert spring.end == utc(2026, 3, 9, 4)
    # 2026-11-01 02:00 EDT → 01:00 EST: 25 hours.
    autumn = window_for("1d", local(TORONTO, 2026, 11, 1, 1, 30), anchor, TORONTO)
    assert autumn.end - autumn.start == timedelta(hours=25)
    week = window_for("7d", local(TORONTO, 2026, 3, 9, 0, 30), anchor, TORONTO)
    assert week == (local(TORONTO, 2026, 3, 8), local(TORONTO, 2026, 3, 15))
    assert week.end - week.start == timedelta(days=7, hours=-1)


def test_window_depends_on_the_configured_timezone() -> None:
    instant = utc(2026, 6, 2, 3, 0)  # 23:00 on June 1 in Toronto
    anchor = utc(2026, 1, 1, 12)
    assert window_for("1d", instant, anchor).start == utc(2026, 6, 2)
    assert window_for("1d", instant, anchor, TORONTO) == (local(TORONTO, 2026, 6, 1), local(TORONTO, 2026, 6, 2))


def test_day_window() -> None:
    assert day_window(utc(2026, 5, 5, 13)) == (utc(2026, 5, 5), utc(2026, 5, 6))
    evening = local(TORONTO, 2026, 5, 5, 22)  # already May 6 in UTC
    assert day_window(evening, TORONTO) == (local(TORONTO, 2026, 5, 5), local(TORONTO, 2026, 5, 6))
    assert day_window(evening) == (utc(2026, 5, 6), utc(2026, 5, 7))


# --- months ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "start", "end"),
    [
        (utc(2026, 1, 31), utc(2026, 1, 31), utc(2026, 2, 28)),
        (utc(2026, 2, 27, 23), utc(2026, 1, 31), utc(2026, 2, 28)),
        (utc(2026, 2, 28), utc(2026, 2, 28), utc(2026, 3, 31)),
        (utc(2026, 3, 30), utc(2026, 2, 28), utc(2026, 3, 31)),
        (utc(2026, 4, 30), utc(2026, 4, 30), utc(2026, 5, 31)),
        (utc(2026, 1, 30), utc(2025, 12, 31), utc(2026, 1, 31)),
    ],
)
def test_month_windows_clamp_the_anchor_day_to_month_end(now: datetime, start: datetime, end: datetime) -> None:
    anchor = utc(2025, 10, 31, 8, 45)
    assert window_for("1mo", now, anchor) == (start, end)


def test_month_window_in_a_leap_year() -> None:
    anchor = utc(2028, 1, 31)
    assert window_for("1mo", utc(2028, 2, 15), anchor) == (utc(2028, 1, 31), utc(2028, 2, 29))
    assert window_for("1mo", utc(2028, 3, 1), anchor) == (utc(2028, 2, 29), utc(2028, 3, 31))


def test_multi_month_windows_and_year_boundaries() -> None:
    anchor = utc(2025, 11, 15)
    assert window_for("3mo", utc(2026, 2, 14), anchor) == (utc(2025, 11, 15), utc(2026, 2, 15))
    assert window_for("3mo", utc(2026, 2, 15), anchor) == (utc(2026, 2, 15), utc(2026, 5, 15))
    assert window_for("12mo", utc(2025, 11, 14), anchor) == (utc(2024, 11, 15), utc(2025, 11, 15))


def test_month_windows_start_at_local_midnight() -> None:
    anchor = local(TORONTO, 2026, 1, 15, 18)
    window = window_for("1mo", local(TORONTO, 2026, 3, 20, 9), anchor, TORONTO)
    assert window == (local(TORONTO, 2026, 3, 15), local(TORONTO, 2026, 4, 15))


# --- sub-day windows -------------------------------------------------------------------------


def test_twelve_hour_windows_align_to_midnight() -> None:
    anchor = utc(2026, 1, 1, 7, 13)
    assert window_for("12h", utc(2026, 1, 5, 11, 59), anchor) == (utc(2026, 1, 5), utc(2026, 1, 5, 12))
    assert window_for("12h", utc(2026, 1, 5, 12), anchor) == (utc(2026, 1, 5, 12), utc(2026, 1, 6))
    assert window_for("30m", utc(2026, 1, 5, 12, 45), anchor) == (utc(2026, 1, 5, 12, 30), utc(2026, 1, 5, 13))


def test_sub_day_windows_restart_at_local_midnight_across_dst() -> None:
    anchor = local(TORONTO, 2026, 3, 1)
    # The 23-hour day: second 12h window is cut at the next local midnight.
    late = window_for("12h", local(TORONTO, 2026, 3, 8, 20), anchor, TORONTO)
    assert late.start - local(TORONTO, 2026, 3, 8) == timedelta(hours=12)
    assert late.start == local(TORONTO, 2026, 3, 8, 13)  # 12 elapsed hours after midnight is 13:00 EDT
    assert late.end == local(TORONTO, 2026, 3, 9)
    next_day = window_for("12h", local(TORONTO, 2026, 3, 9, 0, 0, 1), anchor, TORONTO)
    assert next_day.start == local(TORONTO, 2026, 3, 9)
    # The 25-hour day ends with a one-hour window.
    tail = window_for("12h", local(TORONTO, 2026, 11, 1, 23, 30), anchor, TORONTO)
    assert tail == (local(TORONTO, 2026, 11, 1, 23), local(TORONTO, 2026, 11, 2))
    assert tail.end - tail.start == timedelta(hours=1)


def test_lengths_that_do_not_divide_a_day_tile_from_the_anchor_midnight() -> None:
    anchor = utc(2026, 1, 1, 16)
    # Slots from 2026-01-01 00:00: 5h → 00-05, 05-10, ..., 20-01, 01-06 on the 2nd.
    assert window_for("5h", utc(2026, 1, 2, 1), anchor) == (utc(2026, 1, 2, 1), utc(2026, 1, 2, 6))
    assert window_for("5h", utc(2026, 1, 2, 0, 59), anchor) == (utc(2026, 1, 1, 20), utc(2026, 1, 2, 1))
    assert window_for("36h", utc(2026, 1, 2, 13), anchor) == (utc(2026, 1, 2, 12), utc(2026, 1, 4))


@given(
    duration=st.sampled_from(["1d", "7d", "30d", "1w", "1mo", "3mo", "12h", "1h", "5h", "90m", "45s"]),
    offset_seconds=st.integers(min_value=-3 * 365 * 86_400, max_value=3 * 365 * 86_400),
    zone=st.sampled_from(["UTC", "America/Toronto", "Europe/London", "Australia/Lord_Howe", "Asia/Kolkata"]),
)
def test_window_always_contains_now_and_is_contiguous(duration: str, offset_seconds: int, zone: str) -> None:
    tz = ZoneInfo(zone)
    anchor = utc(2026, 1, 31, 10)
    now = anchor + timedelta(seconds=offset_seconds)
    window = window_for(duration, now, anchor, tz)
    assert window.start <= now < window.end
    assert window_for(duration, window.end, anchor, tz).start == window.end
    assert window_for(duration, window.start, anchor, tz) == window
    assert window_for(duration, window.start - timedelta(microseconds=1), anchor, tz).end == window.start


def test_naive_datetimes_are_rejected() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        window_for("1d", datetime(2026, 1, 1), utc(2026, 1, 1))
    with pytest.raises(ValueError, match="timezone-aware"):
        window_for("1d", utc(2026, 1, 1), datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="timezone-aware"):
        ManualClock(datetime(2026, 1, 1))


# --- clocks ----------------------------------------------------------------------------------


def test_manual_clock_moves_only_when_told() -> None:
    clock = ManualClock(local(TORONTO, 2026, 1, 1, 9))
    assert clock.now() == utc(2026, 1, 1, 14)
    assert clock.now().tzinfo is UTC
    assert clock.advance(hours=2) == utc(2026, 1, 1, 16)
    assert clock.advance(timedelta(minutes=30)) == utc(2026, 1, 1, 16, 30)
    clock.set(utc(2025, 1, 1))
    assert clock.now() == utc(2025, 1, 1)
    with pytest.raises(ValueError, match="backwards"):
        clock.advance(seconds=-1)


def test_system_clock_is_aware_utc_and_current() -> None:
    before = datetime.now(UTC)
    now = SystemClock().now()
    assert now.tzinfo is UTC
    assert before <= now <= datetime.now(UTC)


def test_window_is_a_plain_tuple() -> None:
    window = Window(utc(2026, 1, 1), utc(2026, 1, 2))
    start, end = window
    assert (start, end) == (utc(2026, 1, 1), utc(2026, 1, 2))
