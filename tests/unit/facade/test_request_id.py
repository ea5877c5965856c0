"""Request ids: the ledger's key, so never handed out twice — not by one process, nor by a forked child."""

from __future__ import annotations

import os
import re
import time

from switchboard_facade.request_id import new_request_id


def test_ids_are_the_millisecond_and_48_random_bits_in_hex_and_never_repeat_across_blocks() -> None:
    before = time.time_ns() // 1_000_000
    ids = [new_request_id() for _ in range(2000)]  # several blocks of the OS's random bytes
    after = time.time_ns() // 1_000_000
    assert all(re.fullmatch(r"req_[0-9a-f]{24}", request_id) for request_id in ids)
    assert all(before <= int(request_id[4:16], 16) <= after for request_id in ids)
    assert len(set(ids)) == len(ids)
    assert len({request_id[16:] for request_id in ids}) == len(ids)  # the random part alone never repeats either


def test_ids_sort_by_when_they_were_made() -> None:
    """The ledger's index of request ids then grows at its end, whatever the ledger's size."""
    earlier = [new_request_id() for _ in range(50)]
    time.sleep(0.002)
    later = [new_request_id() for _ in range(50)]
    assert max(earlier) < min(later)


def test_a_forked_child_never_hands_out_its_parents_next_ids() -> None:
    new_request_id()  # the block is read: a child without the fork hook would continue it
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        os.close(read)
        os.write(write, " ".join(new_request_id() for _ in range(10)).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        child_ids = set(pipe.read().split())
    os.waitpid(child, 0)
    parent_ids = {new_request_id() for _ in range(10)}
    assert len(child_ids) == 10 and not child_ids & parent_ids
