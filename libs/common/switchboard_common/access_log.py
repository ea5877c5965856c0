"""The per-request access log: one JSON line per request, written off the request path.

The access line is the only log written for every request, so it gets a path
cheaper than :mod:`logging`: the request hands a dict to a queue (well under a
microsecond) and a daemon thread adds the timestamp, serialises with orjson and
writes to stderr. The thread waits :data:`LINGER_SECONDS` after the first line of
a batch, so that it wakes (and takes the interpreter lock from the event loop)
once for many requests rather than once for each. The line has the same shape as every other log line
(:mod:`switchboard_common.logs`), with logger ``switchboard.access``; it is
written only while that logger is enabled for INFO, so ``SWITCHBOARD_LOG_LEVEL``
still governs it.
"""

from __future__ import annotations

import atexit
import logging
import queue
import sys
import threading
import time
from typing import Any, TextIO

import orjson

LOGGER_NAME = "switchboard.access"
#: How long the writer gathers lines after the first of a batch (a log line is never later than this).
LINGER_SECONDS = 0.05


def _timestamp(created: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created)) + f".{int(created % 1 * 1000):03d}Z"


class AccessLog:
    """A queue and the thread that drains it into ``stream`` (stderr unless told otherwise)."""

    def __init__(self, service: str, stream: TextIO | None = None) -> None:
        self.service = service
        self.stream = stream
        self.logger = logging.getLogger(LOGGER_NAME)
        self._queue: queue.SimpleQueue[tuple[float, dict[str, Any]] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.INFO)

    def write(self, fields: dict[str, Any]) -> None:
        """Queues one line; never blocks."""
        if self._thread is None:
            self._start()
        self._queue.put((time.time(), fields))

    def _start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._drain, name="switchboard-access-log", daemon=True)
                self._thread.start()
                atexit.register(self.close)

    def close(self) -> None:
        """Writes what is queued and stops the thread (at exit)."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=5)
            self._thread = None

    def _line(self, created: float, fields: dict[str, Any]) -> str:
        line = {"ts": _timestamp(created), "level": "info", "service": self.service, "logger": LOGGER_NAME,
                "msg": "request", **fields}
        return orjson.dumps(line, default=str).decode()

    def _drain(self) -> None:
        stop = False
        while not stop:
            lines: list[str] = []
            item = self._queue.get()
            if item is not None:
                time.sleep(LINGER_SECONDS)  # gather the lines of the requests that end meanwhile
            while True:
                if item is None:
                    stop = True
                    break
                lines.append(self._line(*item))
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            if not lines:
                continue
            stream = self.stream or sys.stderr
            try:
                stream.write("\n".join(lines) + "\n")
                stream.flush()
            except (OSError, ValueError):  # stderr closed at interpreter exit: nothing left to tell
                return
