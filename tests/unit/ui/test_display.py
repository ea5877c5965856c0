"""How the dashboard writes numbers: money to the cent (more digits only below a cent, never rounded up to one),
durations, counts; and the time ranges and buckets of its charts."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from switchboard_facade.ui import ranges
from switchboard_facade.ui.display import compact, duration, exact_money, money, percent, until, usd_field

NOW = int(datetime(2026, 11, 22, 14, 25, tzinfo=UTC).timestamp() * 1000)


@pytest.mark.parametrize(("micros", "shown"), [
    (0, "$0.00"), (2_076, "$0.0021"), (9_999, "$0.0099"), (150, "$0.00015"), (5, "$0.000005"),
    (10_000, "$0.01"), (12_345, "$0.01"), (5_000_000, "$5.00"), (1_234_567_890, "$1,234.57"),
    (-2_076, "-$0.0021"), (None, "—"),
])
def test_money_is_shown_to_the_cent_and_below_a_cent_to_two_digits(micros: int | None, shown: str) -> None:
    assert money(micros) == shown


def test_exact_money_and_form_amounts_keep_every_micro_dollar() -> None:
    assert exact_money(2_076) == "$0.002076" and exact_money(1_234_567_890) == "$1,234.567890"
    assert usd_field(50_000_000) == "50" and usd_field(2_500_000) == "2.5" and usd_field(125) == "0.000125"
    assert usd_field(None) == ""


def test_durations_counts_and_times() -> None:
    assert [duration(v) for v in (0, 0.4, 812, 1440, 65_000)] == ["—", "<1 ms", "812 ms", "1.4 s", "1 min 5 s"]
    assert [compact(v) for v in (950, 1234, 12_345, 4_567_890)] == ["950", "1.23k", "12.3k", "4.57M"]
    assert [compact(v) for v in (10_000, 200_000, 1_000_000, 128_000)] == ["10k", "200k", "1M", "128k"]
    assert percent(1, 8) == "12%" and percent(1, 40) == "2.5%" and percent(3, 0) == "0%"
    assert until(NOW + 3 * 3_600_000 + 20 * 60_000, NOW) == "in 3 h 20 min"
    assert until(NOW + 4 * 86_400_000, NOW) == "in 4 d" and until(NOW - 1, NOW) == "now" and until(0) == "never"


def test_short_ranges_have_hourly_buckets_and_long_ones_daily() -> None:
    day = ranges.parse("24h", "", "", NOW)
    assert day.bucket == "hour" and len(day.starts()) == 24
    assert day.to_ms == int(datetime(2026, 11, 22, 15, tzinfo=UTC).timestamp() * 1000), "the current hour is in"
    assert day.key_of("2026-11-22T14:00:00Z") == day.starts()[-1]
    week = ranges.parse("7d", "", "", NOW)
    assert week.bucket == "day" and len(week.starts()) == 7 and week.key_of("2026-11-22") == week.starts()[-1]
    assert [week.tick(s) for s in week.starts()][-1] == "Nov 22"
    custom = ranges.parse("", "2026-11-20", "2026-11-22", NOW)
    assert custom.bucket == "hour" and len(custom.starts()) == 72 and custom.label() == "2026-11-20 to 2026-11-22"
    longer = ranges.parse("", "2026-11-01", "2026-11-22", NOW)
    assert longer.bucket == "day" and len(longer.starts()) == 22
    assert ranges.parse("bogus", "", "", NOW).preset == ranges.DEFAULT
    with pytest.raises(ValueError):
        ranges.parse("", "22/11/2026", "", NOW)
