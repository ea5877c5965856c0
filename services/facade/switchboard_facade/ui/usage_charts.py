"""The usage charts of a range: spend, requests, errors, tokens, latency and time to first token per bucket.

Built from billing's sums per bucket (``SummarizeUsage`` with ``group_by`` hour or
day): once in total, and once split by model, key or team for the stacked
spend and request bars, where the five largest get a colour each and the rest
is "Other". Percentiles cannot be added across groups, so latency lines come
from the unsplit sums.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from switchboard_billing.client import UsageGroup
from switchboard_facade.ui.charts import Chart, Series
from switchboard_facade.ui.display import compact, count, duration, money, percent
from switchboard_facade.ui.ranges import Range

#: Split values with a colour of their own; the others are summed as "Other".
TOP = 5
OTHER_TONE = 7
ERROR_TONE = 6


def axis_money(micros: float) -> str:
    usd = micros / 1_000_000
    if usd == 0:
        return "$0"
    if usd >= 1000:
        return "$" + compact(usd)
    return f"${usd:.4g}" if usd < 1 else f"${usd:,.2f}".rstrip("0").rstrip(".")


def axis_ms(ms: float) -> str:
    if ms == 0:
        return "0"
    return f"{ms / 1000:.3g} s" if ms >= 1000 else f"{ms:.0f} ms"


@dataclass(slots=True)
class Buckets:
    """Sums aligned to the range's buckets (missing buckets are zeros)."""

    range: Range
    starts: list[int]

    def index(self) -> dict[int, int]:
        return {start: i for i, start in enumerate(self.starts)}

    def column(self, groups: Sequence[UsageGroup], value: Callable[[UsageGroup], float],
               keep: Callable[[UsageGroup], bool] = lambda g: True) -> list[float]:
        out = [0.0] * len(self.starts)
        where = self.index()
        for g in groups:
            start = self.range.key_of(g.group)
            if start in where and keep(g):
                out[where[start]] += value(g)
        return out


def _percentile(groups: Sequence[UsageGroup], buckets: Buckets, value: Callable[[UsageGroup], float]
                ) -> list[float | None]:
    out: list[float | None] = [None] * len(buckets.starts)
    where = buckets.index()
    for g in groups:
        start = buckets.range.key_of(g.group)
        if start in where and value(g) > 0:
            out[where[start]] = value(g)
    return out


def ranked_splits(split: Sequence[UsageGroup]) -> list[str]:
    """Split values, largest first: by spend, then by requests."""
    totals: dict[str, tuple[int, int]] = {}
    for g in split:
        cost, requests = totals.get(g.split, (0, 0))
        totals[g.split] = (cost + g.cost_micros, requests + g.requests)
    return sorted(totals, key=lambda s: (-totals[s][0], -totals[s][1], s))


def _stacked(split: Sequence[UsageGroup], buckets: Buckets, value: Callable[[UsageGroup], float],
             name: Callable[[str], str]) -> list[Series]:
    ranked = ranked_splits(split)
    top = ranked if len(ranked) <= TOP + 1 else ranked[:TOP]  # "Other" only when it sums two or more
    rest = set(ranked) - set(top)
    series = [Series(name(s), buckets.column(split, value, lambda g, s=s: g.split == s), tone=i)  # type: ignore[misc]  # mypy cannot type a lambda with a default (s bound per series)
              for i, s in enumerate(top)]
    if rest:
        series.append(Series(f"Other ({len(rest)})", buckets.column(split, value, lambda g: g.split in rest),
                             tone=OTHER_TONE))
    return series


def usage_charts(rng: Range, totals: Sequence[UsageGroup], split: Sequence[UsageGroup], split_by: str,
                 name: Callable[[str], str]) -> dict[str, Chart]:
    """The page's charts by id: spend, requests, errors, tokens, latency, ttft."""
    buckets = Buckets(rng, rng.starts())
    labels = [rng.bucket_name(s) for s in buckets.starts]
    ticks = [rng.tick(s) for s in buckets.starts]
    per = "hour" if rng.bucket == "hour" else "day"

    def chart(ident: str, title: str, series: list[Series], kind: str, value: Callable[[float], str],
              axis: Callable[[float], str], note: str = "", empty: str = "No requests in this range.") -> Chart:
        return Chart(title, labels, ticks, series, kind, value, axis, empty=empty, ident=ident, note=note)

    requests = buckets.column(totals, lambda g: g.requests)
    errors = buckets.column(totals, lambda g: g.errors)
    return {
        "spend": chart("chart-spend", f"Spend per {per}", _stacked(split, buckets, lambda g: g.cost_micros, name),
                       "bars", lambda v: money(int(v)), axis_money, note=f"by {split_by}"),
        "requests": chart("chart-requests", f"Requests per {per}",
                          _stacked(split, buckets, lambda g: g.requests, name), "bars",
                          lambda v: count(v), compact, note=f"by {split_by}"),
        "errors": chart("chart-errors", f"Errors per {per}", [Series("Errors", errors, ERROR_TONE)], "bars",
                        lambda v: count(v), compact,
                        note=f"{percent(sum(errors), sum(requests))} of requests" if sum(requests) else "",
                        empty="No errors in this range."),
        "tokens": chart("chart-tokens", f"Tokens per {per}", [
            Series("Input", buckets.column(totals, lambda g: g.prompt_tokens), 0),
            Series("Output", buckets.column(totals, lambda g: g.completion_tokens), 2)],
            "bars", lambda v: count(v), compact),
        "latency": chart("chart-latency", "Latency", [
            Series("p50", _percentile(totals, buckets, lambda g: g.latency_p50_ms), 0),
            Series("p95", _percentile(totals, buckets, lambda g: g.latency_p95_ms), 1)],
            "lines", duration, axis_ms, note="successful requests, request to last byte"),
        "ttft": chart("chart-ttft", "Time to first token", [
            Series("p50", _percentile(totals, buckets, lambda g: g.ttft_p50_ms), 0),
            Series("p95", _percentile(totals, buckets, lambda g: g.ttft_p95_ms), 1)],
            "lines", duration, axis_ms, note="successful streams", empty="No streamed requests in this range."),
    }
