"""Whether a provider's reported usage is believable before it is billed.

A provider (or whatever answers at its address) can report anything: negative
counts, a trillion tokens, an answer longer than the request allowed. Such a
report is not billed: the caller logs it with the request id and bills the
gateway's own estimate instead (:mod:`switchboard_router.usage_estimate`).

The checks are a few integer comparisons; only a prompt count above
:data:`PROMPT_SLACK`, and above what the messages' bare text could hold, makes
the request's size be measured. Limits are generous
on purpose (a factor of :data:`MARGIN` plus a slack), so that no honest report is
ever refused:

* every count is an integer, not negative, and at most 2^40;
* completion tokens at most ``MARGIN`` × the output bound + :data:`COMPLETION_SLACK`,
  where the bound is the request's ``max_completion_tokens``/``max_tokens`` (or else
  the deployment's ``max_output_tokens``), times ``n``;
* prompt tokens at most ``MARGIN`` × the deployment's ``context_window`` + slack, and for
  a request of text only (no images, audio or files, no provider-side tools) at most
  ``MARGIN`` × its size in bytes + :data:`PROMPT_SLACK` — no tokenizer yields more than a
  token per byte of text.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson

from switchboard_router import request_id
from switchboard_router.deployment import Deployment
from switchboard_router.providers.base import TokenUsage

log = logging.getLogger(__name__)

#: No single request is counted in more tokens than this.
MAX_COUNT = 2**40
MARGIN = 2
COMPLETION_SLACK = 1024
#: Tokens a provider may add to a prompt on its own (tool-use system prompts, message framing).
PROMPT_SLACK = 16384
_FIELDS = ("prompt_tokens", "completion_tokens", "cached_prompt_tokens", "cache_write_tokens", "reasoning_tokens")
#: Content part types that are text; any other part (image, audio, file, document) may cost many tokens.
_TEXT_PARTS = frozenset({"text", "input_text", "output_text", "refusal"})
#: Request fields that make the provider add to the prompt what the request does not hold (search results).
_PROVIDER_SIDE_INPUT = ("web_search_options",)


def credible(usage: TokenUsage, body: dict[str, Any], deployment: Deployment) -> bool:
    """Whether ``usage`` may be billed; when not, says why in the log, with the request id."""
    reason = implausible(usage, body, deployment)
    if reason is None:
        return True
    log.warning("provider usage not credible; the gateway's estimate is billed instead",
                extra={"request_id": request_id.current(), "deployment": deployment.id, "reason": reason})
    return False


def implausible(usage: TokenUsage, body: dict[str, Any], deployment: Deployment) -> str | None:
    """Why ``usage`` cannot be what answering ``body`` on ``deployment`` cost, or None when it can."""
    for name in _FIELDS:
        value = getattr(usage, name)
        if type(value) is not int:
            return f"{name} is not a whole number ({type(value).__name__})"
        if value < 0:
            return f"{name} is negative ({value})"
        if value > MAX_COUNT:
            return f"{name} is {value}, above 2^40"
    bound = _output_bound(body, deployment)
    if bound and usage.completion_tokens > MARGIN * bound + COMPLETION_SLACK:
        return f"completion_tokens is {usage.completion_tokens}, far above the output limit of {bound}"
    prompt = usage.prompt_tokens
    if prompt <= PROMPT_SLACK:
        return None
    window = deployment.context_window
    if window and prompt > MARGIN * window + PROMPT_SLACK:
        return f"prompt_tokens is {prompt}, far above the model's context window of {window}"
    if prompt <= MARGIN * _text_floor(body) + PROMPT_SLACK:
        return None  # within what the prompt's bare text alone can hold: no need to serialize it to measure
    size = _text_only_size(body)
    if size is not None and prompt > MARGIN * size + PROMPT_SLACK:
        return f"prompt_tokens is {prompt}, far more than a request of {size} bytes can hold"
    return None


def _output_bound(body: dict[str, Any], deployment: Deployment) -> int:
    """The most tokens the answer may have: the request's limit (else the model's) for each of ``n`` choices."""
    limit = 0
    for name in ("max_completion_tokens", "max_tokens"):
        value = body.get(name)
        if type(value) is int and value > 0:
            limit = value
            break
    limit = limit or deployment.max_output_tokens
    choices = body.get("n")
    return limit * (choices if type(choices) is int and choices > 1 else 1)


def _text_floor(body: dict[str, Any]) -> int:
    """Characters of the messages' text: never more than their serialized size in bytes (JSON adds quotes and
    escapes, UTF-8 a byte or more per character), so a prompt count within the bound of this floor is within the
    bound of the size too, and a long conversation (Cursor's: tens of thousands of tokens every turn) is not
    serialized again just to be believed."""
    messages = body.get("messages")
    if not isinstance(messages, list):
        return 0
    chars = 0
    for message in messages:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            chars += len(content)
        elif isinstance(content, list):
            for part in content:
                text = part.get("text") if isinstance(part, dict) else None
                if isinstance(text, str):
                    chars += len(text)
    return chars


def _text_only_size(body: dict[str, Any]) -> int | None:
    """The serialized size of a request of text only; None when it holds media or provider-side tools."""
    if any(name in body for name in _PROVIDER_SIDE_INPUT):
        return None
    messages = body.get("messages")
    if not isinstance(messages, list):
        return len(orjson.dumps(body["input"])) if "input" in body else None  # embeddings
    for message in messages:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list) and any(
                not isinstance(part, dict) or part.get("type") not in _TEXT_PARTS for part in content):
            return None
    tools = body.get("tools") or []
    if not isinstance(tools, list) or any(not isinstance(t, dict) or t.get("type", "function") != "function"
                                          for t in tools):
        return None
    return len(orjson.dumps(messages)) + len(orjson.dumps(tools))
