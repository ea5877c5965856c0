"""The gateway's own count of a completion, billed when the provider's is missing or not credible.

A provider's reported usage is billed as it is, except when

* a stream ends without it, fails part-way, or is cut (then the usage so far, topped up
  to what was visibly produced, or else this estimate);
* it is outside sane bounds (:mod:`switchboard_router.usage_check`): then it is replaced
  by this estimate as a whole, and marked ``reported_by_provider=False``.

The prompt is estimated from the size of the request's messages, tools and inputs; the
answer from the generated text it carried (content, reasoning, refusals, tool names and
arguments, see :mod:`switchboard_translate.generated_text`), never from the JSON around it.
"""

from __future__ import annotations

from typing import Any

import orjson

from switchboard_router.providers.base import TokenUsage
from switchboard_translate.generated_text import DeliveredText, answer_chars, tokens_for_chars

__all__ = ["ProducedSoFar", "answer_estimate", "estimate_prompt_tokens"]


def estimate_prompt_tokens(body: dict[str, Any]) -> int:
    """Tokens of the prompt, estimated from the serialized messages, tools, (embeddings, moderation) inputs and
    (legacy completion) prompt."""
    size = len(orjson.dumps(body.get("messages") or [])) + len(orjson.dumps(body.get("tools") or []))
    for name in ("input", "prompt"):
        if name in body:
            size += len(orjson.dumps(body[name]))
    return tokens_for_chars(size)


def answer_estimate(body: dict[str, Any], answer: dict[str, Any]) -> TokenUsage:
    """The estimated usage of a whole answer to ``body``."""
    return TokenUsage(prompt_tokens=estimate_prompt_tokens(body), completion_tokens=tokens_for_chars(
        answer_chars(answer)), reported_by_provider=False)


class ProducedSoFar(DeliveredText):
    """What a stream relayed, in case it must be billed by estimate (see :class:`DeliveredText`).

    The prompt's estimate is made once per stream, when first needed: a stream's progress records ask for it
    every second, and for a 100 KB conversation it costs a serialization of the whole prompt.
    """

    __slots__ = ("_prompt_tokens",)

    def __init__(self) -> None:
        super().__init__()
        self._prompt_tokens = -1

    def prompt_tokens(self, body: dict[str, Any]) -> int:
        """The estimate of ``body``'s prompt (the same request's at every call)."""
        if self._prompt_tokens < 0:
            self._prompt_tokens = estimate_prompt_tokens(body)
        return self._prompt_tokens

    def usage(self, reported: TokenUsage | None, failed: bool, body: dict[str, Any]) -> TokenUsage:
        """The provider's usage; after a failure topped up to what was visibly produced; else an estimate.

        ``reported`` is None when the provider reported nothing (or nothing credible); ``body`` is
        the request, whose prompt is estimated only when it must be.
        """
        if reported is not None and not reported.reported_by_provider:
            reported = None  # an adapter's placeholder for "the provider said nothing"
        if reported is not None and not failed:
            return reported
        produced = self.tokens()
        if reported is None:
            return TokenUsage(prompt_tokens=self.prompt_tokens(body), completion_tokens=produced,
                              reported_by_provider=False)
        if reported.completion_tokens < produced:
            reported.completion_tokens = produced
        return reported
