"""Printing admin answers: a human table or detail view, or the raw JSON (``--json``)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, TextIO

KEY_COLUMNS = ("key_id", "key_alias", "key_name", "team_id", "status", "rpm_limit", "tpm_limit",
               "max_parallel_requests", "max_budget", "expires")
TEAM_COLUMNS = ("team_id", "team_alias", "key_count", "blocked", "rpm_limit", "tpm_limit", "max_parallel_requests",
                "max_budget", "budget_duration")


def cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ",".join(str(v) for v in value) or "-"
    if isinstance(value, dict):
        return ",".join(f"{k}={v}" for k, v in value.items()) or "-"
    return str(value)


def table(rows: Sequence[dict[str, Any]], columns: Sequence[str], out: TextIO) -> None:
    cells = [[cell(row.get(c)) for c in columns] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    out.write("  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip() + "\n")
    for r in cells:
        out.write("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() + "\n")
    if not rows:
        out.write("(none)\n")


def detail(item: dict[str, Any], out: TextIO) -> None:
    width = max((len(k) for k in item), default=0)
    for name, value in item.items():
        out.write(f"{name.ljust(width)}  {cell(value)}\n")


def as_json(data: Any, out: TextIO) -> None:
    out.write(json.dumps(data, indent=2, sort_keys=False) + "\n")
