"""``python -m benchmarks``: run the gateway benchmarks and print, save and optionally publish the numbers.

Examples::

    python -m benchmarks                      # direct, Switchboard, LiteLLM; 10 s per scenario
    python -m benchmarks --quick              # 3 s per scenario
    python -m benchmarks --targets direct,litellm --kinds chat,stream
    python -m benchmarks --postgres           # gateways on PostgreSQL (+ Redis for Switchboard)
    python -m benchmarks --quick --write-docs # also rewrite the table in docs/performance.md
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from benchmarks.processes import REPO_ROOT
from benchmarks.report import check_goals, format_goals, format_table, write_docs
from benchmarks.runner import TARGETS, BenchOptions, default_results_path, run_benchmarks
from benchmarks.scenarios import ALL_KINDS


def _int_list(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def _name_list(allowed: tuple[str, ...]) -> object:
    def parse(text: str) -> list[str]:
        names = [part.strip() for part in text.split(",") if part.strip()]
        unknown = [name for name in names if name not in allowed]
        if unknown:
            raise argparse.ArgumentTypeError(f"unknown {unknown}; choose from {', '.join(allowed)}")
        return names

    return parse


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__.split("\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "--targets", type=_name_list(TARGETS), default=list(TARGETS), help="comma-separated: %(default)s"
    )
    parser.add_argument(
        "--kinds", type=_name_list(ALL_KINDS), default=list(ALL_KINDS), help="scenario kinds: %(default)s"
    )
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds per scenario (default 10)")
    parser.add_argument(
        "--warmup", type=float, default=None, help="warm-up seconds per scenario (default 2, 1 with --quick)"
    )
    parser.add_argument("--quick", action="store_true", help="3 s per scenario")
    parser.add_argument(
        "--concurrency", type=_int_list, default=[1, 16, 64], help="for chat and stream (default 1,16,64)"
    )
    parser.add_argument(
        "--long-concurrency", type=_int_list, default=[1], help="for long-prompt/long-stream (default 1)"
    )
    parser.add_argument(
        "--postgres", action="store_true", help="gateways keep keys in PostgreSQL (Switchboard also Redis)"
    )
    parser.add_argument("--provider-delay-ms", type=float, default=0.0, help="fake provider's delay before first byte")
    parser.add_argument("--chunks", type=int, default=20, help="fake provider's content chunks per stream")
    parser.add_argument("--chunk-delay-ms", type=float, default=0.0, help="fake provider's delay between chunks")
    parser.add_argument("--switchboard-python", default=sys.executable, help="Python that runs the supervisor")
    parser.add_argument(
        "--switchboard-root", type=Path, default=REPO_ROOT, help="checkout whose sources the supervisor runs"
    )
    parser.add_argument(
        "--litellm-python", default=None,
        help="interpreter LiteLLM's venv is made from (default: this one; another gets its own venv)",
    )
    parser.add_argument("--no-wrk", action="store_true", help="use the asyncio client for non-streaming loads too")
    parser.add_argument(
        "--output", type=Path, default=None, help="result JSON path (default benchmarks/results/bench-<time>.json)"
    )
    parser.add_argument(
        "--soak-requests", type=int, default=0,
        help="after the scenarios, carry this many chat requests through Switchboard and report its memory "
             "after warm-up and at the end (the memory goal reads 100000)",
    )
    parser.add_argument("--write-docs", action="store_true", help="rewrite the results section of docs/performance.md")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    duration = 3.0 if args.quick else args.duration
    warmup = args.warmup if args.warmup is not None else (1.0 if args.quick else 2.0)
    options = BenchOptions(
        targets=args.targets,
        duration_s=duration,
        warmup_s=warmup,
        concurrencies=args.concurrency,
        long_concurrencies=args.long_concurrency,
        kinds=args.kinds,
        postgres=args.postgres,
        provider_delay_ms=args.provider_delay_ms,
        provider_chunks=args.chunks,
        provider_chunk_delay_ms=args.chunk_delay_ms,
        switchboard_python=args.switchboard_python,
        switchboard_root=args.switchboard_root.resolve(),
        use_wrk=not args.no_wrk,
        soak_requests=args.soak_requests,
        litellm_python=args.litellm_python,
    )
    document = run_benchmarks(options)
    output = args.output or default_results_path(document)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(document, indent=2, default=str) + "\n")
    print()
    print(format_table(document))
    print()
    print(format_goals(check_goals(document)))
    print(f"\nresults: {output}")
    if args.write_docs:
        docs = REPO_ROOT / "docs" / "performance.md"
        write_docs(document, docs)
        print(f"docs:    {docs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
