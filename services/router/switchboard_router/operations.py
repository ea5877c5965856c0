"""What a router call asks for: a chat completion, embeddings, a legacy text completion or a moderation (the
unary RPCs, and the Exchange call kinds)."""

from __future__ import annotations

from enum import StrEnum


class Operation(StrEnum):
    """A whole-answer call's kind; its value is the Exchange call kind (``ExchangeRequest.complete``, ``embed``,
    ``text_complete``, ``moderate``)."""

    COMPLETE = "complete"
    EMBED = "embed"
    TEXT_COMPLETE = "text_complete"
    MODERATE = "moderate"

    @property
    def rpc(self) -> str:
        """The unary RPC that serves this kind."""
        return _RPCS[self]

    @property
    def bounded(self) -> bool:
        """The answer is generated text whose length the budget hold bounds (sent to the provider as its
        output cap); embeddings and moderations produce no output tokens."""
        return self in (Operation.COMPLETE, Operation.TEXT_COMPLETE)


_RPCS = {Operation.COMPLETE: "Complete", Operation.EMBED: "Embed", Operation.TEXT_COMPLETE: "TextComplete",
         Operation.MODERATE: "Moderate"}
