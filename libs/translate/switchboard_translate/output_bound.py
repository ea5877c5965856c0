"""The output bound of an OpenAI chat body: what the client asked for, and the cap the gateway enforces.

A budget hold covers the most a request can emit. When the client sent no
``max_tokens`` (Cursor never does) or more than the budget allows, the gateway
sends the provider the bound it held, so spend cannot pass the budget whatever
the provider does. The router applies it to the chat body before each attempt
(each deployment's own output limit lowers it further); every provider adapter
then translates ``max_completion_tokens`` / ``max_tokens`` into its own field
(Anthropic and Bedrock ``max_tokens``/``maxTokens``, Gemini ``maxOutputTokens``).
"""

from __future__ import annotations

from typing import Any

#: The chat body's output-limit fields, the newer first (it wins when both are sent).
FIELDS = ("max_completion_tokens", "max_tokens")


def requested_output_tokens(body: dict[str, Any]) -> int:
    """The client's own output cap; 0 when absent."""
    for name in FIELDS:
        value = body.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return 0


def requested_choices(body: dict[str, Any]) -> int:
    """How many answers (``n``) the body asks for: each is bounded by the output cap, so a hold must cover all."""
    value = body.get("n")
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 1 else 1


def bounded(body: dict[str, Any], bound: int) -> tuple[dict[str, Any], int]:
    """``body`` with its output cap lowered to ``bound`` (a new dict; the same one when nothing changes), and the
    cap the gateway set (0 when the client's own was already within the bound, or there is no bound)."""
    if bound <= 0:
        return body, 0
    requested = requested_output_tokens(body)
    if 0 < requested <= bound:
        return body, 0
    out = dict(body)
    for name in FIELDS:
        if name in out:
            out[name] = bound
    if not any(name in out for name in FIELDS):
        out["max_tokens"] = bound
    return out, bound
