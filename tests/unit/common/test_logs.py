"""JSON log lines: one object a line, the event's fields kept, other libraries' console-only extras dropped."""

from __future__ import annotations

import logging

import orjson

from switchboard_common.logs import JsonFormatter


def test_uvicorns_colour_coded_duplicate_is_left_out() -> None:
    # What uvicorn logs at start-up: the message, and the same with terminal colour codes for its own console.
    record = logging.LogRecord("uvicorn.error", logging.INFO, __file__, 1, "Started server process [%d]", (42,), None)
    record.color_message = "Started server process [\x1b[36m%d\x1b[0m]"
    record.request_id = "req_1"
    line = JsonFormatter("facade").format(record)
    assert "\x1b" not in line and "\\u001b" not in line
    parsed = orjson.loads(line)
    assert parsed["msg"] == "Started server process [42]" and parsed["request_id"] == "req_1"
    assert "color_message" not in parsed and parsed["service"] == "facade" and parsed["logger"] == "uvicorn.error"


async def test_a_shared_processs_lines_name_the_service_whose_work_wrote_them() -> None:
    """Auth, billing and the router in one process (make run): each line still says which service wrote it — the
    one whose task (and the tasks it started) was running — and the process's name otherwise."""
    import asyncio

    from switchboard_common.lifecycle import CURRENT_SERVICE
    from switchboard_common.logs import _StampService

    formatter, stamp = JsonFormatter("auth+billing+router"), _StampService()

    def line() -> str:
        record = logging.LogRecord("switchboard_common.grpc_server", logging.INFO, __file__, 1, "stopped", (), None)
        stamp.filter(record)  # where the record is written; the writer thread formats it later
        return str(orjson.loads(formatter.format(record))["service"])

    async def started_by_billing() -> str:
        return line()

    async def billing_work() -> str:
        return await asyncio.get_running_loop().create_task(started_by_billing())

    token = CURRENT_SERVICE.set("billing")
    try:
        task = asyncio.get_running_loop().create_task(billing_work())
    finally:
        CURRENT_SERVICE.reset(token)
    assert await task == "billing"
    assert line() == "auth+billing+router"
