"""How much generated text an OpenAI chat answer carries: what every token estimate of an answer counts.

Only what the model wrote counts — content, reasoning, refusals, tool names and
tool arguments — never the JSON around it (ids, model names, ``finish_reason``,
padding), which can be many times longer than a one-word delta. A token is taken
as :data:`CHARS_PER_TOKEN` characters, the usual rule of thumb for English text
and code.

The router bills a stream that ended without credible usage from it
(:mod:`switchboard_router.usage_estimate`), and the facade a stream its client
cancelled; both relay the same ``chat.completion.chunk`` documents, so the rule
lives here, where both can reach it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

#: Characters per token for estimates.
CHARS_PER_TOKEN = 4
#: Chunks of a stream counted exactly; later ones are counted by their size minus the median JSON
#: wrapper of these (so a stream's estimate costs a few parses, and memory for these chunks only).
SAMPLED_CHUNKS = 64
_TEXT_FIELDS = ("content", "reasoning_content", "refusal")


def tokens_for_chars(chars: int) -> int:
    """Tokens of ``chars`` characters, rounded up."""
    return -(-chars // CHARS_PER_TOKEN)


def text_chars(message: Any) -> int:
    """Generated characters of a chat message or a stream delta (text, reasoning, refusal, tool calls)."""
    if not isinstance(message, dict):
        return 0
    total = 0
    for key in _TEXT_FIELDS:
        value = message.get(key)
        if isinstance(value, str):
            total += len(value)
        elif isinstance(value, list):  # content as parts
            total += sum(len(part.get("text") or "") for part in value if isinstance(part, dict))
    for call in message.get("tool_calls") or ():
        function = call.get("function") if isinstance(call, dict) else None
        if isinstance(function, dict):
            total += len(function.get("name") or "") + len(function.get("arguments") or "")
    return total


def chunk_chars(raw: bytes) -> int:
    """Generated characters of one serialized ``chat.completion.chunk`` (0 when it is not one)."""
    try:
        chunk = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return 0
    if not isinstance(chunk, dict):
        return 0
    return sum(text_chars(choice.get("delta")) for choice in chunk.get("choices") or () if isinstance(choice, dict))


def answer_chars(completion: Any) -> int:
    """Generated characters of a whole ``chat.completion`` or legacy ``text_completion`` (every choice)."""
    if not isinstance(completion, dict):
        return 0
    return sum(text_chars(choice.get("message")) + len(choice["text"] if isinstance(choice.get("text"), str) else "")
               for choice in completion.get("choices") or () if isinstance(choice, dict))


class DeliveredText:
    """The generated text of a relayed stream, counted only if it is ever asked for.

    ``add`` costs a length sum per batch and keeps the first :data:`SAMPLED_CHUNKS`
    chunks by reference; :meth:`chars` parses those, and counts each later chunk as
    its size minus their median wrapper (the JSON around the text).
    """

    __slots__ = ("_bytes", "_count", "_sample")

    def __init__(self) -> None:
        self._sample: list[bytes] = []
        self._bytes = 0
        self._count = 0

    def add(self, chunks: Sequence[bytes]) -> None:
        count = self._count
        if count < SAMPLED_CHUNKS:
            self._sample.extend(chunks[:SAMPLED_CHUNKS - count])
        self._count = count + len(chunks)
        self._bytes += sum(map(len, chunks))

    @property
    def chunks(self) -> int:
        return self._count

    def chars(self) -> int:
        counted = [chunk_chars(raw) for raw in self._sample]
        exact = sum(counted)
        rest = self._count - len(counted)
        if rest <= 0:
            return exact
        wrappers = sorted(len(raw) - chars for raw, chars in zip(self._sample, counted, strict=True))
        wrapper = wrappers[len(wrappers) // 2]  # the median: the role chunk's or a tool call's longer one aside
        later_bytes = self._bytes - sum(map(len, self._sample))
        return exact + max(0, later_bytes - wrapper * rest)

    def tokens(self) -> int:
        return tokens_for_chars(self.chars())
