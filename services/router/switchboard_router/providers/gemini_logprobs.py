"""Gemini's ``logprobsResult`` → OpenAI's ``choices[].logprobs``.

Asked with ``generationConfig.responseLogprobs`` (and ``logprobs``: how many top
alternatives), Gemini puts on each candidate, whole or streamed, a
``logprobsResult``: ``chosenCandidates`` (one ``{token, tokenId, logProbability}``
per decoding step) and ``topCandidates`` (the same steps, each ``{candidates:
[...]}``, most likely first). OpenAI's answer holds the same facts as
``{"content": [{token, logprob, bytes, top_logprobs: [{token, logprob, bytes}]}],
"refusal": null}``. Google's JSON leaves out fields at their default, so a
missing ``logProbability`` is 0.0 (a certain token).
"""

from __future__ import annotations

from typing import Any


def _token(candidate: Any) -> dict[str, Any]:
    candidate = candidate if isinstance(candidate, dict) else {}
    token = str(candidate.get("token") or "")
    return {"token": token, "logprob": float(candidate.get("logProbability") or 0.0),
            "bytes": list(token.encode("utf-8"))}


def logprobs_content(candidate: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The OpenAI ``logprobs.content`` entries of a Gemini candidate; None when it carries no ``logprobsResult``."""
    result = candidate.get("logprobsResult")
    if not isinstance(result, dict):
        return None
    tops = result.get("topCandidates") or []
    content = []
    for step, chosen in enumerate(result.get("chosenCandidates") or []):
        top = tops[step] if step < len(tops) and isinstance(tops[step], dict) else {}
        content.append({**_token(chosen), "top_logprobs": [_token(c) for c in top.get("candidates") or []]})
    return content


def openai_logprobs(content: list[dict[str, Any]] | None) -> dict[str, Any] | None:
    """A choice's ``logprobs`` object for ``content`` (None stays None: none were asked for)."""
    return None if content is None else {"content": content, "refusal": None}
