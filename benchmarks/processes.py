"""Starting, stopping and metering the processes a benchmark runs.

Every server under test is started in its own session (a process group), so that stopping it
stops the whole tree it spawned and nothing else; its CPU time and resident memory are
measured over that same tree with psutil.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path

import psutil

REPO_ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class ManagedProcess:
    """A child process in its own process group, with its output kept in a log file."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_path: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path = REPO_ROOT,
    ) -> None:
        self.name = name
        self.log_path = log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = log_path.open("wb")
        self.popen = subprocess.Popen(
            list(argv),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, max_bytes: int = 2000) -> str:
        """The end of the process's output, for error messages."""
        self._log.flush()
        try:
            data = self.log_path.read_bytes()
        except OSError:
            return ""
        return data[-max_bytes:].decode("utf-8", "replace")

    def stop(self, grace_s: float = 30.0) -> None:
        """SIGTERM the process group and let it shut down; SIGKILL whatever of its tree is left.

        The tree is collected first because a supervisor may start its children in sessions of
        their own, where a signal to its group does not reach them.
        """
        try:
            descendants = psutil.Process(self.popen.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            descendants = []
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=grace_s)
        _, alive = psutil.wait_procs(descendants, timeout=1)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        for process in alive:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=5)
        self._log.close()


def wait_http_ok(url: str, timeout_s: float, process: ManagedProcess | None = None) -> None:
    """Poll ``url`` until it answers 200; raise ``RuntimeError`` on timeout or if ``process`` dies."""
    deadline = time.monotonic() + timeout_s
    last_error = "no answer"
    while time.monotonic() < deadline:
        if process is not None and not process.alive():
            raise RuntimeError(f"{process.name} exited with code {process.popen.returncode}:\n{process.log_tail()}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
                last_error = f"status {response.status}"
        except urllib.error.HTTPError as exc:
            last_error = f"status {exc.code}"
        except (urllib.error.URLError, OSError) as exc:
            last_error = str(exc)
        time.sleep(0.2)
    tail = process.log_tail() if process is not None else ""
    raise RuntimeError(f"{url} not ready after {timeout_s:.0f}s ({last_error})\n{tail}")


class ProcessTreeMeter:
    """CPU seconds and peak resident memory of a process and all its descendants.

    CPU is the sum of user+system time of every process in the tree, read before and after a
    run; memory is sampled every ``interval_s`` on a background thread while a run is going,
    summing RSS over the tree (so four services count as one gateway). ``include_root=False``
    leaves out the root when it is only a supervisor of the real processes.
    """

    def __init__(self, root_pid: int, interval_s: float = 0.1, include_root: bool = True) -> None:
        self._root = psutil.Process(root_pid)
        self._include_root = include_root
        self._interval_s = interval_s
        self._known: dict[int, psutil.Process] = {}
        self._cpu_start: dict[int, float] = {}
        self._peak_rss = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _tree(self) -> list[psutil.Process]:
        try:
            current = self._root.children(recursive=True)
            if self._include_root:
                current.insert(0, self._root)
        except psutil.NoSuchProcess:
            return []
        tree = []
        for process in current:
            # Keep one Process object per pid so psutil can tell a reused pid from the original.
            known = self._known.setdefault(process.pid, process)
            tree.append(known)
        return tree

    def _cpu_by_pid(self) -> dict[int, float]:
        totals: dict[int, float] = {}
        for process in self._tree():
            with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                times = process.cpu_times()
                totals[process.pid] = times.user + times.system
        return totals

    def rss_bytes(self) -> int:
        total = 0
        for process in self._tree():
            with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                total += process.memory_info().rss
        return total

    def process_count(self) -> int:
        return len(self._tree())

    def start(self) -> None:
        self._cpu_start = self._cpu_by_pid()
        self._peak_rss = self.rss_bytes()
        self._stop.clear()
        self._thread = threading.Thread(target=self._sample, name="rss-sampler", daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(self._interval_s):
            self._peak_rss = max(self._peak_rss, self.rss_bytes())

    def stop(self) -> tuple[float, int]:
        """End the run: (CPU seconds used during it, peak RSS in bytes)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._peak_rss = max(self._peak_rss, self.rss_bytes())
        cpu_end = self._cpu_by_pid()
        used = sum(max(0.0, cpu - self._cpu_start.get(pid, 0.0)) for pid, cpu in cpu_end.items())
        return used, self._peak_rss
