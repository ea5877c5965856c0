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
