"""Two passes over a request's text fields: find every value, then replace every occurrence.

Pass one runs the detectors over every scanned field and remembers what they found. Pass two
rewrites each field: the spans the detectors found, plus every other occurrence of a value found
anywhere in the request (a password detected inside a connection string is also hidden where it
appears alone as ``PGPASSWORD=...``; an address glued to other text is hidden too once it was
found elsewhere). Values made only of letters are not propagated this way: a dictionary-word
password such as ``postgres`` would otherwise erase every mention of the word.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable

from switchboard_router.privacy.detectors import Finding
from switchboard_router.privacy.scan import KINDS, find_pii

Replacement = Callable[[str, str], str]  # (kind, value) -> text sent instead


def _propagates(value: str) -> bool:
    return not value.isalpha()


class RequestRewriter:
    """``collect`` each field (pass one), then ``rewrite`` each field (pass two)."""

    def __init__(self, replacement: Replacement) -> None:
        self._replacement = replacement
        self._findings: dict[str, list[Finding]] = {}
        self._kind_of: dict[str, str] = {}  # value -> kind, in order of first detection
        self._propagated: list[str] | None = None  # values searched for everywhere, longest first

    def collect(self, text: str) -> str:
        """Pass one: detect and remember; returns ``text`` unchanged."""
        if text not in self._findings:
            findings = find_pii(text)
            self._findings[text] = findings
            for finding in findings:
                self._kind_of.setdefault(finding.value, finding.kind)
            self._propagated = None
        return text

    def _values_to_propagate(self) -> list[str]:
        """Longest values first, so a value that contains another one is replaced whole (computed once per
        request, after pass one)."""
        if self._propagated is None:
            self._propagated = [value for value in sorted(self._kind_of, key=len, reverse=True)
                                if _propagates(value)]
        return self._propagated

    @property
    def found_anything(self) -> bool:
        return bool(self._kind_of)

    def counts(self) -> dict[str, int]:
        """Distinct values per lower-case kind, in ``KINDS`` order."""
        per_kind: dict[str, int] = {}
        for kind in self._kind_of.values():
            per_kind[kind] = per_kind.get(kind, 0) + 1
        return {kind.lower(): per_kind[kind] for kind in KINDS if kind in per_kind}

    def _spans(self, text: str) -> list[tuple[int, int, str, str]]:
        findings = self._findings.get(text)
        if findings is None:
            findings = find_pii(text)
        spans = [(f.start, f.end, f.kind, f.value) for f in findings]
        starts = [f.start for f in findings]  # sorted, non-overlapping, like ``ends``
        ends = [f.end for f in findings]
        for value in self._values_to_propagate():
            position = text.find(value)
            while position != -1:
                end = position + len(value)
                index = bisect.bisect_right(starts, position)
                free_before = index == 0 or ends[index - 1] <= position
                free_after = index == len(starts) or starts[index] >= end
                if free_before and free_after:
                    spans.append((position, end, self._kind_of[value], value))
                    starts.insert(index, position)
                    ends.insert(index, end)
                position = text.find(value, position + 1)
        spans.sort()
        return spans

    def rewrite(self, text: str) -> str:
        """Pass two: ``text`` with every known value replaced."""
        if not self._kind_of:
            return text
        spans = self._spans(text)
        if not spans:
            return text
        pieces: list[str] = []
        cursor = 0
        for start, end, kind, value in spans:
            pieces.append(text[cursor:start])
            pieces.append(self._replacement(kind, value))
            cursor = end
        pieces.append(text[cursor:])
        return "".join(pieces)
