"""Building blocks of OpenAI-shaped answers shared by the adapters that synthesise them
(Gemini, Bedrock): ``chat.completion.chunk`` framing and plain text of content parts."""

from __future__ import annotations

from typing import Any

import orjson

from switchboard_router.providers.base import TokenUsage


def plain_text(content: Any) -> str:
    """The text of an OpenAI message content (a string, or text parts joined)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content if part.get("type") in ("text", "input_text"))


class ChunkEmitter:
    """Serialises ``chat.completion.chunk`` objects for one streamed answer.

    A translator that synthesises OpenAI chunks inherits this and sets ``_id``,
    ``_created``, ``_model`` and ``_sent_role`` in its constructor; the first
    delta of a stream always carries the assistant role, as OpenAI's do.
    """

    _id: str
    _created: int
    _model: str
    _sent_role: bool

    def _ensure_role(self, chunks: list[bytes]) -> None:
        if not self._sent_role:
            self._sent_role = True
            chunks.append(self._chunk({"role": "assistant", "content": ""}, None))

    def _emit(self, chunks: list[bytes], delta: dict[str, Any], logprobs: dict[str, Any] | None = None) -> None:
        self._ensure_role(chunks)
        chunks.append(self._chunk(delta, None, logprobs))

    def _base(self) -> dict[str, Any]:
        return {"id": self._id, "object": "chat.completion.chunk", "created": self._created, "model": self._model}

    def _chunk(self, delta: dict[str, Any], finish: str | None, logprobs: dict[str, Any] | None = None) -> bytes:
        """One chunk; ``logprobs`` are those of the tokens of ``delta``'s content, when the client asked for them."""
        chunk = self._base()
        chunk["choices"] = [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": logprobs}]
        return orjson.dumps(chunk)


def openai_usage(usage: TokenUsage) -> dict[str, Any]:
    """A :class:`TokenUsage` as the ``usage`` object of an OpenAI answer."""
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cached_prompt_tokens},
        "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
    }
