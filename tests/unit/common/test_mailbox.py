"""The single reader's mailbox behind the Exchange streams' writers."""

from __future__ import annotations

import asyncio

import pytest

from switchboard_common.mailbox import Mailbox


async def test_the_reader_wakes_for_mail_and_sees_all_that_waits_in_order() -> None:
    box: Mailbox[int] = Mailbox()
    reader = asyncio.ensure_future(box.wait())
    await asyncio.sleep(0)
    assert not reader.done()
    for n in range(3):
        box.put(n)
    waiting = await asyncio.wait_for(reader, 1)
    assert list(waiting) == [0, 1, 2]
    assert waiting.popleft() == 0
    assert list(await box.wait()) == [1, 2]  # what the reader left is still there, and needs no wake-up


async def test_a_cancelled_reader_leaves_the_mailbox_usable() -> None:
    box: Mailbox[str] = Mailbox()
    reader = asyncio.ensure_future(box.wait())
    await asyncio.sleep(0)
    reader.cancel()
    with pytest.raises(asyncio.CancelledError):
        await reader
    box.put("after")  # no waiter is woken that nobody awaits
    assert list(await asyncio.wait_for(box.wait(), 1)) == ["after"]
