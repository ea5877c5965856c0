"""CORS: browsers and the Cursor editor call the gateway from other origins.

The framework path answers with Starlette's ``CORSMiddleware`` (preflights
included); the fast lane adds the same headers to its answers through
:class:`SimpleCors`, which computes them once per origin policy instead of
rewriting a header object per response. Both are configured from here.
"""

from __future__ import annotations

#: Response headers a browser script may read.
EXPOSE_HEADERS = (
    "x-request-id", "x-switchboard-request-id", "x-switchboard-custody-path",
    "x-switchboard-resolved-jurisdiction", "x-switchboard-privacy-tier", "x-switchboard-pii",
    "x-ratelimit-limit-requests", "x-ratelimit-remaining-requests", "x-ratelimit-reset-requests",
    "x-ratelimit-limit-tokens", "x-ratelimit-remaining-tokens", "x-ratelimit-reset-tokens", "retry-after",
)

Pairs = tuple[tuple[bytes, bytes], ...]


def parse_origins(setting: str) -> list[str]:
    """``SWITCHBOARD_CORS_ORIGINS`` ("*", or a comma-separated list) as a list."""
    return [origin.strip() for origin in setting.split(",") if origin.strip()]


class SimpleCors:
    """The headers Starlette's ``CORSMiddleware`` (no credentials, no origin regex) adds to a
    non-preflight answer: ``vary: Origin`` always; with an ``Origin``, the exposed headers and,
    for an allowed origin, ``access-control-allow-origin``."""

    def __init__(self, origins: list[str], expose_headers: tuple[str, ...] = EXPOSE_HEADERS) -> None:
        self.allow_all = "*" in origins
        self.origins = frozenset(origins)
        expose = (b"access-control-expose-headers", ", ".join(expose_headers).encode("latin-1"))
        vary = (b"vary", b"Origin")
        self.without_origin: Pairs = (vary,)
        self.any_origin: Pairs = ((b"access-control-allow-origin", b"*"), expose, vary)
        self._expose = expose
        self._vary = vary

    def headers(self, origin: str | None) -> Pairs:
        if origin is None:
            return self.without_origin
        if self.allow_all:
            return self.any_origin
        if origin in self.origins:
            return (self._expose, (b"access-control-allow-origin", origin.encode("latin-1")), self._vary)
        return (self._expose, self._vary)
