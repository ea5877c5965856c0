"""The router's privacy step around every engine call: tier and jurisdiction resolution, and the PII policy.

Before the engine picks a deployment, ``PrivacyGuard.prepare`` resolves the privacy tier the
request must be served at (the key's pin, tightened but never loosened by the client's ask), the
jurisdictions it may be served in (the key's set, narrowed but never widened by the client's ask) and
applies the key's ``pii_policy`` to the body: ``block`` refuses the request with the kinds and
counts found, ``substitute``/``mask`` replace the values before anything leaves the router. The
engine then only ever sees the transformed body and the resolved constraints, so retries and
fallbacks are covered by construction.

On the way back, whole answers are restored with ``restore_completion`` and streamed chunks with
one ``ChatStreamRestorer`` per stream (held text is released before the stream's end). The
vault (placeholder -> original) lives only in the ``Prepared`` object of one request and is
never logged.
"""

from __future__ import annotations

import os
import socket
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from switchboard.v1 import router_pb2
from switchboard_common.errors import Kind, ServiceError
from switchboard_router import byok
from switchboard_router.engine import Constraints, Engine, StreamChunks, StreamFinished, StreamItem, UnaryResult
from switchboard_router.operations import Operation
from switchboard_router.privacy import ChatStreamRestorer, PiiPolicy, PiiResult, restore_completion, scan_request
from switchboard_rules.custody import PII_HEADER, pii_summary
from switchboard_rules.jurisdictions import JurisdictionError, allows_any, parse_jurisdictions

INSTANCE = f"{socket.gethostname()}:{os.getpid()}"
"""This router process in custody paths (``RouteInfo.router_instance``)."""


def resolve_tier(pinned: str, requested: str, tiers: Sequence[str]) -> str:
    """The tier a request must be served at: the stricter of the key's pin and the client's ask.

    ``tiers`` is ordered from strictest to loosest. An unknown tier, or an ask looser than the pin,
    is the client's error (400) and says what would be accepted; it is never silently widened.
    """
    listing = ", ".join(tiers)
    for name, source in ((pinned, "the key's privacy_tier"), (requested, "the requested privacy tier")):
        if name and name not in tiers:
            raise ServiceError(
                Kind.ERROR_KIND_INVALID_REQUEST,
                f"Unknown privacy tier {name!r} ({source}). Configured tiers, strictest first: {listing}.",
                code="unknown_privacy_tier", param="privacy_tier",
            )
    if not requested or requested == pinned:
        return pinned
    if not pinned:
        return requested
    if tiers.index(requested) > tiers.index(pinned):
        allowed = ", ".join(tiers[: tiers.index(pinned) + 1])
        raise ServiceError(
            Kind.ERROR_KIND_INVALID_REQUEST,
            f"This key is pinned to privacy tier {pinned!r}; the request asked for the looser tier {requested!r}. "
            f"Ask for one of: {allowed}, or use a key with a looser tier.",
            code="privacy_tier_looser_than_key", param="privacy_tier",
        )
    return requested


def resolve_jurisdictions(allowed: Sequence[str], requested: Sequence[str]) -> tuple[str, ...]:
    """The jurisdictions a request may be served in: the client's ask within the key's set (empty: any).

    An ask outside the key's set is the client's error (400) naming the set; it is never silently widened.
    """
    try:
        # Slices: a message's repeated field iterated as itself ends in an IndexError, which costs more than the copy.
        allowed = parse_jurisdictions(allowed[:], "the key's jurisdictions")
        requested = parse_jurisdictions(requested[:], "the requested jurisdiction")
    except JurisdictionError as exc:
        raise ServiceError(Kind.ERROR_KIND_INVALID_REQUEST, str(exc), code="invalid_jurisdiction",
                           param="jurisdiction") from None
    allowed = () if allows_any(allowed) else allowed
    if allows_any(requested):
        return allowed
    outside = [j for j in requested if allowed and j not in allowed]
    if outside:
        raise ServiceError(
            Kind.ERROR_KIND_INVALID_REQUEST,
            f"This key may be served only in {', '.join(allowed)}; the request asked for {', '.join(outside)}. "
            f"Ask for one of: {', '.join(allowed)}, or use a key allowed there.",
            code="jurisdiction_not_allowed", param="jurisdiction",
        )
    return requested


def _parse_policy(value: str) -> PiiPolicy:
    try:
        return PiiPolicy.parse(value)
    except ValueError as exc:
        raise ServiceError(Kind.ERROR_KIND_INVALID_REQUEST, str(exc), code="unknown_pii_policy",
                           param="pii_policy") from None


#: The body field that holds the text of a request other than chat (scanned as user messages).
_TEXT_FIELD = {Operation.EMBED: "input", Operation.MODERATE: "input", Operation.TEXT_COMPLETE: "prompt"}


def _scan_texts(body: dict[str, Any], policy: PiiPolicy, name: str) -> tuple[dict[str, Any], PiiResult]:
    """The texts of ``body[name]`` (a string or a list: embeddings and moderation inputs, a legacy completion's
    prompt) scanned as user messages; token arrays pass as they are."""
    inputs = body.get(name)
    texts = [inputs] if isinstance(inputs, str) else inputs if isinstance(inputs, list) else []
    positions = [i for i, item in enumerate(texts) if isinstance(item, str)]
    if not positions:
        return body, PiiResult(body=body)
    pseudo = {"messages": [{"role": "user", "content": texts[i]} for i in positions]}
    result = scan_request(pseudo, policy)
    if result.blocked or result.body is pseudo:
        return body, result
    new_texts = list(texts)
    for message, i in zip(result.body["messages"], positions, strict=True):
        new_texts[i] = message["content"]
    new_body = {**body, name: new_texts[0] if isinstance(inputs, str) else new_texts}
    return new_body, PiiResult(body=new_body, vault=result.vault, counts=result.counts)


@dataclass(slots=True)
class Prepared:
    """One request after the privacy step: what the engine may send, and how to restore the answer."""

    body: dict[str, Any]
    constraints: Constraints
    pii: PiiResult
    required_tier: str = ""
    vault: dict[str, str] = field(default_factory=dict)

    def annotate(self, route: router_pb2.RouteInfo) -> router_pb2.RouteInfo:
        """Adds this request's custody facts to a RouteInfo (in place) and returns it."""
        for kind, count in self.pii.counts.items():
            route.pii_counts[kind] = count
        route.router_instance = INSTANCE
        route.required_privacy_tier = self.required_tier
        route.byok = byok.applies(route.provider, self.constraints.credentials)
        return route


class PrivacyGuard:
    """Wraps ``Engine.complete``/``Engine.stream`` with the privacy step; holds no per-request state."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def resolve(self, constraints: router_pb2.RoutingConstraints, credentials: Mapping[str, str] | None = None,
                output_bound: int = 0) -> Constraints:
        """What the engine may use for a caller: its models, the tier and the jurisdictions after the client's
        asks; raises ServiceError (400) for an unknown tier or an ask the key does not allow."""
        tier = resolve_tier(constraints.privacy_tier, constraints.requested_privacy_tier,
                            self.engine.catalog.privacy_tiers)
        places = resolve_jurisdictions(constraints.jurisdictions, constraints.requested_jurisdictions)
        keys_places = resolve_jurisdictions(constraints.jurisdictions, ()) \
            if constraints.requested_jurisdictions else places
        return Constraints(constraints.allowed_models[:], tier, places, dict(credentials or {}), output_bound,
                           key_privacy_tier=constraints.privacy_tier,
                           tier_asked=bool(tier) and tier != constraints.privacy_tier,
                           key_jurisdictions=keys_places, jurisdictions_asked=places != keys_places)

    def prepare(self, body: dict[str, Any], constraints: router_pb2.RoutingConstraints,
                operation: Operation = Operation.COMPLETE, credentials: Mapping[str, str] | None = None,
                output_bound: int = 0) -> Prepared:
        """Resolves the tier and jurisdictions and applies the PII policy; raises ServiceError (400) on refusal.

        ``credentials`` (provider -> the caller's own API key) ride along in the engine constraints.
        """
        resolved = self.resolve(constraints, credentials, output_bound)
        tier = resolved.privacy_tier
        policy = _parse_policy(constraints.pii_policy)
        if operation in _TEXT_FIELD:
            new_body, result = _scan_texts(body, policy, _TEXT_FIELD[operation])
        else:
            result = scan_request(body, policy)
            new_body = result.body
        if result.blocked:
            raise ServiceError(Kind.ERROR_KIND_POLICY, result.block_message(), code="pii_blocked", http_status=400,
                               headers={PII_HEADER: pii_summary(constraints.pii_policy, result.counts, True)})
        return Prepared(new_body, resolved, result, tier, result.vault if operation.bounded else {})

    async def complete(self, model: str, prepared: Prepared, operation: Operation = Operation.COMPLETE) -> UnaryResult:
        result = await self.engine.complete(model, prepared.body, prepared.constraints, operation)
        if prepared.vault:
            result.body = restore_completion(result.body, prepared.vault)
        return result

    def stream(self, model: str, prepared: Prepared, include_usage: bool) -> AsyncIterator[StreamItem]:
        """The engine's stream; restored chunk by chunk when the request's values were substituted."""
        items = self.engine.stream(model, prepared.body, prepared.constraints, include_usage)
        if not prepared.vault:
            return items  # nothing to restore: no relay step per item
        return _restored(items, prepared.vault)


async def _restored(items: AsyncIterator[StreamItem], vault: dict[str, str]) -> AsyncIterator[StreamItem]:
    restorer = ChatStreamRestorer(vault)
    template: dict[str, Any] = {}
    async for item in items:
        if isinstance(item, StreamChunks):
            item = StreamChunks([_restore_chunk(raw, restorer, template) for raw in item.chunks])
        elif isinstance(item, StreamFinished):
            tail = restorer.flush_chunk(template)
            if tail is not None:
                yield StreamChunks([orjson.dumps(tail)])
        yield item


def _restore_chunk(raw: bytes, restorer: ChatStreamRestorer, template: dict[str, Any]) -> bytes:
    """One chunk restored; ``template`` keeps the last chunk's id/model for a final flush chunk."""
    try:
        chunk = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw
    if not isinstance(chunk, dict):
        return raw
    template.clear()
    template.update({key: chunk[key] for key in ("id", "object", "created", "model") if key in chunk})
    return orjson.dumps(restorer.restore_chunk(chunk))
