"""A sqlite3 connection owned by one thread, called from asyncio one whole function at a time.

Going through SQLAlchemy and aiosqlite, every statement, cursor and commit is a
separate hop to the driver's thread and back; a function that runs a whole
transaction on the connection is one hop, and ``sqlite3`` keeps the statements
it runs prepared (its statement cache), so a repeated transaction compiles nothing.
"""

from __future__ import annotations

import asyncio
import queue
import sqlite3
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")
Job = tuple[asyncio.AbstractEventLoop, asyncio.Future[Any], Callable[[sqlite3.Connection], Any], threading.Event]


class SqliteThread:
    """Runs ``fn(connection)`` on a dedicated thread and connection to the database file at ``path``.

    The connection is in autocommit mode (transactions are the functions' own
    ``BEGIN IMMEDIATE`` ... ``COMMIT``), uses WAL like every connection of the
    services, and waits up to ``busy_timeout_ms`` for another writer's lock.
    """

    def __init__(self, path: str, busy_timeout_ms: int = 30_000) -> None:
        self.path = path
        self.busy_timeout_ms = busy_timeout_ms
        self._jobs: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        #: The running function's "caller gone" flag (read and written on the thread only).
        self._current_gone: threading.Event | None = None

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """``fn``'s result (or exception). A function whose caller stopped waiting (cancelled: a gRPC deadline
        passed) before it began is skipped; one already running can ask :meth:`caller_gone` before it commits."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        gone = threading.Event()
        self._start()
        self._jobs.put((loop, future, fn, gone))
        try:
            return await future
        except asyncio.CancelledError:
            gone.set()
            raise

    def caller_gone(self) -> bool:
        """On the thread, inside a function: whether its caller stopped waiting for it (then it should not commit)."""
        return self._current_gone is not None and self._current_gone.is_set()

    @property
    def running(self) -> bool:
        """Whether the thread is started (and not closed)."""
        return self._thread is not None

    def _start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._work, name="sqlite-settlement", daemon=True)
                self._thread.start()

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, timeout=self.busy_timeout_ms / 1000)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        # A settlement's statement journals (each insert fires the spend buckets' trigger) stay in memory: on
        # disk they were thousands of writes a second to temporary files. A batch bounds their size.
        conn.execute("PRAGMA temp_store=MEMORY")
        conn.execute(f"PRAGMA busy_timeout={int(self.busy_timeout_ms)}")
        return conn

    def _work(self) -> None:
        conn: sqlite3.Connection | None = None
        while (job := self._jobs.get()) is not None:
            loop, future, fn, gone = job
            if gone.is_set():
                continue
            self._current_gone = gone
            try:
                if conn is None:
                    conn = self._connect()
                result = fn(conn)
            except BaseException as exc:  # handed to the caller, whatever it is
                _resolve(loop, future, exc=exc)
            else:
                _resolve(loop, future, result=result)
            finally:
                self._current_gone = None
        if conn is not None:
            conn.close()

    async def close(self) -> None:
        """Finishes the functions already queued, then closes the connection and ends the thread."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._jobs.put(None)
            await asyncio.to_thread(thread.join)


def _resolve(loop: asyncio.AbstractEventLoop, future: asyncio.Future[Any], *, result: Any = None,
             exc: BaseException | None = None) -> None:
    def settle() -> None:
        if future.done():  # the caller was cancelled
            return
        if exc is not None:
            future.set_exception(exc)
        else:
            future.set_result(result)

    try:
        loop.call_soon_threadsafe(settle)
    except RuntimeError:  # the loop is closed: nobody is waiting any more
        pass
