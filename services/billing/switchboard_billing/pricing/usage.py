"""Token counts of one request, in the OpenAI convention billing prices them in."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class TokenUsage:
    """What one completion consumed.

    ``prompt_tokens`` includes the cached and cache-write tokens and
    ``completion_tokens`` includes the reasoning tokens (OpenAI's convention;
    adapters for providers that report them separately, like Anthropic, add
    them up before billing sees them). Counts that contradict each other are
    rejected here rather than priced into a wrong number.
    """

    prompt_tokens: int
    completion_tokens: int
    cached_prompt_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0

    def __post_init__(self) -> None:
        for name in (
            "prompt_tokens",
            "completion_tokens",
            "cached_prompt_tokens",
            "cache_write_tokens",
            "reasoning_tokens",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"usage {name} must be a whole number of tokens, 0 or more (got {value!r})")
        if self.cached_prompt_tokens + self.cache_write_tokens > self.prompt_tokens:
            raise ValueError(
                f"usage cached_prompt_tokens ({self.cached_prompt_tokens}) + cache_write_tokens "
                f"({self.cache_write_tokens}) exceed prompt_tokens ({self.prompt_tokens}); prompt_tokens must "
                "include cached and cache-write tokens"
            )
        if self.reasoning_tokens > self.completion_tokens:
            raise ValueError(
                f"usage reasoning_tokens ({self.reasoning_tokens}) exceed completion_tokens "
                f"({self.completion_tokens}); completion_tokens must include reasoning tokens"
            )

    @classmethod
    def of(cls, counts: Any) -> TokenUsage:
        """Copy the counts from any object with these attribute names, e.g. a ``switchboard.v1.Usage`` message."""
        return cls(
            prompt_tokens=int(counts.prompt_tokens),
            completion_tokens=int(counts.completion_tokens),
            cached_prompt_tokens=int(getattr(counts, "cached_prompt_tokens", 0) or 0),
            cache_write_tokens=int(getattr(counts, "cache_write_tokens", 0) or 0),
            reasoning_tokens=int(getattr(counts, "reasoning_tokens", 0) or 0),
        )

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens
