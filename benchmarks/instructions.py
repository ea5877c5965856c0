"""Instructions per request, per Switchboard process: a measure of the gateway's own work that the machine does not move.

Prints numbers; asserts nothing. Run from the repository root (needs valgrind):

    python benchmarks/instructions.py [--kind chat|stream|long-prompt] [--requests 200] [--switchboard-root DIR]
    python benchmarks/instructions.py --concurrency 16 [--duration 20]

CPU time per request moves by 10-15 % between two runs of the same build on a shared VM, so a change that saves 3 %
cannot be told apart from the noise with ``make bench``. Instructions can: the gateway is started under valgrind's
callgrind (the supervisor with ``--trace-children=yes``, so each service process is counted on its own) with
counting off, warmed up, and counting is switched on for exactly ``--requests`` requests sent one at a time over one
keep-alive connection, then off again; the same span of wall time with no request is counted after, and
subtracted (the services' timers run by the wall clock, which valgrind stretches). Two runs of one build agree
within 1 % for the facade and 3-5 % for the shared process (its settlement batches and SQLite checkpoints fall
differently); comparing two builds (``--switchboard-root`` of a worktree, whose ``protos/gen`` is generated) shows
what a change saves.

What it does not count: time in the kernel (the syscalls of each hop), waiting, and the fake provider. What it
counts differently from full speed: the router's settlement batches gather for 50 ms, about one request's time under
valgrind, so the shared process pays a billing transaction per request or two. ``--concurrency 16`` counts the
busy gateway instead: ``--duration`` seconds of wrk (or the asyncio client) at that concurrency after as long of
warm-up, divided by the requests answered; the gateway is then the bottleneck, as under load at full speed, and
what batches (settlement, the exchange's replies) is shared as it is there. Compare builds with it. The
callgrind files are kept in the printed directory: ``callgrind_annotate --inclusive=yes <file>`` shows where a
process's instructions went, by C function (the interpreter's own, grpc's, SQLite's, orjson's...).
"""

from __future__ import annotations

import argparse
import http.client
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.load import LoadSpec, run_load  # noqa: E402
from benchmarks.processes import ManagedProcess, free_port, wait_http_ok  # noqa: E402
from benchmarks.scenarios import request_body  # noqa: E402
from benchmarks.switchboard_env import start_switchboard  # noqa: E402

MODEL = "bench-model"


def _post(conn: http.client.HTTPConnection, path: str, body: bytes, api_key: str) -> None:
    """One request on the keep-alive connection, its whole answer read (a stream to its end)."""
    conn.request("POST", path, body=body, headers={"Authorization": f"Bearer {api_key}",
                                                   "Content-Type": "application/json"})
    response = conn.getresponse()
    response.read()
    if response.status != 200:
        raise RuntimeError(f"the gateway answered {response.status}")


def _control(prefix: Path, *args: str) -> None:
    subprocess.run(["callgrind_control", f"--vgdb-prefix={prefix}", *args], check=True, capture_output=True)


def _counted(work_dir: Path, part: int) -> dict[str, int]:
    """Instructions of each service process in its ``part``-th dump (1: the requests, 2: the idle span after)."""
    out: dict[str, int] = {}
    for dump in sorted(work_dir.glob(f"callgrind.*.out.{part}")):
        command, total = "", 0
        for line in dump.read_text(errors="replace").splitlines():
            if line.startswith("cmd:"):
                command = line.split("-m", 1)[-1].strip()
            elif line.startswith("totals:"):
                total = int(line.split()[1])
        if "supervisor" not in command:
            out[command] = total
    return out


def net_counts(work_dir: Path) -> list[tuple[str, int]]:
    """(process, instructions) of the requests, less the same process's in the idle span after them."""
    busy, idle = _counted(work_dir, 1), _counted(work_dir, 2)
    return [(command, total - idle.get(command, 0)) for command, total in busy.items()]


def _one_at_a_time(conn: http.client.HTTPConnection, path: str, body: bytes, api_key: str, requests: int) -> int:
    for _ in range(requests):
        _post(conn, path, body, api_key)
    return requests


def _under_load(spec: LoadSpec) -> int:
    """The requests answered by a load of ``spec``'s concurrency and duration."""
    answered = run_load(spec)["ok"]
    assert isinstance(answered, int)
    return answered


def measure(kind: str, requests: int, warmup: int, source_root: Path, work_dir: Path,
            concurrency: int = 1, duration_s: float = 20.0) -> tuple[list[tuple[str, int]], int]:
    """(process, instructions) of the counted span, and the requests answered in it."""
    prefix = work_dir / "vgdb"
    wrapper = ["valgrind", "--tool=callgrind", "--trace-children=yes", "--instr-atstart=no",
               f"--vgdb-prefix={prefix}", f"--callgrind-out-file={work_dir}/callgrind.%p.out"]
    port = free_port()
    provider = ManagedProcess("fake-provider", [sys.executable, "-m", "benchmarks.fake_provider", "--port", str(port),
                                                "--quiet"], work_dir / "fake-provider.log")
    gateway = None
    try:
        wait_http_ok(f"http://127.0.0.1:{port}/v1/models", 30, provider)
        gateway = start_switchboard(f"http://127.0.0.1:{port}/v1", MODEL, work_dir, source_root=source_root,
                                    ready_timeout_s=600, wrapper=wrapper)
        url = urlsplit(gateway.chat_url)
        conn = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=120)
        body = request_body(kind, MODEL)
        body_file = work_dir / "body.json"
        body_file.write_bytes(body)
        load = LoadSpec(gateway.chat_url, gateway.api_key, body_file, concurrency, duration_s, kind != "chat")
        if concurrency > 1:
            _under_load(load)  # warm-up at the same concurrency
        else:
            _one_at_a_time(conn, url.path, body, gateway.api_key, warmup)
        _control(prefix, "--zero")
        _control(prefix, "--instr=on")
        started = time.monotonic()
        answered = (_under_load(load) if concurrency > 1
                    else _one_at_a_time(conn, url.path, body, gateway.api_key, requests))
        took = time.monotonic() - started
        _control(prefix, "--instr=off")
        _control(prefix, "--dump")
        # The services' timers (lease heartbeats, the stored-models poll, billing's clock) run by the wall clock,
        # which valgrind stretches about fifty times: their work over as long again with no request is subtracted.
        _control(prefix, "--zero")
        _control(prefix, "--instr=on")
        time.sleep(took)
        _control(prefix, "--instr=off")
        _control(prefix, "--dump")
        time.sleep(1.0)  # the dumps are written by the processes themselves
        conn.close()
        return net_counts(work_dir), answered
    finally:
        if gateway is not None:
            gateway.process.stop()
        provider.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--kind", default="chat", choices=("chat", "stream", "long-prompt"))
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--switchboard-root", type=Path, default=ROOT, help="the build to measure (a worktree)")
    parser.add_argument("--concurrency", type=int, default=1,
                        help="above 1: count a load of this many connections for --duration seconds instead")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of load with --concurrency")
    args = parser.parse_args()
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        sys.exit("valgrind is not installed (apt-get install valgrind)")
    work_dir = Path(tempfile.mkdtemp(prefix="switchboard-instructions-"))
    counted, answered = measure(args.kind, args.requests, args.warmup, args.switchboard_root.resolve(), work_dir,
                                args.concurrency, args.duration)
    how = (f"{answered} requests at concurrency {args.concurrency}" if args.concurrency > 1
           else f"{answered} requests one at a time")
    print(f"{args.kind}, {how}, {args.switchboard_root.resolve()}:")
    for command, total in counted:
        print(f"  {command:45s} {total / answered / 1e6:8.3f} M instructions per request")
    print(f"  {'all':45s} {sum(t for _, t in counted) / answered / 1e6:8.3f} M instructions per request")
    print(f"callgrind files: {work_dir}")


if __name__ == "__main__":
    main()
