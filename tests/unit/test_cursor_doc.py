"""docs/cursor.md tells a Cursor user the error codes the gateway really answers with: its troubleshooting row for
a 429 names exactly the codes of auth's rate-limit refusals and billing's budget refusal."""

from __future__ import annotations

import re
from pathlib import Path

from switchboard_auth.limits import Denial
from switchboard_auth.models import VirtualKey
from switchboard_auth.servicer import AuthServicer
from switchboard_billing.budgets import BudgetState, Reservation
from switchboard_billing.holds import budget_exceeded
from switchboard_billing.quote import Quote

DOC = Path(__file__).resolve().parents[2] / "docs" / "cursor.md"
#: The limits a key, team or user may set (the key's columns a refusal names).
LIMITS = ("rpm_limit", "tpm_limit", "max_parallel_requests")


def codes_429() -> set[str]:
    """The error codes the gateway answers a refused request with, as the services build the refusals."""
    key = VirtualKey(key_id="k1", key_hash="0" * 64, last_four="abcd", key_alias="cursor-alice")
    rate = {AuthServicer._denied(Denial("key", "k1", name, 10, 1.0), key, None, 0) for name in LIMITS}
    spent = BudgetState("key", "daily", "k1", limit_micros=1_000_000, spent_micros=1_000_000, held_micros=0,
                        window=None)
    budget = budget_exceeded(Reservation("r1", 0, False, (spent,), 0, denied_by=spent), Quote(50_000, 100), 0, 0.0)
    refusals = [*rate, budget]
    assert all(err.http_status == 429 for err in refusals)
    return {err.error.code for err in refusals}


def test_the_429_troubleshooting_row_names_the_codes_the_gateway_answers_with() -> None:
    row = next(line for line in DOC.read_text(encoding="utf-8").splitlines() if line.startswith("| `429`"))
    named = set(re.findall(r"`([a-z_]+)`", row))
    assert codes_429() <= named, f"docs/cursor.md's 429 row misses {codes_429() - named}"
    unknown = {code for code in named if code.endswith(("_exceeded", "_limited"))} - codes_429()
    assert not unknown, f"docs/cursor.md's 429 row names codes the gateway never sends: {unknown}"
