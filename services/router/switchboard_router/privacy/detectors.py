"""The scanning engine: run every detector over a text and keep non-overlapping findings.

Speed comes from never running a detailed pattern over the whole text. Each detector names a
*locator* that returns the few small regions where a match can be, found by cheap means: a
substring search for a literal anchor (``@``, ``ghp_``, ``eyJ``, ``://``), or one pass of a
trivial pattern over a byte skeleton of the text (digits folded to ``0``) that finds runs of
digits and separators. The detailed pattern, and then its validator (checksum, structure,
context), runs only inside those regions. A region always extends past the anchor by at least
the longest possible match, so the result is the same as scanning the whole text.

Overlaps are resolved by priority (secrets first, then checksummed numbers, then the rest), so a
password inside a connection string is never swallowed by a looser e-mail match.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Hashable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, cast

T = TypeVar("T")
Span = tuple[int, int]
AcceptRule = Callable[[str, "re.Match[str]"], "Span | None"]


class ScanText:
    """The text under scan plus views built once and shared by every detector (lower-cased, skeleton)."""

    __slots__ = ("_memo", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self._memo: dict[Hashable, Any] = {}

    def memo(self, key: Hashable, build: Callable[[ScanText], T]) -> T:
        if key not in self._memo:
            self._memo[key] = build(self)
        return cast(T, self._memo[key])  # what ``build`` made for this key

    @property
    def ascii(self) -> bytes:
        """One byte per character (non-ASCII becomes ``?``), so offsets are the text's offsets."""
        return self.memo("ascii", lambda scan: scan.text.encode("ascii", "replace"))

    @property
    def folded(self) -> str:
        """ASCII-lower-cased text with the text's offsets (``str.lower`` may change lengths)."""
        return self.memo("folded", lambda scan: scan.ascii.lower().decode("ascii"))


Locator = Callable[[ScanText], Sequence[Span]]


def merge_windows(windows: list[Span], size: int) -> list[Span]:
    """Sorted, clipped, merged windows."""
    if not windows:
        return []
    windows.sort()
    merged: list[list[int]] = []
    for start, end in windows:
        start, end = max(0, start), min(size, end)
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [(start, end) for start, end in merged]


def anchored(needles: tuple[str, ...], before: int, after: int, *, fold: bool = False) -> Locator:
    """Regions around each occurrence of a literal: ``before`` chars ahead of it, ``after`` past its start.

    ``fold``: search the lower-cased text (needles must be lower case).
    """

    def build(scan: ScanText) -> list[Span]:
        haystack = scan.folded if fold else scan.text
        windows: list[Span] = []
        for needle in needles:
            position = haystack.find(needle)
            while position != -1:
                windows.append((position - before, position + after))
                position = haystack.find(needle, position + 1)
        return merge_windows(windows, len(haystack))

    key = ("anchored", needles, before, after, fold)
    return lambda scan: scan.memo(key, build)


def starts_at(needles: tuple[str, ...]) -> Locator:
    """Each occurrence of a literal that begins every match (for ``Detector.match_at``).

    The region runs to the end of the text, so a match is never cut short.
    """

    def build(scan: ScanText) -> list[Span]:
        text, size = scan.text, len(scan.text)
        positions: set[int] = set()
        for needle in needles:
            position = text.find(needle)
            while position != -1:
                positions.add(position)
                position = text.find(needle, position + 1)
        return [(position, size) for position in sorted(positions)]

    key = ("starts_at", needles)
    return lambda scan: scan.memo(key, build)


def triggered(trigger: re.Pattern[str], before: int, after: int) -> Locator:
    """Regions around each match of a cheap trigger pattern that starts with a literal."""

    def build(scan: ScanText) -> list[Span]:
        windows = [(match.start() - before, match.start() + after) for match in trigger.finditer(scan.text)]
        return merge_windows(windows, len(scan.text))

    key = ("triggered", trigger.pattern, before, after)
    return lambda scan: scan.memo(key, build)


def skeleton_triggered(table: bytes, trigger: re.Pattern[bytes], before: int, after: int) -> Locator:
    """Regions around matches of ``trigger`` in the text's bytes mapped through ``table``.

    Folding character classes to one byte (every digit to ``0``) lets a trigger start with a
    literal, which the regex engine searches far faster than a character class.
    """

    def build(scan: ScanText) -> list[Span]:
        skeleton = scan.memo(("skeleton", table), lambda scan: scan.ascii.translate(table))
        windows = [(match.start() - before, match.end() + after) for match in trigger.finditer(skeleton)]
        return merge_windows(windows, len(skeleton))

    key = ("skeleton", table, trigger.pattern, before, after)
    return lambda scan: scan.memo(key, build)


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
    """A pattern with its acceptance rule and where to look for it.

    ``locate``: the regions that can hold a match (None: the whole text). ``match_at``: a match
    must begin exactly at each region's start (the locator found its literal prefix) instead of
    anywhere inside it. ``accept`` returns the span to report (it may trim the match) or None to
    reject the candidate. ``priority``: lower wins an overlap.
    """

    name: str
    kind: str
    pattern: re.Pattern[str]
    accept: AcceptRule
    locate: Locator | None = None
    priority: int = 5
    match_at: bool = False

    def candidates(self, scan: ScanText) -> Iterator[Span]:
        text = scan.text
        regions = self.locate(scan) if self.locate is not None else ((0, len(text)),)
        accept = self.accept
        if self.match_at:
            match_one = self.pattern.match
            for start, end in regions:
                match = match_one(text, start, end)
                if match is not None:
                    span = accept(text, match)
                    if span is not None:
                        yield span
            return
        search = self.pattern.search
        for start, end in regions:
            position = start
            while position < end:
                match = search(text, position, end)
                if match is None:
                    break
                span = accept(text, match)
                if span is not None:
                    yield span
                    position = max(match.end(), match.start() + 1)
                else:
                    # A rejected candidate may hide a valid one that starts inside it.
                    position = match.start() + 1


def whole_match(_text: str, match: re.Match[str]) -> Span | None:
    """Accept the match as it is (the pattern is specific enough on its own)."""
    return match.span()


def checked(rule: Callable[[str], bool], group: int = 0) -> AcceptRule:
    """Accept the match (or one group) when ``rule`` holds for its text."""

    def accept(_text: str, match: re.Match[str]) -> Span | None:
        return match.span(group) if rule(match.group(group)) else None

    return accept


def find_all(text: str, detectors: Sequence[Detector]) -> list[Finding]:
    """Every accepted, non-overlapping finding in ``text``, ordered by position."""
    scan = ScanText(text)
    raw: list[tuple[int, int, int, Detector]] = []
    for detector in detectors:
        for start, end in detector.candidates(scan):
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
