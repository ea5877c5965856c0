"""Whether an OpenAI chat body asks for log probabilities, and for how many alternatives.

``logprobs: true`` asks for the log probability of every output token;
``top_logprobs: N`` (0 to 20) for the N most likely tokens at each position as
well. A provider that has them is asked for them (Gemini's ``responseLogprobs``
and ``logprobs``); a provider that has none refuses the request in its own
translation, before it is sent: an answer without the log probabilities the
client asked for would look like one that has them. ``logprobs: false`` (or
``top_logprobs: 0`` alone) asks for nothing and is served anywhere.
"""

from __future__ import annotations

from typing import Any

#: How a chat body asks for no log probabilities (each dialect says it in its own fields: see :mod:`.error_terms`).
LEAVE_OUT_LOGPROBS = "leave out logprobs and top_logprobs (or set logprobs to false)"
#: What a client whose model has no log probabilities should do instead.
NO_LOGPROBS_ADVICE = f"{LEAVE_OUT_LOGPROBS}, or use a model whose provider has them (OpenAI, Gemini)"


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def requested_logprobs(body: dict[str, Any]) -> int | None:
    """None when the body asks for no log probabilities; else how many top alternatives it wants at each
    position (0: only the chosen tokens')."""
    top = _count(body.get("top_logprobs"))
    if body.get("logprobs") is True or top:
        return top
    return None
