"""The adapter interface every provider module implements."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from switchboard_router.deployment import Deployment

if TYPE_CHECKING:
    from switchboard_router.upstream_http import UpstreamPool


@dataclass(slots=True)
class CacheWrite:
    """Prompt tokens the gateway wrote to a provider's explicit cache on behalf of one request (a Gemini
    ``cachedContents`` entry), billed as the request's cache-write tokens if it succeeds."""

    tokens: int
    #: Hands the tokens back when the request fails, for the next request that succeeds with the cache.
    give_back: Callable[[], None]


@dataclass(slots=True)
class CacheUse:
    """The explicit provider cache a request reads, and what to send instead if the provider no longer has it
    (it expired early, or was deleted): the router forgets the cache and sends ``uncached``, once."""

    uncached: bytes
    forget: Callable[[], None]


@dataclass(slots=True)
class UpstreamRequest:
    """An HTTP request ready to send to a provider."""

    method: str
    url: str
    headers: dict[str, str]
    content: bytes
    #: The provider body before serialisation, kept when an adapter may still rewrite it to use an explicit
    #: prompt cache (see :class:`PromptCachingAdapter`); None otherwise.
    cacheable: dict[str, Any] | None = None
    #: With ``cacheable``: how much of it the client marked for caching (``cache_control``), in the provider's
    #: own units (Gemini: contents); None when the client placed no mark.
    cache_marked: int | None = None
    #: Set when making an explicit cache was billed to this request (see :class:`CacheWrite`).
    cache_write: CacheWrite | None = None
    #: Set when the request reads an explicit cache (see :class:`CacheUse`).
    cache_use: CacheUse | None = None

    def without_cache(self) -> bool:
        """Forgets the explicit cache the request read and sends it without; False when it read none. For an
        answer saying the cache is gone (a status in :data:`CACHE_GONE`)."""
        use = self.cache_use
        if use is None:
            return False
        use.forget()
        self.content, self.cache_use = use.uncached, None
        return True


#: The statuses of a provider refusing a request because the explicit cache it names is gone: Gemini's
#: PERMISSION_DENIED ("CachedContent not found (or permission denied)") and Vertex AI's NOT_FOUND.
CACHE_GONE = frozenset({403, 404})


@dataclass(slots=True)
class TokenUsage:
    """Usage in OpenAI terms (prompt includes cached and cache-write tokens)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_prompt_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    reported_by_provider: bool = True

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def with_cache_write(self, written: CacheWrite | None) -> TokenUsage:
        """This usage with an explicit cache's making billed: the tokens written were read from that cache by
        the same request, so they move from the cached count to the cache-write count."""
        if written is None:
            return self
        cached = max(0, self.cached_prompt_tokens - written.tokens)
        written_tokens = min(self.cache_write_tokens + written.tokens, self.prompt_tokens - cached)
        return TokenUsage(self.prompt_tokens, self.completion_tokens, cached_prompt_tokens=cached,
                          cache_write_tokens=written_tokens, reasoning_tokens=self.reasoning_tokens,
                          reported_by_provider=self.reported_by_provider)


#: Error codes that come with a 429 but name an exhausted account, not a passing rate limit:
#: retrying (or cooling the deployment down) cannot help, so they go straight to the client.
NON_TRANSIENT_CODES = frozenset({
    "enforced_spend_limit_reached",  # Anthropic: the organisation's spend limit
    "insufficient_quota",  # OpenAI: no credit left
    "billing_hard_limit_reached",  # OpenAI: the account's hard limit
})


@dataclass(slots=True)
class UpstreamError:
    """A provider's error, normalised: its status, message and whether a retry may help."""

    status: int
    message: str
    type: str = "upstream_error"
    code: str = ""
    #: Seconds from a Retry-After header or equivalent, if the provider gave one.
    retry_after: float | None = None
    #: The provider refused on content policy (may trigger a content-policy fallback).
    content_policy: bool = False
    #: The prompt is longer than the context window (may trigger a context-window fallback).
    context_window_exceeded: bool = False

    #: Set when the provider says no retry can succeed, whatever the status.
    permanent: bool = False

    @property
    def retryable(self) -> bool:
        if self.permanent or self.code in NON_TRANSIENT_CODES or self.type in NON_TRANSIENT_CODES:
            return False
        return self.status == 429 or self.status >= 500


class EndpointMissing(Exception):
    """The provider has no such endpoint (legacy completions, moderations) for this deployment."""


class CredentialError(Exception):
    """A provider credential could not be obtained (an access token not issued, a key file unreadable)."""

    def __init__(self, error: UpstreamError) -> None:
        super().__init__(error.message)
        self.error = error


@dataclass(slots=True)
class CompletionResult:
    """A whole completion translated to OpenAI chat.completion JSON."""

    body: dict[str, Any]
    usage: TokenUsage


class StreamTranslator(Protocol):
    """Turns a provider's streamed bytes into OpenAI chat.completion.chunk JSON.

    ``feed`` accepts arbitrary byte splits. Chunks are returned serialized
    (bytes of one JSON object each) so that pass-through providers need not
    re-encode them. ``usage`` is set once the provider has reported it;
    ``error`` once the provider sent an error event inside the stream.
    """

    usage: TokenUsage | None
    error: UpstreamError | None

    def feed(self, data: bytes) -> list[bytes]: ...

    def close(self) -> list[bytes]: ...


@dataclass(slots=True)
class StreamOptions:
    """What the client asked of the stream."""

    #: The client asked for the final usage chunk (stream_options.include_usage).
    include_usage: bool = False
    #: Public model name to put in chunks' "model" when the adapter synthesises them.
    model: str = ""
    extras: dict[str, Any] = field(default_factory=dict)


class ProviderAdapter(Protocol):
    """One provider wire format."""

    #: Adapter name as written in the config's ``provider:``.
    name: str

    def build_request(self, deployment: Deployment, body: dict[str, Any], *, stream: bool) -> UpstreamRequest:
        """Translates a canonical OpenAI chat body into the provider's HTTP request.

        For streams the adapter asks the provider for usage (OpenAI:
        ``stream_options.include_usage``) whatever the client asked: billing needs it.
        """
        ...

    def parse_response(self, deployment: Deployment, body: bytes) -> CompletionResult:
        """Translates a successful (2xx) whole answer."""
        ...

    def stream_translator(self, deployment: Deployment, options: StreamOptions) -> StreamTranslator:
        """A fresh translator for one streamed answer."""
        ...

    def parse_error(self, status: int, body: bytes, headers: dict[str, str]) -> UpstreamError:
        """Normalises a non-2xx answer."""
        ...


class PromptCachingAdapter(ProviderAdapter, Protocol):
    """An adapter that may keep a request's repeated prefix in an explicit provider cache: after ``authorize``,
    the router awaits ``use_prompt_cache``, which may make an entry (with ``pool``, the request's credential
    and its own time) and rewrites the request to read it. It never fails the request: a cache it cannot make
    leaves the request as it was."""

    async def use_prompt_cache(self, deployment: Deployment, request: UpstreamRequest, pool: UpstreamPool) -> None: ...


class AuthorizingAdapter(ProviderAdapter, Protocol):
    """An adapter whose credential must be fetched before a call (an OAuth2 access token): after
    ``build_request``, the router awaits ``authorize``, which adds it to the request's headers or
    raises :class:`CredentialError`."""

    async def authorize(self, deployment: Deployment, request: UpstreamRequest) -> None: ...
