"""The budget headers of an answer: where the key's and team's budgets stand after its hold.

``x-switchboard-{key,team}-{spend,max-budget,remaining-budget,budget-reset-at-ms}``
(and ``-daily-{spend,limit,remaining,reset-at-ms}`` for daily caps), in USD with
six decimals; remaining counts what requests in flight hold. A request taken
from a lease reports the lease's answer, so these are as of the lease's grant
minus nothing later: a client that needs exact figures reads ``/key/info``.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from switchboard_billing.client import ReserveResponse

_NONE: Mapping[str, str] = MappingProxyType({})
#: The last answer and its headers: every request a budget lease covers carries the lease's one answer.
_last: tuple[ReserveResponse | None, Mapping[str, str]] = (None, _NONE)


def _usd(micros: int) -> str:
    whole, fraction = divmod(micros, 1_000_000)
    return f"{whole}.{fraction:06d}"


def budget_headers(response: ReserveResponse | None) -> Mapping[str, str]:
    """The headers of billing's answer (read-only: it may be shared)."""
    global _last
    if response is None:
        return _NONE
    if _last[0] is response:
        return _last[1]
    headers: dict[str, str] = {}
    for b in response.budgets[:]:  # a slice: the repeated field iterated as itself ends in an IndexError
        prefix = f"x-switchboard-{b.scope}-" + ("daily-" if b.kind == "daily" else "")
        headers[prefix + "spend"] = _usd(b.spent_micros)
        headers[prefix + ("limit" if b.kind == "daily" else "max-budget")] = _usd(b.limit_micros)
        headers[prefix + ("remaining" if b.kind == "daily" else "remaining-budget")] = _usd(b.remaining_micros)
        if b.resets_at_ms:
            headers[prefix + ("reset-at-ms" if b.kind == "daily" else "budget-reset-at-ms")] = str(b.resets_at_ms)
    if response.held_micros:
        headers["x-switchboard-reserved"] = _usd(response.held_micros)
    shared = MappingProxyType(headers)
    _last = (response, shared)
    return shared
