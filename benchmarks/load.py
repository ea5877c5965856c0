"""Running one load: wrk for whole responses, the stream client for TTFT; one result shape for both.

Both load generators run as separate processes so that their CPU never counts as the gateway's
and never shares the runner's interpreter. wrk (C, epoll) is preferred for non-streaming loads
because it costs almost nothing per request; when it is not installed the stream client, which
also handles plain JSON responses, takes its place.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from benchmarks.processes import REPO_ROOT
from benchmarks.stats import summarize_ms

WRK_SCRIPT = REPO_ROOT / "benchmarks" / "wrk" / "chat.lua"
_WRK_MARKER = "BENCH_JSON "


@dataclass(frozen=True)
class LoadSpec:
    """One load to generate against one URL."""

    url: str
    api_key: str
    body_file: Path
    concurrency: int
    duration_s: float
    streaming: bool
    overhead_header: str | None = None
    #: Replay agent conversations of this kind turn by turn instead of sending ``body_file`` (stream client).
    conversation: str | None = None
    #: The model named in the conversations' requests.
    model: str = ""


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


def run_load(spec: LoadSpec, use_wrk: bool = True) -> dict[str, object]:
    """Run the load and return the stream client's summary shape (milliseconds throughout)."""
    if spec.streaming or spec.conversation or not use_wrk or not wrk_available():
        return _run_stream_client(spec)
    summary = _run_wrk(spec)
    if int(summary["ok"]) < 2 * spec.concurrency:  # type: ignore[call-overload]
        # wrk drops the requests still in flight when the time is up; against a gateway slower
        # than duration / 2 per request that leaves almost nothing. The stream client waits for them.
        summary = _run_stream_client(spec)
        summary["load_generator"] = "stream_client (wrk completed too few requests)"
    return summary


def _run_stream_client(spec: LoadSpec) -> dict[str, object]:
    argv = [
        sys.executable,
        "-m",
        "benchmarks.stream_client",
        "--url",
        spec.url,
        "--body-file",
        str(spec.body_file),
        "--api-key",
        spec.api_key,
        "--concurrency",
        str(spec.concurrency),
        "--duration",
        str(spec.duration_s),
    ]
    if spec.overhead_header:
        argv += ["--overhead-header", spec.overhead_header]
    if spec.conversation:
        argv += ["--conversation", spec.conversation, "--model", spec.model]
    done = subprocess.run(
        argv, capture_output=True, text=True, cwd=REPO_ROOT, timeout=spec.duration_s + 120, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"stream client failed: {done.stderr[-1500:]}")
    summary: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    summary["load_generator"] = "stream_client"
    return summary


def _run_wrk(spec: LoadSpec) -> dict[str, object]:
    threads = 1 if spec.concurrency < 32 else 2
    argv = [
        "wrk",
        f"-t{threads}",
        f"-c{spec.concurrency}",
        f"-d{max(1, round(spec.duration_s))}s",
        "--timeout",
        "30s",
        "-s",
        str(WRK_SCRIPT),
        spec.url,
    ]
    env = {
        **os.environ,
        "BENCH_BODY_FILE": str(spec.body_file),
        "BENCH_API_KEY": spec.api_key,
        "BENCH_OVERHEAD_HEADER": spec.overhead_header or "",
    }
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=spec.duration_s + 120, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith(_WRK_MARKER)]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr[-1500:]}{done.stdout[-1500:]}")
    raw = json.loads(lines[-1][len(_WRK_MARKER) :])
    return _normalize_wrk(raw, spec)


def _normalize_wrk(raw: dict[str, object], spec: LoadSpec) -> dict[str, object]:
    """wrk's summary (microseconds, error counters) in the stream client's shape (milliseconds)."""
    latency = raw["latency_us"]
    errors = raw["errors"]
    assert isinstance(latency, dict) and isinstance(errors, dict)
    requests = int(raw["requests"])  # type: ignore[call-overload]
    duration_s = int(raw["duration_us"]) / 1e6  # type: ignore[call-overload]
    failed_status = int(errors.get("status", 0))
    ok = requests - failed_status
    overhead = raw.get("overhead_ms") or []
    assert isinstance(overhead, list)
    statuses = raw.get("statuses") or ({"2xx": ok} if ok else {})
    latency_ms = None
    if requests:
        latency_ms = {
            "count": requests,
            "mean": round(float(latency["mean"]) / 1000, 4),
            "p50": latency["p50"] / 1000,
            "p90": latency["p90"] / 1000,
            "p99": latency["p99"] / 1000,
            "max": latency["max"] / 1000,
        }
    return {
        "requests": requests,
        "ok": ok,
        "duration_s": round(duration_s, 4),
        "requests_per_s": round(ok / duration_s, 2) if duration_s > 0 else 0.0,
        "latency_ms": latency_ms,
        "ttft_ms": None,
        "overhead_header_ms": summarize_ms([float(value) for value in overhead]),
        "events_mean": 0.0,
        "statuses": statuses,
        "errors": {name: count for name, count in errors.items() if count and name != "status"},
        "failures": sum(int(count) for count in errors.values()),
        "load_generator": f"wrk -t{1 if spec.concurrency < 32 else 2}",
    }
