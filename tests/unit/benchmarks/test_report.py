"""The benchmark report: percentiles, the goals check and the docs section it rewrites."""

from __future__ import annotations

from pathlib import Path

from benchmarks.report import DOCS_END, DOCS_START, check_goals, format_table, write_docs
from benchmarks.runner import BenchOptions, run_benchmarks
from benchmarks.stats import percentile, summarize_ms


def _row(target: str, scenario: str, p50: float, p99: float, rps: float, **extra: object) -> dict[str, object]:
    return {
        "target": target,
        "scenario": scenario,
        "requests": 100,
        "ok": 100,
        "requests_per_s": rps,
        "latency_ms": {"p50": p50, "p90": p50, "p99": p99},
        "ttft_ms": None,
        "errors": {},
        **extra,
    }


def _document(rows: list[dict[str, object]]) -> dict[str, object]:
    return {
        "started_at": "2026-01-01T00:00:00+00:00",
        "machine": {"nproc": 2, "cpu_model": "cpu", "python": "3.11", "kernel": "6", "litellm": "1.100.5"},
        "options": {"duration_s": 3.0, "warmup_s": 1.0},
        "provider": {"delay_ms": 0.0, "chunks": 20, "chunk_delay_ms": 0.0},
        "targets": {
            "direct": {"label": "direct", "available": True},
            "switchboard": {"label": "switchboard", "available": True},
            "litellm": {"label": "litellm", "available": False, "reason": "could not install\nlast line"},
        },
        "results": rows,
    }


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.5) == 50.0
    assert percentile(values, 0.99) == 99.0
    assert percentile([7.0], 0.9) == 7.0
    assert summarize_ms([]) is None
    summary = summarize_ms([3.0, 1.0, 2.0])
    assert summary is not None and summary["p50"] == 2.0 and summary["max"] == 3.0


def test_goals_read_the_right_rows() -> None:
    rows = [
        _row("switchboard", "chat@c1", 1.2, 2.0, 500, added_p50_ms=0.9),
        _row("switchboard", "stream@c1", 1.5, 3.0, 400, ttft_overhead_p50_ms=2.5),
        _row("switchboard", "long-prompt@c1", 2.6, 4.0, 300, added_p50_ms=2.6, ttft_overhead_p50_ms=1.9),
        _row("switchboard", "chat@c16", 8.0, 20.0, 2000, cpu_s_per_1k_requests=0.72),
        _row("switchboard", "chat@c64", 10.0, 50.0, 900, peak_rss_mb=240.0),
    ]
    goals = {goal["goal"]: goal["status"] for goal in check_goals(_document(rows))}
    assert goals["adds <= 1.0 ms at p50, concurrency 1"] == "met"
    assert goals["TTFT overhead <= 2 ms at p50, concurrency 1"] == "missed"
    assert goals["100 KB prompt: TTFT overhead <= 2 ms at p50, concurrency 1"] == "met"
    assert goals["100 KB prompt: adds <= 2.5 ms at p50, concurrency 1"] == "missed"
    assert goals["CPU per short chat <= 0.6 ms across the four services (concurrency 16)"] == "missed"
    assert goals[">= 10x LiteLLM's requests/s at concurrency 16"] == "not measured"
    assert goals["p99 < 4x p50 at concurrency 64 (chat)"] == "missed"
    # 240 MB after only a few hundred requests: the "after 100k requests" part is not measured yet.
    assert goals["<= 250 MB RSS for all four services after 100k requests, no growth"] == "not measured"


def test_write_docs_replaces_only_the_generated_section(tmp_path: Path) -> None:
    page = tmp_path / "performance.md"
    page.write_text(f"# Performance\n\nIntro stays.\n\n{DOCS_START}\nold table\n{DOCS_END}\n\nOutro stays.\n")
    write_docs(_document([_row("direct", "chat@c1", 0.1, 0.3, 9000)]), page)
    text = page.read_text()
    assert "Intro stays." in text and "Outro stays." in text and "old table" not in text
    assert text.count(DOCS_START) == 1 and "| chat@c1 | direct | 9000 |" in text
    assert "| chat@c1 | litellm | n/a |" in text
    assert "litellm: not measured in this run (could not install ... last line)" in text


def test_direct_run_end_to_end() -> None:
    """The runner starts the fake provider, drives both load generators and reports every scenario."""
    options = BenchOptions(
        targets=["direct"],
        duration_s=0.5,
        warmup_s=0.0,
        concurrencies=[1],
        long_concurrencies=[],
        kinds=["chat", "stream"],
    )
    document = run_benchmarks(options, log=False)
    rows = {row["scenario"]: row for row in document["results"]}  # type: ignore[attr-defined]
    assert set(rows) == {"chat@c1", "stream@c1"}
    for row in rows.values():
        assert row["ok"] == row["requests"] and int(row["requests"]) > 0
        assert row["errors"] == {} and row["failures"] == 0
    assert rows["stream@c1"]["ttft_ms"] is not None and rows["stream@c1"]["events_mean"] == 24
    assert "chat@c1" in format_table(document)


def _soak(peak: float, warm: float, end: float, ok: int) -> dict[str, object]:
    return _row("switchboard", "soak@c16", 10.0, 20.0, 800, ok=ok, soak_target_requests=100_000,
                peak_rss_mb=peak, rss_after_warmup_mb=warm, rss_end_mb=end)


def test_memory_goal_reads_the_soak() -> None:
    goal = "<= 250 MB RSS for all four services after 100k requests, no growth"

    def status(*rows: dict[str, object]) -> str:
        return {g["goal"]: g["status"] for g in check_goals(_document(list(rows)))}[goal]

    assert status(_soak(245.0, 240.0, 243.0, 100_000)) == "met"
    assert status(_soak(260.0, 240.0, 250.0, 100_000)) == "missed"  # over the line
    assert status(_soak(245.0, 200.0, 245.0, 100_000)) == "missed"  # still growing after warm-up
    assert status(_soak(245.0, 240.0, 243.0, 60_000)) == "missed"  # the soak did not reach 100k
    # Without a soak, a peak already over the line is a miss; under it, not measured.
    assert status(_row("switchboard", "chat@c16", 10.0, 20.0, 800, peak_rss_mb=260.0)) == "missed"


def test_a_scenario_a_gateway_cannot_run_is_shown_as_not_measured_with_the_reason(tmp_path: Path) -> None:
    rows = [
        _row("direct", "cursor-agent+pii@c1", 1.0, 2.0, 500),
        _row("switchboard", "cursor-agent+pii@c1", 6.0, 9.0, 100, added_p50_ms=5.0),
        {"target": "litellm", "scenario": "cursor-agent+pii@c1", "skipped": "no per-key PII substitution"},
    ]
    document = _document(rows)
    document["targets"]["litellm"] = {"label": "litellm", "available": True}  # type: ignore[index]
    table = format_table(document)
    assert "litellm: cursor-agent+pii@c1 not measured - no per-key PII substitution" in table
    page = tmp_path / "performance.md"
    write_docs(document, page)
    text = page.read_text()
    assert "| cursor-agent+pii@c1 | litellm | n/a |" in text
    assert "- litellm: cursor-agent+pii@c1 not measured (no per-key PII substitution)." in text
    assert "| cursor-agent+pii@c1 | switchboard | 100 |" in text


def test_the_throughput_ratio_is_taken_against_litellms_best_row() -> None:
    rows = [
        _row("switchboard", "chat@c16", 12.0, 30.0, 1300, cpu_s_per_1k_requests=1.2),
        _row("litellm", "chat@c16", 150.0, 500.0, 96, cpu_s_per_1k_requests=10.3),
        _row("litellm-uvicorn", "chat@c16", 95.0, 300.0, 160, cpu_s_per_1k_requests=6.0),
    ]
    goals = {goal["goal"]: goal for goal in check_goals(_document(rows))}
    ratio = goals[">= 10x LiteLLM's requests/s at concurrency 16"]
    assert ratio["status"] == "missed"
    assert ratio["measured"] == "8.1x (LiteLLM's best: 160 req/s, litellm-uvicorn; 5.0x less CPU per request)"
    goals = {goal["goal"]: goal for goal in check_goals(_document(rows[:2]))}
    assert goals[">= 10x LiteLLM's requests/s at concurrency 16"]["status"] == "met"
