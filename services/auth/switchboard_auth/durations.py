"""Key lifetimes written the LiteLLM way: ``30s``, ``15m``, ``12h``, ``7d``, ``2w``, ``1mo``, ``1y``."""

from __future__ import annotations

import re

_DURATION = re.compile(r"^\s*(\d{1,12})\s*(s|m|h|d|w|mo|y)\s*$")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "mo": 30 * 86400, "y": 365 * 86400}


#: The longest duration: a century (a key that should never expire has no duration at all).
MAX_SECONDS = 100 * _SECONDS["y"]


def parse_duration(text: str) -> int:
    """Seconds in ``text``; raises ValueError with a message saying the accepted forms and range."""
    match = _DURATION.match(text)
    if not match or int(match.group(1)) <= 0:
        raise ValueError(
            f"{text[:40]!r} is not a duration; use a positive number followed by s, m, h, d, w, mo or y (e.g. '30d')"
        )
    seconds = int(match.group(1)) * _SECONDS[match.group(2)]
    if seconds > MAX_SECONDS:
        raise ValueError(f"{text.strip()[:40]!r} is too long: at most 100y (leave it out for no limit)")
    return seconds
