"""Sums of the usage ledger: per hour, day, model, key, team or user, optionally split by a second dimension.

Besides requests, tokens and costs, every group carries its error count and the
50th and 95th percentiles of latency and time to first token. Percentiles are
read from a histogram the database builds (:data:`EDGES`, buckets 12% apart),
so a summary moves counts, never rows, whatever the range: a percentile is
interpolated inside its bucket and is within about 6% of the exact value.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import KW_ONLY, dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from switchboard_billing.models import UsageRow
from switchboard_billing.sqlite_transactions import reading

#: Time buckets (group_by) and their width in milliseconds.
TIME_GROUPS = {"hour": 3_600_000, "day": 86_400_000}
#: Dimensions a summary may group or split by, and their ledger columns.
DIMENSIONS = {"model": "model", "key": "key_id", "team": "team_id", "user": "user_id"}
GROUPS = (*TIME_GROUPS, *DIMENSIONS)
SPLITS = tuple(DIMENSIONS)
#: Upper edges of the latency histogram, milliseconds: 1 ms to about 80 minutes, each 12% above the last.
EDGES = tuple(round(1.12 ** i, 3) for i in range(134))


@dataclass(frozen=True, slots=True)
class UsageSum:
    group: str
    requests: int
    successful_requests: int
    prompt_tokens: int
    completion_tokens: int
    cached_prompt_tokens: int
    cost_micros: int
    unpriced_requests: int
    _: KW_ONLY  # the counts above come in order (summarize's columns), the rest by name
    split: str = ""
    errors: int = 0
    latency_p50_ms: float = 0.0
    latency_p95_ms: float = 0.0
    ttft_p50_ms: float = 0.0
    ttft_p95_ms: float = 0.0
    cache_write_tokens: int = 0
    #: What prompt caching saved, micro-dollars (negative when cache writes cost more than reads saved).
    cache_savings_micros: int = 0


def quantile(counts: Mapping[int, int], q: float) -> float:
    """The ``q`` quantile of a histogram (bucket index → count over :data:`EDGES`), interpolated linearly
    inside its bucket; 0 for an empty histogram."""
    total = sum(counts.values())
    if total <= 0:
        return 0.0
    rank = q * total
    seen = 0
    for index in sorted(counts):
        count = counts[index]
        if count <= 0:
            continue
        if seen + count >= rank:
            if index >= len(EDGES):
                return EDGES[-1]
            lower = EDGES[index - 1] if index > 0 else 0.0
            return lower + (EDGES[index] - lower) * max(0.0, rank - seen) / count
        seen += count
    return EDGES[-1]


def _bucket(column: Any) -> Any:
    """The histogram bucket of a duration: the index of the first edge above it."""
    return sa.case(*((column < edge, index) for index, edge in enumerate(EDGES)), else_=len(EDGES))


def group_label(group_by: str, value: Any) -> str:
    if group_by == "day":
        return time.strftime("%Y-%m-%d", time.gmtime(int(value) * 86_400))
    if group_by == "hour":
        return time.strftime("%Y-%m-%dT%H:00:00Z", time.gmtime(int(value) * 3_600))
    return str(value or "")


async def summarize(engine: AsyncEngine, *, key_id: str = "", team_id: str = "", model: str = "",
                    from_ms: int = 0, to_ms: int = 0, group_by: str = "", split_by: str = "",
                    user_id: str = "") -> list[UsageSum]:
    """Sums of requests, errors, tokens, known costs and caching's savings with latency percentiles, per group
    (and split), in
    ascending order; one total when ``group_by`` is empty."""
    t = UsageRow.__table__  # type: ignore[attr-defined]  # SQLModel sets __table__ at class creation
    if group_by in TIME_GROUPS:
        # Integer division on both backends: the UTC hour or day number.
        group = (t.c.started_at_ms // TIME_GROUPS[group_by]).label("g")
    elif group_by in DIMENSIONS:
        group = t.c[DIMENSIONS[group_by]].label("g")
    else:
        group = sa.literal("").label("g")
    split = t.c[DIMENSIONS[split_by]].label("s") if split_by in DIMENSIONS else sa.literal("").label("s")
    where = []
    for column, value in ((t.c.key_id, key_id), (t.c.team_id, team_id), (t.c.model, model), (t.c.user_id, user_id)):
        if value:
            where.append(column == value)
    if from_ms:
        where.append(t.c.started_at_ms >= from_ms)
    if to_ms:
        where.append(t.c.started_at_ms < to_ms)
    sums = sa.select(
        group, split, sa.func.count(), sa.func.sum(sa.case((t.c.status == "success", 1), else_=0)),
        sa.func.sum(t.c.prompt_tokens), sa.func.sum(t.c.completion_tokens), sa.func.sum(t.c.cached_prompt_tokens),
        sa.func.sum(t.c.cost_micros), sa.func.sum(sa.case((t.c.cost_micros.is_(None), 1), else_=0)),
        sa.func.sum(sa.case((t.c.status == "error", 1), else_=0)),
        sa.func.sum(t.c.cache_write_tokens), sa.func.sum(t.c.cache_savings_micros),
    ).where(*where).group_by(group, split).order_by(group, split)
    succeeded = [*where, t.c.status == "success"]
    latency_bucket = _bucket(t.c.latency_ms).label("b")
    latency = sa.select(group, split, latency_bucket, sa.func.count()).where(*succeeded).group_by(
        group, split, latency_bucket)
    ttft_bucket = _bucket(t.c.ttft_ms).label("b")
    ttft = sa.select(group, split, ttft_bucket, sa.func.count()).where(
        *succeeded, t.c.stream.is_(True), t.c.ttft_ms > 0).group_by(group, split, ttft_bucket)
    async with reading(engine) as conn:
        rows = (await conn.execute(sums)).all()
        latencies = _histograms((await conn.execute(latency)).all())
        ttfts = _histograms((await conn.execute(ttft)).all())
    out = []
    for g, s, *numbers in rows:
        counts = [int(n or 0) for n in numbers]
        lat, first = latencies.get((g, s), {}), ttfts.get((g, s), {})
        out.append(UsageSum(group_label(group_by, g), *counts[:7], split=str(s or ""), errors=counts[7],
                            cache_write_tokens=counts[8], cache_savings_micros=counts[9],
                            latency_p50_ms=quantile(lat, 0.5), latency_p95_ms=quantile(lat, 0.95),
                            ttft_p50_ms=quantile(first, 0.5), ttft_p95_ms=quantile(first, 0.95)))
    return out


def _histograms(rows: Iterable[Any]) -> dict[tuple[Any, Any], dict[int, int]]:
    out: dict[tuple[Any, Any], dict[int, int]] = {}
    for g, s, bucket, count in rows:
        out.setdefault((g, s), {})[int(bucket)] = int(count)
    return out
