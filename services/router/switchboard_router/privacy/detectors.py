"""The scanning engine: run every detector over a text and keep non-overlapping findings.

Each detector is a compiled pattern plus an acceptance rule (checksum, structure, context) and a
cheap substring prefilter that lets the scan skip a pattern outright when the text cannot hold a
match (no ``@`` means no e-mail, no ``eyJ`` means no JWT). Validators run only on candidates.

Overlaps are resolved by priority (secrets first, then checksummed numbers, then the rest), so a
password inside a connection string is never swallowed by a looser e-mail match.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

Span = tuple[int, int]
AcceptRule = Callable[[str, "re.Match[str]"], "Span | None"]


@dataclass(frozen=True, slots=True)
class Finding:
    """One detected value: ``kind`` names its placeholder family, ``detector`` the rule that found it."""

    kind: str
    detector: str
    start: int
    end: int
    value: str


@dataclass(frozen=True, slots=True)
class Detector:
    """A pattern with its acceptance rule.

    ``prefilter``: the text must contain at least one of these substrings for the pattern to run
    (empty tuple: always run). ``accept`` returns the span to report (it may trim the match) or
    None to reject the candidate. ``priority``: lower wins an overlap.
    """

    name: str
    kind: str
    pattern: re.Pattern[str]
    accept: AcceptRule
    prefilter: tuple[str, ...] = ()
    priority: int = 5

    def candidates(self, text: str) -> Iterator[Span]:
        if self.prefilter and not any(needle in text for needle in self.prefilter):
            return
        accept = self.accept
        for match in self.pattern.finditer(text):
            span = accept(text, match)
            if span is not None:
                yield span


def whole_match(_text: str, match: re.Match[str]) -> Span | None:
    """Accept the match as it is (the pattern is specific enough on its own)."""
    return match.span()


def group_span(group: int) -> AcceptRule:
    """Accept only one capture group of the match (e.g. the password inside a URL)."""

    def accept(_text: str, match: re.Match[str]) -> Span | None:
        return match.span(group)

    return accept


def checked(rule: Callable[[str], bool], group: int = 0) -> AcceptRule:
    """Accept the match (or one group) when ``rule`` holds for its text."""

    def accept(_text: str, match: re.Match[str]) -> Span | None:
        return match.span(group) if rule(match.group(group)) else None

    return accept


def find_all(text: str, detectors: Sequence[Detector]) -> list[Finding]:
    """Every accepted, non-overlapping finding in ``text``, ordered by position."""
    raw: list[tuple[int, int, int, Detector]] = []
    for detector in detectors:
        for start, end in detector.candidates(text):
            if end > start:
                raw.append((detector.priority, start, end, detector))
    if not raw:
        return []
    raw.sort(key=lambda item: (item[0], item[1], item[1] - item[2]))
    starts: list[int] = []
    kept: list[tuple[int, int, Detector]] = []
    for _priority, start, end, detector in raw:
        index = bisect.bisect_right(starts, start)
        if index > 0 and kept[index - 1][1] > start:
            continue  # overlaps the kept span that begins at or before this one
        if index < len(kept) and kept[index][0] < end:
            continue  # overlaps the kept span that begins after this one
        starts.insert(index, start)
        kept.insert(index, (start, end, detector))
    return [Finding(detector.kind, detector.name, start, end, text[start:end]) for start, end, detector in kept]
