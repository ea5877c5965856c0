"""The time range a usage page shows, and its buckets: hourly for up to three days, daily beyond.

A range is a preset (the last 24 hours, 7, 30 or 90 days) or two dates, both
days included, in UTC like the ledger's buckets. Every bucket of the range is
listed, empty or not, so a chart's width is the range's, not the data's.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

HOUR_MS = 3_600_000
DAY_MS = 86_400_000
#: Preset name → (label, length in milliseconds).
PRESETS = {"24h": ("24 hours", DAY_MS), "7d": ("7 days", 7 * DAY_MS), "30d": ("30 days", 30 * DAY_MS),
           "90d": ("90 days", 90 * DAY_MS)}
DEFAULT = "24h"
#: Up to this many days, buckets are hours.
HOURLY_UP_TO_DAYS = 3
#: The longest range shown, days (a longer one starts this many days before its end).
MAX_DAYS = 400


@dataclass(frozen=True, slots=True)
class Range:
    preset: str
    #: Inclusive start and exclusive end, Unix milliseconds.
    from_ms: int
    to_ms: int
    #: "hour" or "day" (the ledger's group_by).
    bucket: str
    #: The dates of a custom range, as the form shows them ("" for a preset).
    from_date: str = ""
    to_date: str = ""

    @property
    def width_ms(self) -> int:
        return HOUR_MS if self.bucket == "hour" else DAY_MS

    def starts(self) -> list[int]:
        """Every bucket's start, Unix milliseconds."""
        first = self.from_ms - self.from_ms % self.width_ms
        return list(range(first, self.to_ms, self.width_ms))

    def label(self) -> str:
        if self.preset in PRESETS:
            return f"last {PRESETS[self.preset][0]}"
        return f"{self.from_date} to {self.to_date}" if self.from_date != self.to_date else self.from_date

    def bucket_name(self, start_ms: int) -> str:
        moment = time.gmtime(start_ms / 1000)
        if self.bucket == "hour":
            return time.strftime("%a %b %d, %H:00", moment) + time.strftime("–%H:00", time.gmtime(
                (start_ms + HOUR_MS) / 1000))
        return time.strftime("%a %b %d", moment)

    def tick(self, start_ms: int) -> str:
        moment = time.gmtime(start_ms / 1000)
        if self.bucket == "hour" and moment.tm_hour:
            return time.strftime("%H:00", moment)
        return time.strftime("%b %d", moment)

    def key_of(self, group: str) -> int | None:
        """The bucket start of a ledger group label ("2026-11-22" or "2026-11-22T08:00:00Z")."""
        try:
            parsed = datetime.fromisoformat(group.replace("Z", "+00:00"))
        except ValueError:
            return None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return int(parsed.timestamp() * 1000)


def _day_ms(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)


def parse(preset: str, from_date: str, to_date: str, now_ms: int | None = None) -> Range:
    """The range a form asks for; dates win over a preset. Raises ValueError for a date that is not YYYY-MM-DD."""
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    if from_date or to_date:
        today = datetime.fromtimestamp(now_ms / 1000, UTC).date()
        end = date.fromisoformat(to_date) if to_date else today
        start = date.fromisoformat(from_date) if from_date else end - timedelta(days=6)
        if start > end:
            start, end = end, start
        start = max(start, end - timedelta(days=MAX_DAYS - 1))
        days = (end - start).days + 1
        return Range("custom", _day_ms(start), _day_ms(end) + DAY_MS,
                     "hour" if days <= HOURLY_UP_TO_DAYS else "day", start.isoformat(), end.isoformat())
    preset = preset if preset in PRESETS else DEFAULT
    length = PRESETS[preset][1]
    if length <= HOURLY_UP_TO_DAYS * DAY_MS:
        end = now_ms - now_ms % HOUR_MS + HOUR_MS  # the current hour included
        return Range(preset, end - length, end, "hour")
    end = now_ms - now_ms % DAY_MS + DAY_MS  # today included
    return Range(preset, end - length, end, "day")
