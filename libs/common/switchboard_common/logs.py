"""Structured JSON logs that never block the event loop.

Records are formatted as one JSON object a line and written by a background
thread (QueueHandler/QueueListener), so a slow terminal or disk never stalls a
request. Pass request-scoped fields with ``extra={"request_id": ...}``.
"""

from __future__ import annotations

import atexit
import logging
import logging.handlers
import queue
import sys
import time

import orjson

from switchboard_common.lifecycle import CURRENT_SERVICE

_RESERVED = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}
#: Extras that other libraries add for their own console formatters: uvicorn's ``color_message`` repeats
#: ``msg`` with terminal colour codes.
_DROPPED = frozenset({"color_message"})


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, object] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            # In a process several services share, the service whose work wrote the record (stamped by
            # _StampService where it was written); else the process's own.
            "service": getattr(record, "_service", "") or self.service,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _RESERVED and key not in _DROPPED and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(out, default=str).decode()


class _StampService(logging.Filter):
    """Stamps each record, in the task or thread that writes it, with the service running there
    (:data:`switchboard_common.lifecycle.CURRENT_SERVICE`): the writer thread formats it later, elsewhere."""

    def filter(self, record: logging.LogRecord) -> bool:
        record._service = CURRENT_SERVICE.get()
        return True


_listener: logging.handlers.QueueListener | None = None


def configure_logging(service: str, level: str = "INFO") -> None:
    """Route all logging through a queue to a JSON stderr writer thread."""
    global _listener
    if _listener is not None:
        return
    q: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    stream = logging.StreamHandler(sys.stderr)
    stream.setFormatter(JsonFormatter(service))
    _listener = logging.handlers.QueueListener(q, stream, respect_handler_level=False)
    _listener.start()
    atexit.register(_listener.stop)
    root = logging.getLogger()
    handler = logging.handlers.QueueHandler(q)
    handler.addFilter(_StampService())
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("httpx", "httpcore", "uvicorn.access", "aiosqlite", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
