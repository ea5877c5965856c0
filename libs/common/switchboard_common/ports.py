"""Who holds a TCP port: for the message of a server that cannot listen on it.

Linux: the listening socket's inode from ``/proc/net/tcp{,6}``, then the process
with that socket among its descriptors (only processes this user may inspect).
Elsewhere: ``lsof`` when installed. None when nobody can be named.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

_LISTEN = "0A"


class PortInUse(RuntimeError):
    """The address a server must listen on is taken: the message names it and, when it can, who holds it."""


def port_in_use_message(listen: str, setting: str) -> str:
    """Why a server cannot listen on ``listen`` and what to do, naming the setting that moves it."""
    _, _, port_text = listen.rpartition(":")
    holder = port_holder(int(port_text)) if port_text.isdigit() else None
    who = f"it is held by {holder}" if holder else "another process holds it (or the address is not local)"
    return f"cannot listen on {listen}: {who}. Stop that process, or listen elsewhere ({setting})."


def port_holder(port: int) -> str | None:
    """``"pid 1234 (python -m switchboard_router)"`` for the process listening on ``port``, or None."""
    if Path("/proc/net/tcp").exists():
        return _from_proc(port)
    return _from_lsof(port)


def _listening_inodes(port: int) -> set[str]:
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[3] == _LISTEN and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(fields[9])
    return inodes


def _from_proc(port: int) -> str | None:
    wanted = {f"socket:[{inode}]" for inode in _listening_inodes(port)}
    if not wanted:
        return None
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            fds = list((proc / "fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(fd) in wanted:
                    return _describe(int(proc.name), (proc / "cmdline").read_bytes().replace(b"\0", b" "))
            except OSError:
                continue
    return None


def _from_lsof(port: int) -> str | None:
    lsof = shutil.which("lsof")
    if lsof is None:
        return None
    try:
        out = subprocess.run([lsof, "-nP", f"-iTCP:{port}", "-sTCP:LISTEN", "-Fpc"], capture_output=True,
                             text=True, timeout=5, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    pid = next((line[1:] for line in out.splitlines() if line.startswith("p")), None)
    command = next((line[1:] for line in out.splitlines() if line.startswith("c")), "")
    return _describe(int(pid), command.encode()) if pid and pid.isdigit() else None


def _describe(pid: int, command: bytes) -> str:
    text = command.decode(errors="replace").strip()
    if len(text) > 120:
        text = text[:117] + "..."
    return f"pid {pid} ({text})" if text else f"pid {pid}"
