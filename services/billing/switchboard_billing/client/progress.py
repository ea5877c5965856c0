"""Progress records of calls still running: what each has consumed so far, kept for the next process if this one dies.

A stream is settled when it ends. A process killed while streams are in
flight (SIGKILL, out of memory, the host going down) would leave no record of
them, though the provider billed the tokens and the callers got them. So while
a call runs, its settler records its usage so far now and then (the router:
once the route is known, then at most once a second) in this process's
*in-flight file*, ``<prefix>-<instance>.inflight`` beside its journal: one
``write`` of a length-prefixed encoded ``UsageEvent`` per record, no fsync, as
the journal. A later record of a request supersedes its earlier ones, and its
final event, journaled when the call ends, supersedes them all.

The file stays small under sustained streaming: it is truncated whenever no
call is in flight, and rewritten with only the latest record of each running
call (under a temporary name, renamed over it) once it is past its size bound
and at least twice what those records take. It is created the same way, so it
is locked from the moment it has its name. A process that dies between creating
such a file and renaming it leaves a ``.new`` file nobody renames; the next
process of its kind deletes it (:func:`remove_abandoned`).

A live process never delivers these records. The next process of its kind
replays them when the file's lock is free (see
:meth:`~switchboard_billing.client.outbox.Outbox`'s recovery): each request with
a progress record and no final event in the dead process's journals is billed
as its last progress record.
"""

from __future__ import annotations

import fcntl
import os
import struct
import time
from pathlib import Path

_LEN = struct.Struct(">I")
#: The in-flight file's suffix; a file being written to replace it has :data:`NEW_SUFFIX`.
INFLIGHT_SUFFIX = ".inflight"
NEW_SUFFIX = ".new"
#: Age past which an unlocked ``.new`` file is a dead process's: a live one renames its own within microseconds.
ABANDONED_AFTER_SECONDS = 60.0


def locked_file(path: Path, contents: bytes) -> int:
    """Writes ``contents`` as ``path``, locked (exclusively, for as long as the returned descriptor is open) from
    before it has that name, so that no other process ever takes it for a dead process's file; an earlier file of
    that name is replaced at once."""
    new = path.with_suffix(NEW_SUFFIX)
    fd = os.open(new, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        if contents:
            os.write(fd, contents)
        os.rename(new, path)
    except BaseException:
        os.close(fd)
        raise
    return fd


def remove_abandoned(directory: Path, prefix: str) -> int:
    """Deletes the ``.new`` files of ``prefix`` a process died writing (unlocked, and older than
    :data:`ABANDONED_AFTER_SECONDS`); returns how many. The file they would have replaced (a journal segment never
    named, or the in-flight file before its rewrite) is whole, so nothing in them is lost."""
    removed = 0
    for path in directory.glob(f"{prefix}-*{NEW_SUFFIX}"):
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            continue
        try:
            if time.time() - os.fstat(fd).st_mtime < ABANDONED_AFTER_SECONDS:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # its writer is alive
            path.unlink(missing_ok=True)
            removed += 1
        finally:
            os.close(fd)
    return removed


class InflightFile:
    """This process's progress records, and the latest of each call still in flight."""

    __slots__ = ("_latest", "_latest_bytes", "compact_bytes", "fd", "path", "size")

    def __init__(self, path: Path, compact_bytes: int) -> None:
        self.path = path
        #: Size past which the file is rewritten with only the latest record of each running call.
        self.compact_bytes = compact_bytes
        self.fd = locked_file(path, b"")
        #: Bytes in the file.
        self.size = 0
        #: Each running call's latest record (length prefix and encoded event), by request id.
        self._latest: dict[str, bytes] = {}
        self._latest_bytes = 0

    @property
    def running(self) -> int:
        """Calls with a progress record and no final event yet."""
        return len(self._latest)

    def record(self, request_id: str, payload: bytes) -> None:
        """Appends the call's usage so far (an encoded ``UsageEvent``), superseding its earlier records."""
        record = _LEN.pack(len(payload)) + payload
        os.write(self.fd, record)
        self.size += len(record)
        earlier = self._latest.get(request_id)
        self._latest[request_id] = record
        self._latest_bytes += len(record) - (len(earlier) if earlier is not None else 0)
        if self.size >= self.compact_bytes and self.size >= 2 * self._latest_bytes:
            self._compact()

    def ended(self, request_id: str) -> None:
        """The call's final event is journaled: its progress records no longer count, and the file is emptied
        when no call is left in flight."""
        earlier = self._latest.pop(request_id, None)
        if earlier is None:
            return
        self._latest_bytes -= len(earlier)
        if not self._latest and self.size:
            os.ftruncate(self.fd, 0)
            self.size = 0

    def _compact(self) -> None:
        fd = locked_file(self.path, b"".join(self._latest.values()))
        os.close(self.fd)
        self.fd = fd
        self.size = self._latest_bytes

    def close(self) -> None:
        """The process stops: the file is deleted when no call is in flight, else kept for the next process."""
        if not self._latest:
            self.path.unlink(missing_ok=True)
        os.close(self.fd)
