"""Alert thresholds: the percentages of a budget whose crossing raises an alert (docs/alerts.md).

One grammar for the gateway's setting (``SWITCHBOARD_ALERT_THRESHOLDS=50,80,100``, read by billing) and for the
``alert_thresholds`` of a key, team or user (a JSON list ``[50, 90]`` or the same text, read by the facade and
checked again by auth): whole percentages from 1 to 1000, each once, ascending.
"""

from __future__ import annotations

from collections.abc import Iterable

#: The percentages alerted when neither the subject nor the gateway sets any.
DEFAULT_THRESHOLDS = (50, 80, 100)
LOWEST, HIGHEST = 1, 1000
#: Most thresholds one budget may have.
MOST = 20


class ThresholdError(ValueError):
    """Thresholds that are not a list of whole percentages; the message says what is accepted."""


def _problem(got: object) -> ThresholdError:
    return ThresholdError(f"alert thresholds are whole percentages from {LOWEST} to {HIGHEST}, at most {MOST}, "
                          f"like 50,80,100 (got {got!r})")


def normalize(values: Iterable[int]) -> tuple[int, ...]:
    """Each once, ascending; ThresholdError for any out of range (or too many)."""
    out = sorted(set(values))
    if any(isinstance(v, bool) or not isinstance(v, int) or not LOWEST <= v <= HIGHEST for v in out) or \
            len(out) > MOST:
        raise _problem(list(values))
    return tuple(out)


def parse_thresholds(text: str) -> tuple[int, ...]:
    """``"50,80,100"`` (a ``%`` after each is allowed) → (50, 80, 100); at least one."""
    found = []
    for part in text.replace(" ", "").split(","):
        if not part:
            continue
        value = part.removesuffix("%")
        if not value.isdigit():
            raise _problem(part)
        found.append(int(value))
    if not found:
        raise ThresholdError("alert thresholds need at least one percentage, like 50,80,100")
    return normalize(found)
