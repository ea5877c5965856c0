"""``make run``: the whole gateway on one machine, four processes, one command.

Starts auth, billing, router and the facade on the embedded default (SQLite in
the data directory, in-process limits), prefixes each line of their logs with
the service name, writes ``<data dir>/env`` (the exports a shell needs), prints
a banner once the gateway answers (:mod:`switchboard_common.run_banner`), and on
Ctrl-C or SIGTERM stops all four gracefully (SIGKILL after a grace period) so
that no process is left behind.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path

from switchboard_common import run_banner
from switchboard_common.settings import ServiceSettings, load_or_create_secret

SERVICES = ("auth", "billing", "router", "facade")
COLOURS = {"auth": "\033[36m", "billing": "\033[33m", "router": "\033[35m", "facade": "\033[32m"}
RESET = "\033[0m"
#: Seconds to wait for the gateway's readiness before saying it is not coming up.
READY_TIMEOUT = 90.0


def build_env() -> dict[str, str]:
    env = dict(os.environ)
    settings = ServiceSettings()
    data_dir = settings.ensure_data_dir()
    env["SWITCHBOARD_DATA_DIR"] = str(data_dir.resolve())
    if not env.get("SWITCHBOARD_MASTER_KEY"):
        env["SWITCHBOARD_MASTER_KEY"] = load_or_create_secret(data_dir / "master_key", prefix="sk-master-")
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
    return env


def service_env(env: dict[str, str], name: str) -> dict[str, str]:
    out = dict(env)
    if name in ("auth", "billing", "router"):
        out["SWITCHBOARD_GRPC_LISTEN"] = out[f"SWITCHBOARD_{name.upper()}_ADDRESS"]
    return out


async def _pump(name: str, stream: asyncio.StreamReader, tty: bool) -> None:
    prefix = (f"{COLOURS[name]}{name:>7}{RESET} | " if tty else f"{name:>7} | ").encode()
    while True:
        line = await stream.readline()
        if not line:
            return
        sys.stdout.buffer.write(prefix + line)
        sys.stdout.flush()


async def _announce(env: dict[str, str], started: float) -> None:
    """The banner, once the gateway answers; or why it did not."""
    url = f"http://127.0.0.1:{env.get('SWITCHBOARD_PORT', '4000')}"
    master = env["SWITCHBOARD_MASTER_KEY"]
    env_file = run_banner.write_env_file(Path(env["SWITCHBOARD_DATA_DIR"]), url, master,
                                         Path(sys.executable).parent)
    print(f"\nSwitchboard is starting on {url} (auth, billing, router, facade)…\n", flush=True)
    if not await run_banner.wait_until_ready(url, READY_TIMEOUT):
        print(f"\nSwitchboard did not become ready within {READY_TIMEOUT:.0f} s: the service logs above say why.\n",
              flush=True)
        return
    models = await asyncio.to_thread(run_banner.live_models, url, master)
    print(run_banner.banner(url, master, env_file, models, time.monotonic() - started), flush=True)


async def supervise() -> int:
    started = time.monotonic()
    env = build_env()
    tty = sys.stdout.isatty()
    procs: dict[str, asyncio.subprocess.Process] = {}
    pumps: list[asyncio.Task[None]] = []
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    for name in SERVICES:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", f"switchboard_{name}", env=service_env(env, name),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, start_new_session=True,
        )
        procs[name] = proc
        assert proc.stdout is not None
        pumps.append(asyncio.create_task(_pump(name, proc.stdout, tty)))
    announce = asyncio.create_task(_announce(env, started))
    waiters = {asyncio.create_task(p.wait()): n for n, p in procs.items()}
    stopper = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait([*waiters, stopper], return_when=asyncio.FIRST_COMPLETED)
    announce.cancel()
    code = 0
    for task in done:
        if task in waiters:
            name = waiters[task]
            print(f"{name} exited with code {procs[name].returncode}; stopping the gateway", flush=True)
            code = 1
    # Stop the facade first so it stops taking requests and flushes its outbox, then the services.
    for group in (("facade",), ("router", "auth", "billing")):
        for name in group:
            if procs[name].returncode is None:
                procs[name].send_signal(signal.SIGTERM)
        for name in group:
            try:
                await asyncio.wait_for(procs[name].wait(), 25)
            except TimeoutError:
                procs[name].kill()
                await procs[name].wait()
    for pump in pumps:
        await pump
    return code


def main() -> None:
    raise SystemExit(asyncio.run(supervise()))


if __name__ == "__main__":
    main()
