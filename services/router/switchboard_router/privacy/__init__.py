"""Detection and reversible substitution of personal data and secrets in chat requests.

The router calls ``scan_request`` before a request leaves for a provider and restores the answer
with ``restore_completion`` (whole) or ``ChatStreamRestorer`` / ``StreamRestorer`` (streamed).
See docs/privacy.md for what is detected and what is guaranteed.
"""

from __future__ import annotations

from switchboard_router.privacy.detectors import Finding
from switchboard_router.privacy.policy import PiiResult, scan_request
from switchboard_router.privacy.restore import restore_completion, restore_json_text, restore_text
from switchboard_router.privacy.scan import KINDS, find_pii
from switchboard_router.privacy.stream_restore import ChatStreamRestorer, StreamRestorer
from switchboard_rules.policies import PiiPolicy

__all__ = [
    "KINDS",
    "ChatStreamRestorer",
    "Finding",
    "PiiPolicy",
    "PiiResult",
    "StreamRestorer",
    "find_pii",
    "restore_completion",
    "restore_json_text",
    "restore_text",
    "scan_request",
]
