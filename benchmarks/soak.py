"""The memory soak: one gateway carries ``N`` short chat requests and its memory is read along the way.

The memory goal is about a gateway that has been running, not one that just started: all four
services together under 300 MB after 100,000 requests, with no growth once warm. The soak sends
non-streaming chat at concurrency 16 in slices (wrk, or the stream client without it) until ``N``
requests have succeeded, and records the process tree's RSS after the first slice (the warm-up)
and after the last, together with the peak sampled throughout. A leak shows as growth between
the two readings; a one-time cost (caches, pools, lazily built tables) shows in the first.
"""

from __future__ import annotations

import time
from dataclasses import replace

from benchmarks.load import LoadSpec, run_load
from benchmarks.processes import ProcessTreeMeter

SOAK_CONCURRENCY = 16
#: Seconds of load per slice; RSS is read between slices.
SLICE_SECONDS = 15.0
#: The soak stops after this many slices even if fewer requests succeeded (a failing gateway).
MAX_SLICES = 400


def run_soak(spec: LoadSpec, meter: ProcessTreeMeter, requests: int, use_wrk: bool = True,
             slice_seconds: float = SLICE_SECONDS) -> dict[str, object]:
    """Load until ``requests`` succeeded; returns the row of the ``soak`` scenario."""
    spec = replace(spec, concurrency=SOAK_CONCURRENCY, duration_s=slice_seconds, streaming=False)
    ok = failed = 0
    rss_after_warmup_mb: float | None = None
    started = time.monotonic()
    meter.start()
    slices = 0
    while ok < requests and slices < MAX_SLICES:
        summary = run_load(spec, use_wrk=use_wrk)
        slices += 1
        ok += int(summary["ok"])  # type: ignore[call-overload]
        failed += int(summary["requests"]) - int(summary["ok"])  # type: ignore[call-overload]
        if rss_after_warmup_mb is None:
            rss_after_warmup_mb = _mb(meter.rss_bytes())
        if summary["ok"] == 0:
            break
    rss_end_mb = _mb(meter.rss_bytes())
    cpu_s, peak_rss = meter.stop()
    elapsed = time.monotonic() - started
    return {
        "scenario": f"soak@c{SOAK_CONCURRENCY}",
        "kind": "soak",
        "concurrency": SOAK_CONCURRENCY,
        "streaming": False,
        "requests": ok + failed,
        "ok": ok,
        "errors": {"failed": failed} if failed else {},
        "requests_per_s": round(ok / elapsed, 2) if elapsed > 0 else 0.0,
        "soak_target_requests": requests,
        "rss_after_warmup_mb": rss_after_warmup_mb,
        "rss_end_mb": rss_end_mb,
        "peak_rss_mb": _mb(peak_rss),
        "gateway_cpu_s": round(cpu_s, 3),
        "cpu_s_per_1k_requests": round(cpu_s / ok * 1000, 4) if ok else None,
    }


def _mb(value: int) -> float:
    return round(value / 1024 / 1024, 1)
