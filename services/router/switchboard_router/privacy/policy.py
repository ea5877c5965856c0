"""The ``pii_policy`` of a key and the one call the router makes before sending a request.

- ``off``: nothing is scanned.
- ``substitute``: each distinct value becomes a stable placeholder (``[[EMAIL_1]]``) for the
  request; the answer is restored with the returned vault (whole or streamed).
- ``mask``: values become ``[[EMAIL]]``-style tokens; nothing can be restored.
- ``block``: the request is refused when anything is found; the refusal names kinds and counts,
  never values.

Counts are distinct values per kind (the same address written three times counts once). Every
occurrence of a value found anywhere in the request is replaced, not only the ones the detectors
found in context (see ``rewriter``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from switchboard_router.privacy.placeholders import Vault, mask_token, placeholder_tokens_in
from switchboard_router.privacy.rewriter import Replacement, RequestRewriter
from switchboard_router.privacy.substitution import iter_strings, transform_request
from switchboard_rules.policies import PiiPolicy


@dataclass(slots=True)
class PiiResult:
    """What ``scan_request`` found and what to send.

    ``body``: the request to send (a new dict; the same object when nothing had to change).
    ``vault``: placeholder -> original, for ``restore_completion`` / ``StreamRestorer``.
    ``counts``: lower-case kind -> distinct values found. ``blocked``: the policy refuses it.
    """

    body: dict[str, Any]
    vault: dict[str, str] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    blocked: bool = False

    def header_value(self) -> str:
        """``x-switchboard-pii`` header value, e.g. ``email=2,card=1`` (empty when nothing was found)."""
        return ",".join(f"{kind}={count}" for kind, count in self.counts.items())

    def block_message(self) -> str:
        """A refusal text that says what was found and what to do, without any value."""
        found = ", ".join(f"{count} {kind}" for kind, count in self.counts.items())
        return (
            f"Request refused by the privacy policy of this key: it contains {found}. "
            "Remove these values from the prompt, or use a key whose pii_policy is 'substitute' or 'mask'."
        )


def scan_request(body: dict[str, Any], policy: PiiPolicy | str) -> PiiResult:
    """Apply ``policy`` to a canonical OpenAI chat request; ``body`` itself is never modified."""
    policy = PiiPolicy.parse(policy)
    if policy is PiiPolicy.OFF:
        return PiiResult(body=body)
    vault = Vault(placeholder_tokens_in(iter_strings(body))) if policy is PiiPolicy.SUBSTITUTE else None
    replacement: Replacement = vault.placeholder_for if vault is not None else lambda kind, _value: mask_token(kind)
    rewriter = RequestRewriter(replacement)
    transform_request(body, rewriter.collect)
    counts = rewriter.counts()
    if policy is PiiPolicy.BLOCK:
        return PiiResult(body=body, counts=counts, blocked=bool(counts))
    if not counts:
        return PiiResult(body=body)
    new_body = transform_request(body, rewriter.rewrite)
    return PiiResult(body=new_body, vault=dict(vault.mapping) if vault else {}, counts=counts)
