"""What a router call asks for: a chat completion or embeddings (the unary RPCs, and the Exchange call kinds)."""

from __future__ import annotations

from enum import StrEnum


class Operation(StrEnum):
    """A whole-answer call's kind; its value is the Exchange call kind (``ExchangeRequest.complete``/``embed``)."""

    COMPLETE = "complete"
    EMBED = "embed"
