"""A service started by ``make run``'s supervisor dies with it, even when the supervisor is killed outright.

The supervisor puts its pid in ``SWITCHBOARD_SUPERVISOR_PID``. At start, a service
that finds it asks the kernel for SIGTERM when its parent dies (Linux's
``PR_SET_PDEATHSIG``; elsewhere a thread watches the parent's pid) and so stops
as it does on any SIGTERM: gracefully. A service whose parent is already gone
stops at once. Without the variable (Kubernetes, tests, a service run by hand)
nothing changes.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time

SUPERVISOR_PID_ENV = "SWITCHBOARD_SUPERVISOR_PID"
_PR_SET_PDEATHSIG = 1


def die_with_supervisor() -> None:
    """Arranges SIGTERM for this process when the supervisor that started it dies (no-op without one)."""
    expected = os.environ.get(SUPERVISOR_PID_ENV, "")
    if not expected.isdigit():
        return
    parent = int(expected)
    if sys.platform.startswith("linux") and _set_parent_death_signal():
        if os.getppid() != parent:  # it died before the request took effect
            os.kill(os.getpid(), signal.SIGTERM)
        return
    threading.Thread(target=_watch, args=(parent,), name="parent-watch", daemon=True).start()


def _set_parent_death_signal() -> bool:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) == 0  # type: ignore[no-any-return]  # ctypes' foreign functions are untyped
    except (OSError, AttributeError):
        return False


def _watch(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(1.0)
    os.kill(os.getpid(), signal.SIGTERM)
