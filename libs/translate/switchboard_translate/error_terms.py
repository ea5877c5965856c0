"""An error about the canonical chat body, told in the terms of the dialect the client spoke.

Every request becomes an OpenAI chat body before it is admitted and routed, so
whatever refuses it afterwards — the budget, a provider's translation, the
provider itself — names chat fields: ``param: "response_format"``, a message
saying ``leave out logprobs`` or ``send max_tokens of at most 500``. A client of
the Responses API sent ``text.format``, ``top_logprobs`` and
``max_output_tokens``; an Anthropic Messages client ``output_config.format``,
``stop_sequences`` and ``thinking.budget_tokens``. The error each gets names
what it sent.

Each dialect's request translation knows how its fields become chat fields, so
it owns the inverse, an :class:`ErrorTerms`
(:func:`switchboard_translate.responses_request.error_terms`,
:data:`switchboard_translate.anthropic.request_from_anthropic.ERROR_TERMS`); the
HTTP edge tells every error given after translation in those terms. Errors of
the dialect's own validation are in its terms already and are not touched.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["ErrorTerms"]

#: The leading field name of a ``param`` path (``messages`` of ``messages[3].content``).
_HEAD = re.compile(r"[A-Za-z_]+")


@dataclass(frozen=True, slots=True)
class ErrorTerms:
    """How one dialect names the chat fields, and the chat advice, that an error may mention."""

    #: Chat field → the dialect's. A ``param`` matches exactly, or by its leading field: a field kept under its
    #: own name keeps its path (``tools[2]``), one renamed loses it, since the dialect's indices are not chat's
    #: (``messages[3].content`` → ``input``). In messages, the names with an underscore (``max_tokens``,
    #: ``response_format``: no English word) are replaced where they stand as words.
    fields: Mapping[str, str]
    #: Chat advice naming chat syntax (see :mod:`.response_format`, :mod:`.logprobs`) → the dialect's; replaced
    #: before the field names.
    phrases: Mapping[str, str] = field(default_factory=dict)
    _words: re.Pattern[str] | None = field(init=False, default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        words = sorted((name for name in self.fields if "_" in name), key=len, reverse=True)
        if words:
            pattern = re.compile(rf"(?<![\w.\-])(?:{'|'.join(map(re.escape, words))})(?![\w\-])")
            object.__setattr__(self, "_words", pattern)

    def param(self, param: str) -> str:
        """The dialect's name of a chat ``param`` ("" stays "")."""
        if not param:
            return param
        exact = self.fields.get(param)
        if exact is not None:
            return exact
        head = _HEAD.match(param)
        renamed = self.fields.get(head.group()) if head is not None else None
        return param if renamed is None or head is None or renamed == head.group() else renamed

    def message(self, message: str) -> str:
        """``message`` with the chat advice and the chat field names it holds in the dialect's terms."""
        for chat, own in self.phrases.items():
            message = message.replace(chat, own)
        if self._words is not None:
            message = self._words.sub(lambda match: self.fields[match.group()], message)
        return message
