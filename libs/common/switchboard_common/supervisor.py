"""``make run``: the whole gateway on one machine, four processes, one command.

Starts the services in dependency order, each once the ones it needs are ready:
auth and billing, then the router (which replays its usage journal to billing
before it listens), then the facade; each gRPC service is ready when its standard
health check says SERVING, so the facade never takes a request the router cannot
serve yet. It prefixes each line of their logs with the service name, writes
``<data dir>/env`` (the exports a shell needs), prints a banner once the gateway
answers (:mod:`switchboard_common.run_banner`: the URL, the master key or where it
came from, the live models), and on Ctrl-C or SIGTERM stops them in the reverse
order, each stage only once the one before has ended: the facade (it drains its
HTTP requests), the router (it ends its calls and journals and settles what they
consumed), then auth and billing, which the two before still needed. Each stage
gets the services' own grace (``SWITCHBOARD_SHUTDOWN_GRACE_SECONDS``) plus
:data:`KILL_MARGIN` before whatever still runs gets SIGKILL: a service is never
killed inside the grace it gives its own work. A second Ctrl-C stops everything at once.

The services die with the supervisor even when it is killed outright: each asks
the kernel for SIGTERM when its parent dies (see :mod:`switchboard_common.parent`).
Log lines of any length pass through: a line longer than :data:`MAX_LINE` is
written in pieces, each but the last ending with :data:`CONTINUED`.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import re
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Literal

from grpc import aio
from grpc_health.v1 import health_pb2, health_pb2_grpc

from switchboard_common import run_banner
from switchboard_common.lifecycle import START_ORDER, STOP_ORDER
from switchboard_common.parent import SUPERVISOR_PID_ENV
from switchboard_common.ports import port_in_use_message
from switchboard_common.settings import ServiceSettings, load_or_create_secret
from switchboard_common.shared_process import process_name

SERVICES = ("auth", "billing", "router", "facade")
#: How the services are laid out in processes (``SWITCHBOARD_LAYOUT``). ``shared``, the default: auth, billing and
#: the router share one process (:mod:`switchboard_common.shared_process`), the facade has its own, so one machine
#: pays for two interpreters instead of four; ``separate``: each service in its own process, as in Kubernetes.
LAYOUTS: dict[str, tuple[tuple[str, ...], ...]] = {
    "shared": (("auth", "billing", "router"), ("facade",)),
    "separate": (("auth",), ("billing",), ("router",), ("facade",)),
}
COLOURS = {"auth": "\033[36m", "billing": "\033[33m", "router": "\033[35m", "facade": "\033[32m"}
RESET = "\033[0m"
#: Longest piece of a log line written at once; a longer line is split (never dropped, never blocking).
MAX_LINE = 16 * 1024
#: The mark that ends every piece of a split line but its last.
CONTINUED = b" [line continues]"
#: Seconds a stopping service may take beyond its own grace (its last writes, its exit) before it is killed.
KILL_MARGIN = 5.0
#: Seconds to wait for the gateway's readiness before saying it is not coming up.
READY_TIMEOUT = 90.0


class SupervisorSettings(ServiceSettings):
    """What ``make run`` itself reads."""

    #: How the services are laid out in processes: ``shared`` or ``separate`` (see :data:`LAYOUTS`).
    layout: Literal["shared", "separate"] = "shared"


def build_env() -> tuple[dict[str, str], str]:
    """The services' environment, and where the master key came from (``"environment"`` or its file)."""
    env = dict(os.environ)
    settings = ServiceSettings()
    data_dir = settings.ensure_data_dir()
    env["SWITCHBOARD_DATA_DIR"] = str(data_dir.resolve())
    if env.get("SWITCHBOARD_MASTER_KEY"):
        master_source = "environment"
    else:
        master_file = data_dir / "master_key"
        env["SWITCHBOARD_MASTER_KEY"] = load_or_create_secret(master_file, prefix="sk-master-")
        master_source = str(master_file.resolve())
    if not env.get("SWITCHBOARD_KEY_PEPPER"):
        env["SWITCHBOARD_KEY_PEPPER"] = load_or_create_secret(data_dir / "key_pepper")
    env.setdefault("SWITCHBOARD_CONFIG", str(Path("config/switchboard.yaml").resolve()))
    host = "127.0.0.1"
    ports = {"auth": env.get("SWITCHBOARD_AUTH_PORT", "50051"), "billing": env.get("SWITCHBOARD_BILLING_PORT", "50052"),
             "router": env.get("SWITCHBOARD_ROUTER_PORT", "50053")}
    env.setdefault("SWITCHBOARD_AUTH_ADDRESS", f"{host}:{ports['auth']}")
    env.setdefault("SWITCHBOARD_BILLING_ADDRESS", f"{host}:{ports['billing']}")
    env.setdefault("SWITCHBOARD_ROUTER_ADDRESS", f"{host}:{ports['router']}")
    env["PYTHONUNBUFFERED"] = "1"
    env[SUPERVISOR_PID_ENV] = str(os.getpid())
    return env, master_source


#: Offset of each gRPC service's metrics port from SWITCHBOARD_METRICS_PORT (one machine: one port each).
METRICS_OFFSETS = {"auth": 0, "billing": 1, "router": 2}


def service_env(env: dict[str, str], services: tuple[str, ...]) -> dict[str, str]:
    """The environment of the process that runs ``services``."""
    out = dict(env)
    if len(services) == 1 and services[0] in METRICS_OFFSETS:
        out["SWITCHBOARD_GRPC_LISTEN"] = out[f"SWITCHBOARD_{services[0].upper()}_ADDRESS"]
    # (A shared process gives each service its SWITCHBOARD_<NAME>_ADDRESS.)
    metrics_port = out.get("SWITCHBOARD_METRICS_PORT", "")
    if metrics_port.isdigit() and int(metrics_port) > 0:
        # Processes cannot share a port: auth's process takes it, billing's the next, the router's the one after.
        # A shared process serves its one registry, every service's series, on the port of its first service.
        if services[0] in METRICS_OFFSETS:
            out["SWITCHBOARD_METRICS_PORT"] = str(int(metrics_port) + METRICS_OFFSETS[services[0]])
        else:
            out.pop("SWITCHBOARD_METRICS_PORT")  # the facade serves /metrics on its own port
    return out


def _listens(env: dict[str, str], layout: tuple[tuple[str, ...], ...]) -> list[tuple[str, str]]:
    """Every address the gateway's processes will listen on, with the setting that moves it."""
    listens = [(f"{env.get('SWITCHBOARD_HOST', '127.0.0.1')}:{env.get('SWITCHBOARD_PORT', '4000')}",
                "SWITCHBOARD_PORT")]
    listens += [(env[f"SWITCHBOARD_{n.upper()}_ADDRESS"], f"SWITCHBOARD_{n.upper()}_PORT") for n in METRICS_OFFSETS]
    for process in layout:
        metrics_port = service_env(env, process).get("SWITCHBOARD_METRICS_PORT", "")
        if metrics_port.isdigit() and int(metrics_port) > 0 and process[0] in METRICS_OFFSETS:
            listens.append((f"0.0.0.0:{metrics_port}", "SWITCHBOARD_METRICS_PORT"))
    return listens


def taken_ports(env: dict[str, str], layout: tuple[tuple[str, ...], ...]) -> list[str]:
    """What to say about each address the gateway needs that is already taken (nothing when all are free)."""
    messages = []
    for listen, setting in _listens(env, layout):
        host, _, port = listen.rpartition(":")
        if not port.isdigit() or host.startswith(("unix", "dns")) or "," in listen:
            continue  # not a local TCP address this process could try
        with socket.socket(socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers bind: TIME_WAIT is free
            try:
                probe.bind((host.strip("[]"), int(port)))
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:  # (an address not of this machine is the server's to report)
                    messages.append(port_in_use_message(listen, setting))
    return messages


def stop_stages(processes: tuple[tuple[str, ...], ...]) -> list[list[tuple[tuple[str, ...], int]]]:
    """For each stage of :data:`STOP_ORDER`, the processes signalled in it, each with the number of stages its own
    stop takes: a process is signalled with its first service to stop, and a shared process stops its services
    stage by stage itself, each with its grace."""
    stages: list[list[tuple[tuple[str, ...], int]]] = [[] for _ in STOP_ORDER]
    for process in processes:
        spanned = sorted(i for i, stage in enumerate(STOP_ORDER) if set(stage) & set(process))
        stages[spanned[0]].append((process, len(spanned)))
    return stages


async def _announce(env: dict[str, str], master_source: str, started: float) -> None:
    """The banner, once the gateway answers; or why it did not."""
    url = f"http://127.0.0.1:{env.get('SWITCHBOARD_PORT', '4000')}"
    master = env["SWITCHBOARD_MASTER_KEY"]
    from_environment = master_source == "environment"
    env_file = run_banner.write_env_file(Path(env["SWITCHBOARD_DATA_DIR"]), url,
                                         None if from_environment else master, Path(sys.executable).parent)
    print(f"\nSwitchboard is starting on {url} (auth, billing, router, facade)…\n", flush=True)
    if not await run_banner.wait_until_ready(url, READY_TIMEOUT):
        print(f"\nSwitchboard did not become ready within {READY_TIMEOUT:.0f} s: the service logs above say why.\n",
              flush=True)
        return
    models = await asyncio.to_thread(run_banner.live_models, url, master)
    print(run_banner.banner(url, None if from_environment else (master, master_source), env_file, models,
                            time.monotonic() - started), flush=True)


def log_pieces(line: bytes, max_line: int = MAX_LINE) -> list[bytes]:
    """``line`` (ending in a newline, or not when it is the stream's last) as the pieces to write."""
    body = line[:-1] if line.endswith(b"\n") else line
    if len(body) <= max_line:
        return [body + b"\n"]
    pieces = [body[i:i + max_line] for i in range(0, len(body), max_line)]
    return [p + CONTINUED + b"\n" for p in pieces[:-1]] + [pieces[-1] + b"\n"]


#: Where a JSON log line names its service (the third field, see switchboard_common.logs).
_SERVICE_FIELD = re.compile(rb'"service":"([a-z+]+)"')


def line_prefix(line: bytes, process: str, tty: bool) -> bytes:
    """The prefix of one log line: the service the line names (a shared process writes for several), else the
    process's name (a traceback, a line a library printed)."""
    found = _SERVICE_FIELD.search(line, 0, 200)
    name = found.group(1).decode() if found else process
    return (f"{COLOURS[name]}{name:>7}{RESET} | " if tty and name in COLOURS else f"{name:>7} | ").encode()


async def _pump(process: str, stream: asyncio.StreamReader, tty: bool) -> None:
    """Copies one process's output to ours, prefixed, a line at a time however long the line (the pieces of a
    long line keep the prefix its start chose)."""
    pending = b""
    continuing: bytes | None = None  # the prefix of a long line whose first pieces are out
    while True:
        chunk = await stream.read(64 * 1024)
        if not chunk:
            if pending:
                _write(continuing or line_prefix(pending, process, tty), pending)
            return
        *lines, pending = (pending + chunk).split(b"\n")
        for line in lines:
            _write(continuing or line_prefix(line, process, tty), line + b"\n")
            continuing = None
        if len(pending) > MAX_LINE:  # a line still going: write what came, keep reading
            continuing = continuing or line_prefix(pending, process, tty)
            while len(pending) > MAX_LINE:
                sys.stdout.buffer.write(continuing + pending[:MAX_LINE] + CONTINUED + b"\n")
                pending = pending[MAX_LINE:]
        sys.stdout.flush()


def _write(prefix: bytes, line: bytes) -> None:
    for piece in log_pieces(line):
        sys.stdout.buffer.write(prefix + piece)


async def _start(services: tuple[str, ...], env: dict[str, str]) -> asyncio.subprocess.Process:
    # Each process in its own session: a Ctrl-C in the terminal reaches only the supervisor, which stops them in
    # order. They still die with the supervisor (the parent-death signal each one sets up at start).
    module = ["-m", f"switchboard_{services[0]}"] if len(services) == 1 else \
        ["-m", "switchboard_common.shared_process", *services]
    return await asyncio.create_subprocess_exec(
        sys.executable, *module, env=service_env(env, services),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, start_new_session=True,
    )


async def stop_all(procs: dict[tuple[str, ...], asyncio.subprocess.Process], grace: float,
                   hurry: asyncio.Event) -> None:
    """Stops the processes stage by stage (:func:`stop_stages`): SIGTERM, then SIGKILL for whatever of the stage
    still runs its grace (``grace`` for each stage of its own stop) + :data:`KILL_MARGIN` later (at once when
    ``hurry`` is set, by a second Ctrl-C)."""
    for group in stop_stages(tuple(procs)):
        longest = max((spanned for _, spanned in group), default=1)
        until = time.monotonic() + (0.0 if hurry.is_set() else grace * longest + KILL_MARGIN)
        running = [procs[p] for p, _ in group if procs[p].returncode is None]
        for proc in running:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
        waits = [asyncio.ensure_future(p.wait()) for p in running]
        hurried = asyncio.ensure_future(hurry.wait())
        if waits:
            await asyncio.wait((asyncio.gather(*waits), hurried), timeout=max(0.0, until - time.monotonic()),
                               return_when=asyncio.FIRST_COMPLETED)
        hurried.cancel()
        for proc in running:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
        for wait in waits:
            with contextlib.suppress(Exception):
                await wait


async def serving(address: str, proc: asyncio.subprocess.Process, deadline: float) -> bool:
    """Whether the gRPC service at ``address`` says SERVING (standard health) before ``deadline``; False as soon
    as its process has exited."""
    async with aio.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline and proc.returncode is None:
            with contextlib.suppress(aio.AioRpcError):
                answer = await stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=1.0)
                if answer.status == health_pb2.HealthCheckResponse.SERVING:
                    return True
            await asyncio.sleep(0.1)
    return False


async def supervise() -> int:
    started = time.monotonic()
    env, master_source = build_env()
    settings = SupervisorSettings()
    grace = settings.shutdown_grace_seconds
    layout = LAYOUTS[settings.layout]
    tty = sys.stdout.isatty()
    procs: dict[tuple[str, ...], asyncio.subprocess.Process] = {}
    pumps: list[asyncio.Task[None]] = []
    stop = asyncio.Event()
    hurry = asyncio.Event()
    loop = asyncio.get_running_loop()

    def signalled(name: str) -> None:
        if stop.is_set():
            if not hurry.is_set():
                print(f"\n{name} again: killing the services now, without their grace", flush=True)
            hurry.set()
        else:
            print(f"\n{name}: stopping the gateway (the facade, then the router, then auth and billing; each "
                  f"within {grace:g} s; {name} again kills them now)", flush=True)
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, signalled, sig.name)
    code = 0
    announce: asyncio.Task[None] | None = None
    taken = taken_ports(env, layout)
    if taken:
        # Another gateway (or anything else) holds a port this one needs: say so before starting anything, rather
        # than take its services' answers for this one's.
        for message in taken:
            print(message, flush=True)
        return 1
    try:
        deadline = time.monotonic() + READY_TIMEOUT
        for group in START_ORDER:
            # The processes that run this stage's services start now (a shared one with its first stage).
            for process in layout:
                if process not in procs and set(process) & set(group):
                    proc = await _start(process, env)
                    procs[process] = proc
                    assert proc.stdout is not None
                    pumps.append(asyncio.create_task(_pump(process_name(process), proc.stdout, tty)))
            if group == ("facade",):
                break
            # The next stage calls this one: it starts once this one serves (or the stop comes).
            runs = {n: p for process, p in procs.items() for n in process}
            ready = asyncio.gather(*(serving(env[f"SWITCHBOARD_{n.upper()}_ADDRESS"], runs[n], deadline)
                                     for n in group))
            stopper = asyncio.create_task(stop.wait())
            await asyncio.wait((ready, stopper), return_when=asyncio.FIRST_COMPLETED)
            stopper.cancel()
            if stop.is_set():
                ready.cancel()
                return code
            if not all(ready.result()):
                exited = [(process_name(p), proc.returncode) for p, proc in procs.items()
                          if proc.returncode is not None]
                if exited:
                    for name, returned in exited:
                        print(f"{name} exited with code {returned} while starting; stopping the gateway "
                              "(its log above says why)", flush=True)
                else:
                    late = [n for n, ok in zip(group, ready.result(), strict=True) if not ok]
                    print(f"{', '.join(late)} did not become ready within {READY_TIMEOUT:.0f} s; stopping the "
                          "gateway (its log above says why)", flush=True)
                return 1
        announce = asyncio.create_task(_announce(env, master_source, started))
        waiters = {asyncio.create_task(p.wait()): process_name(n) for n, p in procs.items()}
        stopper = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait([*waiters, stopper], return_when=asyncio.FIRST_COMPLETED)
        stopper.cancel()
        for task in done:
            if task in waiters:
                name = waiters[task]
                print(f"{name} exited with code {task.result()}; stopping the gateway", flush=True)
                code = 1
    finally:
        if announce is not None:
            announce.cancel()
        await stop_all(procs, grace, hurry)
        # The pumps end when the services' output closes; a service's own child could hold it open: don't wait.
        if pumps:
            await asyncio.wait(pumps, timeout=1.0)
        for pump in pumps:
            pump.cancel()
        sys.stdout.flush()
    return code


def main() -> None:
    raise SystemExit(asyncio.run(supervise()))


if __name__ == "__main__":
    main()
