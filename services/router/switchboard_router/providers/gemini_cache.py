"""Gemini explicit context caching: ``prompt_cache: explicit`` on a ``gemini`` deployment or a Vertex AI Gemini one.

Gemini bills a prompt prefix held in a ``cachedContents`` entry at its cached-input price (a tenth of the
input price on Gemini 2.5 and later) and, unlike its implicit caching, guarantees the discount. But making an
entry costs its tokens once at the full input price, plus storage by the hour for its lifetime. So the gateway
makes one only where it pays:

- the prefix is the stable part of the request: the system instruction, the tools and every turn but the
  newest input, which is what the next turn of the conversation sends again unchanged;
- it is long enough for the model to cache (:func:`minimum_cacheable_tokens`, at four characters a token);
- it was seen before, within one cache lifetime: this prefix, or a shorter prefix of it itself long enough to
  cache (the conversation's previous turn, or the same system instruction and tools in another conversation),
  so that a one-off prompt never pays for storage;
- no live entry covers half of it or more: in a growing conversation a new entry is made only once the part
  outside the cache has grown as long as the part inside, so that the entries made over a conversation cost
  at most about twice its final prompt at the input price, however many turns it has.

A client that marks what to cache, with ``cache_control`` the Anthropic way (as LiteLLM's users do for
Gemini), decides instead: the prefix ends with its last mark (a mark on the system prompt or a tool: the
system instruction and tools alone) and is made on first sight, if long enough and not already live.

A request uses the longest live entry that is a prefix of it: its body names the entry (``cachedContent``) and
carries only the rest of the conversation, and the system instruction, tools and tool config stay in the entry,
as Gemini requires. Entries are this router process's own, keyed by a hash of the deployment, its credential
and the prefix; an entry is not used in the last :data:`EXPIRY_MARGIN_SECONDS` of its life, and lifetimes are
never extended (that would bill storage again).

What making an entry cost is billed to the first request that succeeds with it, as its ``cache_write_tokens``
(billing prices a Gemini cache write as the input price, plus the cached read, plus storage for
``prompt_cache_ttl``; see ``switchboard_billing.pricing.context_cache``). A creation Google refuses (a prefix
too short by its own count, a quota) leaves the request to go out uncached, and that prefix is not tried again
for one lifetime. An entry Google no longer has (deleted, or expired early) is forgotten when a request that
names it is refused, and that request is sent again at once without it.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from switchboard_common import metrics
from switchboard_router.deployment import Deployment
from switchboard_router.providers.base import CacheUse, CacheWrite, UpstreamRequest
from switchboard_router.upstream_http import TransportError, UpstreamPool
from switchboard_rules.prompt_cache import DEFAULT_TTL_SECONDS, EXPLICIT, explicit_cache_ttl

logger = logging.getLogger(__name__)

#: An entry is not used this close to its expiry: a request in flight must not outlive its cache.
EXPIRY_MARGIN_SECONDS = 30
#: Characters per token when estimating a prefix's length.
CHARS_PER_TOKEN = 4
#: Gemini's minimum cacheable length by model family (first match wins); others take the default.
_MINIMUM_BY_FAMILY: tuple[tuple[str, int], ...] = (
    ("gemini-2.5-flash", 1024),
    ("gemini-2.0-flash", 1024),
    ("gemini-3-flash", 1024),
)
DEFAULT_MINIMUM_TOKENS = 4096
#: Prefixes remembered as seen (and refused creations), at most; the oldest go first.
SEEN_LIMIT = 10_000
#: The generateContent fields that live in the entry and may not be sent beside it.
_IN_ENTRY = ("systemInstruction", "tools", "toolConfig")


def explicit(deployment: Deployment) -> bool:
    """Whether the gateway keeps this deployment's repeated prefixes in explicit caches."""
    return deployment.extra.get("prompt_cache") == EXPLICIT


def ttl_seconds(deployment: Deployment) -> int:
    """The lifetime of the deployment's entries (checked when the catalog loads)."""
    return explicit_cache_ttl(deployment.extra) or DEFAULT_TTL_SECONDS


def minimum_cacheable_tokens(model: str) -> int:
    """The shortest prefix, in tokens, that a Gemini model caches (Vertex ids included)."""
    family = model.rsplit("/", 1)[-1]
    return next((tokens for prefix, tokens in _MINIMUM_BY_FAMILY if family.startswith(prefix)),
                DEFAULT_MINIMUM_TOKENS)


@dataclass(slots=True)
class CacheEntry:
    """One ``cachedContents`` entry this router made."""

    #: Its resource name (``cachedContents/…``, or ``projects/…/cachedContents/…`` on Vertex AI).
    name: str
    #: When it stops being used (``time.monotonic()``): its expiry less the margin.
    usable_until: float
    #: The tokens it holds, as Google counted them.
    tokens: int
    #: Of those, how many no request has yet been billed for making.
    unbilled: int


@dataclass(frozen=True, slots=True)
class Prefixes:
    """The prefixes of one generateContent request: ``keys[k]`` and ``tokens[k]`` are those of the system
    instruction, tools and tool config followed by ``contents[:k]``, for k from 0 to the stable prefix's."""

    keys: list[bytes]
    tokens: list[int]

    @property
    def stable(self) -> int:
        """k of the stable prefix: every turn but the newest input."""
        return len(self.keys) - 1


def prefixes(deployment: Deployment, payload: dict[str, Any]) -> Prefixes | None:
    """The request's prefixes, or None when it has no stable part worth naming (one turn, nothing else)."""
    contents = payload.get("contents") or []
    head = {key: payload[key] for key in _IN_ENTRY if key in payload}
    if len(contents) < 2 and not head:
        return None
    extra = deployment.extra
    owner = orjson.dumps([deployment.id, deployment.model, deployment.api_base, deployment.api_key,
                          extra.get("vertex_project"), extra.get("vertex_location")])
    digest = hashlib.blake2b(owner, digest_size=16)
    encoded_head = orjson.dumps(head)
    digest.update(encoded_head)
    keys, tokens = [digest.digest()], [len(encoded_head) // CHARS_PER_TOKEN]
    chars = len(encoded_head)
    for content in contents[:-1]:
        encoded = orjson.dumps(content)
        digest.update(encoded)
        chars += len(encoded)
        keys.append(digest.digest())
        tokens.append(chars // CHARS_PER_TOKEN)
    return Prefixes(keys, tokens)


class ContextCaches:
    """The entries one adapter made, the prefixes it saw and the creations under way or refused."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._entries: dict[bytes, CacheEntry] = {}
        #: Prefix key → until when it counts as seen (insertion order is age order).
        self._seen: OrderedDict[bytes, float] = OrderedDict()
        #: Prefix key → until when a refused creation is not tried again.
        self._refused: OrderedDict[bytes, float] = OrderedDict()
        #: Prefix key → the entry being made for it (None if Google refused), for requests that want it meanwhile.
        self._making: dict[bytes, asyncio.Future[CacheEntry | None]] = {}

    async def apply(self, deployment: Deployment, request: UpstreamRequest, pool: UpstreamPool, *,
                    create_url: str, model_name: str) -> None:
        """Rewrites ``request`` to read the longest live entry for its prefix, making one first where it pays."""
        payload = request.cacheable
        if payload is None:
            return
        found = prefixes(deployment, payload)
        if found is None:
            return
        now = self._clock()
        ttl = ttl_seconds(deployment)
        k, entry = self._longest_live(found, now)
        asked = request.cache_marked
        target = found.stable if asked is None else min(asked, found.stable)
        key = found.keys[target]
        making = self._making.get(key)
        if making is not None:  # another request is making this very entry: wait for it rather than make two
            made = await asyncio.shield(making)
        elif self._worth_making(deployment, found, target, k if entry is not None else None, now,
                                asked=asked is not None):
            making = self._making[key] = asyncio.get_running_loop().create_future()
            made = None
            try:
                made = await self._make(deployment, request, pool, payload, target, key,
                                        create_url=create_url, model_name=model_name, ttl=ttl)
            finally:
                del self._making[key]
                making.set_result(made)
        else:
            made = None
        if made is not None and (entry is None or target >= k):
            k, entry = target, made
        self._remember(found, minimum_cacheable_tokens(deployment.model), now + ttl)
        if entry is None:
            return
        body = {field: value for field, value in payload.items() if field not in _IN_ENTRY}
        body["contents"] = payload["contents"][k:]
        body["cachedContent"] = entry.name
        request.cache_use = CacheUse(request.content, self._forgetter(deployment, found.keys[k], entry))
        request.content = orjson.dumps(body)
        if entry.unbilled:
            request.cache_write = CacheWrite(entry.unbilled, _giver(entry, entry.unbilled))
            entry.unbilled = 0

    def _forgetter(self, deployment: Deployment, key: bytes, entry: CacheEntry) -> Callable[[], None]:
        """Drops an entry the provider says is gone (the next request that wants it makes a new one)."""
        def forget() -> None:
            if self._entries.get(key) is entry:
                del self._entries[key]
            logger.warning("context cache %s of %s is gone at the provider; the request is sent without it",
                           entry.name, deployment.id)
            metrics.CONTEXT_CACHES.labels(deployment.id, "lost").inc()
        return forget

    def _longest_live(self, found: Prefixes, now: float) -> tuple[int, CacheEntry | None]:
        for k in range(found.stable, -1, -1):
            entry = self._entries.get(found.keys[k])
            if entry is not None:
                if entry.usable_until > now:
                    return k, entry
                del self._entries[found.keys[k]]
        return 0, None

    def _worth_making(self, deployment: Deployment, found: Prefixes, target: int, live: int | None, now: float,
                      *, asked: bool) -> bool:
        """Whether to make an entry for ``contents[:target]``, ``live`` being the k of the longest live entry;
        ``asked``: the client marked that prefix for caching, so it is made on first sight, as it asked."""
        tokens = found.tokens[target]
        minimum = minimum_cacheable_tokens(deployment.model)
        if tokens < minimum:
            return False
        if self._entries.get(found.keys[target]) is not None:
            return False  # the live entry is this very prefix
        if self._refused.get(found.keys[target], 0.0) > now:
            return False
        if asked:
            return live is None or live < target
        if live is not None and found.tokens[live] * 2 > tokens:
            return False  # a live entry already covers more than half of it
        # Only a prefix long enough to cache counts as seen: every conversation shares an empty system prompt.
        return any(self._seen.get(key, 0.0) > now for key, size in zip(found.keys, found.tokens, strict=True)
                   if size >= minimum)

    async def _make(self, deployment: Deployment, request: UpstreamRequest, pool: UpstreamPool,
                    payload: dict[str, Any], k: int, key: bytes, *, create_url: str, model_name: str,
                    ttl: int) -> CacheEntry | None:
        """Makes the entry for ``contents[:k]`` with the request's own credential, or None if Google refuses."""
        cached: dict[str, Any] = {"model": model_name, "ttl": f"{ttl}s", "displayName": f"switchboard {key.hex()[:16]}"}
        cached.update((field, payload[field]) for field in _IN_ENTRY if field in payload)
        if k:
            cached["contents"] = payload["contents"][:k]
        headers = {name: value for name, value in request.headers.items() if name.lower() != "accept"}
        started = self._clock()
        try:
            answer = await pool.fetch(UpstreamRequest("POST", create_url, headers, orjson.dumps(cached)))
        except (TransportError, OSError, TimeoutError) as exc:
            self._refuse(deployment, key, started + ttl, f"unreachable ({type(exc).__name__})")
            return None
        if answer.status >= 300:
            self._refuse(deployment, key, started + ttl, f"HTTP {answer.status}: {answer.body[:300]!r}")
            return None
        try:
            made = orjson.loads(answer.body)
            name = str(made["name"])
            tokens = int((made.get("usageMetadata") or {}).get("totalTokenCount") or 0)
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            self._refuse(deployment, key, started + ttl, "an answer without the entry's name")
            return None
        entry = CacheEntry(name, started + ttl - EXPIRY_MARGIN_SECONDS, tokens, tokens)
        self._drop_expired(started)
        self._entries[key] = entry
        metrics.CONTEXT_CACHES.labels(deployment.id, "made").inc()
        return entry

    def _refuse(self, deployment: Deployment, key: bytes, until: float, why: str) -> None:
        logger.warning("context cache not made for %s: %s; the request goes out uncached", deployment.id, why)
        metrics.CONTEXT_CACHES.labels(deployment.id, "refused").inc()
        _bounded_put(self._refused, key, until)

    def _remember(self, found: Prefixes, minimum: int, until: float) -> None:
        for key, size in zip(found.keys, found.tokens, strict=True):
            if size >= minimum:
                _bounded_put(self._seen, key, until)

    def _drop_expired(self, now: float) -> None:
        for key in [key for key, entry in self._entries.items() if entry.usable_until <= now]:
            del self._entries[key]


def _bounded_put(table: OrderedDict[bytes, float], key: bytes, until: float) -> None:
    table[key] = until
    table.move_to_end(key)
    while len(table) > SEEN_LIMIT:
        table.popitem(last=False)


def _giver(entry: CacheEntry, tokens: int) -> Callable[[], None]:
    """Hands a failed request's share back to the entry, for the next request that succeeds with it."""
    def give_back() -> None:
        entry.unbilled += tokens
    return give_back
