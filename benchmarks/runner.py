"""Runs every scenario against every target and collects one result document.

Targets: ``direct`` (the fake provider itself: the baseline every overhead is measured from),
``switchboard`` (all four services under the supervisor) and ``litellm`` (LiteLLM's proxy), all
on the raw-protocol fake provider; ``direct-uvicorn`` and ``litellm-uvicorn`` are the same against
the same fake provider served by Starlette on uvicorn (``fake_provider_asgi``), the way an
independent harness would write it, so the LiteLLM numbers do not depend on one server's HTTP
quirks. A target that cannot be started is recorded as unavailable with the reason and the others run.

For each scenario and target: a short warm-up load (discarded), then the measured load while the
gateway's process tree is metered (CPU seconds before/after, RSS sampled for the peak).
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from benchmarks.gateway import GatewayUnavailable, RunningGateway
from benchmarks.litellm_env import LITELLM_VERSION, start_litellm
from benchmarks.load import LoadSpec, run_load, wrk_available
from benchmarks.processes import REPO_ROOT, ManagedProcess, ProcessTreeMeter, free_port, wait_http_ok
from benchmarks.scenarios import (
    ALL_KINDS,
    CONVERSATION_KINDS,
    PII_SUFFIX,
    Scenario,
    build_scenarios,
    write_bodies,
)
from benchmarks.soak import run_soak
from benchmarks.switchboard_env import POSTGRES_SERVER_URL, REDIS_URL, ensure_postgres_database, start_switchboard

TARGETS = ("direct", "switchboard", "litellm", "direct-uvicorn", "litellm-uvicorn")
#: Targets whose provider is the Starlette/uvicorn fake provider; each other target uses the raw one.
UVICORN_PROVIDER_TARGETS = ("direct-uvicorn", "litellm-uvicorn")
#: The target whose p50 a target's overhead is measured from.
BASELINE_TARGET = {"litellm-uvicorn": "direct-uvicorn"}
DIRECT_API_KEY = "sk-direct"
#: Seconds of load per request kind right after a gateway starts, before any measurement.
SETTLE_SECONDS_PER_KIND = 1.5


@dataclass
class BenchOptions:
    """Everything a run can be told; the CLI fills it."""

    targets: list[str] = field(default_factory=lambda: list(TARGETS))
    duration_s: float = 10.0
    warmup_s: float = 2.0
    concurrencies: list[int] = field(default_factory=lambda: [1, 16, 64])
    long_concurrencies: list[int] = field(default_factory=lambda: [1])
    kinds: list[str] = field(default_factory=lambda: list(ALL_KINDS))
    postgres: bool = False
    provider_delay_ms: float = 0.0
    provider_chunks: int = 20
    provider_chunk_delay_ms: float = 0.0
    switchboard_python: str = sys.executable
    switchboard_root: Path = REPO_ROOT
    model: str = "bench-model"
    use_wrk: bool = True
    #: After the scenarios, carry this many chat requests through Switchboard and read its memory (0: no soak).
    soak_requests: int = 0
    #: Interpreter LiteLLM's venv is made from (``None``: the one running the benchmark).
    litellm_python: str | None = None


def machine_description() -> dict[str, object]:
    """What the numbers were measured on."""
    cpu_model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory_gb = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory_gb = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    wrk_version = None
    if wrk_available():
        probe = subprocess.run(["wrk", "--version"], capture_output=True, text=True, check=False)
        banner = (probe.stdout or probe.stderr).strip()
        # "wrk debian/4.1.0-3+b2 [epoll] Copyright (C) 2012 Will Glozer" -> "wrk debian/4.1.0-3+b2"
        wrk_version = banner.splitlines()[0].split("[", 1)[0].strip() if banner else None
    return {
        "nproc": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "cpu_model": cpu_model,
        "memory_gb": memory_gb,
        "python": platform.python_version(),
        "kernel": platform.release(),
        "wrk": wrk_version,
        # Other work on the machine shows up in the tails; this says how busy it was.
        "load_average_at_start": [round(value, 2) for value in os.getloadavg()],
        "litellm": LITELLM_VERSION,
    }


class _FakeProvider:
    """A fake provider process (started once, shared by the targets that use it)."""

    def __init__(self, options: BenchOptions, work_dir: Path, module: str = "benchmarks.fake_provider") -> None:
        self.port = free_port()
        argv = [
            sys.executable,
            "-m",
            module,
            "--port",
            str(self.port),
            "--delay-ms",
            str(options.provider_delay_ms),
            "--chunks",
            str(options.provider_chunks),
            "--chunk-delay-ms",
            str(options.provider_chunk_delay_ms),
            "--models",
            options.model,
        ]
        name = module.rsplit(".", 1)[-1].replace("_", "-")
        self.process = ManagedProcess(name, argv, work_dir / f"{name}.log")
        wait_http_ok(f"http://127.0.0.1:{self.port}/health", 20, self.process)
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self.meter = ProcessTreeMeter(self.process.pid)


def _start_target(name: str, options: BenchOptions, provider: _FakeProvider, work_dir: Path) -> RunningGateway | None:
    """Start a gateway target; ``None`` for ``direct``. Raises ``GatewayUnavailable``."""
    if name in ("direct", "direct-uvicorn"):
        return None
    if name == "switchboard":
        database_url = redis_url = None
        if options.postgres:
            database_url = ensure_postgres_database(POSTGRES_SERVER_URL, "switchboard_bench")
            redis_url = REDIS_URL
        return start_switchboard(
            provider.base_url,
            options.model,
            work_dir / "switchboard",
            python=options.switchboard_python,
            source_root=options.switchboard_root,
            database_url=database_url,
            redis_url=redis_url,
        )
    if name in ("litellm", "litellm-uvicorn"):
        database_url = ensure_postgres_database(POSTGRES_SERVER_URL, "litellm_bench") if options.postgres else None
        return start_litellm(provider.base_url, options.model, work_dir / name, database_url=database_url,
                             base_python=options.litellm_python)
    raise ValueError(f"unknown target {name!r}")


def _measure(
    scenario: Scenario,
    spec: LoadSpec,
    options: BenchOptions,
    gateway_meter: ProcessTreeMeter | None,
    provider_meter: ProcessTreeMeter,
) -> dict[str, object]:
    if options.warmup_s > 0:
        run_load(replace(spec, duration_s=options.warmup_s), use_wrk=options.use_wrk)
    if gateway_meter is not None:
        gateway_meter.start()
    provider_meter.start()
    summary = run_load(spec, use_wrk=options.use_wrk)
    provider_cpu_s, _ = provider_meter.stop()
    row: dict[str, object] = {
        "scenario": scenario.key,
        "kind": scenario.kind,
        "concurrency": scenario.concurrency,
        "streaming": scenario.streaming,
        **summary,
        "provider_cpu_s": round(provider_cpu_s, 3),
        "overhead_header": spec.overhead_header,
    }
    ok = int(summary["ok"])  # type: ignore[call-overload]
    if gateway_meter is not None:
        cpu_s, peak_rss = gateway_meter.stop()
        row["gateway_cpu_s"] = round(cpu_s, 3)
        row["cpu_s_per_1k_requests"] = round(cpu_s / ok * 1000, 4) if ok else None
        row["peak_rss_mb"] = round(peak_rss / 1024 / 1024, 1)
        row["gateway_processes"] = gateway_meter.process_count()
    return row


def _add_overheads(rows: list[dict[str, object]]) -> None:
    """Added latency and TTFT at p50 versus the direct run of the same scenario on the same provider."""
    by_key = {(row["target"], row["scenario"]): row for row in rows}
    for row in rows:
        baseline_target = BASELINE_TARGET.get(str(row["target"]), "direct")
        baseline = by_key.get((baseline_target, row["scenario"])) if not _is_direct(row) else None
        row["added_p50_ms"] = _difference(row, baseline, "latency_ms")
        row["ttft_overhead_p50_ms"] = _difference(row, baseline, "ttft_ms")


def _is_direct(row: dict[str, object]) -> bool:
    return str(row["target"]).startswith("direct")


def _difference(row: dict[str, object], baseline: dict[str, object] | None, metric: str) -> float | None:
    if baseline is None:
        return None
    mine, theirs = row.get(metric), baseline.get(metric)
    if not isinstance(mine, dict) or not isinstance(theirs, dict):
        return None
    return round(float(mine["p50"]) - float(theirs["p50"]), 3)


def run_benchmarks(options: BenchOptions, log: bool = True) -> dict[str, object]:
    """Run everything ``options`` asks for and return the result document."""
    started = dt.datetime.now(dt.UTC)
    work_dir = Path(tempfile.mkdtemp(prefix="switchboard-bench-"))
    scenarios = build_scenarios(options.concurrencies, options.long_concurrencies, set(options.kinds))
    kinds = {scenario.kind for scenario in scenarios} | ({"chat"} if options.soak_requests else set())
    bodies = write_bodies(work_dir / "bodies", options.model, kinds)
    targets: dict[str, dict[str, object]] = {}
    rows: list[dict[str, object]] = []
    providers: dict[str, _FakeProvider] = {}
    try:
        for target in options.targets:
            module = ("benchmarks.fake_provider_asgi" if target in UVICORN_PROVIDER_TARGETS
                      else "benchmarks.fake_provider")
            if module not in providers:
                providers[module] = _FakeProvider(options, work_dir, module)
            _run_target(target, options, providers[module], scenarios, bodies, work_dir, targets, rows, log)
    finally:
        for provider in providers.values():
            provider.process.stop()
    _add_overheads(rows)
    finished = dt.datetime.now(dt.UTC)
    document: dict[str, object] = {
        "started_at": started.isoformat(timespec="seconds"),
        "finished_at": finished.isoformat(timespec="seconds"),
        "machine": machine_description(),
        "options": {**asdict(options)},
        "provider": {
            "delay_ms": options.provider_delay_ms,
            "chunks": options.provider_chunks,
            "chunk_delay_ms": options.provider_chunk_delay_ms,
        },
        "targets": targets,
        "results": rows,
        "work_dir": str(work_dir),
    }
    if not any(target.get("available") is False for target in targets.values()):
        shutil.rmtree(work_dir, ignore_errors=True)
        document["work_dir"] = None
    return document


def _run_target(
    target: str,
    options: BenchOptions,
    provider: _FakeProvider,
    scenarios: list[Scenario],
    bodies: dict[str, Path],
    work_dir: Path,
    targets: dict[str, dict[str, object]],
    rows: list[dict[str, object]],
    log: bool,
) -> None:
    label = f"{target}+postgres" if options.postgres and not target.startswith("direct") else target
    if log:
        print(f"[bench] starting {label}", flush=True)
    launch = time.monotonic()
    try:
        gateway = _start_target(target, options, provider, work_dir)
    except GatewayUnavailable as exc:
        targets[target] = {"label": label, "available": False, "reason": str(exc)[:3000]}
        if log:
            print(f"[bench] {label} unavailable: {str(exc).splitlines()[0][:300]}", flush=True)
        return
    targets[target] = {"label": label, "available": True, "startup_s": round(time.monotonic() - launch, 2)}
    try:
        if gateway is not None:
            _settle(gateway, bodies, options)
        gateway_meter = (
            ProcessTreeMeter(gateway.process.pid, include_root=gateway.meter_root) if gateway is not None else None
        )
        if gateway_meter is not None:
            targets[target]["idle_rss_mb"] = round(gateway_meter.rss_bytes() / 1024 / 1024, 1)
        for scenario in scenarios:
            if gateway is not None and not gateway.process.alive():
                rows.append({"target": target, "scenario": scenario.key, "error": "gateway exited"})
                continue
            api_key = _api_key(gateway, scenario.pii)
            if api_key is None:
                assert gateway is not None
                rows.append({"target": target, "scenario": scenario.key, "skipped": gateway.pii_unsupported})
                if log:
                    print(f"[bench] {label:<22} {scenario.key:<18} skipped: {gateway.pii_unsupported}", flush=True)
                continue
            spec = LoadSpec(
                url=gateway.chat_url if gateway else f"{provider.base_url}/chat/completions",
                api_key=api_key,
                body_file=bodies[scenario.kind],
                concurrency=scenario.concurrency,
                duration_s=options.duration_s,
                streaming=scenario.streaming,
                overhead_header=gateway.overhead_header_for(scenario.streaming) if gateway else None,
                conversation=scenario.conversation,
                model=options.model,
            )
            if log:
                print(f"[bench] {label:<22} {scenario.key:<18}", end="", flush=True)
            try:
                row = {"target": target, **_measure(scenario, spec, options, gateway_meter, provider.meter)}
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                row = {"target": target, "scenario": scenario.key, "error": str(exc)[:2000]}
            rows.append(row)
            if log:
                print(_progress(row), flush=True)
        # The soak is Switchboard's memory goal; at LiteLLM's rate 100k requests would take half an hour.
        if target == "switchboard" and gateway is not None and gateway_meter is not None and options.soak_requests:
            _soak(target, label, gateway, gateway_meter, bodies, options, rows, log)
    finally:
        if gateway is not None:
            gateway.process.stop()


def _api_key(gateway: RunningGateway | None, pii: bool) -> str | None:
    """The key a scenario is sent with; ``None`` when the gateway cannot run it as asked."""
    if gateway is None:
        return DIRECT_API_KEY
    return gateway.pii_api_key if pii else gateway.api_key


def _soak(target: str, label: str, gateway: RunningGateway, meter: ProcessTreeMeter, bodies: dict[str, Path],
          options: BenchOptions, rows: list[dict[str, object]], log: bool) -> None:
    """The memory soak (see soak.py) as one more row of the target."""
    if log:
        print(f"[bench] {label:<22} soak: {options.soak_requests} requests", end="", flush=True)
    spec = LoadSpec(url=gateway.chat_url, api_key=gateway.api_key, body_file=bodies["chat"], concurrency=16,
                    duration_s=options.duration_s, streaming=False, overhead_header=gateway.overhead_header)
    try:
        row = {"target": target, **run_soak(spec, meter, options.soak_requests, use_wrk=options.use_wrk)}
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        row = {"target": target, "scenario": "soak@c16", "error": str(exc)[:2000]}
    rows.append(row)
    if log:
        extra = (f"  RSS {row['rss_after_warmup_mb']} MB after warm-up, {row['rss_end_mb']} MB at the end"
                 if "rss_end_mb" in row else "")
        print(_progress(row) + extra, flush=True)


def _settle(gateway: RunningGateway, bodies: dict[str, Path], options: BenchOptions) -> None:
    """Send each body a few times before measuring anything.

    Gateways initialise lazily (LiteLLM's first request takes about two seconds), and a
    scenario's own warm-up is too short to absorb that without skewing the first scenario.
    """
    for kind, body_file in sorted(bodies.items()):
        api_key = _api_key(gateway, kind.endswith(PII_SUFFIX))
        if api_key is None:
            continue
        spec = LoadSpec(
            url=gateway.chat_url,
            api_key=api_key,
            body_file=body_file,
            concurrency=1,
            duration_s=SETTLE_SECONDS_PER_KIND,
            streaming=kind != "chat",
            conversation=kind if kind in CONVERSATION_KINDS else None,
            model=options.model,
        )
        try:
            run_load(spec, use_wrk=options.use_wrk)
        except (RuntimeError, subprocess.TimeoutExpired):
            pass  # the measured run reports the failure with its details


def _progress(row: dict[str, object]) -> str:
    if "skipped" in row:
        return f" skipped: {row['skipped']}"
    if "error" in row:
        return f" error: {str(row['error']).splitlines()[0][:200]}"
    latency = row.get("latency_ms")
    p50 = f"{latency['p50']:.2f} ms" if isinstance(latency, dict) else "-"
    return f" {row['requests_per_s']:>9} req/s  p50 {p50}  errors {row.get('errors') or 0}"


def default_results_path(document: dict[str, object]) -> Path:
    stamp = str(document["started_at"]).replace(":", "").replace("-", "").replace("+0000", "Z")
    return REPO_ROOT / "benchmarks" / "results" / f"bench-{stamp}.json"
