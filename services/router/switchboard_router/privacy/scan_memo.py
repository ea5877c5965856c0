"""What a text scanned before was found to hold, recognised by its digest.

Cursor and every other chat client resend the whole conversation on every turn: the system
prompt, the rules, the open files and each earlier message arrive again, and in a long agent
session they are nearly all of the request. Scanning them again costs about 8 ms per 100 KB;
recognising them costs a BLAKE2b digest (about 0.2 ms per 100 KB). The detectors are pure
functions of the text, so a text with the same digest has the same findings (same values, same
offsets): the substitution sent upstream and the restored answer are byte-identical to a full
scan's. A 128-bit digest makes a collision, which could hide a finding, practically impossible,
and keeps no copy of the text itself in memory.

Only very short texts are scanned directly: a digest costs about what scanning 10 characters does,
and a conversation's short messages (user turns, tool-call arguments) come back every turn too.
The memo is bounded (least recently used out first, about 5 MB when full) and per process.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from switchboard_router.privacy.detectors import Finding

#: Texts shorter than this are scanned every time.
MIN_CHARS = 128
#: Distinct texts remembered (each holds a 16-byte digest and its few findings).
MAX_ENTRIES = 16384


class ScanMemo:
    """``find(text)`` = ``scan(text)``, computed once per distinct long text."""

    def __init__(self, scan: Callable[[str], list[Finding]], max_entries: int = MAX_ENTRIES,
                 min_chars: int = MIN_CHARS) -> None:
        self._scan = scan
        self._max_entries = max_entries
        self._min_chars = min_chars
        self._found: dict[bytes, tuple[Finding, ...]] = {}  # insertion order = least recently used first
        self.hits = 0
        self.misses = 0

    def find(self, text: str) -> list[Finding]:
        if len(text) < self._min_chars:
            return self._scan(text)
        digest = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()
        found = self._found.pop(digest, None)
        if found is None:
            self.misses += 1
            found = tuple(self._scan(text))
            if len(self._found) >= self._max_entries:
                del self._found[next(iter(self._found))]
        else:
            self.hits += 1
        self._found[digest] = found
        return list(found)
