"""A chat answer's log probabilities, as the Responses API gives them.

Chat carries them in ``choices[].logprobs.content`` (whole) and with each
chunk's text (streamed): ``[{token, logprob, bytes, top_logprobs: [{token,
logprob, bytes}]}]``, ``bytes`` possibly null. The Responses API puts them in
two shapes (OpenAI's reference, as its SDK types them):

- an ``output_text`` part's ``logprobs``: ``{token, bytes, logprob,
  top_logprobs: [{token, bytes, logprob}]}``, ``bytes`` always a list;
- the ``logprobs`` of ``response.output_text.delta`` (the delta's tokens) and
  ``response.output_text.done`` (the whole text's): ``{token, logprob,
  top_logprobs: [{token, logprob}]}``.

An answer without them (none asked for, or a provider that has none) gives ``[]``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["chat_logprobs", "delta_logprobs", "output_text_logprobs"]


def chat_logprobs(choice: dict[str, Any]) -> list[dict[str, Any]]:
    """The ``logprobs.content`` entries of a chat choice (whole) or chunk choice; ``[]`` when it has none."""
    logprobs = choice.get("logprobs")
    content = logprobs.get("content") if isinstance(logprobs, dict) else None
    return [entry for entry in content if isinstance(entry, dict)] if isinstance(content, list) else []


def _token(entry: dict[str, Any], *, with_bytes: bool) -> dict[str, Any]:
    token = str(entry.get("token") or "")
    out: dict[str, Any] = {"token": token, "logprob": float(entry.get("logprob") or 0.0)}
    if with_bytes:
        raw = entry.get("bytes")
        out["bytes"] = raw if isinstance(raw, list) else list(token.encode("utf-8"))
    return out


def _tops(entry: dict[str, Any]) -> list[dict[str, Any]]:
    tops = entry.get("top_logprobs")
    return [top for top in tops if isinstance(top, dict)] if isinstance(tops, list) else []


def output_text_logprobs(content: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Chat ``logprobs.content`` entries as an ``output_text`` part's ``logprobs``."""
    return [{**_token(entry, with_bytes=True),
             "top_logprobs": [_token(top, with_bytes=True) for top in _tops(entry)]} for entry in content]


def delta_logprobs(content: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Chat ``logprobs.content`` entries as the ``logprobs`` of a ``response.output_text.delta`` (or ``.done``)."""
    return [{**_token(entry, with_bytes=False),
             "top_logprobs": [_token(top, with_bytes=False) for top in _tops(entry)]} for entry in content]
